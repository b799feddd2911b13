// berth on a real Redis Cluster (three masters, a replica each, as the README
// recommends): pools spread over the masters, every operation, the CLI, the
// plugin and the agent's client; the registry checked on every master; and a
// slot migration in the middle of a run of ADDs from several processes, with
// a client that does not follow it as the control.
import t from 'tap';
import { main } from '../../cli/main.js';
import { keySlot } from '../../ipam/cluster-map.js';
import { checkPool } from '../../ipam/check.js';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { parseIp } from '../../core/address.js';
import type { Store } from '../../ipam/model.js';
import { cniEnv, runCni } from '../helpers/cni.js';
import { RECOMMENDED, startCluster, type RedisCluster } from '../helpers/cluster.js';
import { errorCounts, reconcile, Workers } from '../helpers/failover.js';
import { skipWithoutRedis, type RedisServer } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const slotOf = (pool: string) => keySlot(`berth:{${pool}}:pool`);

/** Pool names whose keys land on each master in turn. */
function spreadNames(cluster: RedisCluster, count: number): string[] {
  const names: string[] = [];
  const seen = new Set<number>();
  for (let i = 0; names.length < count; i++) {
    const name = `pool${i}`;
    const port = cluster.masterOf(slotOf(name)).port;
    if (seen.has(port) && seen.size < 3) continue;
    seen.add(port);
    names.push(name);
  }
  return names;
}

async function berth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  return { code, stdout, stderr };
}

/**
 * Moves a slot from one master to another the way redis-cli --cluster
 * reshard does, one key at a time with a pause after each, so that
 * commands meet the migration half done (ASK, TRYAGAIN), then MOVED.
 */
async function migrate(cluster: RedisCluster, slot: number, from: RedisServer, to: RedisServer, pauseMs: number): Promise<number> {
  const id = (s: RedisServer) => cluster.table().find((r) => r.port === s.port)!.id;
  const [fromId, toId] = [id(from), id(to)];
  to.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId);
  from.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId);
  let moved = 0;
  for (;;) {
    const keys = from.cli('CLUSTER', 'GETKEYSINSLOT', String(slot), '1').split('\n').filter(Boolean);
    if (keys.length === 0) break;
    const r = from.cli('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', keys[0]!);
    if (r !== 'OK' && r !== 'NOKEY') throw new Error(`MIGRATE ${keys[0]}: ${r}`);
    moved++;
    await sleep(pauseMs);
  }
  for (const n of [to, from, ...cluster.nodes.filter((x) => x !== to && x !== from)]) {
    if (n.cli('PING') === 'PONG') n.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', toId);
  }
  return moved;
}

