// The embedded store for one host: no server, safe for concurrent processes,
// crash-safe, and whole on a full disk.
//
// Layout of the store directory:
//   lock            flock(2) target: exclusive for changes, shared for reads
//   snapshot.json   every pool at some epoch, replaced by rename
//   journal.log     a header line {"epoch":N}, then one JSON line per change,
//                   appended and fdatasync'd before the change is acknowledged
//   history/P.jsonl the pool's history, one line per state change
//
// A process keeps the state in memory and, on each operation, reads only the
// journal lines appended since it last looked. Operations queue while the
// lock is taken and then run as one batch: one lock, one write, one fsync.
// An append that fails (a full disk, a file-size limit) acknowledges nothing
// and is cut back off the journal; one cut short by a crash ends in a line
// without its newline, never acknowledged, which readers stop before and the
// next writer cuts off before it appends. Compaction writes snapshot N+1,
// then a fresh journal with header N+1, each whole, synced, read back and
// renamed into place (ipam/durable-file.ts); a journal whose epoch is behind
// the snapshot's is already in it, and only a writer replaces it. Reads never
// write the journal or the snapshot, so they keep working on a full disk.
//
// Over 400 lines because the snapshot and the journal with its compaction, the
// lock and the batch queue share one open store's state (descriptors, inode,
// epoch, offset) and each relies on the order of the others; the pure parts
// are apart: the pools and their transaction (file-txn.ts), the rules
// (engine.ts), the history files (file-history.ts), whole-file writes
// (durable-file.ts).
import fs from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/index.js';
import { checkRecordShape } from './record.js';
import { endPosition, readPosition, readTails, readText, type FilePosition } from './file-history.js';
import { BerthError, isBerthError } from '../core/errors.js';
import * as engine from './engine.js';
import { checkAllocate, checkConflict, checkHex, checkHistory, checkHistoryAfter, checkRelease, checkReserve } from './requests.js';
import { hostKey, readAnnouncement, type HostAnnouncement } from './hosts.js';
import { assertNoOverlap, isAssignable, readPoolConfig, validatePoolName, type PoolConfig } from './pool-config.js';
import { fail } from './failures.js';
import { appendWhole, makeDirs, replaceFile, syncDir } from './durable-file.js';
import { applyEntry, applyFixes, FileTxn, newPool, poolSnapshot, setAddr, usageOf, type JournalEntry, type PoolState } from './file-txn.js';
import {
  addressInfo,
  type Actor,
  type AddrRecord,
  type AddressInfo,
  type AllocateRequest,
  type Allocation,
  type ConflictRequest,
  type Fix,
  type HistoryCursor,
  type HistoryEntry,
  type HistoryOptions,
  type HistoryTail,
  type PoolMeta,
  type PoolSnapshot,
  type PoolUsage,
  type ReleaseRequest,
  type ReleaseResult,
  type ReserveRequest,
  type RegistryFinding,
  type Store,
} from './model.js';

/**
 * The journal is compacted into the snapshot once it is larger than the
 * snapshot, and at least this large. A plugin process replays the whole
 * journal on every call, so its length is paid per call (~380 ms at 6 MiB).
 * Sized to the snapshot, replaying costs no more than loading the
 * snapshot, and compaction writes no more than the journal it replaces.
 */
const MIN_COMPACT_BYTES = 64 * 1024;

/**
 * Whether an append that took the journal from `before` to `after` bytes
 * should be followed by a compaction: when it passed the limit, or passed
 * the limit plus a multiple of half the limit. A compaction that fails (no
 * room for the new snapshot) is so tried again only after the journal has
 * grown by another half of the limit, not on every commit; the rule needs no
 * memory, so every process, one-shot plugins included, keeps it.
 */
