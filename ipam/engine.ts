// The allocation rules, as pure functions over one pool's state.
//
// The file store runs these directly inside its lock; the Redis Lua scripts in
// ipam/lua/ implement the same steps in the same order over the same
// structures, and test/ipam/store.ts holds both stores to one behaviour.
import { hexInc } from '../core/address.js';
import { fail } from './failures.js';
import { isAssignable, type PoolConfig } from './pool-config.js';
import {
  addressInfo,
  attachmentKey,
  hostField,
  stateOf,
  type AddrRecord,
  type AddressInfo,
  type AllocateRequest,
  type Allocation,
  type ConflictRequest,
  type HistoryEntry,
  type HistoryEvent,
  type PoolMeta,
  type ReleaseRequest,
  type ReleaseResult,
  type ReserveRequest,
} from './model.js';

/** Expired holds turned free per operation: bounds the cost of any one call. */
export const EXPIRE_BATCH = 16;

/** One pool's state as an operation sees it, inside the store's transaction. */
export interface PoolTxn {
  readonly conf: PoolConfig;
  readonly now: number;
  readonly meta: PoolMeta;
  getAddr(hex: string): AddrRecord | undefined;
  putAddr(hex: string, rec: AddrRecord | undefined): void;
  getAtt(key: string): string | undefined;
  putAtt(key: string, hex: string | undefined): void;
  /** the lowest address reserved for owner */
  firstHeld(owner: string): string | undefined;
  putHeld(owner: string, hex: string, present: boolean): void;
  /** holds that end at or before now, earliest first */
  expiredHolds(now: number, limit: number): string[];
  /** how many holds end at or before now */
  countExpired(now: number): number;
  putExpiry(hex: string, until: number | undefined): void;
  freeHas(hex: string): boolean;
  putFree(hex: string, releasedAt: number | undefined): void;
  /** the free address released longest ago */
  oldestFree(): string | undefined;
  /** appends to the pool's history */
  log(entry: HistoryEntry): void;
}

/** Moves an address from one record to another, keeping every index and counter in step. */
export function putRecord(txn: PoolTxn, hex: string, old: AddrRecord | undefined, rec: AddrRecord | undefined): void {
  const { meta } = txn;
  if (old) {
    if (old.s === 'a') {
      meta.allocated--;
      const key = attachmentKey(old.c ?? '', old.i ?? '');
      if (txn.getAtt(key) === hex) txn.putAtt(key, undefined);
    } else {
      meta.reserved--;
      if (old.o !== undefined) txn.putHeld(old.o, hex, false);
      if (old.u !== undefined) txn.putExpiry(hex, undefined);
    }
  }
  if (rec) {
    if (rec.s === 'a') {
      meta.allocated++;
      txn.putAtt(attachmentKey(rec.c ?? '', rec.i ?? ''), hex);
    } else {
      meta.reserved++;
      if (rec.o !== undefined) txn.putHeld(rec.o, hex, true);
      if (rec.u !== undefined) txn.putExpiry(hex, rec.u);
    }
    if (!old) txn.putFree(hex, undefined);
  }
  txn.putAddr(hex, rec);
}

/** Turns up to `limit` ended holds into free addresses. */
export function expireHolds(txn: PoolTxn, limit = EXPIRE_BATCH): number {
  let n = 0;
  for (const hex of txn.expiredHolds(txn.now, limit)) {
    const rec = txn.getAddr(hex);
    if (rec && rec.s === 'r' && rec.u !== undefined && rec.u > txn.now) {
      txn.putExpiry(hex, rec.u); // the index disagrees with a live hold: index it at its real end
      continue;
    }
    if (!rec || rec.s !== 'r' || rec.u === undefined) {
      txn.putExpiry(hex, undefined);
      continue;
    }
    putRecord(txn, hex, rec, undefined);
    txn.putFree(hex, rec.t);
    record(txn, 'expire', hex, rec, {});
    n++;
  }
  return n;
}

/**
 * The counters as the addresses read at `now`: a hold past its end reads as
 * free (stateOf), while the stored counters keep it reserved until a change
 * expires it. Writes nothing.
 */
export function usage(txn: Pick<PoolTxn, 'now' | 'meta' | 'countExpired'>): { allocated: number; reserved: number } {
  return { allocated: txn.meta.allocated, reserved: txn.meta.reserved - txn.countExpired(txn.now) };
}

