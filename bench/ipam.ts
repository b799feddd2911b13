// Pool throughput: allocate+release pairs from one process with 32 in flight,
// for a /24 and a /12 pool on both stores, beside a reference run in the same
// process against the same Redis: a bare HSET+HDEL pair (two round trips, no
// script), the floor of what one client can do. Each size runs two ways:
// asking for any address, which a /24 serves from its free list (its 253
// never-used addresses go in the warm-up) and a /12 from addresses never
// used (the cursor); and each lane's owner getting its held address back,
// the same path for both sizes, which the /12-vs-/24 ratio compares. Then
// the memory of every key of a pool. Then what acknowledging only
// what a replica holds costs (the same pairs against a master with a replica,
// without and with WAIT), and how long after the master is SIGKILLed under
// Sentinel the first ADD succeeds again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { openStore } from '../ipam/open-store.js';
import { buildPoolConfig } from '../ipam/pool-config.js';
import type { Store } from '../ipam/model.js';
import { startRedis } from '../test/helpers/redis.js';
import { haConfig, replicating, startHaRedis, until } from '../test/helpers/sentinel.js';
import { percentile } from './stats.js';

const INFLIGHT = 32;
// 'redis' rows use berth's RESP client (plugins, CLI); 'redis (ioredis)' the agent's client.

export interface PairResult {
  name: string;
  pairs: number;
  perSecond: number;
  p50: number;
  p99: number;
}