export function compactionDue(before: number, after: number, limit: number): boolean {
  const step = Math.max(1, Math.floor(limit / 2));
  // how many of the marks limit, limit + step, limit + 2 step, ... lie below x
  const marksBelow = (x: number) => (x > limit ? Math.floor((x - limit - 1) / step) + 1 : 0);
  return marksBelow(after) > marksBelow(before);
}

/** The journal size past which compaction is next tried, for a journal of `size` bytes (see compactionDue). */
export function nextCompactionMark(size: number, limit: number): number {
  const step = Math.max(1, Math.floor(limit / 2));
  return limit + Math.ceil(Math.max(0, size - limit) / step) * step;
}
/** History file size past which it is rotated to P.jsonl.1. */
const HISTORY_ROTATE_BYTES = 16 * 1024 * 1024;

/** What one queued operation did: journal entries to write, and its answer. */
interface Outcome {
  entries: JournalEntry[];
  history?: Array<HistoryEntry & { pool: string }>;
  removeHistory?: string;
  result?: unknown;
  error?: unknown;
}

interface QueueItem {
  run: () => Outcome;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** How to settle one operation of a batch once the batch is committed. */
interface Settle {
  item: QueueItem;
  run: () => void;
  /** wrote: it changed something; read: it changed nothing, but may have read the batch's earlier changes; failed: unexpectedly, settled as it is */
  kind: 'wrote' | 'read' | 'failed';
}

interface SnapshotFile {
  v: 1;
  epoch: number;
  pools: Record<string, { conf: PoolConfig; meta: PoolMeta; addr: Record<string, AddrRecord>; free: Array<[string, number]> }>;
}

export interface FileStoreOptions {
  /** ms to wait for the lock */
  lockTimeout?: number;
  /** journal size that triggers compaction (default: the snapshot's size, at least 64 KiB) */
  compactBytes?: number;
}

/** The embedded file store. */
export class FileStore implements Store {
  readonly location: string;
  private readonly dir: string;
  private readonly lockTimeout: number;
  private readonly compactBytes: number | undefined;
  /** the size of the snapshot this process last read or wrote */
  private snapshotBytes = 0;
  private lockFd = -1;
  private journalFd = -1;
  private readonly queue: QueueItem[] = [];
  private draining = false;
  /** the blocking lock request in flight, if any */
  private waiting: Promise<boolean> | null = null;
  /** the waiting request's caller gave up: release the lock when it comes */
  private abandoned = false;
  private closing = false;
  private pools: Map<string, PoolState> | null = null;
  /** the snapshot's epoch, and its inode (-1: none) as last read */
  private epoch = 0;
  private snapshotIno = -1;
  /** the open journal's inode, its header's epoch (-1: no journal), and the end of its last whole line read */
  private ino = -1;
  private journalEpoch = -1;
  private offset = 0;
  /** historyAfter calls waiting for a change: close() ends their waits */
  private readonly historyWaiters = new Set<() => void>();

  constructor(dir: string, opts: FileStoreOptions = {}) {
    this.dir = dir;
    this.location = `file://${dir}`;
    this.lockTimeout = opts.lockTimeout ?? 5000;
    this.compactBytes = opts.compactBytes;
  }

  async createPool(conf: PoolConfig, actor?: string): Promise<PoolConfig> {
    void actor;
    return this.write(() => {
      const pools = this.pools!;
      if (pools.has(conf.name)) throw fail.poolExists(conf.name);
      assertNoOverlap(conf, [...pools.values()].map((p) => p.conf));
      const meta: PoolMeta = { cursor: conf.ranges[0]![0], gen: 0, allocated: 0, reserved: 0 };
      return { entries: [{ t: 'create', conf, meta }], result: conf };
    });
  }

  async removePool(name: string, opts: { force?: boolean; actor?: string } = {}): Promise<{ allocated: number }> {
    return this.write(() => {
      const pool = this.pool(name);
      if (pool.meta.allocated > 0 && !opts.force) throw fail.poolInUse(name, pool.meta.allocated);
      return { entries: [{ t: 'rm', pool: name }], result: { allocated: pool.meta.allocated }, removeHistory: name };
    });
  }

