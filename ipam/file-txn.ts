// The file store's pools in memory, and the engine's transaction over them.
// Pure: no I/O. The journal (journal.ts) fills this state from disk and
// writes down the changes a FileTxn notes; the engine (engine.ts) decides.
//
// Only the records, the free list and the counters are state; the attachment,
// held and expiry indexes are derived from the records (setAddr) and never
// written, so they cannot disagree with them.
import { BerthError } from '../core/errors.js';
import * as engine from './engine.js';
import { capacity, isAssignable, type PoolConfig } from './pool-config.js';
import { TimeQueue } from './time-queue.js';
import { attachmentKey, heldKey, type AddrRecord, type Fix, type HistoryEntry, type PoolMeta, type PoolSnapshot, type PoolUsage } from './model.js';

/** One pool in memory. */
export interface PoolState {
  conf: PoolConfig;
  meta: PoolMeta;
  addr: Map<string, AddrRecord>;
  free: TimeQueue;
  // Indexes, derived from addr and never written to disk.
  att: Map<string, string>;
  held: Map<string, Set<string>>;
  expiry: TimeQueue;
}

/** A change to the pools, as one journal line holds it. */
export type JournalEntry =
  | { t: 'create'; conf: PoolConfig; meta: PoolMeta }
  | { t: 'rm'; pool: string }
  | { t: 'put'; pool: string; a: Record<string, AddrRecord | null>; f: Record<string, number | null>; m: PoolMeta };

/** A history entry with the pool it belongs to. */
export type PoolHistoryEntry = HistoryEntry & { pool: string };

/** An empty pool. */
export function newPool(conf: PoolConfig, meta: PoolMeta): PoolState {
  return { conf, meta: { ...meta }, addr: new Map(), free: new TimeQueue(), att: new Map(), held: new Map(), expiry: new TimeQueue() };
}

/** Sets an address record and keeps the derived indexes in step. */
export function setAddr(p: PoolState, hex: string, rec: AddrRecord | undefined): void {
  const old = p.addr.get(hex);
  if (old) {
    if (old.s === 'a') {
      const key = attachmentKey(old.c ?? '', old.i ?? '');
      if (p.att.get(key) === hex) p.att.delete(key);
    } else {
      if (old.o !== undefined) {
        const set = p.held.get(old.o);
        set?.delete(hex);
        if (set && set.size === 0) p.held.delete(old.o);
      }
      if (old.u !== undefined) p.expiry.delete(hex);
    }
  }
  if (!rec) {
    p.addr.delete(hex);
    return;
  }
  p.addr.set(hex, rec);
  if (rec.s === 'a') {
    p.att.set(attachmentKey(rec.c ?? '', rec.i ?? ''), hex);
  } else {
    if (rec.o !== undefined) {
      let set = p.held.get(rec.o);
      if (!set) p.held.set(rec.o, (set = new Set()));
      set.add(hex);
    }
    if (rec.u !== undefined) p.expiry.set(hex, rec.u);
  }
}

/** Applies one journal entry to the pools; a 'put' for a pool that is gone changes nothing. */
export function applyEntry(pools: Map<string, PoolState>, e: JournalEntry): void {
  switch (e.t) {
    case 'create':
      pools.set(e.conf.name, newPool(e.conf, e.meta));
      return;
    case 'rm':
      pools.delete(e.pool);
      return;
    case 'put': {
      const p = pools.get(e.pool);
      if (!p) return;
      for (const [hex, rec] of Object.entries(e.a)) setAddr(p, hex, rec ?? undefined);
      for (const [hex, time] of Object.entries(e.f)) {
        if (time === null) p.free.delete(hex);
        else p.free.set(hex, time);
      }
      Object.assign(p.meta, e.m);
      return;
    }
    default:
      throw new BerthError('STORE_CORRUPT', `unknown journal entry ${JSON.stringify((e as { t: unknown }).t)}`);
  }
}

/** The engine's view of a pool here: changes go straight to memory and are noted for the journal. */
export class FileTxn implements engine.PoolTxn {
  readonly conf: PoolConfig;
  readonly meta: PoolMeta;
  readonly history: PoolHistoryEntry[] = [];
  private readonly a: Record<string, AddrRecord | null> = {};
  private readonly f: Record<string, number | null> = {};
  private touched = false;
  private readonly metaBefore: string;