/** Allocates an address to an attachment: idempotent per container id + interface. */
export function allocate(txn: PoolTxn, req: AllocateRequest): Allocation {
  const { conf, now } = txn;
  expireHolds(txn);
  const key = attachmentKey(req.containerId, req.ifname);
  const current = txn.getAtt(key);
  if (current !== undefined) {
    const rec = txn.getAddr(current);
    if (rec && rec.s === 'a' && rec.c === req.containerId && rec.i === req.ifname) {
      if (req.ip !== undefined && req.ip !== current) {
        throw fail.attachmentConflict(key, current, req.ip);
      }
      return { pool: conf.name, ip: current, gen: rec.g ?? 0, owner: rec.o ?? req.owner, existing: true };
    }
    txn.putAtt(key, undefined);
  }

  let hex: string | undefined;
  if (req.ip !== undefined) {
    hex = req.ip;
    if (!isAssignable(conf, hex)) throw fail.notInPool(hex, conf.name);
    const rec = txn.getAddr(hex);
    const state = stateOf(rec, now);
    if (state === 'allocated') throw fail.allocated(hex, rec!.o, rec!.c);
    if (state === 'reserved' && rec!.o !== req.owner) throw fail.reservedFor(hex, rec!.o);
  } else {
    hex = firstHeld(txn, req.owner) ?? nextFromCursor(txn) ?? oldestFree(txn);
    if (hex === undefined) throw fail.exhausted(conf.name, txn.meta.allocated, txn.meta.reserved);
  }

  const old = txn.getAddr(hex);
  txn.meta.gen++;
  const rec: AddrRecord = { s: 'a', o: req.owner, c: req.containerId, i: req.ifname, g: txn.meta.gen, t: now };
  if (req.host !== undefined) rec.h = hostField(req.host, req.hostId);
  if (req.network !== undefined) rec.w = req.network;
  // An admin reservation for this owner comes back when the attachment goes.
  if (old && old.s === 'r' && old.u === undefined && old.o === req.owner) {
    rec.p = 1;
    if (old.n !== undefined) rec.n = old.n;
  }
  putRecord(txn, hex, old, rec);
  record(txn, 'allocate', hex, rec, req);
  return { pool: conf.name, ip: hex, gen: rec.g!, owner: req.owner, existing: false };
}

/** Releases by attachment (idempotent) or by address; a stale generation is refused. */
export function release(txn: PoolTxn, req: ReleaseRequest): ReleaseResult {
  const { conf, now } = txn;
  expireHolds(txn);
  let hex: string | undefined;
  let key: string | undefined;
  if (req.containerId !== undefined) {
    key = attachmentKey(req.containerId, req.ifname);
    hex = txn.getAtt(key);
    if (hex === undefined) return { released: false };
  } else {
    hex = req.ip;
  }
  const rec = txn.getAddr(hex);
  if (!rec || rec.s !== 'a' || (key !== undefined && attachmentKey(rec.c ?? '', rec.i ?? '') !== key)) {
    if (key !== undefined) {
      txn.putAtt(key, undefined);
      return { released: false };
    }
    throw fail.notAllocated(hex, stateOf(rec, now));
  }
  if (req.gen !== undefined && rec.g !== req.gen) throw fail.staleGeneration(hex, rec.g ?? 0, req.gen);
  let next: AddrRecord | undefined;
  if (rec.p) {
    next = { s: 'r', t: now };
    if (rec.o !== undefined) next.o = rec.o;
    if (rec.n !== undefined) next.n = rec.n;
  } else if (conf.hold > 0 && rec.o !== undefined) {
    next = { s: 'r', o: rec.o, c: rec.c!, g: rec.g!, t: now, u: now + conf.hold * 1000 };
  }
  putRecord(txn, hex, rec, next);
  if (!next) txn.putFree(hex, now);
  record(txn, 'release', hex, rec, req);
  return { released: true, ip: hex, state: next ? 'reserved' : 'free' };
}

/** An admin reservation, optionally for an owner; reserving an allocated address for its owner pins it. */
export function reserve(txn: PoolTxn, hex: string, req: ReserveRequest): AddressInfo {
  const { conf, now } = txn;
  expireHolds(txn);
  if (!isAssignable(conf, hex)) throw fail.notInPool(hex, conf.name);
  const old = txn.getAddr(hex);
  const state = stateOf(old, now);
  let rec: AddrRecord;
  if (state === 'allocated') {
    if (req.owner === undefined || req.owner !== old!.o) throw fail.allocatedToOther(hex, old!.o);
    rec = { ...old!, p: 1 };
    if (req.note !== undefined) rec.n = req.note;
    putRecord(txn, hex, old, rec);
    record(txn, 'pin', hex, rec, req);
  } else {
    rec = { s: 'r', t: now };
    if (req.owner !== undefined) rec.o = req.owner;
    if (req.note !== undefined) rec.n = req.note;
    putRecord(txn, hex, old, rec);
    record(txn, 'reserve', hex, rec, req);
  }
  return addressInfo(conf.name, hex, rec, now);
}