  async getPool(name: string): Promise<PoolConfig> {
    return this.read(() => this.pool(name).conf);
  }

  async listPools(): Promise<PoolUsage[]> {
    return this.read(() => {
      const now = Date.now();
      return [...this.pools!.values()].sort((a, b) => cmp(a.conf.name, b.conf.name)).map((p) => usageOf(p, now));
    });
  }

  async usage(name: string): Promise<PoolUsage> {
    return this.read(() => usageOf(this.pool(name), Date.now()));
  }

  async allocate(pool: string, req: AllocateRequest): Promise<Allocation> {
    checkAllocate(req);
    return this.change(pool, (txn) => engine.allocate(txn, req));
  }

  async release(pool: string, req: ReleaseRequest): Promise<ReleaseResult> {
    checkRelease(req);
    return this.change(pool, (txn) => engine.release(txn, req));
  }

  async reserve(pool: string, ip: string, req: ReserveRequest): Promise<AddressInfo> {
    checkReserve(ip, req);
    return this.change(pool, (txn) => engine.reserve(txn, ip, req));
  }

  async unreserve(pool: string, ip: string, req: Actor): Promise<AddressInfo> {
    checkReserve(ip, req);
    return this.change(pool, (txn) => engine.unreserve(txn, ip, req));
  }

  async conflict(pool: string, ip: string, req: ConflictRequest): Promise<AddressInfo> {
    checkConflict(ip, req);
    return this.change(pool, (txn) => engine.conflict(txn, ip, req));
  }

  async getAddress(pool: string, ip: string): Promise<AddressInfo> {
    checkHex(ip);
    return this.read(() => {
      const p = this.pool(pool);
      const rec = p.addr.get(ip);
      if (!rec && !isAssignable(p.conf, ip)) throw fail.notInPool(ip, pool);
      return addressInfo(pool, ip, rec, Date.now());
    });
  }

  async listAddresses(pool: string): Promise<AddressInfo[]> {
    return this.read(() => {
      const p = this.pool(pool);
      const now = Date.now();
      return [...p.addr.keys()].sort(cmp).map((hex) => addressInfo(pool, hex, p.addr.get(hex), now));
    });
  }

  async history(pool: string, opts: HistoryOptions = {}): Promise<HistoryEntry[]> {
    checkHistory(opts);
    return this.read(() => {
      this.pool(pool);
      const file = this.historyFile(pool);
      const lines = [readText(`${file}.1`), readText(file)].join('').split('\n');
      const out: HistoryEntry[] = [];
      for (let i = lines.length - 1; i >= 0 && (opts.limit === undefined || out.length < opts.limit); i--) {
        if (!lines[i]) continue;
        let entry: HistoryEntry;
        try {
          entry = JSON.parse(lines[i]!) as HistoryEntry;
        } catch {
          continue; // a line cut by a crash was never acknowledged
        }
        if (opts.ip === undefined || entry.ip === opts.ip) out.push(entry);
      }
      return out;
    });
  }

  /**
   * Follows the history files without the lock: an append is one write of
   * whole lines, and only lines ended by a newline are taken. A cursor holds
   * a FilePosition per pool; fs.watch on history/ wakes a wait.
   */
  async historyAfter(pools: string[], cursor: HistoryCursor, waitMs: number): Promise<HistoryTail> {
    checkHistoryAfter(pools, cursor, waitMs);
    const positions = new Map<string, FilePosition>();
    for (const p of pools) if (cursor[p] !== undefined) positions.set(p, readPosition(cursor[p]));
    if (positions.size < pools.length) {
      const next: HistoryCursor = {};
      for (const p of pools) next[p] = cursor[p] ?? endPosition(this.historyFile(p));
      return { cursor: next, entries: [] };
    }
    // Watch before reading, so an append between the read and the wait still wakes it.
    const wait = waitMs > 0 ? this.historyWait(waitMs) : null;
    try {
      const tail = readTails(pools.map((p) => [p, this.historyFile(p), positions.get(p)!]));
      if (tail.entries.length > 0 || !wait) return tail;
      await wait.woken;
      return readTails(pools.map((p) => [p, this.historyFile(p), positions.get(p)!]));
    } finally {
      wait?.stop();
    }
  }

