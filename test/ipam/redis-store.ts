// The Redis store where Redis itself is the subject: outages, a server that
// stops answering, AUTH, TLS, Sentinel, memory, and contents it cannot trust.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { openStore, StoreCache, withStore } from '../../ipam/open-store.js';
import { BerthError, isBerthError } from '../../core/errors.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { parseIp } from '../../core/address.js';
import { checkPool } from '../../ipam/check.js';
import type { Store } from '../../ipam/model.js';
import { freePort, skipWithoutRedis, startRedis } from '../helpers/redis.js';
import { makeCerts } from '../helpers/tls.js';
import { haConfig, replicating, until } from '../helpers/sentinel.js';
import { toCniError } from '../../cni/errors.js';

if (!skipWithoutRedis(t)) {
  const open = async (tt: Test, url: string): Promise<Store> => {
    const store = await openStore(url);
    tt.teardown(() => store.close());
    return store;
  };

  t.test('Redis killed mid-run: a clear error, nothing acknowledged lost, and the same client carries on after', async (t) => {
    const server = await startRedis({ durable: true });
    t.teardown(() => server.stop());
    const url = `${server.url}?timeout=1000`;
    const store = await open(t, url);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.8.0.0/16', hold: 0 }));
    const acked = new Map<string, string>();
    const errors: Array<{ code?: string; message: string }> = [];
    let killedAt = 0;
    let i = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (errors.length === 0 || Date.now() - killedAt < 1500) {
          const cid = `c${i++}`;
          try {
            const a = await store.allocate('p', { containerId: cid, ifname: 'eth0', owner: cid });
            acked.set(cid, a.ip);
            if (acked.size === 400 && !killedAt) {
              killedAt = Date.now();
              await server.stop('SIGKILL');
            }
          } catch (err) {
            errors.push(err as { code?: string; message: string });
            if (!killedAt) throw err;
          }
        }
      }),
    );
    t.ok(errors.length > 0, 'operations fail while Redis is down');
    t.ok(errors.every((e) => e.code === 'STORE_UNAVAILABLE'), 'every failure is STORE_UNAVAILABLE');
    t.match(errors[0]!.message, /^failed to reach store redis:\/\/127\.0\.0\.1:\d+\/0/);
    await server.start();
    // the same store reconnects by itself
    let listed: Awaited<ReturnType<Store['listAddresses']>> | undefined;
    for (let n = 0; n < 50 && !listed; n++) {
      listed = await store.listAddresses('p').catch(() => undefined);
      if (!listed) await new Promise((r) => setTimeout(r, 100));
    }
    t.ok(listed, 'the client reconnected after the restart');
    const byCid = new Map(listed!.map((a) => [a.containerId, a.ip]));
    let lost = 0;
    for (const [cid, ip] of acked) if (byCid.get(cid) !== ip) lost++;
    t.equal(lost, 0, `all ${acked.size} acknowledged allocations survived the crash`);
    const again = await store.allocate('p', { containerId: 'after', ifname: 'eth0', owner: 'after' });
    t.notOk([...acked.values()].includes(again.ip), 'and new allocations do not reuse them');
  });

  t.test('a Redis that stops answering gives STORE_UNAVAILABLE within the timeout, not a hang', async (t) => {
    const server = await startRedis();
    t.teardown(async () => {
      server.signal('SIGCONT');
      await server.stop();
    });
    const store = await open(t, `${server.freshUrl()}&timeout=500`);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.9.0.0/24' }));
    server.signal('SIGSTOP');
    const started = Date.now();
    await t.rejects(store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' }), { code: 'STORE_UNAVAILABLE', message: /timed out/i });
    const took = Date.now() - started;
    t.ok(took >= 450 && took < 3000, `bounded by the 500 ms command timeout, not before it (${took} ms)`);
    server.signal('SIGCONT');
  });

  t.test('a refused connection fails at once', async (t) => {
    const port = await freePort();
    const store = await open(t, `redis://127.0.0.1:${port}/0`);
    await t.rejects(store.listPools(), { code: 'STORE_UNAVAILABLE', message: /ECONNREFUSED/ });
  });

  t.test('AUTH: password and ACL users', async (t) => {
    const server = await startRedis({ config: ['requirepass s3cret', 'user app on >app-pass ~berth* &* +@all'] });
    t.teardown(() => server.stop());
    const noAuth = await open(t, `redis://127.0.0.1:${server.port}/0`);
    await t.rejects(noAuth.listPools(), { code: 'STORE_UNAVAILABLE', message: /NOAUTH/ });
    const wrong = await open(t, `redis://:nope@127.0.0.1:${server.port}/0`);
    await t.rejects(wrong.listPools(), { code: 'STORE_UNAVAILABLE', message: /WRONGPASS/ });
    t.notMatch(await wrong.listPools().catch((e: Error) => e.message), /nope/, 'the password is not in the message');
    const right = await open(t, `redis://:s3cret@127.0.0.1:${server.port}/0`);
    await right.createPool(buildPoolConfig({ name: 'p', subnet: '10.10.0.0/24' }));
    const user = await open(t, `redis://app:app-pass@127.0.0.1:${server.port}/0`);
    const a = await user.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' });
    t.equal(a.ip, parseIp('10.10.0.2', 'ip').hex, 'an ACL user sees the same pool');
  });

  t.test('TLS (rediss://) with a private CA', async (t) => {
    const pem = makeCerts(t.testdir());
    const server = await startRedis({ tls: { cert: pem('server.crt'), key: pem('server.key'), ca: pem('ca.crt') } });
    t.teardown(() => server.stop());
    const store = await open(t, `rediss://127.0.0.1:${server.port}/0?ca=${encodeURIComponent(pem('ca.crt'))}`);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.11.0.0/24' }));
    const a = await store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' });
    t.equal(a.ip, parseIp('10.11.0.2', 'ip').hex, 'works over TLS');
    const untrusted = await open(t, `rediss://127.0.0.1:${server.port}/0`);
    await t.rejects(untrusted.listPools(), { code: 'STORE_UNAVAILABLE', message: /certificate/i }, 'an unknown CA is refused');
    const plain = await open(t, `redis://127.0.0.1:${server.port}/0?timeout=1000`);
    await t.rejects(plain.listPools(), { code: 'STORE_UNAVAILABLE' }, 'plain text to a TLS port fails');
  });

  t.test('Sentinel: the store finds the master through redis+sentinel://', async (t) => {
    const master = await startRedis();
    t.teardown(() => master.stop());
    const port = await freePort();
    const conf = join(t.testdir(), 'sentinel.conf');
    writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `sentinel monitor berthmaster 127.0.0.1 ${master.port} 1`, ''].join('\n'));
    const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    t.teardown(() => {
      sentinel.kill('SIGKILL');
    });
    const store = await open(t, `redis+sentinel://127.0.0.1:${port}/berthmaster/0`);
    let created = false;
    for (let n = 0; n < 50 && !created; n++) {
      created = await store
        .createPool(buildPoolConfig({ name: 'p', subnet: '10.12.0.0/24' }))
        .then(() => true)
        .catch(async () => {
          await new Promise((r) => setTimeout(r, 100));
          return false;
        });
    }
    t.ok(created, 'created through the sentinel');
    t.ok(master.cli('HEXISTS', 'berth:pools', 'p') === '1', 'on the master it names');
  });

  t.test('memory follows the addresses in use, not the subnet', async (t) => {
    const server = await startRedis();
    t.teardown(() => server.stop());
    const store = await open(t, server.url);
    // load the scripts and the connection first: measure only what the pool adds
    await store.createPool(buildPoolConfig({ name: 'warm', subnet: '10.15.0.0/24' }));
    await store.removePool('warm');
    const before = Number(/used_memory:(\d+)/.exec(server.cli('INFO', 'memory'))![1]);
    await store.createPool(buildPoolConfig({ name: 'big', subnet: '10.16.0.0/12' }));
    const keys = server.cli('KEYS', '*').split('\n').filter(Boolean);
    const bytes = keys.reduce((sum, k) => sum + Number(server.cli('MEMORY', 'USAGE', k)), 0);
    t.ok(bytes < 4096, `a fresh /12 pool's keys take ${bytes} bytes`);
    const after = Number(/used_memory:(\d+)/.exec(server.cli('INFO', 'memory'))![1]);
    t.ok(after - before < 1024 * 1024, `used_memory grew by ${after - before} bytes, not megabytes (client buffers included)`);
  });

  t.test('shared stores (plugins inside the agent): one connection per URL, dropped and retried once when it breaks', async (t) => {
    const server = await startRedis();
    t.teardown(() => server.stop());
    const cache = new StoreCache();
    t.teardown(() => cache.close());
    const domain = (err: unknown) => isBerthError(err);
    const seen: Store[] = [];
    const note = async (s: Store) => {
      seen.push(s);
      return (await s.listPools()).length;
    };
    await withStore(server.url, {}, note, domain, cache);
    await withStore(server.url, {}, note, domain, cache);
    t.equal(seen[0], seen[1], 'the second operation reuses the first one\'s store');
    t.ok(Number(/connected_clients:(\d+)/.exec(server.cli('INFO', 'clients'))![1]) <= 2, 'one connection (and redis-cli\'s own)');

    // a failure that is not berth's (a broken connection): the kept store is dropped, the operation runs once more on a new one
    let calls = 0;
    const n = await withStore(server.url, {}, async (s) => {
      calls++;
      seen.push(s);
      if (calls === 1) throw new Error('connection reset');
      return (await s.listPools()).length;
    }, domain, cache);
    t.equal(n, 0);
    t.equal(calls, 2, 'retried once');
    t.not(seen.at(-1), seen[0], 'on a fresh store');
    await t.rejects(
      withStore(server.url, {}, async () => {
        calls++;
        throw new Error('still broken');
      }, domain, cache),
      /still broken/,
      'a second failure is returned',
    );
    t.equal(calls, 4, 'after one retry only');

    // an unreachable store (the form a reset connection or a timeout takes) is retried like a broken one
    await withStore(server.url, {}, async (s) => s.listPools(), domain, cache); // a kept store again
    calls = 0;
    t.equal(await withStore(server.url, {}, async (s) => {
      calls++;
      if (calls === 1) throw new BerthError('STORE_UNAVAILABLE', 'failed to reach store: connection reset');
      return (await s.listPools()).length;
    }, domain, cache), 0);
    t.equal(calls, 2, 'STORE_UNAVAILABLE on a kept store: retried on a fresh one');

    // a store dropped by one operation is closed only after the others on it are done
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = withStore(server.url, {}, async (s) => {
      await gate;
      return (await s.listPools()).length;
    }, domain, cache);
    await withStore(server.url, {}, async () => {
      throw new Error('connection reset');
    }, domain, cache).catch(() => {});
    release();
    t.equal(await slow, 0, 'an operation in flight on the dropped store still completes');

    // Redis drops every client: the next operation still succeeds
    server.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    t.equal(await withStore(server.url, {}, async (s) => (await s.listPools()).length, domain, cache), 0, 'after CLIENT KILL');

    // berth's own errors are answers, not broken connections: no retry, the store stays
    calls = 0;
    await t.rejects(withStore(server.url, {}, async (s) => {
      calls++;
      return s.getPool('nosuch');
    }, domain, cache), { code: 'POOL_NOT_FOUND' });
    t.equal(calls, 1, 'a berth error is not retried');

    // the file store is never kept: each operation opens its own
    const fileSeen: Store[] = [];
    const url = `file://${t.testdir()}/store`;
    await withStore(url, {}, async (s) => void fileSeen.push(s), domain, cache);
    await withStore(url, {}, async (s) => void fileSeen.push(s), domain, cache);
    t.not(fileSeen[0], fileSeen[1], 'file stores are opened per operation');
  });

  t.test('store contents it cannot trust are reported, naming the address and field', async (t) => {
    const server = await startRedis();
    t.teardown(() => server.stop());
    const store = await open(t, server.url);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.13.0.0/24' }));
    server.cli('HSET', 'berth:{p}:addr', '0a0d0005', '{"s":"x","t":1}');
    await t.rejects(store.listAddresses('p'), { code: 'STORE_CORRUPT', message: /0a0d0005: field "s"/ });
    server.cli('HSET', 'berth:{p}:addr', '0a0d0005', 'not json');
    await t.rejects(store.getAddress('p', '0a0d0005'), { code: 'STORE_CORRUPT' });
    server.cli('HSET', 'berth:pools', 'p', '{"id":1}');
    await t.rejects(store.getPool('p'), { code: 'STORE_CORRUPT', message: /registry entry of pool "p"/ });
  });
}

