// berth's own plugins, run on worker threads for the agent.
//
// A plugin call is mostly JavaScript: config validation, the IPAM engine, the
// rtnetlink codecs, its share of the pool's Redis replies. On a worker it
// leaves the agent's main thread free for Docker's events, inspects, state
// writes and the API. The kernel's link work itself runs on the libuv thread
// pool (cni/netlink.ts), where a request that waits for the kernel's link
// lock in a start storm (10–500 ms, at times seconds) holds up neither
// thread. setns(2) moves just the calling thread, so a worker opens sockets
// in a container's namespace exactly as a plugin process does.
//
// The same file is the worker's entry (it checks isMainThread) and the pool.
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { StoreCache } from '../ipam/open-store.js';
import { ownPlugin, runOwn, warmOwn, type Output } from './own-plugins.js';

/** One plugin call: which plugin, its environment and its stdin. */
export interface PluginCall {
  type: string;
  env: NodeJS.ProcessEnv;
  stdin: string;
  /** the log lines come back in Output.stderr (see runOwn) */
  captureLogs?: boolean;
}

type Request = { id: number; call: PluginCall } | { id: number; warm: string[] };
type Reply = { id: number; out?: Output; error?: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  // one Redis connection per thread for berth-ipam, not one per call
  const stores = new StoreCache();
  port.on('message', (req: Request) => {
    const work = 'warm' in req ? warmOwn(req.warm).then(() => undefined) : ownPlugin(req.call.type).then((spec) => runOwn(spec, req.call.env, req.call.stdin, stores, req.call.captureLogs));
    work.then(
      (out) => port.postMessage({ id: req.id, out } satisfies Reply),
      (err: Error) => port.postMessage({ id: req.id, error: err?.message ?? String(err) } satisfies Reply),
    );
  });
}

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (out: Output | undefined) => void; reject: (err: Error) => void }>;
}

/**
 * A fixed number of plugin threads; each call goes to the thread with the
 * fewest calls in flight. A thread that dies fails its calls and is replaced
 * on the next one.
 */
export class PluginWorkers {
  private readonly slots: Array<Slot | undefined>;
  private next = 1;
  private warmed: string[] = [];
  private closed = false;
  /** plugin calls the threads have answered */
  answered = 0;

  constructor(size: number) {
    this.slots = new Array<Slot | undefined>(size).fill(undefined);
  }

  /** Loads the named plugins' code on every thread (started now if need be). */
  async warm(types: string[]): Promise<void> {
    this.warmed = [...new Set([...this.warmed, ...types])];
    await Promise.all(this.slots.map((_, i) => this.send(this.slot(i), { warm: this.warmed })));
  }

  run(call: PluginCall): Promise<Output> {
    let best = 0;
    for (let i = 1; i < this.slots.length; i++) {
      if ((this.slots[i]?.pending.size ?? 0) < (this.slots[best]?.pending.size ?? 0)) best = i;
    }
    return this.send(this.slot(best), { call }) as Promise<Output>;
  }

  /**
   * Refuses new calls, waits (at most waitMs) for those in flight, then stops
   * the threads: a thread stopped in the middle of a call would leave that
   * attachment half made, hence the wait.
   */
  async close(waitMs = 30000): Promise<void> {
    this.closed = true;
    const deadline = Date.now() + waitMs;
    while (this.slots.some((s) => s && s.pending.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.all(this.slots.map((s) => s?.worker.terminate()));
  }

  private slot(i: number): Slot {
    if (this.closed) throw new Error('the plugin threads are stopped');
    const existing = this.slots[i];
    if (existing) return existing;
    const worker = import.meta.url.endsWith('.js')
      ? new Worker(new URL('./plugin-worker.js', import.meta.url))
      : // run from TypeScript (tests, under tsx): a worker does not inherit tsx's loader
        new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`, { eval: true });
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    const fail = (err: Error) => {
      if (this.slots[i] === slot) this.slots[i] = undefined;
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
    };
    worker.on('message', (r: Reply) => {
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      if (slot.pending.size === 0) worker.unref();
      if (r.out) this.answered++;
      if (r.error !== undefined) p.reject(new Error(r.error));
      else p.resolve(r.out);
    });
    worker.on('error', (err) => fail(new Error(`a plugin thread failed: ${err.message}`)));
    worker.on('exit', (code) => fail(new Error(`a plugin thread exited (code ${code})`)));
    this.slots[i] = slot;
    if (this.warmed.length > 0) void this.send(slot, { warm: this.warmed }).catch(() => {});
    return slot;
  }

  private send(slot: Slot, body: { call: PluginCall } | { warm: string[] }): Promise<Output | undefined> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      // referenced only while a call is in flight: an idle thread never keeps the process alive
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, ...body });
    });
  }
}