  async snapshot(pool: string): Promise<PoolSnapshot> {
    return this.read(() => poolSnapshot(this.pool(pool), Date.now()));
  }

  async applyFixes(pool: string, fixes: Fix[], actor?: string): Promise<number> {
    void actor;
    return this.change(pool, (txn, p) => applyFixes(txn, p, fixes));
  }

  /** One directory holds the registry and the pools together: they cannot disagree. */
  async checkRegistry(): Promise<RegistryFinding[]> {
    return [];
  }

  /** The file store fsyncs every change before it is acknowledged: no setting of it can lose one. */
  async serverWarnings(): Promise<string[]> {
    return [];
  }

  /** hosts.json beside the snapshot: one host writes its own entry (one agent per host), replaced whole. */
  async publishHost(a: HostAnnouncement): Promise<void> {
    const file = join(this.dir, 'hosts.json');
    const all = new Map((await this.listHosts()).map((h) => [hostKey(h), h]));
    all.set(hostKey(a), a);
    makeDirs(this.dir, 0o750);
    replaceFile(file, `${JSON.stringify([...all.values()])}\n`);
  }

  async listHosts(): Promise<HostAnnouncement[]> {
    let text: string;
    try {
      text = fs.readFileSync(join(this.dir, 'hosts.json'), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    let list: unknown;
    try {
      list = JSON.parse(text);
    } catch {
      return [];
    }
    return Array.isArray(list) ? list.flatMap((x) => readAnnouncement(JSON.stringify(x)) ?? []) : [];
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const wake of this.historyWaiters) wake();
    // Queued work finishes under the lock first.
    while (this.draining) await new Promise((r) => setTimeout(r, 2));
    if (this.journalFd >= 0) fs.closeSync(this.journalFd);
    // A lock request still waiting in the kernel keeps its fd until granted,
    // then releases it (see acquire).
    if (this.lockFd >= 0 && !this.waiting) fs.closeSync(this.lockFd);
    this.journalFd = -1;
    this.lockFd = -1;
    this.pools = null;
  }

  // --- transactions -------------------------------------------------------

  /** Runs an engine operation on one pool and notes what it changed for the journal. */
  private change<T>(pool: string, fn: (txn: FileTxn, p: PoolState) => T): Promise<T> {
    return this.submit(() => {
      const p = this.pool(pool);
      const txn = new FileTxn(p, Date.now());
      try {
        const result = fn(txn, p);
        return { entries: txn.entries(), history: txn.history, result };
      } catch (err) {
        // What ran before an expected failure (ended holds turned free) stands,
        // as it does in a Lua script; anything else leaves memory untrusted.
        if (!isBerthError(err)) throw err;
        return { entries: txn.entries(), history: txn.history, error: err };
      }
    });
  }

  /** A change that is not an engine operation: create and rm apply their entries here. */
  private write<T>(fn: () => Outcome): Promise<T> {
    return this.submit(() => {
      const out = fn();
      for (const e of out.entries) if (e.t !== 'put') applyEntry(this.pools!, e);
      return out;
    });
  }

  private read<T>(fn: () => T): Promise<T> {
    return this.submit(() => ({ entries: [], result: fn() }));
  }

  /** Queues an operation; the queue runs in batches, each under one lock and one fsync. */
  private submit<T>(run: () => Outcome): Promise<T> {
    if (this.closing) return Promise.reject(new BerthError('STORE_UNAVAILABLE', `store ${this.location} is closed`));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        try {
          await this.acquire();
        } catch (err) {
          for (const item of this.queue.splice(0)) item.reject(err);
          continue;
        }
        try {
          this.runBatch(this.queue.splice(0));
        } finally {
          native().flock(this.lockFd, native().LOCK_UN);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * Runs a batch in memory, then makes it durable with one journal write and
   * one fsync, then settles each operation from its own outcome. Nothing is
   * acknowledged before the fsync; nothing durable is reported as failed.
   */
  private runBatch(batch: QueueItem[]): void {
    try {
      this.refresh();
    } catch (err) {
      this.pools = null;
      const e = isBerthError(err) ? err : this.unavailable('read', err);
      for (const item of batch) item.reject(e);
      return;
    }
    const entries: JournalEntry[] = [];
    const history: Array<HistoryEntry & { pool: string }> = [];
    const removed: string[] = [];
    const settle: Settle[] = [];
    for (let i = 0; i < batch.length; i++) {
      const item = batch[i]!;
      let out: Outcome;
      try {
        out = item.run();
      } catch (err) {
        if (isBerthError(err)) {
          settle.push({ item, run: () => item.reject(err), kind: 'read' });
          continue;
        }
        // An unexpected failure may have left memory half-changed: commit what
        // ran before it, reload from disk, and run the rest in a new batch.
        settle.push({ item, run: () => item.reject(err), kind: 'failed' });
        this.queue.unshift(...batch.slice(i + 1));
        this.commit(entries, history, removed, settle);
        this.pools = null;
        return;
      }
      entries.push(...out.entries);
      if (out.removeHistory) {
        const gone = out.removeHistory;
        history.splice(0, history.length, ...history.filter((h) => h.pool !== gone));
        removed.push(gone);
      }
      if (out.history) history.push(...out.history);
      const run = out.error ? () => item.reject(out.error) : () => item.resolve(out.result);
      settle.push({ item, run, kind: out.entries.length > 0 ? 'wrote' : 'read' });
    }
    this.commit(entries, history, removed, settle);
  }

  private commit(entries: JournalEntry[], history: Array<HistoryEntry & { pool: string }>, removed: string[], settle: Settle[]): void {
    if (entries.length > 0) {
      const before = this.offset;
      try {
        this.appendJournal(entries);
      } catch (err) {
        // Not durable: no change in the batch is acknowledged, and memory is
        // reloaded. What wrote nothing may have read the lost changes: it runs
        // again on what the disk holds (a smaller batch each time, so this ends).
        this.pools = null;
        const again: QueueItem[] = [];
        for (const s of settle) {
          if (s.kind === 'read') again.push(s.item);
          else if (s.kind === 'wrote') s.item.reject(err);
          else s.run();
        }
        if (again.length > 0) this.runBatch(again);
        return;
      }
      // Durable from here on: the history and compaction are best effort, never a reason to report failure.
      const limit = this.compactBytes ?? Math.max(MIN_COMPACT_BYTES, this.snapshotBytes);
      if (compactionDue(before, this.offset, limit)) {
        try {
          this.compact();
        } catch (err) {
          this.pools = null;
          process.emitWarning(
            `berth: failed to compact store ${this.location}: ${(err as Error).message}; the snapshot and journal stand, ` +
              `and compaction is tried again once the journal passes ${nextCompactionMark(this.offset, limit)} bytes (now ${this.offset})`,
          );
        }
      }
    }
    try {
      for (const pool of removed) {
        const file = this.historyFile(pool);
        fs.rmSync(file, { force: true });
        fs.rmSync(`${file}.1`, { force: true });
      }
      if (history.length > 0) this.appendHistory(history);
    } catch (err) {
      process.emitWarning(`berth: failed to write the history of store ${this.location}: ${(err as Error).message}`);
    }
    for (const s of settle) s.run();
  }

  /**
   * Takes the exclusive lock: at once when it is free, else by a blocking
   * flock on the thread pool, so the kernel queues the waiting processes. One
   * request at a time per store; a request that outlives the timeout is kept,
   * and when the kernel grants it with no batch waiting it is released at once.
   */
  private async acquire(): Promise<void> {
    const { flock, flockWait, LOCK_EX, LOCK_NB, LOCK_UN } = native();
    if (this.lockFd < 0) {
      try {
        makeDirs(join(this.dir, 'history'), 0o750);
        this.lockFd = fs.openSync(join(this.dir, 'lock'), 'a', 0o640);
      } catch (err) {
        throw this.unavailable('open', err);
      }
    }
    if (!this.waiting && flock(this.lockFd, LOCK_EX | LOCK_NB)) {
      if (this.sameLockFile()) return;
      return this.acquire();
    }
    if (!this.waiting) {
      const fd = this.lockFd;
      this.waiting = flockWait(fd, LOCK_EX);
      this.waiting.then(
        () => {
          this.waiting = null;
          if (this.abandoned) {
            this.abandoned = false;
            if (this.closing && !this.draining) fs.closeSync(fd);
            else if (!this.draining) flock(fd, LOCK_UN);
          }
        },
        () => {
          this.waiting = null;
        },
      );
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.abandoned = true;
        reject(new BerthError('STORE_UNAVAILABLE', `failed to lock store ${this.location}: another process held it for ${this.lockTimeout} ms`));
      }, this.lockTimeout);
    });
    try {
      await Promise.race([this.waiting, timeout]);
      this.abandoned = false;
    } finally {
      clearTimeout(timer);
    }
    if (!this.sameLockFile()) return this.acquire();
  }

