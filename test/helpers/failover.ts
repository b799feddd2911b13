// Allocating processes under a failover, and the reconciliation of every
// acknowledgement against what the store holds afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { checkPool } from '../../ipam/check.js';
import type { Finding } from '../../ipam/check.js';
import { atExit } from './at-exit.js';

const WORKER = fileURLToPath(new URL('./failover-worker.ts', import.meta.url));

export interface Ack {
  cid: string;
  ip: string;
  /** ms since the epoch */
  at: number;
  worker: number;
}

export interface WorkerSpec {
  lanes: number;
  mode: 'kept' | 'oneshot';
  client: 'resp' | 'ioredis';
  /** a store URL of its own (default: the one given to start) */
  url?: string;
}

export interface WorkerEnd {
  errors: Record<string, number>;
  stats: Record<string, number> | null;
}

/** Worker processes allocating from a pool until stop(). */
/**
 * The clients of the failover tests on pool "p" (made here in `subnet`):
 * berth's kept client (4 lanes), one store per ADD as a plugin (2), and
 * ioredis kept as the agent (`ioredisLanes`); resolves once 150 ADDs are
 * answered.
 */
export async function failoverWorkers(url: string, subnet: string, ioredisLanes = 4): Promise<Workers> {
  const admin = await openStore(url);
  await admin.createPool(buildPoolConfig({ name: 'p', subnet, hold: 0 }));
  await admin.close();
  const workers = new Workers(url, 'p', [
    { lanes: 4, mode: 'kept', client: 'resp' },
    { lanes: 2, mode: 'oneshot', client: 'resp' },
    { lanes: ioredisLanes, mode: 'kept', client: 'ioredis' },
  ]);
  await workers.acked(150);
  return workers;
}

export class Workers {
  readonly acks: Ack[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly ends: Array<WorkerEnd | undefined> = [];
  private readonly stderr: string[] = [];

  constructor(url: string, pool: string, specs: WorkerSpec[]) {
    specs.forEach((spec, i) => {
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, spec.url ?? url, pool, String(i), String(spec.lanes), spec.mode, spec.client], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      this.children.push(child);
      this.stderr.push('');
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const msg = JSON.parse(line) as { cid?: string; ip?: string; at?: number; done?: boolean } & WorkerEnd;
          if (msg.done) this.ends[i] = { errors: msg.errors, stats: msg.stats };
          else this.acks.push({ cid: msg.cid!, ip: msg.ip!, at: msg.at!, worker: i });
        }
      });
      child.stderr!.on('data', (d: Buffer) => {
        this.stderr[i] = (this.stderr[i]! + d.toString()).slice(-4000);
      });
    });
    atExit(() => this.kill());
  }

  /**
   * Waits for one answer from each worker after `since` (each client finds a
   * new master on its own schedule: ioredis follows the sentinels at its own
   * pace), then gives each worker's answers after `since`.
   */
  async followed(since: number): Promise<number[]> {
    const workers = [...this.children.keys()];
    for (const w of workers) await this.acked(1, since + 1, w);
    return workers.map((w) => this.acks.filter((a) => a.worker === w && a.at > since).length);
  }

  /** Resolves once at least n acknowledgements came in since `since` (ms), from one worker if given. */
  async acked(n: number, since = 0, worker?: number, timeoutMs = 60000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const count = () => this.acks.filter((a) => a.at >= since && (worker === undefined || a.worker === worker)).length;
    while (count() < n) {
      if (Date.now() > deadline) throw new Error(`only ${count()} of ${n} ADDs answered in ${timeoutMs} ms; stderr: ${this.stderr.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Lets the workers finish the ADDs in flight, and returns what each reported. */
  async stop(timeoutMs = 60000): Promise<WorkerEnd[]> {
    const exits = this.children.map((c) => (c.exitCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()))));
    for (const c of this.children) c.stdin!.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await Promise.all(exits);
    clearTimeout(timer);
    return this.children.map((_, i) => this.ends[i] ?? { errors: { 'no final report': 1, [this.stderr[i]!.slice(-300)]: 1 }, stats: null });
  }

  private kill(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
  }
}

export interface Reconciled {
  /** acknowledged ADDs whose attachment no longer holds the acknowledged address */
  lost: Ack[];
  /** addresses acknowledged to two attachments */
  duplicates: Array<[Ack, Ack]>;
  /** what the consistency check says of the pool afterwards */
  findings: Finding[];
  /** allocations the store holds */
  held: number;
}

/** Every acknowledgement against the pool as the store (through url) holds it now. */
export async function reconcile(url: string, pool: string, acks: Ack[]): Promise<Reconciled> {
  const store = await openStore(url);
  try {
    const byIp = new Map<string, Ack>();
    const duplicates: Array<[Ack, Ack]> = [];
    for (const a of acks) {
      const prev = byIp.get(a.ip);
      if (prev && prev.cid !== a.cid) duplicates.push([prev, a]);
      else byIp.set(a.ip, a);
    }
    const listed = await store.listAddresses(pool);
    const holder = new Map(listed.filter((x) => x.state === 'allocated').map((x) => [x.containerId, x.ip]));
    const lost = acks.filter((a) => holder.get(a.cid) !== a.ip);
    const findings = checkPool(await store.snapshot(pool)).findings;
    return { lost, duplicates, findings, held: holder.size };
  } finally {
    await store.close();
  }
}

/** Sums the error counts of the workers' reports. */
export function errorCounts(ends: WorkerEnd[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of ends) for (const [k, v] of Object.entries(e.errors)) out[k] = (out[k] ?? 0) + v;
  return out;
}