// --- regressions from the review of the store (each reproduced a real bug) ---

if (!skipWithoutRedis(t)) {
  const fresh = async (tt: Test, extra = '') => {
    const server = await startRedis();
    tt.teardown(() => server.stop());
    const store = await openStore(server.url + extra);
    tt.teardown(() => store.close());
    return { server, store };
  };

  t.test('an owner-index entry the record does not bear out never hands out an allocated address', async (t) => {
    const { server, store } = await fresh(t);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.30.0.0/29' }));
    const b = await store.allocate('p', { containerId: 'b', ifname: 'eth0', owner: 'B' });
    const raw = new Redis({ port: server.port, host: '127.0.0.1' }); // redis-cli cannot pass a NUL byte
    await raw.zadd('berth:{p}:held', 0, `A\u0000${b.ip}`); // as a racing repair could leave it
    raw.disconnect();
    const a = await store.allocate('p', { containerId: 'a', ifname: 'eth0', owner: 'A' });
    t.not(a.ip, b.ip, 'A gets another address');
    t.match(await store.getAddress('p', b.ip), { state: 'allocated', containerId: 'b' }, 'B keeps its own');
    t.equal(server.cli('ZCARD', 'berth:{p}:held'), '0', 'and the stale entry is gone');
  });

  t.test('guarded repairs: a fix the pool has moved past is not applied', async (t) => {
    const { store } = await fresh(t);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.31.0.0/29', hold: 0 }));
    const a = await store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' });
    await store.release('p', { containerId: 'c', ifname: 'eth0' }); // now free, in the free set
    t.equal(await store.applyFixes('p', [{ kind: 'free', key: a.ip, value: null }]), 0, 'a free address is not taken out of the free set');
    t.equal(await store.applyFixes('p', [{ kind: 'held', key: `x\u0000${a.ip}`, present: true }]), 0, 'nor indexed as held for someone');
    t.same(checkPool(await store.snapshot('p')).findings, []);
  });

  t.test('a hold re-indexed by a repair still expires (the expiry lower bound is recomputed)', async (t) => {
    const { server, store } = await fresh(t);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.32.0.0/30', hold: 1 }));
    const a = await store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' });
    await store.release('p', { containerId: 'c', ifname: 'eth0' });
    server.cli('ZREM', 'berth:{p}:exp', a.ip);
    await store.allocate('p', { containerId: 'x', ifname: 'eth0', owner: 'x', ip: a.ip }).catch(() => {}); // runs expiry: index now empty
    const check = checkPool(await store.snapshot('p'));
    t.same(check.findings.map((f) => f.kind), ['expiry-missing']);
    t.equal(await store.applyFixes('p', check.fixes), 1);
    await new Promise((r) => setTimeout(r, 1200));
    const b = await store.allocate('p', { containerId: 'y', ifname: 'eth0', owner: 'y', ip: a.ip });
    t.equal(b.ip, a.ip, 'the hold ended and the address was handed out');
  });

  t.test('a live hold whose index entry is due is re-indexed at its real end, not dropped', async (t) => {
    const { server, store } = await fresh(t);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.33.0.0/29', hold: 3600 }));
    const a = await store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' });
    await store.release('p', { containerId: 'c', ifname: 'eth0' });
    const until = (await store.getAddress('p', a.ip)).until!;
    server.cli('ZADD', 'berth:{p}:exp', '1', a.ip);
    server.cli('HSET', 'berth:{p}:pool', 'm', server.cli('HGET', 'berth:{p}:pool', 'm').replace(/ \d+$/, ' 0'));
    await store.allocate('p', { containerId: 'x', ifname: 'eth0', owner: 'x' });
    t.equal(Number(server.cli('ZSCORE', 'berth:{p}:exp', a.ip)), until, 'indexed at the hold end');
    t.equal((await store.getAddress('p', a.ip)).state, 'reserved');
  });

  t.test('a record that cannot be read: STORE_CORRUPT for that address, the rest works, check reports it', async (t) => {
    const { server, store } = await fresh(t);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.34.0.0/29' }));
    server.cli('HSET', 'berth:{p}:addr', '0a220005', 'not json');
    await t.rejects(store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o', ip: '0a220005' }), { code: 'STORE_CORRUPT', message: /10\.34\.0\.5 cannot be read/ });
    const ok = await store.allocate('p', { containerId: 'd', ifname: 'eth0', owner: 'o' });
    t.not(ok.ip, '0a220005', 'other addresses are handed out, never the unreadable one');
    const findings = checkPool(await store.snapshot('p')).findings;
    t.match(findings, [{ kind: 'bad-record', ip: '10.34.0.5', repairable: false }]);
  });

  t.test('an out-of-memory server is unavailable, not corrupt, and refuses each change whole; reads still answer', async (t) => {
    const { server, store } = await fresh(t);
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.35.0.0/24' }));
    const a = await store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' });
    const before = server.cli('HGET', "berth:{p}:pool", 'm');
    server.cli('CONFIG', 'SET', 'maxmemory', '1');
    await t.rejects(store.allocate('p', { containerId: 'd', ifname: 'eth0', owner: 'o2' }), { code: 'STORE_UNAVAILABLE', message: /OOM/ });
    // the script is refused before it runs (its shebang): not even a repeat, whose answer would need a write to be confirmed
    await t.rejects(store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' }), { code: 'STORE_UNAVAILABLE', message: /OOM/ });
    await t.rejects(store.release('p', { containerId: 'c', ifname: 'eth0' }), { code: 'STORE_UNAVAILABLE', message: /OOM/ }, 'nothing half-done');
    t.equal(server.cli('HGET', "berth:{p}:pool", 'm'), before, 'the counters are untouched');
    t.match(await store.listPools(), [{ allocated: 1, reserved: 0 }], 'the counters are read by a script that writes nothing');
    t.match(await store.getAddress('p', a.ip), { state: 'allocated', containerId: 'c' });
    server.cli('CONFIG', 'SET', 'maxmemory', '0');
    t.match(await store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' }), { ip: a.ip, existing: true }, 'and works again once memory is back');
  });

  t.test('ioredis client: a first connection that failed does not poison the client', async (t) => {
    const port = await freePort();
    const store = await openStore(`redis://127.0.0.1:${port}/0`, { redisClient: 'ioredis' });
    t.teardown(() => store.close());
    await t.rejects(store.listPools(), { code: 'STORE_UNAVAILABLE' });
    const server = await startRedis({ port });
    t.teardown(() => server.stop());
    t.same(await store.listPools(), [], 'connects once Redis is there');
  });

  t.test('ioredis client: an unreachable Sentinel fails within connectTimeout', async (t) => {
    const port = await freePort();
    const store = await openStore(`redis+sentinel://127.0.0.1:${port}/m?connectTimeout=500&timeout=500`, { redisClient: 'ioredis' });
    t.teardown(() => store.close());
    const started = Date.now();
    await t.rejects(store.listPools(), { code: 'STORE_UNAVAILABLE' });
    t.ok(Date.now() - started < 3000, `bounded by connectTimeout (500 ms): ${Date.now() - started} ms`);
  });
}

// --- replicas: a change is acknowledged only once a replica holds it; the registry ---

if (!skipWithoutRedis(t)) {
  const fresh = async (tt: Test) => {
    const server = await startRedis();
    tt.teardown(() => server.stop());
    const store = await openStore(server.url);
    tt.teardown(() => store.close());
    return { server, store };
  };
  const replicated = async (tt: Test) => {
    const master = await startRedis({ config: haConfig() });
    tt.teardown(() => master.stop());
    const replica = await startRedis({ config: [...haConfig(), `replicaof 127.0.0.1 ${master.port}`] });
    tt.teardown(async () => {
      replica.signal('SIGCONT');
      await replica.stop();
    });
    await replicating(master, 1);
    return { master, replica };
  };

  for (const client of ['resp', 'ioredis'] as const) {
    t.test(`${client}: a change no replica confirms is STORE_UNAVAILABLE (CNI 11), says what to do, and is never a success`, async (t) => {
      const { master, replica } = await replicated(t);
      const url = `${master.url}?timeout=1000`;
      const store = await openStore(url, { redisClient: client });
      t.teardown(() => store.close());
      await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.40.0.0/24', hold: 0 }));
      const a = await store.allocate('p', { containerId: 'a', ifname: 'eth0', owner: 'a' });
      t.equal(replica.cli('HEXISTS', 'berth:{p}:addr', a.ip), '1', 'acknowledged: the replica holds it');

      replica.signal('SIGSTOP');
      const err = (await store.allocate('p', { containerId: 'b', ifname: 'eth0', owner: 'b' }).catch((e: unknown) => e)) as BerthError;
      t.match(err, { code: 'STORE_UNAVAILABLE', details: { unconfirmed: true, acked: 0, required: 1 } });
      t.match(
        err.message,
        /^failed to confirm a change on store redis:\/\/127\.0\.0\.1:\d+\/0\?timeout=1000: the change ran on 127\.0\.0\.1:\d+, but 0 of 1 replica confirmed it within 500 ms; it may have been applied on the master all the same, so repeat the same request \(ADD and DEL are idempotent per attachment\) or look at the address before acting on it$/,
      );
      t.equal(toCniError(err).code, 11, 'CNI: try again later');
      const b = (await store.listAddresses('p')).find((x) => x.containerId === 'b');
      t.ok(b, 'the master holds it all the same (WAIT rolls nothing back)');

      // Every change waits, and so does the repeat of one: on a fresh connection, which has written
      // nothing yet, WAIT alone would count the stopped replica (below); the script's own write makes it wait.
      const fresh = await openStore(url, { redisClient: client });
      t.teardown(() => fresh.close());
      const changes: Array<[string, () => Promise<unknown>]> = [
        ['the repeat of the ADD', () => fresh.allocate('p', { containerId: 'b', ifname: 'eth0', owner: 'b' })],
        ['an ADD of the one that holds an address already', () => fresh.allocate('p', { containerId: 'a', ifname: 'eth0', owner: 'a' })],
        ['a release', () => fresh.release('p', { containerId: 'a', ifname: 'eth0' })],
        ['a release of nothing', () => fresh.release('p', { containerId: 'nobody', ifname: 'eth0' })],
        ['a reservation', () => fresh.reserve('p', '0a28000a', { owner: 'x' })],
        ['a pool', () => fresh.createPool(buildPoolConfig({ name: 'q', subnet: '10.41.0.0/24' }))],
      ];
      for (const [what, change] of changes) {
        await t.rejects(change(), { code: 'STORE_UNAVAILABLE', details: { unconfirmed: true } }, `${what}: not acknowledged`);
      }
      const bare = spawnSync('redis-cli', ['-p', String(master.port), 'WAIT', '1', '100'], { encoding: 'utf8' }).stdout.trim();
      t.equal(bare, '1', 'control: WAIT on a connection that wrote nothing is "confirmed" by the stopped replica');
      t.match(await store.getAddress('p', b!.ip), { state: 'allocated' }, 'reads answer meanwhile');

      replica.signal('SIGCONT');
      await replicating(master, 1);
      t.match(await fresh.allocate('p', { containerId: 'b', ifname: 'eth0', owner: 'b' }), { ip: b!.ip, existing: true }, 'the runtime\'s retry gets the same address, confirmed');
      t.equal(replica.cli('HGET', 'berth:{p}:att', 'b/eth0'), b!.ip);
    });
  }

  t.test('a demoted master never acknowledges: a script meets READONLY before it runs, even a repeat that would write nothing', async (t) => {
    const { replica } = await replicated(t).then(async (r) => {
      const store = await openStore(r.master.url);
      await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.42.0.0/24' }));
      await store.allocate('p', { containerId: 'a', ifname: 'eth0', owner: 'a' });
      await store.close();
      return r;
    });
    await until('the replica to hold the allocation', () => (replica.cli('HEXISTS', 'berth:{p}:att', 'a/eth0') === '1' ? true : undefined));
    for (const q of ['', '?replicas=0']) {
      const stale = await openStore(`${replica.url}${q}`);
      t.teardown(() => stale.close());
      await t.rejects(stale.allocate('p', { containerId: 'a', ifname: 'eth0', owner: 'a' }), { code: 'STORE_UNAVAILABLE', message: /READONLY/ }, `${q || 'default'}: no answer from the replica's copy`);
      t.match(await stale.getAddress('p', parseIp('10.42.0.2', 'ip').hex), { state: 'allocated' }, 'reads still answer');
    }
  });

  t.test('serverWarnings: replicas no write waits for, and what berth cannot read', async (t) => {
    const { master } = await replicated(t);
    master.cli('CONFIG', 'SET', 'appendonly', 'yes');
    master.cli('CONFIG', 'SET', 'appendfsync', 'always');
    const at = `redis 127.0.0.1:${master.port}`;
    const warnings = async (url: string) => {
      const s = await openStore(url);
      try {
        return await s.serverWarnings();
      } finally {
        await s.close();
      }
    };
    t.same(await warnings(master.url), [
      `${at}: 1 replica but min-replicas-to-write 0: a master cut off from its replicas keeps taking changes that a failover then discards (berth waits for a replica before it acknowledges; writers with ?replicas=0 do not); set min-replicas-to-write 1`,
    ]);
    master.cli('CONFIG', 'SET', 'min-replicas-to-write', '1');
    t.same(await warnings(master.url), [], 'as recommended: nothing to say');
    t.same(await warnings(`${master.url}?replicas=0`), [
      `${at}: ?replicas=0 on the store URL while it has 1 replica: changes are acknowledged before any replica holds them, and a failover loses them`,
    ]);
    master.cli('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
    t.same(await warnings(master.url), [], 'a volatile-* policy evicts only keys with a TTL: berth sets none');
    master.cli('ACL', 'SETUSER', 'app', 'on', '>pw', '~*', '&*', '+@all', '-config');
    t.match(await warnings(`redis://app:pw@127.0.0.1:${master.port}/0`), [new RegExp(`^${at}: cannot read its settings \\(NOPERM[^)]*\\), so berth cannot tell whether it can lose pool data; allow CONFIG GET and ROLE to berth's user$`)]);
    const file = await openStore(`file://${t.testdir()}`);
    t.same(await file.serverWarnings(), [], 'the file store: none');
    await file.close();
  });

  t.test('pool registry: creation and removal are two-phase; a step cut short is finished or undone by checkRegistry', async (t) => {
    const { server, store } = await fresh(t);
    const entry = (name: string) => JSON.parse(server.cli('HGET', 'berth:pools', name) || 'null') as { id: string; st?: string; at?: number } | null;
    const setEntry = (name: string, e: object) => server.cli('HSET', 'berth:pools', name, JSON.stringify(e));
    await store.createPool(buildPoolConfig({ name: 'a', subnet: '10.50.0.0/24' }));
    t.equal(entry('a')!.st, undefined, 'ready once made');
    t.same(JSON.parse(server.cli('HGET', 'berth:{a}:pool', 'conf')).subnet, '10.50.0.0/24', "the pool's keys carry its config");

    // a create cut short after the claim: hidden, but the claim holds the name and subnet
    const conf = buildPoolConfig({ name: 'b', subnet: '10.51.0.0/24' });
    setEntry('b', { id: 'idb', f: '0a330000', l: '0a3300ff', conf, st: 'creating', at: Date.now() });
    await t.rejects(store.getPool('b'), { code: 'POOL_NOT_FOUND' });
    t.same((await store.listPools()).map((p) => p.conf.name), ['a'], 'not listed');
    await t.rejects(store.createPool(buildPoolConfig({ name: 'c', subnet: '10.51.0.0/25' })), { code: 'POOL_OVERLAP' }, 'its subnet is claimed');
    t.same(await store.checkRegistry(), [], 'one in progress is left alone');
    setEntry('b', { id: 'idb', f: '0a330000', l: '0a3300ff', conf, st: 'creating', at: 0 });
    t.match(await store.checkRegistry({ repair: true }), [{ pool: 'b', finding: { kind: 'unfinished-create', repairable: true }, repaired: true }]);
    t.equal(entry('b'), null, 'no keys were made: the claim is dropped');

    // cut short after the keys were made: marked ready
    await store.createPool(buildPoolConfig({ name: 'd', subnet: '10.52.0.0/24' }));
    setEntry('d', { ...entry('d')!, st: 'creating', at: 0 });
    t.match(await store.checkRegistry({ repair: true }), [{ pool: 'd', finding: { kind: 'unfinished-create' }, repaired: true }]);
    t.equal(entry('d')!.st, undefined);
    t.ok(await store.getPool('d'));

    // a removal cut short: finished
    const e = entry('a')!;
    setEntry('a', { ...e, st: 'removing', at: 0 });
    await t.rejects(store.getPool('a'), { code: 'POOL_NOT_FOUND' }, 'a pool being removed is gone for readers');
    t.match(await store.checkRegistry({ repair: true }), [{ pool: 'a', finding: { kind: 'unfinished-remove' }, repaired: true }]);
    t.equal(entry('a'), null);
    t.equal(server.cli('EXISTS', 'berth:{a}:pool'), '0', 'its keys went first');

    // keys lost behind the registry's back: not repairable, an operator decides
    server.cli('DEL', 'berth:{d}:pool');
    t.match(await store.checkRegistry({ repair: true }), [{ pool: 'd', finding: { kind: 'keys-missing', repairable: false, message: /its keys are gone/ } }]);

    await store.removePool('d', { force: true });
    t.equal(entry('d'), null, 'a removal leaves nothing');

    // a create whose keys cannot be made: the claim is taken back once the keys are known gone, else left to the check
    server.cli('SET', 'berth:{e}:pool', 'not a hash');
    await t.rejects(store.createPool(buildPoolConfig({ name: 'e', subnet: '10.53.0.0/24' })), { code: 'STORE_CORRUPT', message: /WRONGTYPE/ });
    t.match(entry('e'), { st: 'creating' }, 'what sits at its keys is not its own to delete: the claim stays, hidden');
    setEntry('e', { ...entry('e')!, at: 0 });
    t.match(await store.checkRegistry({ repair: true }), [{ pool: 'e', finding: { kind: 'unfinished-create' }, repaired: true }]);
    t.equal(entry('e'), null);
    t.equal(server.cli('GET', 'berth:{e}:pool'), 'not a hash', 'and the foreign key is left alone');
    server.cli('DEL', 'berth:{e}:pool');
    await store.createPool(buildPoolConfig({ name: 'e', subnet: '10.53.0.0/24' }));
    t.same(await store.checkRegistry(), [], 'clean at the end');
  });
}
