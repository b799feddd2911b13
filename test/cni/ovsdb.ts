// The OVSDB client berth-ovs stands on: framing as a unit, then every call
// against a real ovsdb-server + ovs-vswitchd (userspace datapath) of our own.
import t, { type Test } from 'tap';
import { connect, createServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonStreamSplitter, OvsdbClient, OvsdbTransactError, op, map, set, uuid, namedUuid } from '../../cni/ovsdb.js';
import { skipWithoutOvs, startOvs, type OvsServer } from '../helpers/ovs.js';
import { cleanupLink, ip, uniqueName } from '../helpers/netns.js';

const messages: unknown[] = [
  { id: 1, result: [{ rows: [{ name: 'a{b}[c]' }] }], error: null },
  { method: 'echo', params: ['say "}" \\', '{"x":1}'], id: 'echo' },
  [1, 'é€😀 multi-byte', { nested: { deep: ['\\"', '\\\\'] } }],
  { id: 2, result: {}, error: { error: 'x', details: 'brace } quote " backslash \\' } },
];
const stream = Buffer.from(messages.map((m) => JSON.stringify(m)).join('\n') + '  ');

t.test('the splitter yields whole values for a split at every byte', async (t) => {
  for (let cut = 0; cut <= stream.length; cut++) {
    const got: unknown[] = [];
    const s = new JsonStreamSplitter((v) => got.push(v));
    s.feed(stream.subarray(0, cut));
    s.feed(stream.subarray(cut));
    if (JSON.stringify(got) !== JSON.stringify(messages)) {
      t.same(got, messages, `split at byte ${cut}`);
      return;
    }
  }
  t.pass(`all ${stream.length + 1} split points give the same four values`);
  const got: unknown[] = [];
  const s = new JsonStreamSplitter((v) => got.push(v));
  for (let i = 0; i < stream.length; i++) s.feed(stream.subarray(i, i + 1));
  t.same(got, messages, 'one byte at a time');
  const back: unknown[] = [];
  new JsonStreamSplitter((v) => back.push(v)).feed(Buffer.from('{"a":1}{"b":"}"}[2]'));
  t.same(back, [{ a: 1 }, { b: '}' }, [2]], 'values back to back with no separator');
  t.throws(() => new JsonStreamSplitter(() => undefined).feed(Buffer.from('x{}')), /unexpected byte/);
});

/** A short private dir: unix socket paths are limited to 108 bytes, and tap's fixture dirs are longer. */
function sockDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-ovsdb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('connecting to a missing socket fails at once, naming the path', async (t) => {
  const path = join(sockDir(t), 'nothing.sock');
  const started = Date.now();
  // ENOENT, not "no connection after 30000 ms": the socket's error, not the timer
  await t.rejects(OvsdbClient.connect(path, { timeout: 30000 }), new RegExp(`failed to connect to ovsdb "${path.replace(/[.]/g, '\\.')}": .*ENOENT`));
  t.ok(Date.now() - started < 5000, 'no waiting for the 30 s timeout');
});

