// The non-free records of pools, kept in step with the store by the change
// feed instead of read whole at every use (the console's pages, berth dns's
// zone): a pool is read whole once (listAddresses), then only the addresses
// its history says changed are read again (getAddress). So a /12 with 10,000
// addresses in use costs a page what a /24 does, and a live map that
// refreshes on every change in a busy pool does not read the pool whole each
// time. Nothing is kept for a pool whose changes the feed is not following
// (before it follows a new pool, or while it cannot read the store): those
// readers read the store.
import { isBerthError } from '../core/errors.js';
import type { AddressInfo, Store } from './model.js';
import type { ChangeFeed } from './change-feed.js';

/** By default, a pool not listed for this long is forgotten. */
const IDLE_MS = 10 * 60 * 1000;

interface Cached {
  records: Map<string, AddressInfo>;
  /** addresses a change was heard of since they were read */
  dirty: Set<string>;
  /** the records in address order, until the next change */
  sorted: AddressInfo[] | null;
  /** the read of the dirty addresses in flight */
  rereading: Promise<void> | null;
  usedAt: number;
}

/** The pools' records as listAddresses gives them, from memory where the feed allows. */
export class PoolRecords {
  private readonly pools = new Map<string, Promise<Cached>>();

  /** `idleMs`: a pool not listed for this long is forgotten (Infinity: kept while it is followed). */
  constructor(
    private readonly store: Store,
    private readonly feed: ChangeFeed,
    private readonly now: () => number = Date.now,
    private readonly idleMs = IDLE_MS,
  ) {
    feed.subscribe(
      (c) => {
        const pool = this.pools.get(c.pool);
        if (!pool) return;
        if (c.hex === null) this.pools.delete(c.pool);
        else void pool.then((p) => this.touch(p, c.hex!), () => {});
      },
      (live) => {
        // A change made while the feed could not read the store was never heard of.
        if (!live) this.pools.clear();
      },
    );
  }

  /** The pool's non-free addresses in address order (as listAddresses). */
  async list(pool: string): Promise<AddressInfo[]> {
    this.forgetIdle();
    if (!this.feed.following(pool)) return this.store.listAddresses(pool);
    let entry = this.pools.get(pool);
    if (!entry) {
      entry = this.load(pool);
      this.pools.set(pool, entry);
      entry.catch(() => this.pools.get(pool) === entry && this.pools.delete(pool));
    }
    const p = await entry;
    p.usedAt = this.now();
    if (p.dirty.size > 0 || p.rereading) await this.reread(pool, p);
    p.sorted ??= [...p.records.values()].sort((a, b) => (a.ip < b.ip ? -1 : 1));
    // A hold that has ended reads free, though its record stays until the pool's next change.
    const now = this.now();
    return p.sorted.filter((a) => !(a.state === 'reserved' && a.until !== undefined && a.until <= now));
  }

  /** Marks an address changed by this console, before the feed hears of it. */
  changed(pool: string, hex: string): void {
    void this.pools.get(pool)?.then((p) => this.touch(p, hex), () => {});
  }

  private async load(pool: string): Promise<Cached> {
    const all = await this.store.listAddresses(pool);
    return { records: new Map(all.map((a) => [a.ip, a])), dirty: new Set(), sorted: all, rereading: null, usedAt: this.now() };
  }

  private touch(p: Cached, hex: string): void {
    p.dirty.add(hex);
    p.sorted = null;
  }

  /** Reads the changed addresses again; pages asking meanwhile wait for the same read. */
  private reread(pool: string, p: Cached): Promise<void> {
    p.rereading ??= this.readDirty(pool, p).finally(() => (p.rereading = null));
    return p.rereading;
  }

  private async readDirty(pool: string, p: Cached): Promise<void> {
    const hexes = [...p.dirty];
    p.dirty.clear();
    const results = await Promise.allSettled(hexes.map((hex) => this.store.getAddress(pool, hex)));
    let failure: unknown;
    results.forEach((r, i) => {
      const hex = hexes[i]!;
      if (r.status === 'fulfilled' && r.value.state !== 'free') p.records.set(hex, r.value);
      else if (r.status === 'fulfilled' || isBerthError(r.reason, 'IP_NOT_IN_POOL')) p.records.delete(hex);
      else {
        // read again next time: a failure must not leave a stale record
        p.dirty.add(hex);
        failure ??= r.reason;
      }
    });
    p.sorted = null;
    if (failure !== undefined) throw failure;
  }

  private forgetIdle(): void {
    const now = this.now();
    for (const [pool, entry] of this.pools) {
      void entry.then((p) => now - p.usedAt > this.idleMs && this.pools.get(pool) === entry && this.pools.delete(pool), () => {});
    }
  }
}