  /**
   * The lock is only a lock while every process locks the same inode. When the
   * lock file was deleted or replaced, let go of the old one and reopen: the
   * caller then locks the file the other processes lock.
   */
  private sameLockFile(): boolean {
    const path = join(this.dir, 'lock');
    try {
      if (fs.statSync(path).ino === fs.fstatSync(this.lockFd).ino) return true;
    } catch {
      // gone: reopen below
    }
    fs.closeSync(this.lockFd); // closing drops the lock held on the old inode
    this.lockFd = fs.openSync(path, 'a', 0o640);
    return false;
  }

  // --- disk ---------------------------------------------------------------

  private get journalPath(): string {
    return join(this.dir, 'journal.log');
  }

  private get snapshotPath(): string {
    return join(this.dir, 'snapshot.json');
  }

  private historyFile(pool: string): string {
    return join(this.dir, 'history', `${validatePoolName(pool, 'pool')}.jsonl`);
  }

  /** Brings the in-memory state up to what the files hold; writes nothing (a full disk must not stop reads). */
  private refresh(): void {
    const journal = this.statOrNull(this.journalPath);
    const snapshot = this.statOrNull(this.snapshotPath);
    if (!journal) {
      // a new store (or one whose journal was removed): a writer makes the journal
      this.loadSnapshot(snapshot);
      this.closeJournal();
      return;
    }
    // A new snapshot under an unchanged journal is a compaction that could not
    // replace the journal: this process must not append to the stale one.
    if (this.pools === null || journal.ino !== this.ino || journal.size < this.offset || (snapshot?.ino ?? -1) !== this.snapshotIno) {
      this.loadSnapshot(snapshot);
      this.openJournal();
      this.journalEpoch = this.readHeader();
      if (this.journalEpoch > this.epoch) {
        throw new BerthError('STORE_CORRUPT', `failed to read store ${this.location}: journal epoch ${this.journalEpoch} is ahead of snapshot epoch ${this.epoch}`);
      }
    }
    // A journal behind the snapshot (compaction stopped between its two renames) is already in it.
    if (this.journalEpoch === this.epoch) this.readJournalTail();
  }