  constructor(
    private readonly p: PoolState,
    readonly now: number,
  ) {
    this.conf = p.conf;
    this.meta = p.meta;
    this.metaBefore = JSON.stringify(p.meta);
  }

  getAddr(hex: string): AddrRecord | undefined {
    return this.p.addr.get(hex);
  }
  putAddr(hex: string, rec: AddrRecord | undefined): void {
    setAddr(this.p, hex, rec);
    this.a[hex] = rec ?? null;
    this.touched = true;
  }
  getAtt(key: string): string | undefined {
    return this.p.att.get(key);
  }
  putAtt(): void {
    // derived from the records in setAddr
  }
  firstHeld(owner: string): string | undefined {
    let first: string | undefined;
    for (const hex of this.p.held.get(owner) ?? []) if (first === undefined || hex < first) first = hex;
    return first;
  }
  putHeld(owner: string, hex: string, present: boolean): void {
    // derived from the records in setAddr; only a stale entry is ever dropped here
    if (!present) this.p.held.get(owner)?.delete(hex);
  }
  expiredHolds(now: number, limit: number): string[] {
    return this.p.expiry.upTo(now, limit);
  }
  countExpired(now: number): number {
    return this.p.expiry.countUpTo(now);
  }
  putExpiry(): void {
    // derived from the records in setAddr
  }
  freeHas(hex: string): boolean {
    return this.p.free.has(hex);
  }
  putFree(hex: string, releasedAt: number | undefined): void {
    if (releasedAt === undefined) {
      if (!this.p.free.has(hex)) return;
      this.p.free.delete(hex);
      this.f[hex] = null;
    } else {
      this.p.free.set(hex, releasedAt);
      this.f[hex] = releasedAt;
    }
    this.touched = true;
  }
  oldestFree(): string | undefined {
    return this.p.free.first();
  }
  log(entry: HistoryEntry): void {
    this.history.push({ ...entry, pool: this.conf.name });
  }
  /** What the transaction changed, as journal entries: none when it changed nothing. */
  entries(): JournalEntry[] {
    const changed = this.touched || this.history.length > 0 || JSON.stringify(this.meta) !== this.metaBefore;
    return changed ? [{ t: 'put', pool: this.conf.name, a: this.a, f: this.f, m: { ...this.meta } }] : [];
  }
}

/**
 * Applies repairs found by the consistency check. The indexes are derived
 * from the records here, so only the free list and the counters can disagree
 * with them; index fixes have nothing to apply. Each fix is guarded by the
 * records as they are now, not as checked. Returns how many were applied.
 */
export function applyFixes(txn: FileTxn, p: PoolState, fixes: Fix[]): number {
  let applied = 0;
  for (const fix of fixes) {
    if (fix.kind === 'free') {
      const used = p.addr.has(fix.key);
      if (fix.value === null && (used || !isAssignable(p.conf, fix.key))) txn.putFree(fix.key, undefined);
      else if (fix.value !== null && !used) txn.putFree(fix.key, fix.value);
      else continue;
      applied++;
    } else if (fix.kind === 'meta' && fix.key === 'gen') {
      p.meta.gen = Math.max(p.meta.gen, Number(fix.value));
      applied++;
    } else if (fix.kind === 'meta') {
      let allocated = 0;
      for (const rec of p.addr.values()) if (rec.s === 'a') allocated++;
      p.meta.allocated = allocated;
      p.meta.reserved = p.addr.size - allocated;
      applied++;
    }
  }
  return applied;
}

/** A pool's counters as its addresses read at `now`; a read, so nothing is journalled. */
export function usageOf(p: PoolState, now: number): PoolUsage {
  const { allocated, reserved } = engine.usage(new FileTxn(p, now));
  return { conf: p.conf, allocated, reserved, capacity: capacity(p.conf).toString() };
}

/** A copy of everything of one pool at `now`, for the consistency check. */
export function poolSnapshot(p: PoolState, now: number): PoolSnapshot {
  const held = new Set<string>();
  for (const [owner, set] of p.held) for (const hex of set) held.add(heldKey(owner, hex));
  return {
    conf: p.conf,
    meta: { ...p.meta },
    addr: new Map(p.addr),
    att: new Map(p.att),
    held,
    expiry: new Map(p.expiry),
    free: new Map(p.free),
    now,
  };
}