if (!skipWithoutRedis(t)) {
  const cluster = await startCluster({ config: RECOMMENDED });
  t.teardown(() => cluster.stop());
  const url = cluster.url('timeout=3000');

  t.test('every operation on pools spread over the masters, through both clients the store offers', async (t) => {
    const names = spreadNames(cluster, 3);
    t.equal(new Set(names.map((n) => cluster.masterOf(slotOf(n)).port)).size, 3, `pools ${names.join(', ')} on three masters`);
    for (const client of ['resp', 'ioredis'] as const) {
      const store: Store = await openStore(url, { redisClient: client });
      t.teardown(() => store.close());
      for (const [i, name] of names.entries()) {
        const pool = `${name}-${client}`;
        await store.createPool(buildPoolConfig({ name: pool, subnet: `10.${70 + i + (client === 'resp' ? 0 : 10)}.0.0/24`, hold: 60 }));
        const a = await store.allocate(pool, { containerId: 'c1', ifname: 'eth0', owner: 'app' });
        t.match(await store.allocate(pool, { containerId: 'c1', ifname: 'eth0', owner: 'app' }), { ip: a.ip, existing: true });
        t.match(await store.release(pool, { containerId: 'c1', ifname: 'eth0' }), { released: true, state: 'reserved' });
        await store.reserve(pool, parseIp(`10.${70 + i + (client === 'resp' ? 0 : 10)}.0.9`, 'ip').hex, { owner: 'x', note: 'n' });
        t.equal((await store.history(pool)).length, 3);
        t.same(checkPool(await store.snapshot(pool)).findings, []);
      }
      t.same(await store.serverWarnings(), [], `${client}: the recommended settings on every master raise nothing`);
    }
    const store = await openStore(url);
    t.teardown(() => store.close());
    t.equal((await store.listPools()).length, 6, 'the registry lists them all');
  });

  t.test('the CLI and the plugin on a cluster URL; ipam check reads every master', async (t) => {
    const registry = cluster.masterOf(keySlot('berth:pools'));
    // a pool on another master than the registry: only a scan of every master finds its keys
    let name = 'cli';
    for (let i = 0; cluster.masterOf(slotOf(name)) === registry; i++) name = `cli${i}`;
    const home = cluster.masterOf(slotOf(name));
    const created = await berth(['--store', url, 'pool', 'create', name, '--subnet', '10.90.0.0/24']);
    t.equal(created.code, 0, created.stderr);
    const conf = { cniVersion: '1.0.0', name: 'net1', type: 'bridge', ipam: { type: 'berth-ipam', pool: name, store: url, host: 'node-a' } };
    const add = await runCni('berth-ipam', cniEnv('ADD', 'k1'), conf);
    t.equal(add.code, 0, add.stdout + add.stderr);
    t.match(add.json, { ips: [{ address: '10.90.0.2/24', gateway: '10.90.0.1' }] });
    t.equal((await runCni('berth-ipam', cniEnv('DEL', 'k1'), conf)).code, 0);
    const checked = await berth(['--store', url, 'ipam', 'check']);
    t.equal(checked.code, 0, checked.stderr);

    // a registry entry lost: the pool's keys, on another master, are found and registered again
    t.not(home.port, registry.port, `registry on :${registry.port}, pool "${name}" on :${home.port}`);
    registry.cli('HDEL', 'berth:pools', name);
    const found = await berth(['--store', url, 'ipam', 'check', '--json']);
    t.equal(found.code, 1);
    t.match(JSON.parse(found.stdout), [{ pool: name, remaining: [{ kind: 'unregistered', repairable: true }] }]);
    t.equal((await berth(['--store', url, 'ipam', 'check', '--repair'])).code, 0);
    t.equal((await berth(['--store', url, 'pool', 'show', name])).code, 0, 'registered again');
  });

  t.test('historyAfter follows pools in different slots, on different masters and on one, each woken at once by its own change', async (t) => {
    const admin = await openStore(url);
    t.teardown(() => admin.close());
    // three pools on three masters, and a fourth in another slot of the first one's master
    const names: string[] = [];
    for (let i = 0; names.length < 3; i++) {
      const port = cluster.masterOf(slotOf(`hist${i}`)).port;
      if (!names.some((n) => cluster.masterOf(slotOf(n)).port === port)) names.push(`hist${i}`);
    }
    const home = cluster.masterOf(slotOf(names[0]!));
    let fourth = 'hist-same';
    for (let i = 0; cluster.masterOf(slotOf(fourth)) !== home || slotOf(fourth) === slotOf(names[0]!); i++) fourth = `hist-same${i}`;
    names.push(fourth);
    t.equal(new Set(names.map((n) => cluster.masterOf(slotOf(n)).port)).size, 3, `pools ${names.join(', ')} on three masters`);
    for (const [i, name] of names.entries()) await admin.createPool(buildPoolConfig({ name, subnet: `10.${100 + i}.0.0/24`, hold: 0 }));
    // the wait blocks connections: a follower has a store of its own, as the console and berth dns do
    const follower = await openStore(url);
    t.teardown(() => follower.close());
    let tail = await follower.historyAfter(names, {}, 1000);
    t.same(Object.keys(tail.cursor).sort(), [...names].sort(), 'every pool is followed from its end');
    for (const name of [...names, names[0]!]) {
      const pending = follower.historyAfter(names, tail.cursor, 1000);
      await sleep(50);
      const t0 = Date.now();
      const a = await admin.allocate(name, { containerId: `c-${name}-${Date.now()}`, ifname: 'eth0', owner: 'o' });
      tail = await pending;
      // a read of another pool may still be pending from the last call: it must not delay this one
      while (tail.entries.length === 0) tail = await follower.historyAfter(names, tail.cursor, 1000);
      const took = Date.now() - t0;
      t.match(tail.entries, [{ pool: name, event: 'allocate', ip: a.ip }], `${name} (slot ${slotOf(name)} on :${cluster.masterOf(slotOf(name)).port}): its allocation, and only that`);
      t.ok(took < 500, `heard of within ${took} ms, not after another pool's wait`);
    }
    // changes in several slots at once: all of them come, none twice
    await Promise.all(names.map((name) => admin.allocate(name, { containerId: `d-${name}`, ifname: 'eth0', owner: 'o' })));
    const seen: string[] = [];
    for (let i = 0; i < 10 && seen.length < names.length; i++) {
      tail = await follower.historyAfter(names, tail.cursor, 300);
      seen.push(...tail.entries.map((e) => e.pool));
    }
    t.same(seen.sort(), [...names].sort(), 'one entry of each pool');
    t.same((await follower.historyAfter(names, tail.cursor, 0)).entries, [], 'read once only');
  });

  t.test('a slot migration in the middle of a run: no answered ADD lost, none twice, and ADDs go on; a client that does not follow it stops', async (t) => {
    const admin = await openStore(url);
    t.teardown(() => admin.close());
    await admin.createPool(buildPoolConfig({ name: 'moving', subnet: '10.91.0.0/16', hold: 0 }));
    const slot = slotOf('moving');
    const from = cluster.masterOf(slot);
    const to = cluster.nodes.find((n) => n !== from && cluster.table().some((r) => r.port === n.port && r.master && r.slots.length > 0))!;
    const workers = new Workers(url, 'moving', [
      { lanes: 4, mode: 'kept', client: 'resp' },
      { lanes: 2, mode: 'oneshot', client: 'resp' },
      { lanes: 2, mode: 'kept', client: 'ioredis' },
      // the control: a plain redis:// client of the source node, which cannot follow MOVED
      { lanes: 2, mode: 'kept', client: 'resp', url: `redis://127.0.0.1:${from.port}/0?timeout=1000` },
    ]);
    await workers.acked(150);
    await workers.acked(20, 0, 3); // the control too, before the slot moves
    const started = Date.now();
    const keys = await migrate(cluster, slot, from, to, 150);
    const doneAt = Date.now();
    t.comment(`slot ${slot}: ${keys} keys moved from :${from.port} to :${to.port} in ${doneAt - started} ms`);
    await workers.acked(100, doneAt);
    const ends = await workers.stop();
    t.equal(cluster.masterOf(slot).port, to.port, 'the slot is served by the target');
    t.equal(to.cli('EXISTS', 'berth:{moving}:pool'), '1', "the pool's keys are on the target");
    const r = await reconcile(url, 'moving', workers.acks);
    t.same(r.lost.slice(0, 5), [], `no answered ADD lost (${r.lost.length})`);
    t.same(r.duplicates.slice(0, 5), [], `no address answered twice (${r.duplicates.length})`);
    t.same(r.findings, []);
    const during = workers.acks.filter((a) => a.worker < 3 && a.at >= started && a.at <= doneAt).length;
    const after = workers.acks.filter((a) => a.worker < 3 && a.at > doneAt).length;
    const followed = ends.slice(0, 3).reduce((n, e) => n + (e.stats?.ask ?? 0) + (e.stats?.moved ?? 0) + (e.stats?.retries ?? 0), 0);
    t.ok(after > 0, `cluster clients answered ${during} ADDs during the migration and ${after} after it`);
    t.ok(followed > 0, `and followed ASK, TRYAGAIN or MOVED on their way (${followed} times, kept clients)`);
    const control = workers.acks.filter((a) => a.worker === 3 && a.at > doneAt + 100).length;
    t.equal(control, 0, `control: the plain client answered no ADD once the slot had moved (${JSON.stringify(errorCounts([ends[3]!]))})`);
    t.ok(workers.acks.some((a) => a.worker === 3 && a.at < started), 'control: it did answer before');
  });
}