t.test('against a scripted server: echo is answered, errors and silence are bounded', async (t) => {
  const path = join(sockDir(t), 'fake.sock');
  const seen: unknown[] = [];
  const server = createServer((c: Socket) => {
    const s = new JsonStreamSplitter((msg) => {
      seen.push(msg);
      const m = msg as { id: unknown; method?: string; params?: unknown[] };
      if (m.method === 'list_dbs') {
        // An echo request first, cut in two, then the reply in pieces glued to nothing.
        const echo = JSON.stringify({ method: 'echo', params: ['ping', 7], id: 'echo' });
        c.write(echo.slice(0, 9));
        setTimeout(() => c.write(echo.slice(9) + JSON.stringify({ id: m.id, result: ['Open_vSwitch'], error: null }).slice(0, 5)), 10);
        setTimeout(() => c.write(JSON.stringify({ id: m.id, result: ['Open_vSwitch'], error: null }).slice(5)), 20);
      } else if (m.method === 'transact') c.write(JSON.stringify({ id: m.id, result: null, error: { error: 'unknown database', details: 'no db' } }));
      // "get_schema" gets no answer at all
    });
    c.on('data', (d) => s.feed(d));
  });
  await new Promise<void>((r) => server.listen(path, r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const client = await OvsdbClient.connect(path, { timeout: 500 });
  t.teardown(() => client.close());
  t.same(await client.request('list_dbs', []), ['Open_vSwitch']);
  // the client answered the echo before it read the reply above, but the server may not have read that answer yet
  const echoed = () => seen.find((m) => (m as { id: unknown }).id === 'echo');
  for (let i = 0; i < 100 && !echoed(); i++) await new Promise((r) => setTimeout(r, 20));
  t.same(echoed(), { id: 'echo', result: ['ping', 7], error: null }, 'echo answered with its params');
  await t.rejects(client.transact('Nope', []), /failed to transact on database "Nope" on ovsdb ".*": unknown database: no db/);
  const started = Date.now();
  await t.rejects(client.request('get_schema', ['x']), /no reply within 500 ms/);
  const took = Date.now() - started;
  t.ok(took >= 450, `not given up on before its timeout (${took} ms)`);
  t.ok(took < 3000, `bounded by the timeout, not a hang (${took} ms)`);
  client.close();
  await t.rejects(client.request('list_dbs', []), /connection closed/);
});

if (!skipWithoutOvs(t)) {
  let ovs: OvsServer;
  let client: OvsdbClient;
  const bridge = uniqueName('bo');
  t.before(async () => {
    ovs = await startOvs();
    await ovs.addBridge(bridge);
    client = await OvsdbClient.connect(ovs.sock);
  });
  t.teardown(async () => {
    client?.close();
    await ovs?.stop();
  });

  const rows = async (table: string, name: string) => ovs.vsctl('--columns=_uuid', 'find', table, `name=${name}`);

  t.test('a raw transact: select on Open_vSwitch, and a failing op is named', async (t) => {
    const [r] = await client.transact('Open_vSwitch', [op.select('Open_vSwitch', [], ['bridges'])]);
    t.equal(r?.rows?.length, 1, 'one root row');
    const bridges = r!.rows![0]!['bridges'];
    const ours = await ovs.vsctl('get', 'bridge', bridge, '_uuid');
    t.same(bridges, uuid(ours), 'the root row references our bridge');
    const err = await client
      .transact('Open_vSwitch', [op.comment('fine'), op.insert('Port', { name: 'x', no_such_column: 1 })])
      .catch((e: unknown) => e);
    t.type(err, OvsdbTransactError);
    t.equal((err as OvsdbTransactError).index, 1);
    t.match((err as Error).message, /operation 1 \(insert Port\) failed: .*no_such_column/);
  });

  t.test('addPort with a VLAN tag and external ids', async (t) => {
    const name = uniqueName('pt');
    const added = await client.addPort(bridge, { name, vlanTag: 100, externalIds: { 'berth/container': 'c1', 'berth/ifname': 'eth0' } });
    t.match(added.portUuid, /^[0-9a-f-]{36}$/);
    t.equal(await ovs.vsctl('get', 'port', name, 'tag'), '100');
    t.equal(await ovs.vsctl('get', 'port', name, 'external_ids'), '{"berth/container"=c1, "berth/ifname"=eth0}');
    t.equal(await ovs.vsctl('get', 'port', name, '_uuid'), added.portUuid);
    t.equal(await ovs.vsctl('get', 'interface', name, '_uuid'), added.interfaceUuid);
    t.equal(await ovs.vsctl('port-to-br', name), bridge);
    t.same((await ovs.vsctl('list-ports', bridge)).split('\n'), [name]);
    await client.deletePort(bridge, name);
  });

  t.test('addPort with trunks', async (t) => {
    const name = uniqueName('pk');
    await client.addPort(bridge, { name, trunks: [10, 20, 30] });
    t.equal(await ovs.vsctl('get', 'port', name, 'trunks'), '[10, 20, 30]');
    t.equal(await ovs.vsctl('get', 'port', name, 'tag'), '[]');
    await client.deletePort(bridge, name);
    await t.rejects(client.addPort(bridge, { name, trunks: [5000] }), /failed to add port ".*" to bridge ".*": VLAN 5000/);
    await t.rejects(client.addPort(bridge, { name, vlanTag: 1, trunks: [2] }), /exclude each other/);
  });

  t.test('addPort to a missing bridge rejects naming it and leaves nothing behind', async (t) => {
    const name = uniqueName('pm');
    const missing = uniqueName('nob');
    await t.rejects(client.addPort(missing, { name, vlanTag: 5 }), new RegExp(`failed to add port "${name}" to bridge "${missing}": no such bridge`));
    t.equal(await rows('Port', name), '', 'no Port row');
    t.equal(await rows('Interface', name), '', 'no Interface row');
    // Why addPort needs its wait guard: without it the same ops commit "successfully".
    const r = await client.transact('Open_vSwitch', [
      op.insert('Interface', { name, type: '' }, 'i'),
      op.insert('Port', { name, interfaces: namedUuid('i') }, 'p'),
      op.mutate('Bridge', [['name', '==', missing]], [['ports', 'insert', set(namedUuid('p'))]]),
    ]);
    t.equal(r[2]?.count, 0, 'a mutate that matches no bridge reports count 0 (why addPort guards with wait)');
    t.equal(await rows('Port', name), '', 'unreferenced rows are garbage-collected by the server');
  });

  t.test('a duplicate port name is refused and the first port stays', async (t) => {
    const name = uniqueName('pd');
    await client.addPort(bridge, { name });
    await t.rejects(client.addPort(bridge, { name }), new RegExp(`failed to add port "${name}" to bridge "${bridge}": .*constraint violation`));
    t.equal((await rows('Port', name)).split('\n').filter(Boolean).length, 1);
    await client.deletePort(bridge, name);
  });

  t.test('listPorts', async (t) => {
    const a = uniqueName('pa');
    const b = uniqueName('pb');
    await client.addPort(bridge, { name: a, vlanTag: 7, externalIds: { k: 'v' } });
    await client.addPort(bridge, { name: b, trunks: [3, 4] });
    t.teardown(async () => {
      await client.deletePort(bridge, a);
      await client.deletePort(bridge, b);
    });
    const ports = await client.listPorts(bridge);
    t.same(
      ports.map((p) => p.name),
      [a, b, bridge].sort((x, y) => x.localeCompare(y)),
      'our two ports and the bridge internal port',
    );
    const pa = ports.find((p) => p.name === a)!;
    t.equal(pa.tag, 7);
    t.same(pa.trunks, []);
    t.same(pa.externalIds, { k: 'v' });
    t.equal(pa.uuid, await ovs.vsctl('get', 'port', a, '_uuid'));
    t.same(pa.interfaces.map((i) => i.name), [a]);
    const pb = ports.find((p) => p.name === b)!;
    t.equal(pb.tag, undefined);
    t.same(pb.trunks, [3, 4]);
    await t.rejects(client.listPorts('nobridge0'), /failed to list ports of bridge "nobridge0": no such bridge/);
  });

  t.test('deletePort removes port and interface, and repeats fine', async (t) => {
    const name = uniqueName('px');
    await client.addPort(bridge, { name, vlanTag: 9 });
    t.not(await rows('Interface', name), '');
    t.equal(await client.deletePort(bridge, name), true);
    t.equal(await rows('Port', name), '', 'Port row gone');
    t.equal(await rows('Interface', name), '', 'Interface row gone with it');
    t.equal(await ovs.vsctl('list-ports', bridge), '', 'not on the bridge');
    t.equal(await client.deletePort(bridge, name), false, 'a second delete is a no-op');
    const other = uniqueName('bq');
    await ovs.addBridge(other);
    const elsewhere = uniqueName('pe');
    await client.addPort(other, { name: elsewhere });
    await t.rejects(client.deletePort(bridge, elsewhere), /not on this bridge/);
    t.equal(await ovs.vsctl('port-to-br', elsewhere), other, 'a port on another bridge is left alone');
    t.equal(await client.deletePort(other, elsewhere), true);
    await ovs.vsctl('del-br', other);
  });

  t.test('a port on a real veth gets an ofport; a missing device reports its error', async (t) => {
    const host = uniqueName('vo');
    const peer = uniqueName('vp');
    cleanupLink(t, host);
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', host, 'up');
    await client.addPort(bridge, { name: host, vlanTag: 100 });
    t.teardown(() => client.deletePort(bridge, host));
    // vswitchd is given 30 s: on two busy cores it once took more than 5
    let iface = await client.getInterface(host);
    for (let i = 0; i < 600 && !(iface?.ofport && iface.ofport > 0); i++) {
      await new Promise((r) => setTimeout(r, 50));
      iface = await client.getInterface(host);
    }
    t.ok(iface?.ofport && iface.ofport > 0, `ofport assigned: ${iface?.ofport}`);
    t.equal(String(iface?.ofport), await ovs.vsctl('get', 'interface', host, 'ofport'));
    t.equal(iface?.error, undefined);
    t.equal(iface?.type, '');
    t.same(
      (await client.listPorts(bridge)).find((p) => p.name === host)?.interfaces,
      [{ name: host, ofport: iface?.ofport }],
    );

    const ghost = uniqueName('vg');
    await client.addPort(bridge, { name: ghost });
    t.teardown(() => client.deletePort(bridge, ghost));
    let g = await client.getInterface(ghost);
    for (let i = 0; i < 600 && g?.error === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      g = await client.getInterface(ghost);
    }
    t.equal(g?.ofport, -1, 'no device: ofport -1');
    t.match(g?.error, /No such device|could not open/);
    t.equal(await client.getInterface(uniqueName('none')), null);
  });

  t.test('values encode as OVSDB expects', async (t) => {
    t.same(map({ a: 'b' }), ['map', [['a', 'b']]]);
    t.same(set(1, 2), ['set', [1, 2]]);
    t.same(namedUuid('n'), ['named-uuid', 'n']);
    t.same(op.wait('Bridge', [['name', '==', 'b']], ['name'], '==', [{ name: 'b' }]), {
      op: 'wait', table: 'Bridge', where: [['name', '==', 'b']], columns: ['name'], until: '==', rows: [{ name: 'b' }], timeout: 0,
    });
  });

  t.test('one connection, and three requests per addPort + deletePort: counted, not timed', async (t) => {
    // a proxy between the client and ovsdb-server counts connections and requests
    const path = join(sockDir(t), 'count.sock');
    let connections = 0;
    const methods = new Map<string, number>();
    const proxy = createServer((c: Socket) => {
      connections++;
      const up = connect(ovs.sock);
      const s = new JsonStreamSplitter((msg) => {
        const m = (msg as { method?: unknown }).method;
        if (typeof m === 'string') methods.set(m, (methods.get(m) ?? 0) + 1);
      });
      c.on('data', (d: Buffer) => {
        s.feed(d);
        up.write(d);
      });
      up.pipe(c);
      c.on('close', () => up.destroy());
      up.on('close', () => c.destroy());
    });
    await new Promise<void>((r) => proxy.listen(path, r));
    t.teardown(() => new Promise<void>((r) => proxy.close(() => r())));
    const counted = await OvsdbClient.connect(path);
    t.teardown(() => counted.close());
    const n = 100;
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const name = `tm${i}`;
      await counted.addPort(bridge, { name, vlanTag: 10 });
      await counted.deletePort(bridge, name);
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    t.comment(`addPort+deletePort: ${(ms / n).toFixed(2)} ms per pair over ${n} (for information: npm run bench compares)`);
    t.equal(connections, 1, 'one connection for all of them');
    t.same(Object.fromEntries(methods), { transact: 3 * n }, 'one transaction per addPort, a lookup and a transaction per deletePort, nothing else');
    t.equal(await ovs.vsctl('list-ports', bridge), '', 'nothing left behind');
  });
}
