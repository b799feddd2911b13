// A replicated Redis behind Sentinel for failover tests: a master, replicas
// and sentinels on private ports, with the replicas and the sentinels each on
// their own 127.x source address (bind-source-addr), so iptables can cut the
// master off from them while clients on 127.0.0.1 still reach it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startRedis, type RedisServer } from './redis.js';
import { atExit } from './at-exit.js';

/** Source addresses: what a rule matches to cut a node off. */
export const REPLICA_SOURCE = '127.0.0.2';
export const SENTINEL_SOURCE = '127.0.0.3';

export interface SentinelSet {
  name: string;
  ports: number[];
  /** the store URL through the sentinels */
  url(query?: string): string;
  /** asks one sentinel (redis-cli) */
  ask(port: number, ...args: string[]): string;
  /** the master port every live sentinel names, once they agree */
  agreedMaster(): number | undefined;
  stop(): Promise<void>;
}

export interface HaRedis {
  master: RedisServer;
  replicas: RedisServer[];
  sentinels: SentinelSet;
  /** the server on a port (the master changes with a failover) */
  byPort(port: number): RedisServer;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until fn returns a value other than undefined, or throws after timeoutMs. */
export async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Resolves once n replicas confirm a write on the master. A replica that
 * has just synced is "online" a moment before the master streams to it (the
 * master waits for its first ACK), so "online" alone is not ready.
 */
export async function replicating(master: RedisServer, n: number, timeoutMs = 30000, key = 'berth-test:ready'): Promise<void> {
  await until(`${n} replicas to confirm writes on ${master.port}`, () => (confirmedWrite(master.port, key, n) ? true : undefined), timeoutMs);
  master.cli('DEL', key);
}

/** A write and WAIT for n replicas on one connection (WAIT counts what that connection wrote). */
export function confirmedWrite(port: number, key: string, n: number): boolean {
  const r = spawnSync('redis-cli', ['-p', String(port)], { input: `SET ${key} 1\nWAIT ${n} 500\n`, encoding: 'utf8', timeout: 5000 });
  const lines = (r.stdout ?? '').trim().split('\n');
  return lines[0] === 'OK' && Number(lines[1]) >= n;
}

/** Settings a replicated server runs with here: reachable from the other 127.x addresses, announcing 127.0.0.1. */
export function haConfig(source?: string): string[] {
  // a full sync starts at once (the default waits 5 s for more replicas to share it)
  return ['protected-mode no', 'replica-announce-ip 127.0.0.1', 'repl-timeout 5', 'repl-diskless-sync-delay 0', ...(source ? [`bind-source-addr ${source}`] : [])];
}

/** Starts sentinels monitoring a master; they fail over after downAfterMs. */
export async function startSentinels(opts: { name?: string; masterPort: number; count?: number; quorum?: number; downAfterMs?: number }): Promise<SentinelSet> {
  const name = opts.name ?? 'berthha';
  const count = opts.count ?? 3;
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'berth-sentinel-'));
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        'protected-mode no',
        `dir ${dir}`,
        `bind-source-addr ${SENTINEL_SOURCE}`,
        // peers find each other by what each announces: its listening address, not its source address
        'sentinel announce-ip 127.0.0.1',
        `sentinel monitor ${name} 127.0.0.1 ${opts.masterPort} ${opts.quorum ?? 2}`,
        `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} 6000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n'),
    );
    const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    child.unref();
    children.push(child);
    dirs.push(dir);
    ports.push(port);
  }
  const kill = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  atExit(kill);
  const ask = (port: number, ...args: string[]) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }).stdout?.trim() ?? '';
  const set: SentinelSet = {
    name,
    ports,
    url: (query = '') => `redis+sentinel://${ports.map((p) => `127.0.0.1:${p}`).join(',')}/${name}/0${query ? `?${query}` : ''}`,
    ask,
    agreedMaster() {
      const named = ports.map((p) => ask(p, 'SENTINEL', 'get-master-addr-by-name', name).split('\n')[1]).filter(Boolean);
      return named.length === ports.length && new Set(named).size === 1 ? Number(named[0]) : undefined;
    },
    async stop() {
      const running = children.filter((c) => c.exitCode === null);
      const exits = running.map((c) => new Promise((r) => c.once('exit', r)));
      for (const c of running) c.ref(); // keep the process alive until the exits are seen
      kill();
      await Promise.all(exits);
    },
  };
  await until('the sentinels to answer', () => (ports.every((p) => ask(p, 'PING') === 'PONG') ? true : undefined), 10000);
  return set;
}

/** A master with replicas and sentinels that know each other, ready to fail over. */
export async function startHaRedis(opts: { replicas?: number; downAfterMs?: number; masterConfig?: string[] } = {}): Promise<HaRedis> {
  const master = await startRedis({ config: [...haConfig(), ...(opts.masterConfig ?? [])] });
  const replicas: RedisServer[] = [];
  for (let i = 0; i < (opts.replicas ?? 1); i++) {
    replicas.push(await startRedis({ config: [...haConfig(REPLICA_SOURCE), `replicaof 127.0.0.1 ${master.port}`] }));
  }
  const sentinels = await startSentinels({ masterPort: master.port, downAfterMs: opts.downAfterMs });
  const all = [master, ...replicas];
  const ha: HaRedis = {
    master,
    replicas,
    sentinels,
    byPort: (port) => {
      const s = all.find((x) => x.port === port);
      if (!s) throw new Error(`no test server on port ${port}`);
      return s;
    },
    async stop() {
      await sentinels.stop();
      await Promise.all(all.map((s) => s.stop('SIGKILL')));
    },
  };
  // Ready when every replica confirms writes, and every sentinel knows the replicas and the other sentinels.
  await replicating(master, replicas.length);
  await until(
    'the sentinels to know everyone',
    () => {
      for (const p of sentinels.ports) {
        const m = sentinels.ask(p, 'SENTINEL', 'master', sentinels.name);
        const field = (k: string) => Number(new RegExp(`^${k}\\n(\\d+)$`, 'm').exec(m)?.[1] ?? -1);
        if (field('num-slaves') < replicas.length || field('num-other-sentinels') < sentinels.ports.length - 1) return undefined;
      }
      return true;
    },
    30000,
  );
  return ha;
}
