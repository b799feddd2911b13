// Following the store's changes: one loop follows every pool's history
// (Store.historyAfter, on a store of its own, since on Redis it blocks its
// connections while it waits) and hands each new entry to its listeners: the
// console's pages (console/feed.ts), the pool record caches (pool-records.ts),
// berth dns. Nothing is polled: on Redis the loop waits in XREAD BLOCK on the
// pools' history streams, on the file store in fs.watch on its history
// directory; only the pool list is read again, every POOLS_EVERY_MS.
import { formatIp } from '../core/address.js';
import type { HistoryCursor, HistoryEvent, Store } from './model.js';
import { parseStoreUrl } from './store-url.js';

/** What a listener hears of a change: enough to know what to read again. */
export interface Change {
  pool: string;
  /** the address as text; null when the pool itself came or went */
  ip: string | null;
  /** the address in berth's hex form; null with ip */
  hex: string | null;
  event: HistoryEvent | 'pool';
  /** ms since the epoch */
  at: number;
}

export interface FeedLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** The pool list is read again this often, so that a new pool is followed too. */
const POOLS_EVERY_MS = 5000;
/** After a failed read, the loop waits this long before asking again. */
const RETRY_MS = 1000;

/** The ms one wait of the feed takes for a store URL: on Redis well below the command timeout. */
export function feedWaitMs(store: string): number {
  const loc = parseStoreUrl(store);
  return loc.kind === 'redis' ? Math.max(50, Math.min(1000, Math.floor(loc.timeout / 2))) : 1000;
}

/** Follows the store and fans its changes out to listeners. */
export class ChangeFeed {
  private readonly listeners = new Set<(c: Change) => void>();
  private readonly statusListeners = new Set<(live: boolean) => void>();
  private stopped = false;
  private loop: Promise<void> | undefined;
  private isLive = false;
  /** the pools whose histories the last successful read covered */
  private followed = new Set<string>();

  /**
   * `follow` is the store the loop waits on; `poolNames` lists the pools to
   * follow; `waitMs` bounds one wait (on Redis, below the store's command
   * timeout); `what` names what pauses in the log line of a failure.
   */
  constructor(
    private readonly follow: Store,
    private readonly poolNames: () => Promise<string[]>,
    private readonly waitMs: number,
    private readonly log: FeedLog,
    private readonly what = 'live updates',
  ) {}

  /** True while the last read of the store succeeded. */
  get live(): boolean {
    return this.isLive;
  }

  /** True when every change of the pool from now on will be heard of: live, and its history followed. */
  following(pool: string): boolean {
    return this.isLive && this.followed.has(pool);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Calls fn with every change until the returned function is called. */
  subscribe(fn: (c: Change) => void, onStatus?: (live: boolean) => void): () => void {
    this.listeners.add(fn);
    if (onStatus) this.statusListeners.add(onStatus);
    return () => {
      this.listeners.delete(fn);
      if (onStatus) this.statusListeners.delete(onStatus);
    };
  }

  /** Ends the loop and closes its store (which ends a wait in progress). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.follow.close().catch(() => {});
    await this.loop;
    this.setLive(false);
  }

  private async run(): Promise<void> {
    let cursor: HistoryCursor = {};
    let pools: string[] | undefined;
    let listedAt = 0;
    while (!this.stopped) {
      try {
        if (!pools || Date.now() - listedAt >= POOLS_EVERY_MS) {
          const names = await this.poolNames();
          if (pools) this.poolsChanged(pools, names);
          pools = names;
          listedAt = Date.now();
        }
        const tail = await this.follow.historyAfter(pools, cursor, this.waitMs);
        cursor = tail.cursor;
        this.followed = new Set(Object.keys(cursor));
        this.setLive(true);
        for (const e of tail.entries) this.emit({ pool: e.pool, ip: formatIp(e.ip), hex: e.ip, event: e.event, at: e.at });
      } catch (err) {
        if (this.stopped) break;
        if (this.isLive) this.log.warn({ err: (err as Error).message }, `${this.what} paused: failed to follow the pool histories`);
        this.setLive(false);
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  private poolsChanged(before: string[], after: string[]): void {
    const now = Date.now();
    for (const pool of after) if (!before.includes(pool)) this.emit({ pool, ip: null, hex: null, event: 'pool', at: now });
    for (const pool of before) if (!after.includes(pool)) this.emit({ pool, ip: null, hex: null, event: 'pool', at: now });
  }

  private emit(c: Change): void {
    for (const fn of this.listeners) fn(c);
  }

  private setLive(live: boolean): void {
    if (!live) this.followed.clear();
    if (live === this.isLive) return;
    this.isLive = live;
    if (live) this.log.info({}, 'following the pool histories');
    for (const fn of this.statusListeners) fn(live);
  }
}