/** Ends a reservation (admin or hold), or unpins an allocated address. */
export function unreserve(txn: PoolTxn, hex: string, req: { actor?: string }): AddressInfo {
  const { conf, now } = txn;
  expireHolds(txn);
  const old = txn.getAddr(hex);
  const state = stateOf(old, now);
  if (state === 'allocated' && old!.p) {
    const rec: AddrRecord = { ...old! };
    delete rec.p;
    delete rec.n;
    putRecord(txn, hex, old, rec);
    record(txn, 'unpin', hex, rec, req);
    return addressInfo(conf.name, hex, rec, now);
  }
  if (state !== 'reserved') throw fail.notReserved(hex, state);
  putRecord(txn, hex, old, undefined);
  txn.putFree(hex, old!.u !== undefined ? old!.t : 0);
  record(txn, 'unreserve', hex, old!, req);
  return addressInfo(conf.name, hex, undefined, now);
}

/**
 * Records that an address was found in use on the wire by someone the pool
 * does not know. When it is allocated to the attachment that found it (a
 * conflict probe before the address went live), that allocation is
 * withdrawn: the address becomes reserved for no one, with the note, and is
 * not handed out again until an admin unreserves it. Otherwise the history
 * alone records it.
 */
export function conflict(txn: PoolTxn, hex: string, req: ConflictRequest): AddressInfo {
  const { conf, now } = txn;
  expireHolds(txn);
  if (!isAssignable(conf, hex)) throw fail.notInPool(hex, conf.name);
  const old = txn.getAddr(hex);
  const mine = req.containerId !== undefined && old?.s === 'a' && old.c === req.containerId && old.i === req.ifname;
  if (!mine) {
    record(txn, 'conflict', hex, old ?? {}, req);
    return addressInfo(conf.name, hex, old, now);
  }
  const rec: AddrRecord = { s: 'r', t: now, n: req.note };
  putRecord(txn, hex, old, rec);
  record(txn, 'conflict', hex, old!, req);
  return addressInfo(conf.name, hex, rec, now);
}

/** The lowest address reserved for owner; index entries its record does not bear out are dropped. */
function firstHeld(txn: PoolTxn, owner: string): string | undefined {
  for (;;) {
    const hex = txn.firstHeld(owner);
    if (hex === undefined) return undefined;
    const rec = txn.getAddr(hex);
    if (rec && rec.s === 'r' && rec.o === owner) return hex;
    txn.putHeld(owner, hex, false);
  }
}

function nextFromCursor(txn: PoolTxn): string | undefined {
  const { conf, meta } = txn;
  let cur: string | null = meta.cursor;
  while (cur) {
    const range = conf.ranges.find(([, last]) => cur! <= last);
    if (!range) break;
    if (cur < range[0]) cur = range[0];
    const candidate: string = cur;
    cur = hexInc(cur);
    if (conf.exclude.includes(candidate) || txn.getAddr(candidate) || txn.freeHas(candidate)) continue;
    meta.cursor = cur ?? '';
    return candidate;
  }
  meta.cursor = '';
  return undefined;
}

function oldestFree(txn: PoolTxn): string | undefined {
  for (;;) {
    const hex = txn.oldestFree();
    if (hex === undefined) return undefined;
    if (!txn.getAddr(hex) && isAssignable(txn.conf, hex)) return hex;
    txn.putFree(hex, undefined);
  }
}

function record(txn: PoolTxn, event: HistoryEvent, hex: string, rec: Partial<AddrRecord>, req: { actor?: string; note?: string }): void {
  const entry: HistoryEntry = { at: txn.now, event, ip: hex };
  if (rec.o !== undefined) entry.owner = rec.o;
  if (rec.c !== undefined) entry.containerId = rec.c;
  if (rec.i !== undefined) entry.ifname = rec.i;
  if (rec.g !== undefined) entry.gen = rec.g;
  if (req.actor !== undefined) entry.actor = req.actor;
  const note = req.note ?? rec.n;
  if (note !== undefined) entry.note = note;
  txn.log(entry);
}
