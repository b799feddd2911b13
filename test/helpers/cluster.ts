// A Redis Cluster for tests: masters with a replica each, on private ports,
// made with `redis-cli --cluster create`. Every node sends from its own
// source address (bind-source-addr), so a rule on a master's client port cuts
// its replica's replication link while the cluster bus and clients on
// 127.0.0.1 still get through.
import { spawnSync } from 'node:child_process';
import { keySlot } from '../../ipam/cluster-map.js';
import { startRedis, type RedisServer } from './redis.js';
import { haConfig, replicating, REPLICA_SOURCE, until } from './sentinel.js';

export interface RedisCluster {
  nodes: RedisServer[];
  /** the store URL, every node a seed */
  url(query?: string): string;
  /** CLUSTER NODES as [id, port, flags, masterId, slots] rows, asked of a live node */
  table(): Array<{ id: string; port: number; master: boolean; failed: boolean; masterId: string; slots: string[] }>;
  /** the live master serving a slot */
  masterOf(slot: number): RedisServer;
  /** the node on a port */
  byPort(port: number): RedisServer;
  /** waits until every live node agrees that every slot is served, and each master's replicas confirm writes */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

/** Settings the README recommends for a cluster's nodes. */
export const RECOMMENDED = ['appendonly yes', 'appendfsync always', 'min-replicas-to-write 1', 'min-replicas-max-lag 10'];

/** A key of the given slot range (a hash tag found by trying). */
export function keyIn(first: number, last: number, name = 'k'): string {
  for (let i = 0; ; i++) {
    const slot = keySlot(`{${i}}`);
    if (slot >= first && slot <= last) return `{${i}}${name}`;
  }
}

/** Starts masters × (1 + replicas) nodes and joins them into one cluster. */
export async function startCluster(opts: { masters?: number; replicas?: number; nodeTimeoutMs?: number; config?: string[] } = {}): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const total = masters * (1 + (opts.replicas ?? 1));
  const nodes: RedisServer[] = [];
  for (let i = 0; i < total; i++) {
    nodes.push(
      await startRedis({
        config: [
          ...haConfig(REPLICA_SOURCE),
          'cluster-enabled yes',
          'cluster-config-file nodes.conf',
          `cluster-node-timeout ${opts.nodeTimeoutMs ?? 1000}`,
          'cluster-announce-ip 127.0.0.1',
          // a replica that lagged for a moment may still take over
          'cluster-replica-validity-factor 0',
          ...(opts.config ?? []),
        ],
      }),
    );
  }
  const made = spawnSync(
    'redis-cli',
    ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(opts.replicas ?? 1), '--cluster-yes'],
    { encoding: 'utf8', timeout: 60000 },
  );
  if (made.status !== 0) throw new Error(`redis-cli --cluster create failed: ${made.stdout}${made.stderr}`);
  const live = () => nodes.filter((n) => n.cli('PING') === 'PONG');
  const cluster: RedisCluster = {
    nodes,
    url: (query = '') => `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}${query ? `?${query}` : ''}`,
    table() {
      const text = live()[0]!.cli('CLUSTER', 'NODES');
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const f = line.split(' ');
          const port = Number(f[1]!.split('@')[0]!.split(':').pop());
          return { id: f[0]!, port, master: f[2]!.includes('master'), failed: /fail/.test(f[2]!), masterId: f[3]!, slots: f.slice(8) };
        });
    },
    masterOf(slot: number) {
      for (const row of cluster.table()) {
        if (!row.master || row.failed) continue;
        for (const s of row.slots) {
          if (s.startsWith('[')) continue;
          const [a, b] = s.split('-').map(Number);
          if (slot >= a! && slot <= (b ?? a!)) return cluster.byPort(row.port);
        }
      }
      throw new Error(`no live master serves slot ${slot}`);
    },
    byPort(port: number) {
      const n = nodes.find((x) => x.port === port);
      if (!n) throw new Error(`no cluster node on port ${port}`);
      return n;
    },
    async settled() {
      await until(
        'the cluster to agree and every slot to be served',
        () => (live().every((n) => /cluster_state:ok/.test(n.cli('CLUSTER', 'INFO')) && /cluster_slots_ok:16384/.test(n.cli('CLUSTER', 'INFO'))) ? true : undefined),
        60000,
      );
      const rows = cluster.table();
      for (const m of rows.filter((r) => r.master && !r.failed && r.slots.length > 0)) {
        const replicas = rows.filter((r) => !r.master && !r.failed && r.masterId === m.id).length;
        if (replicas === 0) continue;
        const node = cluster.byPort(m.port);
        const [first, last] = m.slots.find((x) => !x.startsWith('['))!.split('-').map(Number) as [number, number?];
        const key = keyIn(first, last ?? first, 'berth-test-ready');
        await replicating(node, replicas, 60000, key);
      }
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    },
  };
  await cluster.settled();
  return cluster;
}
