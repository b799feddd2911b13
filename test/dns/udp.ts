// listenDns's UDP side on real sockets: the native thread gives a kept answer
// to the same question asked again, with the asker's id, and never one from
// a zone that has been replaced; what it does not hold is answered here.
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import packet from 'dns-packet';
import t from 'tap';
import { parseIp } from '../../core/address.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { answerQuery } from '../../dns/answer.js';
import { listenDns, type ZoneSource } from '../../dns/server.js';
import { buildZone, type Zone } from '../../dns/zone.js';

function zoneWith(address: string, ttl = 5): Zone {
  const conf = buildPoolConfig({ name: 'web', subnet: '10.20.0.0/24' });
  const records = [{ pool: 'web', ip: parseIp(address, 'ip').hex, state: 'allocated' as const, owner: 'web-1' }];
  return buildZone({ zone: 'berth', ttl, serial: 1, nsAddresses: ['127.0.0.1'], now: Date.now(), pools: [{ conf, records }], members: [] }).zone;
}

/** A zone source whose zone the test replaces. */
class Source implements ZoneSource {
  private listeners: Array<() => void> = [];
  constructor(private zone: Zone) {}
  current(): Zone {
    return this.zone;
  }
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }
  replace(zone: Zone): void {
    this.zone = zone;
    for (const l of this.listeners) l();
  }
}

const query = (id: number, name = 'web-1.web.berth', options: Array<{ code: number; data: Buffer }> | null = null) =>
  packet.encode({
    type: 'query',
    id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type: 'A', name, class: 'IN' }],
    ...(options ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options } as unknown as packet.Answer] } : {}),
  });

/** Sends `bytes` and resolves with the first datagram back, or null after `ms`. */
function exchange(client: Socket, port: number, bytes: Buffer, ms = 2000): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      resolve(null);
    }, ms);
    const onMessage = (msg: Buffer) => {
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(msg);
    };
    client.on('message', onMessage);
    client.send(bytes, port, '127.0.0.1');
  });
}

const addressOf = (answer: Buffer | null) => (packet.decode(answer!).answers ?? []).map((a) => `${a.type} ${String((a as { data?: unknown }).data)}`);

t.test('kept answers: the same bytes as answerQuery with the asker id, forgotten with the zone', async (t) => {
  const source = new Source(zoneWith('10.20.0.2'));
  const errors: Error[] = [];
  const server = await listenDns({ host: '127.0.0.1', port: 0 }, source, (err) => errors.push(err));
  t.teardown(() => server.close());
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));

  const first = await exchange(client, server.port, query(1));
  t.same(first, answerQuery(query(1), source.current(), 'udp'), 'first asked: answered here');
  t.same(server.udp(), { kept: 0, passed: 1 });
  for (let id = 2; id <= 20; id++) {
    const again = await exchange(client, server.port, query(id));
    t.same(again, answerQuery(query(id), source.current(), 'udp'), `asked again with id ${id}: the same answer, id ${id}`);
  }
  t.same(server.udp(), { kept: 19, passed: 1 }, 'every repeat answered from the kept answer');

  source.replace(zoneWith('10.20.0.9'));
  t.same(addressOf(await exchange(client, server.port, query(21))), ['A 10.20.0.9'], 'the zone replaced: the new address at once');
  t.same(server.udp(), { kept: 19, passed: 2 }, 'asked anew after the change');
  t.same(addressOf(await exchange(client, server.port, query(22))), ['A 10.20.0.9']);
  t.same(server.udp(), { kept: 20, passed: 2 });

  // a client cookie is new in every query: such answers are not kept
  const cookie = (id: number) => query(id, 'web-1.web.berth', [{ code: 10, data: Buffer.alloc(8, id) }]);
  t.same(addressOf(await exchange(client, server.port, cookie(23))), ['A 10.20.0.9']);
  t.same(addressOf(await exchange(client, server.port, cookie(23))), ['A 10.20.0.9']);
  t.same(server.udp(), { kept: 20, passed: 4 }, 'queries with EDNS options answered here each time');

  t.equal(await exchange(client, server.port, Buffer.from([1, 2, 3]), 300), null, 'a datagram shorter than a header: no answer');
  const garbage = await exchange(client, server.port, Buffer.from('0007ffffffffffffffffffffffffffff', 'hex'));
  t.equal(garbage?.readUInt16BE(0), 7, 'garbage after a header: an answer with its id');
  t.equal((garbage!.readUInt16BE(2) & 0xf), 1, 'FORMERR');
  t.same(errors, [], 'no failure inside the answering code');
});

t.test('under load: every answer carries its own id, and TCP on the same port', async (t) => {
  const source = new Source(zoneWith('10.20.0.2'));
  const server = await listenDns({ host: '127.0.0.1', port: 0 }, source, (err) => t.fail(err.message));
  t.teardown(() => server.close());
  const client = createSocket('udp4');
  t.teardown(() => client.close());
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
  await exchange(client, server.port, query(60000));
  const seen = new Map<number, string[]>();
  const all = new Promise<void>((resolve) => {
    client.on('message', (msg) => {
      seen.set(msg.readUInt16BE(0), addressOf(msg));
      if (seen.size === 2000) resolve();
    });
  });
  // in rounds of 200, so the kernel's buffers never drop one
  for (let round = 0; round < 10; round++) {
    const before = seen.size;
    for (let i = 0; i < 200; i++) client.send(query(round * 200 + i + 1), server.port, '127.0.0.1');
    while (seen.size < before + 200) await new Promise((r) => setTimeout(r, 5));
  }
  await all;
  t.equal(seen.size, 2000, 'an answer for each of 2,000 ids');
  t.ok([...seen.values()].every((a) => a.join() === 'A 10.20.0.2'), 'each with the address');
  t.same(server.udp(), { kept: 2000, passed: 1 }, 'all 2,000 answered on the native thread, from the answer kept for the first');

  const over = await new Promise<Buffer>((resolve, reject) => {
    const conn = connect(server.port, '127.0.0.1', () => {
      const q = query(99);
      const framed = Buffer.alloc(2 + q.length);
      framed.writeUInt16BE(q.length, 0);
      q.copy(framed, 2);
      conn.write(framed);
    });
    conn.once('data', (d) => {
      conn.destroy();
      resolve(d.subarray(2));
    });
    conn.once('error', reject);
  });
  t.same(addressOf(over), ['A 10.20.0.2'], 'TCP on the same port');
});

t.test('close: the port is free again; a port in use is refused by name', async (t) => {
  const source = new Source(zoneWith('10.20.0.2'));
  const server = await listenDns({ host: '127.0.0.1', port: 0 }, source, () => {});
  const port = server.port;
  await t.rejects(listenDns({ host: '127.0.0.1', port }, source, () => {}), { code: 'EADDRINUSE' }, 'the same port while it is open');
  await server.close();
  await server.close();
  const again = await listenDns({ host: '127.0.0.1', port }, source, () => {});
  t.equal(again.port, port, 'bound again once closed');
  await again.close();
  source.replace(zoneWith('10.20.0.3'));
  t.pass('a zone change after close is ignored');
});