  private statOrNull(file: string): fs.Stats | null {
    try {
      return fs.statSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw this.unavailable('read', err);
    }
  }

  private loadSnapshot(st: fs.Stats | null): void {
    const text = st ? readText(this.snapshotPath) : '';
    this.pools = new Map();
    this.epoch = 0;
    this.snapshotIno = st?.ino ?? -1;
    this.snapshotBytes = text.length;
    if (!text) return;
    let snap: SnapshotFile;
    try {
      snap = JSON.parse(text) as SnapshotFile;
    } catch (err) {
      throw new BerthError('STORE_CORRUPT', `failed to read ${this.snapshotPath}: ${(err as Error).message}`);
    }
    this.epoch = snap.epoch;
    for (const [name, p] of Object.entries(snap.pools)) {
      const state = newPool(readPoolConfig(JSON.stringify(p.conf), `snapshot pool ${name}`), p.meta);
      for (const [hex, rec] of Object.entries(p.addr)) setAddr(state, hex, checkRecordShape(rec, hex));
      for (const [hex, time] of p.free) state.free.set(hex, time);
      this.pools.set(name, state);
    }
  }

  private openJournal(): void {
    this.closeJournal();
    this.journalFd = fs.openSync(this.journalPath, 'a+', 0o640);
    this.ino = fs.fstatSync(this.journalFd).ino;
  }