/** Runs `pairs` operations over INFLIGHT lanes and measures each; op gets the pair's number and its lane's. */
async function drive(name: string, pairs: number, op: (i: number, lane: number) => Promise<void>): Promise<PairResult> {
  const lat: number[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: INFLIGHT }, async (_, lane) => {
      while (next < pairs) {
        const i = next++;
        const t0 = process.hrtime.bigint();
        await op(i, lane);
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b);
  return { name, pairs, perSecond: pairs / seconds, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

/**
 * Pairs on a new pool of `subnet`, each a new container. 'any': a new owner
 * each time asks for any address, on a pool without holds; 'held': the owner
 * is the lane's, and the address its last container released is held for it
 * (hold 3600 s) and comes back.
 */
async function pairsOn(store: Store, label: string, subnet: string, pairs: number, way: 'any' | 'held' = 'any'): Promise<PairResult> {
  const bits = subnet.split('/')[1];
  const pool = `${way === 'any' ? 'bench' : 'held'}${bits}`;
  await store.createPool(buildPoolConfig({ name: pool, subnet, hold: way === 'any' ? 0 : 3600 }));
  const op = async (i: number, lane: number) => {
    const cid = `c${i}`;
    await store.allocate(pool, { containerId: cid, ifname: 'eth0', owner: way === 'any' ? cid : `lane${lane}` });
    await store.release(pool, { containerId: cid, ifname: 'eth0' });
  };
  await drive('warm-up', Math.min(1000, pairs / 5), (i, lane) => op(1e9 + i, lane));
  const path = way === 'held' ? "the owner's held address" : bits === '24' ? 'any address: from the free list' : 'any address: never used';
  return drive(`${label} /${bits}, ${path}`, pairs, op);
}

/** MEMORY USAGE (every element counted: SAMPLES 0) of each key of a pool, by the part of its name after the hash tag; and their sum. */
function poolMemory(server: { cli(...args: string[]): string }, prefix: string, pool: string): { total: number; parts: string } {
  const tag = `${prefix}:{${pool}}:`;
  const keys: string[] = [];
  let cursor = '0';
  do {
    // redis-cli's raw output: the next cursor, then one key a line
    const [next, ...page] = server.cli('SCAN', cursor, 'MATCH', `${tag}*`, 'COUNT', '1000').split('\n').filter(Boolean);
    cursor = next!;
    keys.push(...page);
  } while (cursor !== '0');
  if (keys.length === 0) throw new Error(`no keys of pool "${pool}" under ${tag}`);
  const sizes = keys.sort().map((k) => [k.slice(tag.length), Number(server.cli('MEMORY', 'USAGE', k, 'SAMPLES', '0'))] as const);
  return { total: sizes.reduce((a, [, n]) => a + n, 0), parts: sizes.map(([part, n]) => `${part} ${n}`).join(', ') };
}

/** The pool benchmark; returns printable rows. */
export async function benchIpam(opts: { quick?: boolean } = {}): Promise<string[]> {
  const redisPairs = opts.quick ? 3000 : 20000;
  const filePairs = opts.quick ? 1000 : 5000;
  const server = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  const rows: PairResult[] = [];
  try {
    const client = new Redis({ port: server.port, host: '127.0.0.1', enableAutoPipelining: true });
    await drive('warm-up', 1000, async (i) => {
      await client.hset('ref', `f${i}`, 'v');
      await client.hdel('ref', `f${i}`);
    });
    const reference = await drive('reference: Redis HSET+HDEL', redisPairs, async (i) => {
      await client.hset('ref', `f${i}`, 'v');
      await client.hdel('ref', `f${i}`);
    });
    client.disconnect();

    const redis = await openStore(server.url, { redisClient: 'resp' });
    const r24 = await pairsOn(redis, 'redis', '10.1.0.0/24', redisPairs);
    const r12 = await pairsOn(redis, 'redis', '10.16.0.0/12', redisPairs);
    const rh24 = await pairsOn(redis, 'redis', '10.2.0.0/24', redisPairs, 'held');
    const rh12 = await pairsOn(redis, 'redis', '10.32.0.0/12', redisPairs, 'held');
    const memory = { m24: poolMemory(server, 'berth', 'bench24'), m12: poolMemory(server, 'berth', 'bench12') };
    await redis.close();
    // the agent's client, on its own prefix
    const io = await openStore(`${server.url}?prefix=io`, { redisClient: 'ioredis' });
    const i24 = await pairsOn(io, 'redis (ioredis)', '10.1.0.0/24', redisPairs);
    await io.close();

    const file = await openStore(`file://${dir}`);
    const f24 = await pairsOn(file, 'file', '10.1.0.0/24', filePairs);
    const f12 = await pairsOn(file, 'file', '10.16.0.0/12', filePairs);
    const fh24 = await pairsOn(file, 'file', '10.2.0.0/24', filePairs, 'held');
    const fh12 = await pairsOn(file, 'file', '10.32.0.0/12', filePairs, 'held');
    await file.close();

    rows.push(reference, r24, r12, rh24, rh12, i24, f24, f12, fh24, fh12);
    const replication = await benchReplication(opts);
    const failover = await benchFailover();
    const lines = [
      `pool: allocate+release pairs, one process, ${INFLIGHT} in flight`,
      table(rows),
      '',
      `redis /24 vs reference pair: ${(r24.perSecond / reference.perSecond).toFixed(2)}x the throughput`,
      `redis /12 vs /24, the same path (the owner's held address): ${(rh24.perSecond / rh12.perSecond).toFixed(2)}x the cost (target <= 1.5x)`,
      `file  /12 vs /24, the same path (the owner's held address): ${(fh24.perSecond / fh12.perSecond).toFixed(2)}x the cost`,
      `redis target >= 5000 pairs/s: /24 ${r24.perSecond >= 5000 ? 'met' : 'MISSED'}, /12 ${r12.perSecond >= 5000 ? 'met' : 'MISSED'}, held /24 ${rh24.perSecond >= 5000 ? 'met' : 'MISSED'}, held /12 ${rh12.perSecond >= 5000 ? 'met' : 'MISSED'}, ioredis /24 ${i24.perSecond >= 5000 ? 'met' : 'MISSED'}`,
      `every key of a pool after its ${redisPairs} pairs (+ warm-up), MEMORY USAGE ... SAMPLES 0, bytes:`,
      `  /24, any address: ${memory.m24.total} (${memory.m24.parts})`,
      `  /12, any address: ${memory.m12.total} (${memory.m12.parts})`,
      '',
      ...replication,
      '',
      ...failover,
    ];
    return lines;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same pairs against a master with one replica, each client without WAIT (?replicas=0) and with it (the default: 1). */
async function benchReplication(opts: { quick?: boolean }): Promise<string[]> {
  const pairs = opts.quick ? 2000 : 10000;
  const master = await startRedis({ config: haConfig() });
  const replica = await startRedis({ config: [...haConfig(), `replicaof 127.0.0.1 ${master.port}`] });
  try {
    await replicating(master, 1);
    const rows: PairResult[] = [];
    for (const client of ['resp', 'ioredis'] as const) {
      for (const replicas of [0, 1]) {
        const store = await openStore(`${master.url}?prefix=r${client}${replicas}&replicas=${replicas}`, { redisClient: client });
        rows.push(await pairsOn(store, `${client === 'resp' ? 'redis' : 'redis (ioredis)'}, ${replicas === 0 ? 'no WAIT' : 'WAIT 1 replica'}`, '10.1.0.0/24', pairs));
        await store.close();
      }
    }
    const ratio = (a: PairResult, b: PairResult) => (a.perSecond / b.perSecond).toFixed(2);
    return [
      `pool: allocate+release pairs against a master with one replica, one process, ${INFLIGHT} in flight on one connection`,
      table(rows),
      '',
      `WAIT costs: berth's client ${ratio(rows[0]!, rows[1]!)}x, ioredis ${ratio(rows[2]!, rows[3]!)}x the time per pair (WAIT blocks the connection until the replica answers, so the ${INFLIGHT} in flight take turns)`,
    ];
  } finally {
    await replica.stop();
    await master.stop();
  }
}

/**
 * SIGKILL of the master under three sentinels (down-after-milliseconds 1000),
 * two replicas; ADDs in a loop from each client kind; the time from the kill
 * to each one's first successful ADD, beside the time the sentinels took to
 * agree on a new master.
 */
async function benchFailover(): Promise<string[]> {
  const ha = await startHaRedis({ replicas: 2, downAfterMs: 1000 });
  try {
    const url = ha.sentinels.url('timeout=1000');
    const admin = await openStore(url);
    await admin.createPool(buildPoolConfig({ name: 'fo', subnet: '10.2.0.0/16', hold: 0 }));
    await admin.close();
    let killedAt = 0;
    let stop = false;
    const kinds = [
      ['berth client, kept (agent fast path)', 'resp', true],
      ['berth client, one store per ADD (plugin)', 'resp', false],
      ['ioredis, kept (agent)', 'ioredis', true],
    ] as const;
    const first = new Map<string, number>();
    const loops = kinds.map(async ([label, client, kept], k) => {
      const store = kept ? await openStore(url, { redisClient: client }) : undefined;
      for (let i = 0; !stop; i++) {
        // only an ADD begun once the master is gone counts: one in flight may have been answered by it
        const begun = Date.now();
        const s = store ?? (await openStore(url, { redisClient: client }).catch(() => undefined));
        const ok = s ? await s.allocate('fo', { containerId: `k${k}-${i}`, ifname: 'eth0', owner: 'o' }).then(() => true, () => false) : false;
        if (!store) await s?.close().catch(() => {});
        if (ok && killedAt && begun >= killedAt && !first.has(label)) first.set(label, Date.now() - killedAt);
        if (!ok) await new Promise((r) => setTimeout(r, 20));
      }
      await store?.close();
    });
    await new Promise((r) => setTimeout(r, 1000));
    await ha.master.stop('SIGKILL');
    killedAt = Date.now(); // its exit seen: from here no ADD can reach it
    const promoted = await until('the sentinels to promote a replica', () => {
      const port = ha.sentinels.agreedMaster();
      return port !== undefined && port !== ha.master.port ? Date.now() - killedAt : undefined;
    });
    await until('every client to answer again', () => (first.size === kinds.length ? true : undefined), 30000).catch(() => undefined);
    stop = true;
    await Promise.all(loops);
    return [
      'failover: SIGKILL of the master under 3 sentinels (down-after-milliseconds 1000), 2 replicas, an ADD loop per client',
      `  sentinels agree on a new master ${promoted} ms after the kill`,
      ...kinds.map(([label]) => `  first successful ADD, ${label}: ${first.has(label) ? `${first.get(label)} ms` : 'none within 30 s'} after the kill`),
    ];
  } finally {
    await ha.stop();
  }
}

function table(rows: PairResult[]): string {
  const head = ['run', 'pairs', 'pairs/s', 'p50 ms', 'p99 ms'];
  const body = rows.map((r) => [r.name, String(r.pairs), r.perSecond.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((cells) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}