  private closeJournal(): void {
    if (this.journalFd >= 0) fs.closeSync(this.journalFd);
    this.journalFd = -1;
    this.ino = -1;
    this.journalEpoch = -1;
    this.offset = 0;
  }

  private readHeader(): number {
    const buf = Buffer.alloc(64);
    const n = fs.readSync(this.journalFd, buf, 0, 64, 0);
    const nl = buf.subarray(0, n).indexOf(10);
    if (nl < 0) {
      throw new BerthError('STORE_CORRUPT', `failed to read ${this.journalPath}: no header line`);
    }
    let header: { epoch?: unknown } = {};
    try {
      header = JSON.parse(buf.subarray(0, nl).toString()) as { epoch?: unknown };
    } catch {
      // reported below
    }
    if (typeof header.epoch !== 'number') throw new BerthError('STORE_CORRUPT', `failed to read ${this.journalPath}: bad header`);
    this.offset = nl + 1;
    return header.epoch;
  }

  /** Applies the whole lines past offset; a torn tail is left for the next writer to cut (appendWhole). */
  private readJournalTail(): void {
    const size = fs.fstatSync(this.journalFd).size;
    if (size <= this.offset) return;
    const buf = Buffer.alloc(size - this.offset);
    fs.readSync(this.journalFd, buf, 0, buf.length, this.offset);
    const end = buf.lastIndexOf(10) + 1;
    let start = 0;
    while (start < end) {
      const nl = buf.indexOf(10, start);
      const line = buf.subarray(start, nl).toString();
      let entry: JournalEntry;
      try {
        entry = JSON.parse(line) as JournalEntry;
      } catch (err) {
        // Bad bytes with no good line after them are an append that never
        // completed (a crash before fdatasync, a zero-filled or half-written
        // tail): never acknowledged, skipped here and cut off by the next
        // writer. Bad bytes before a good line are corruption.
        if (!hasGoodLine(buf, nl + 1)) break;
        throw new BerthError('STORE_CORRUPT', `failed to read ${this.journalPath} at byte ${this.offset + start}: ${(err as Error).message}`);
      }
      applyEntry(this.pools!, entry);
      start = nl + 1;
    }
    this.offset += start;
  }

  /** Appends a batch and fdatasyncs it; on failure nothing of it stays in the journal. */
  private appendJournal(entries: JournalEntry[]): void {
    const bytes = Buffer.from(entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
    try {
      // a missing journal, or one behind the snapshot, is replaced before anything is appended to it
      if (this.journalFd < 0 || this.journalEpoch !== this.epoch) this.writeJournalHeader();
      appendWhole(this.journalFd, bytes, this.offset, this.journalPath);
      this.offset += bytes.length;
    } catch (err) {
      this.pools = null;
      throw this.unavailable('write', err);
    }
  }

  /** Best effort: each pool's lines are appended whole and fdatasync'd, or not at all. */
  private appendHistory(entries: HistoryEntry[]): void {
    const byPool = new Map<string, string>();
    for (const e of entries) {
      const { pool, ...rest } = e as HistoryEntry & { pool: string };
      byPool.set(pool, (byPool.get(pool) ?? '') + `${JSON.stringify(rest)}\n`);
    }
    for (const [pool, text] of byPool) {
      const file = this.historyFile(pool);
      const fd = fs.openSync(file, 'a+', 0o640);
      try {
        const size = fs.fstatSync(fd).size;
        // a line torn by a crash is ended first, so it cannot swallow the next one (readers skip it)
        const torn = size > 0 && lastByte(fd, size) !== 10;
        appendWhole(fd, Buffer.from(torn ? `\n${text}` : text), size, file);
        if (size === 0) syncDir(join(this.dir, 'history')); // a new file's name
        if (size + text.length > HISTORY_ROTATE_BYTES) {
          fs.renameSync(file, `${file}.1`);
          syncDir(join(this.dir, 'history'));
        }
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  private writeJournalHeader(): void {
    replaceFile(this.journalPath, `${JSON.stringify({ epoch: this.epoch })}\n`);
    this.openJournal();
    this.journalEpoch = this.readHeader();
  }

  /**
   * Snapshot N+1, then a fresh journal with header N+1. When the snapshot
   * cannot be written whole, the old snapshot and journal stand untouched;
   * when the journal cannot, the snapshot holds it all and the next writer
   * replaces the stale journal.
   */
  private compact(): void {
    const snap: SnapshotFile = { v: 1, epoch: this.epoch + 1, pools: {} };
    for (const [name, p] of this.pools!) {
      snap.pools[name] = { conf: p.conf, meta: p.meta, addr: Object.fromEntries(p.addr), free: [...p.free] };
    }
    const text = JSON.stringify(snap);
    replaceFile(this.snapshotPath, text);
    this.snapshotBytes = text.length;
    this.snapshotIno = fs.statSync(this.snapshotPath).ino;
    this.epoch++;
    this.writeJournalHeader();
  }

  private pool(name: string): PoolState {
    const p = this.pools!.get(name);
    if (!p) throw fail.poolNotFound(name);
    return p;
  }

  /** Resolves `woken` on a change in history/, after ms, or at close. */
  private historyWait(ms: number): { woken: Promise<void>; stop: () => void } {
    let wake!: () => void;
    const woken = new Promise<void>((r) => (wake = r));
    const timer = setTimeout(wake, ms);
    let watcher: fs.FSWatcher | undefined;
    try {
      watcher = fs.watch(join(this.dir, 'history'), { persistent: false }, wake);
      watcher.on('error', wake);
    } catch {
      // no history/ yet: the timer alone bounds the wait
    }
    this.historyWaiters.add(wake);
    const stop = () => {
      clearTimeout(timer);
      watcher?.close();
      this.historyWaiters.delete(wake);
      wake();
    };
    return { woken, stop };
  }

  private unavailable(verb: string, err: unknown): BerthError {
    return new BerthError('STORE_UNAVAILABLE', `failed to ${verb} store ${this.location}: ${(err as Error).message}`, undefined, { cause: err });
  }
}

/** True when a complete, parsable journal line starts at or after `from`. */
function hasGoodLine(buf: Buffer, from: number): boolean {
  let start = from;
  for (;;) {
    const nl = buf.indexOf(10, start);
    if (nl < 0) return false;
    try {
      JSON.parse(buf.subarray(start, nl).toString());
      return true;
    } catch {
      start = nl + 1;
    }
  }
}

/** The last byte of a file of `size` bytes open at fd. */
function lastByte(fd: number, size: number): number {
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, size - 1);
  return b[0]!;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
