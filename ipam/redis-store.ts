// The Redis store, shared by every host of a cluster.
//
// Every multi-step change is one Lua script (ipam/lua/<name>-<keys>.lua, each
// prefixed with lib.lua), so it is atomic on the server. All keys of one pool
// share the hash tag {pool}, so each script touches one slot and the store
// runs on Redis Cluster. It speaks to Redis through a RedisConn (see
// redis-conn.ts), which acknowledges a change only once the replicas the
// location requires hold it (WAIT).
//
// The pool registry (PREFIX:pools, one slot) is the one key outside a pool,
// and no transaction spans it and a pool's keys. The rule that keeps them in
// step: a pool's own keys are the truth about it (its hash holds its id and
// config), and the registry entry is the claim on its name and subnet, made
// before the keys exist and dropped after they are gone. So keys never exist
// without their claim, except where data was lost. Creation and removal are
// two-phase: an entry is written as "creating" (hidden from readers) and
// marked ready once the keys exist; removal marks it "removing" before the
// keys go. A step cut short leaves an entry in one of those states, which
// `berth ipam check --repair` completes or undoes once it is older than
// REGISTRY_GRACE_MS; pool keys with no claim are registered again from their
// own config.
//
// Over 400 lines because every Store operation over Redis in one place, each a
// thin call of its Lua script (ipam/lua) with the same error mapping and the
// same WAIT rule; the scripts, the connection and the pool records are apart.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCidr } from '../core/address.js';
import type { Finding } from './check.js';
import { BerthError, codeOfLua, ValidationError } from '../core/errors.js';
import { fail } from './failures.js';
import { capacity, isAssignable, readPoolConfig, type PoolConfig } from './pool-config.js';
import { hostKey, readAnnouncement, type HostAnnouncement } from './hosts.js';
import { parseRecord } from './record.js';
import { RedisReplyError, UnconfirmedWriteError, requiredReplicas, type RedisArg, type RedisConn, type RedisLocation, type RedisNode, type RedisReply } from './redis-conn.js';
import { sha1Hex } from '../core/sha1.js';
import { findUp } from '../native/index.js';
import { checkAllocate, checkConflict, checkHex, checkHistory, checkHistoryAfter, checkRelease, checkReserve } from './requests.js';
import {
  addressInfo,
  hostField,
  type Actor,
  type AddrRecord,
  type AddressInfo,
  type AllocateRequest,
  type Allocation,
  type ConflictRequest,
  type Fix,
  type HistoryCursor,
  type HistoryEntry,
  type HistoryEvent,
  type HistoryOptions,
  type HistoryTail,
  type PoolMeta,
  type PoolSnapshot,
  type PoolUsage,
  type ReleaseRequest,
  type ReleaseResult,
  type RegistryFinding,
  type ReserveRequest,
  type Store,
} from './model.js';

/** History entries kept per pool (approximately: Redis trims in whole nodes). */
export const HISTORY_MAX = 100_000;

type Reply = RedisReply[];
/** How old an unfinished create or remove must be before `ipam check --repair` finishes or undoes it: far longer than one takes. */
export const REGISTRY_GRACE_MS = 10 * 60 * 1000;

type ScriptName = PoolScript | RegistryScript;
type PoolScript = 'allocate' | 'release' | 'reserve' | 'unreserve' | 'conflict' | 'usage' | 'poolInit' | 'poolRemove' | 'repair';
type RegistryScript = 'poolRegister' | 'poolUnregister' | 'poolUpdate';
/** Scripts that write nothing: they run without WAIT, and the server may run them where it refuses writes. */
const READ_ONLY = new Set<ScriptName>(['usage']);

const POOL_SCRIPTS: Array<[PoolScript, string]> = [
  ['allocate', 'allocate-7.lua'],
  ['release', 'release-7.lua'],
  ['reserve', 'reserve-7.lua'],
  ['unreserve', 'unreserve-7.lua'],
  ['conflict', 'conflict-7.lua'],
  ['usage', 'usage-7.lua'],
  ['poolInit', 'pool-init-7.lua'],
  ['poolRemove', 'pool-remove-7.lua'],
  ['repair', 'repair-7.lua'],
];

interface Script {
  source: string;
  /** computed on the second call: a one-shot process never hashes (12 ms of cold SHA-1 for all scripts, measured) */
  sha?: string;
  calls: number;
}

const FILES: Record<ScriptName, string> = {
  ...(Object.fromEntries(POOL_SCRIPTS) as Record<PoolScript, string>),
  poolRegister: 'pool-register-1.lua',
  poolUnregister: 'pool-unregister-1.lua',
  poolUpdate: 'pool-update-1.lua',
};
const REGISTRY_SCRIPTS = new Set<ScriptName>(['poolRegister', 'poolUnregister', 'poolUpdate']);
const scriptCache = new Map<ScriptName, Script>();
let luaDir: string | undefined;

/**
 * One script, read on first use: pool scripts are lib.lua followed by their
 * own file. Each opens with a Redis 7 shebang, so the server checks it before
 * running any of it: one that may write is refused whole by a replica
 * (READONLY, even when it would write nothing: a demoted master never answers
 * from its stale data), under OOM, and by a master short of
 * min-replicas-to-write (NOREPLICAS). A refused script did nothing, so the
 * client may send it elsewhere.
 */
function script(name: ScriptName): Script {
  let s = scriptCache.get(name);
  if (s) return s;
  if (!luaDir) {
    const here = dirname(fileURLToPath(import.meta.url));
    const lib = existsSync(join(here, 'lua', 'lib.lua')) ? join(here, 'lua', 'lib.lua') : findUp(here, join('ipam', 'lua', 'lib.lua'));
    if (!lib) throw new Error('failed to find the berth Lua scripts (ipam/lua)');
    luaDir = dirname(lib);
  }
  const own = readFileSync(join(luaDir, FILES[name]), 'utf8');
  const pool = !REGISTRY_SCRIPTS.has(name);
  const shebang = READ_ONLY.has(name) ? '#!lua flags=no-writes' : '#!lua';
  s = { source: `${shebang}\n${pool ? `${readFileSync(join(luaDir, 'lib.lua'), 'utf8')}\n${own}` : own}`, calls: 0 };
  scriptCache.set(name, s);
  return s;
}

/** A registry entry: the claim on a pool's name and subnet ([f, l], hex). */
interface RegistryEntry {
  id: string;
  f: string;
  l: string;
  conf: PoolConfig;
  /** absent once the pool is ready; see the rule at the top of this file */
  st?: 'creating' | 'removing';
  /** when the state was set (ms) */
  at?: number;
}

/** The Redis store. */
export class RedisStore implements Store {
  readonly location: string;
  private readonly conn: RedisConn;
  private readonly loc: RedisLocation;
  private readonly prefix: string;
  private readonly keyCache = new Map<string, string[]>();
  /** On a cluster: each followed pool's XREAD in flight or not yet taken (clusterHistoryAfter) */
  private readonly streamReads = new Map<string, StreamRead>();

  /** `location` is the URL with its password redacted. */
  constructor(conn: RedisConn, loc: RedisLocation, location: string) {
    this.conn = conn;
    this.loc = loc;
    this.prefix = loc.prefix;
    this.location = location;
  }

  async createPool(conf: PoolConfig): Promise<PoolConfig> {
    const subnet = parseCidr(conf.subnet, 'subnet');
    const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
    const ready: RegistryEntry = { id, f: subnet.first, l: subnet.last, conf };
    const reply = await this.run('poolRegister', [this.registryKey()], [conf.name, JSON.stringify({ ...ready, st: 'creating', at: Date.now() })]);
    if (codeOfLua(Number(reply[0])) === 'POOL_EXISTS') throw fail.poolExists(conf.name);
    if (codeOfLua(Number(reply[0])) === 'POOL_OVERLAP') throw fail.poolOverlap(conf.subnet, String(reply[1]), String(reply[2]));
    try {
      await this.initKeys(conf, id);
      const marked = await this.run('poolUpdate', [this.registryKey()], [conf.name, id, JSON.stringify(ready)]);
      if (Number(marked[1]) !== 1) throw new BerthError('STORE_UNAVAILABLE', `failed to create pool "${conf.name}": its registry entry was removed meanwhile`);
    } catch (err) {
      // Undo in the order that never leaves keys without their claim.
      await this.runPool('poolRemove', conf.name, ['1', id])
        .then(() => this.run('poolUnregister', [this.registryKey()], [conf.name, id]))
        .catch(() => {});
      throw err;
    }
    return conf;
  }

  async removePool(name: string, opts: { force?: boolean } = {}): Promise<{ allocated: number }> {
    const entry = await this.entry(name, true);
    if (!opts.force && entry.st !== 'removing') {
      const { allocated } = await this.counts(name);
      if (allocated > 0) throw fail.poolInUse(name, allocated);
    }
    // Marked first: a removal cut short between the two steps is finished by ipam check, not taken for lost keys.
    const { conf, id, f, l } = entry;
    await this.run('poolUpdate', [this.registryKey()], [name, id, JSON.stringify({ id, f, l, conf, st: 'removing', at: Date.now() })]);
    const reply = await this.runPool('poolRemove', name, [opts.force ? '1' : '0', id]);
    if (codeOfLua(Number(reply[0])) === 'POOL_IN_USE') {
      // allocated since the count above: the pool stays
      await this.run('poolUpdate', [this.registryKey()], [name, id, JSON.stringify({ id, f, l, conf })]);
      throw fail.poolInUse(name, Number(reply[1]));
    }
    await this.run('poolUnregister', [this.registryKey()], [name, id]);
    return { allocated: Number(reply[1]) };
  }

  async getPool(name: string): Promise<PoolConfig> {
    return (await this.entry(name)).conf;
  }

  async listPools(): Promise<PoolUsage[]> {
    const all = await this.registry();
    const names = [...all.keys()].filter((name) => all.get(name)!.st === undefined).sort();
    // Sent together, so they share one round trip on the connection.
    const counts = await Promise.all(names.map((name) => this.counts(name)));
    return names.map((name, i) => {
      const conf = all.get(name)!.conf;
      return { conf, ...counts[i]!, capacity: capacity(conf).toString() };
    });
  }

  async usage(name: string): Promise<PoolUsage> {
    const [conf, counts] = await Promise.all([this.getPool(name), this.counts(name)]);
    return { conf, ...counts, capacity: capacity(conf).toString() };
  }

  async allocate(pool: string, req: AllocateRequest): Promise<Allocation> {
    checkAllocate(req);
    const r = await this.poolOp('allocate', pool, [
      req.containerId,
      req.ifname,
      req.owner,
      req.ip ?? '',
      req.actor ?? '',
      req.host === undefined ? '' : hostField(req.host, req.hostId),
      req.network ?? '',
    ]);
    return { pool, ip: String(r[1]), gen: Number(r[2]), owner: String(r[3]), existing: Number(r[4]) === 1 };
  }

  async release(pool: string, req: ReleaseRequest): Promise<ReleaseResult> {
    checkRelease(req);
    const r = await this.poolOp('release', pool, [
      req.containerId ?? '',
      req.ifname ?? '',
      req.ip ?? '',
      req.gen === undefined ? '' : String(req.gen),
      req.actor ?? '',
    ]);
    if (Number(r[1]) === 0) return { released: false };
    return { released: true, ip: String(r[2]), state: String(r[3]) as 'free' | 'reserved' };
  }

  async reserve(pool: string, ip: string, req: ReserveRequest): Promise<AddressInfo> {
    checkReserve(ip, req);
    const args: Record<string, string> = { ip };
    if (req.owner !== undefined) args.owner = req.owner;
    if (req.note !== undefined) args.note = req.note;
    if (req.actor !== undefined) args.actor = req.actor;
    const r = await this.poolOp('reserve', pool, [JSON.stringify(args)]);
    return addressInfo(pool, ip, parseRecord(String(r[1]), ip), Date.now());
  }

  async unreserve(pool: string, ip: string, req: Actor): Promise<AddressInfo> {
    checkReserve(ip, req);
    const args: Record<string, string> = { ip };
    if (req.actor !== undefined) args.actor = req.actor;
    const r = await this.poolOp('unreserve', pool, [JSON.stringify(args)]);
    const rec = r[1] ? parseRecord(String(r[1]), ip) : undefined;
    return addressInfo(pool, ip, rec, Date.now());
  }

  async conflict(pool: string, ip: string, req: ConflictRequest): Promise<AddressInfo> {
    checkConflict(ip, req);
    const args: Record<string, string> = { ip, note: req.note };
    if (req.containerId !== undefined) args.containerId = req.containerId;
    if (req.ifname !== undefined) args.ifname = req.ifname;
    if (req.actor !== undefined) args.actor = req.actor;
    const r = await this.poolOp('conflict', pool, [JSON.stringify(args)]);
    const rec = r[1] ? parseRecord(String(r[1]), ip) : undefined;
    return addressInfo(pool, ip, rec, Date.now());
  }

  async getAddress(pool: string, ip: string): Promise<AddressInfo> {
    checkHex(ip);
    const conf = await this.getPool(pool);
    const [raw, time] = await this.pipeline([['HGET', this.key(pool, 'addr'), ip], ['TIME']]);
    if (raw === null && !isAssignable(conf, ip)) throw fail.notInPool(ip, pool);
    return addressInfo(pool, ip, raw === null ? undefined : parseRecord(raw as string, ip), msOf(time));
  }

  async listAddresses(pool: string): Promise<AddressInfo[]> {
    await this.getPool(pool);
    const [flat, time] = await this.pipeline([['HGETALL', this.key(pool, 'addr')], ['TIME']]);
    const all = pairsOf(flat!);
    const now = msOf(time);
    return [...all.keys()].sort().map((hex) => addressInfo(pool, hex, parseRecord(all.get(hex)!, hex), now));
  }

  async history(pool: string, opts: HistoryOptions = {}): Promise<HistoryEntry[]> {
    checkHistory(opts);
    await this.getPool(pool);
    if (opts.limit === 0) return [];
    const key = this.key(pool, 'hist');
    const out: HistoryEntry[] = [];
    let end = '+';
    // Page backwards through the stream; a per-address query filters as it goes.
    for (;;) {
      const page = (await this.send(['XREVRANGE', key, end, '-', 'COUNT', 1000])) as Array<[string, string[]]>;
      for (const [id, fields] of page) {
        const e = historyEntry(id, fields);
        if (opts.ip === undefined || e.ip === opts.ip) out.push(e);
        if (opts.limit !== undefined && out.length >= opts.limit) return out;
      }
      if (page.length < 1000) return out;
      end = `(${page[page.length - 1]![0]}`;
    }
  }

  /** Follows the pools' history streams with XREAD BLOCK; a cursor holds stream entry ids. */
  async historyAfter(pools: string[], cursor: HistoryCursor, waitMs: number): Promise<HistoryTail> {
    checkHistoryAfter(pools, cursor, waitMs);
    const next: HistoryCursor = {};
    const fresh = pools.filter((p) => cursor[p] === undefined);
    for (const p of pools) {
      if (cursor[p] !== undefined && !STREAM_ID.test(cursor[p])) throw new ValidationError('cursor', `${JSON.stringify(cursor[p])} is not a stream entry id`);
      if (cursor[p] !== undefined) next[p] = cursor[p];
    }
    if (fresh.length > 0) {
      // A stream with no entry yet starts before any: 0-0. Sent together, not as one pipeline: in a cluster the streams are on several nodes.
      const ends = await Promise.all(fresh.map((p) => this.send(['XREVRANGE', this.key(p, 'hist'), '+', '-', 'COUNT', 1])));
      fresh.forEach((p, i) => (next[p] = (ends[i] as Array<[string, string[]]>)[0]?.[0] ?? '0-0'));
      return { cursor: next, entries: [] };
    }
    if (pools.length === 0) {
      await new Promise((r) => setTimeout(r, waitMs));
      return { cursor: next, entries: [] };
    }
    if (this.loc.cluster) return this.clusterHistoryAfter(pools, next, waitMs);
    const keys = pools.map((p) => this.key(p, 'hist'));
    const block = waitMs > 0 ? ['BLOCK', waitMs] : [];
    const reply = (await this.send(['XREAD', ...block, 'COUNT', 1000, 'STREAMS', ...keys, ...pools.map((p) => next[p]!)])) as Array<
      [string, Array<[string, string[]]>]
    > | null;
    const entries: HistoryTail['entries'] = [];
    for (const [key, items] of reply ?? []) {
      const pool = pools[keys.indexOf(key)]!;
      for (const [id, fields] of items) entries.push({ ...historyEntry(id, fields), pool });
      if (items.length > 0) next[pool] = items[items.length - 1]![0];
    }
    entries.sort((a, b) => a.at - b.at);
    return { cursor: next, entries };
  }

  /**
   * historyAfter on a Redis Cluster, where one XREAD may name only streams of
   * one slot (else CROSSSLOT): one XREAD per pool, each blocking on a lane of
   * its own (sendOn), so that none holds up another. It returns as soon as one
   * read ends; a read still waiting stays pending, and the next call from the
   * same position takes it over rather than send another behind it.
   */
  private async clusterHistoryAfter(pools: string[], next: HistoryCursor, waitMs: number): Promise<HistoryTail> {
    const reads: Array<[string, StreamRead]> = [];
    for (const pool of pools) {
      let read = this.streamReads.get(pool);
      // a wait that ended with nothing: a new read takes its place, or the pool would go unheard until another's wait ends
      if (read?.result && 'items' in read.result && read.result.items.length === 0) read = undefined;
      if (read && read.from !== next[pool]) {
        // asked from elsewhere: the old read is of no use, and holds its lane until its wait ends
        await read.done;
        this.streamReads.delete(pool);
        read = undefined;
      }
      if (!read) {
        read = this.streamRead(pool, next[pool]!, waitMs);
        if (waitMs > 0) this.streamReads.set(pool, read);
      }
      reads.push([pool, read]);
    }
    // Lanes of pools no longer followed, once their reads are over.
    for (const [pool, read] of this.streamReads) {
      if (pools.includes(pool)) continue;
      this.streamReads.delete(pool);
      void read.done.then(() => this.conn.endLane?.(`hist ${pool}`)).catch(() => {});
    }
    // The first read to end ends the call, with entries or not: one that ended with nothing must be sent again at once.
    await Promise.race(reads.map(([, read]) => read.done));
    const entries: HistoryTail['entries'] = [];
    let failure: unknown;
    for (const [pool, read] of reads) {
      if (!read.result) continue;
      if (this.streamReads.get(pool) === read) this.streamReads.delete(pool);
      if ('err' in read.result) {
        failure ??= read.result.err;
        continue;
      }
      for (const [id, fields] of read.result.items) entries.push({ ...historyEntry(id, fields), pool });
      const last = read.result.items[read.result.items.length - 1];
      if (last) next[pool] = last[0];
    }
    // Nothing is consumed on the server: the caller, keeping its cursor, reads these entries again.
    if (failure !== undefined) throw failure;
    entries.sort((a, b) => a.at - b.at);
    return { cursor: next, entries };
  }

  /** One pool's XREAD from a stream id, on the pool's lane when it blocks; its outcome is kept, never thrown. */
  private streamRead(pool: string, from: string, waitMs: number): StreamRead {
    const args: RedisArg[] = ['XREAD', ...(waitMs > 0 ? ['BLOCK', waitMs] : []), 'COUNT', 1000, 'STREAMS', this.key(pool, 'hist'), from];
    const read: StreamRead = { from, done: Promise.resolve() };
    const reply = waitMs > 0 && this.conn.sendOn ? this.conn.sendOn(`hist ${pool}`, args) : this.conn.send(args);
    read.done = reply.then(
      (r) => {
        const streams = (r ?? []) as Array<[string, Array<[string, string[]]>]>;
        read.result = { items: streams[0]?.[1] ?? [] };
      },
      (err: unknown) => {
        read.result = { err: this.mapError(err) };
      },
    );
    return read;
  }

  async snapshot(pool: string): Promise<PoolSnapshot> {
    const conf = await this.getPool(pool);
    const k = (s: string) => this.key(pool, s);
    const replies = await this.pipeline([
      ['MULTI'],
      ['HGETALL', k('pool')],
      ['HGETALL', k('addr')],
      ['HGETALL', k('att')],
      ['ZRANGE', k('held'), 0, -1],
      ['ZRANGE', k('exp'), 0, -1, 'WITHSCORES'],
      ['ZRANGE', k('free'), 0, -1, 'WITHSCORES'],
      ['TIME'],
      ['EXEC'],
    ]);
    const [meta, addr, att, held, exp, free, time] = replies[replies.length - 1] as RedisReply[];
    const metaFields = pairsOf(meta!);
    if (!metaFields.get('m')) throw fail.poolNotFound(pool);
    const scored = (flat: RedisReply) => new Map([...pairsOf(flat)].map(([k, v]) => [k, Number(v)] as [string, number]));
    // A record that cannot be read is reported by the check, not allowed to stop it.
    const records = new Map<string, AddrRecord>();
    const corrupt: string[] = [];
    for (const [hex, raw] of pairsOf(addr!)) {
      try {
        records.set(hex, parseRecord(raw, hex));
      } catch {
        corrupt.push(hex);
      }
    }
    return {
      conf,
      meta: readMeta(metaFields.get('m'), pool),
      addr: records,
      corrupt,
      att: pairsOf(att!),
      held: new Set(held as string[]),
      expiry: scored(exp!),
      free: scored(free!),
      now: msOf(time),
    };
  }

  async applyFixes(pool: string, fixes: Fix[]): Promise<number> {
    if (fixes.length === 0) return 0;
    const r = await this.poolOp('repair', pool, [JSON.stringify(fixes)]);
    return Number(r[1]);
  }

  onReconnect(fn: () => void): void {
    this.conn.onReconnect?.(fn);
  }

  async serverWarnings(): Promise<string[]> {
    let masters: RedisNode[];
    try {
      masters = await this.conn.masters();
    } catch (err) {
      return [`cannot reach the store to read its settings: ${(err as Error).message}`];
    }
    const each = await Promise.all(masters.map((m) => this.nodeWarnings(m)));
    return each.flat();
  }

  async checkRegistry(opts: { repair?: boolean } = {}): Promise<RegistryFinding[]> {
    const entries = await this.registry();
    const keyed = await this.poolKeysOnMasters();
    const now = Date.now();
    const out: RegistryFinding[] = [];
    for (const name of [...new Set([...entries.keys(), ...keyed])].sort()) {
      const entry = entries.get(name);
      const [id, confText] = await this.send(['HMGET', this.key(name, 'pool'), 'id', 'conf']).then(
        (r) => r as Array<string | null>,
        // something else sits where the pool's hash belongs: not a pool of berth's
        (err: unknown) => {
          if (err instanceof BerthError && /WRONGTYPE/.test(err.message)) return ['(not a pool)', null];
          throw err;
        },
      );
      const problem = this.registryProblem(name, entry, id ?? null, confText ?? null, now);
      if (!problem) continue;
      const finding: Finding = { kind: problem.kind, message: problem.message, repairable: problem.repair !== undefined };
      const result: RegistryFinding = { pool: name, finding };
      if (opts.repair && problem.repair) result.repaired = await problem.repair();
      out.push(result);
    }
    return out;
  }

  /** What is wrong between a pool's registry entry and its keys, and how to settle it if it can be. */
  private registryProblem(
    name: string,
    entry: RegistryEntry | undefined,
    id: string | null,
    confText: string | null,
    now: number,
  ): { kind: Finding['kind']; message: string; repair?: () => Promise<boolean> } | undefined {
    const registry = [this.registryKey()];
    if (!entry) {
      if (id === null) return undefined; // the keys went between the scan and now
      if (!confText) {
        return {
          kind: 'unregistered',
          message: `pool "${name}" has keys but no registry entry, nor a config of its own to register it from (made by an older berth); delete its keys by hand`,
        };
      }
      const conf = readPoolConfig(confText, `config of pool "${name}"`);
      const subnet = parseCidr(conf.subnet, 'subnet');
      return {
        kind: 'unregistered',
        message: `pool "${name}" has keys but no registry entry: it hands out addresses but is not listed`,
        // the claim again, from the pool's own config; refused like a create if the name or subnet is taken meanwhile
        repair: async () => (await this.run('poolRegister', registry, [name, JSON.stringify({ id, f: subnet.first, l: subnet.last, conf })]))[0] === 0,
      };
    }
    const mine = id === entry.id;
    const ready: RegistryEntry = { id: entry.id, f: entry.f, l: entry.l, conf: entry.conf };
    if (entry.st === undefined) {
      if (mine) return undefined;
      return {
        kind: 'keys-missing',
        message:
          id === null
            ? `pool "${name}" is registered but its keys are gone (deleted, or lost by a failover no replica covered); find the addresses in use, then pool rm and pool create it`
            : `pool "${name}"'s keys belong to another pool of that name (id ${id}, registry ${entry.id}); find the addresses in use, then pool rm and pool create it`,
      };
    }
    if (now - (entry.at ?? 0) < REGISTRY_GRACE_MS) return undefined; // still in progress
    if (entry.st === 'creating' && mine) {
      return {
        kind: 'unfinished-create',
        message: `pool "${name}" was created but never marked ready`,
        repair: async () => Number((await this.run('poolUpdate', registry, [name, entry.id, JSON.stringify(ready)]))[1]) === 1,
      };
    }
    const what = entry.st === 'creating' ? 'created' : 'removed';
    return {
      kind: entry.st === 'creating' ? 'unfinished-create' : 'unfinished-remove',
      message: `pool "${name}" was being ${what} when that stopped; the removal is finished`,
      repair: async () => {
        if (mine) await this.runPool('poolRemove', name, ['1', entry.id]);
        return Number((await this.run('poolUnregister', registry, [name, entry.id]))[1]) === 1;
      },
    };
  }

  async close(): Promise<void> {
    await this.conn.close();
  }

  // --- plumbing -----------------------------------------------------------

  private key(pool: string, part: string): string {
    return `${this.prefix}:{${pool}}:${part}`;
  }

  private registryKey(): string {
    return `${this.prefix}:pools`;
  }

  /** The one hash of every host's announcement (hosts.ts): one key, so one slot in a cluster. */
  private hostsKey(): string {
    return `${this.prefix}:hosts`;
  }

  async publishHost(a: HostAnnouncement): Promise<void> {
    await this.send(['HSET', this.hostsKey(), hostKey(a), JSON.stringify(a)]);
  }

  async listHosts(): Promise<HostAnnouncement[]> {
    const all = pairsOf(await this.send(['HGETALL', this.hostsKey()]));
    return [...all.values()].flatMap((text) => readAnnouncement(text) ?? []);
  }

  private poolKeys(pool: string): string[] {
    let keys = this.keyCache.get(pool);
    if (!keys) {
      keys = ['pool', 'addr', 'att', 'held', 'exp', 'free', 'hist'].map((p) => this.key(pool, p));
      this.keyCache.set(pool, keys);
    }
    return keys;
  }

  /**
   * Runs a script: the first call in a process sends the source (EVAL; Redis
   * hashes and caches it), later calls only its SHA, with the source again if
   * Redis has lost it (NOSCRIPT after a restart, or another cluster node).
   * A script that may write is acknowledged once replicas hold it (write()).
   */
  private async run(name: ScriptName, keys: string[], args: RedisArg[]): Promise<Reply> {
    const s = script(name);
    const call = (cmd: RedisArg[]) => (READ_ONLY.has(name) ? this.send(cmd) : this.write(cmd));
    if (s.calls++ === 0) return (await call(['EVAL', s.source, keys.length, ...keys, ...args])) as Reply;
    s.sha ??= sha1Hex(s.source);
    try {
      return (await call(['EVALSHA', s.sha, keys.length, ...keys, ...args])) as Reply;
    } catch (err) {
      if (!(err instanceof BerthError) || !/NOSCRIPT/.test(err.message)) throw err;
      return (await call(['EVAL', s.source, keys.length, ...keys, ...args])) as Reply;
    }
  }

  /** Makes a pool's keys: its hash carries its id and its config, so the pool can always be registered from its own keys. */
  private async initKeys(conf: PoolConfig, id: string): Promise<void> {
    const ranges = conf.ranges.map(([first, last]) => `${first}-${last}`).join(',');
    const packed = `${conf.hold} ${HISTORY_MAX} ,${conf.exclude.join(',')}, ${ranges}`;
    await this.runPool('poolInit', conf.name, [id, packed, conf.ranges[0]![0], JSON.stringify(conf)]);
  }

  private runPool(name: PoolScript, pool: string, args: RedisArg[]): Promise<Reply> {
    return this.run(name, this.poolKeys(pool), args);
  }

  /** Runs a pool script and turns its error replies into BerthErrors. */
  private async poolOp(name: PoolScript, pool: string, args: string[]): Promise<Reply> {
    const r = await this.runPool(name, pool, args);
    const code = Number(r[0]);
    if (code === 0) return r;
    const s = (i: number): string => String(r[i] ?? '');
    const opt = (i: number): string | undefined => (s(i) === '' ? undefined : s(i));
    switch (codeOfLua(code)) {
      case 'POOL_NOT_FOUND':
        throw fail.poolNotFound(pool);
      case 'POOL_EXHAUSTED':
        throw fail.exhausted(pool, Number(r[1]), Number(r[2]));
      case 'IP_NOT_IN_POOL':
        throw fail.notInPool(s(1), pool);
      case 'IP_ALLOCATED':
        throw name === 'reserve' ? fail.allocatedToOther(s(1), opt(2)) : fail.allocated(s(1), opt(2), opt(3));
      case 'IP_RESERVED':
        throw fail.reservedFor(s(1), opt(2));
      case 'IP_NOT_ALLOCATED':
        throw fail.notAllocated(s(1), s(2));
      case 'IP_NOT_RESERVED':
        throw fail.notReserved(s(1), s(2));
      case 'ATTACHMENT_CONFLICT':
        throw fail.attachmentConflict(s(1), s(2), s(3));
      case 'STALE_GENERATION':
        throw fail.staleGeneration(s(1), Number(r[2]), Number(r[3]));
      case 'STORE_CORRUPT':
        throw fail.corruptRecord(s(1));
      default:
        throw new BerthError('STORE_CORRUPT', `script ${name} returned unknown code ${code}`);
    }
  }

  /** The counters as the addresses read now (usage-7.lua). */
  private async counts(pool: string): Promise<{ allocated: number; reserved: number }> {
    const r = await this.poolOp('usage', pool, []);
    return { allocated: Number(r[1]), reserved: Number(r[2]) };
  }

  /** A pool's registry entry; one being created does not exist yet, and one being removed only for its removal. */
  private async entry(name: string, removing = false): Promise<RegistryEntry> {
    const raw = (await this.send(['HGET', this.registryKey(), name])) as string | null;
    if (raw === null) throw fail.poolNotFound(name);
    const entry = readEntry(raw, name);
    if (entry.st === 'creating' || (entry.st === 'removing' && !removing)) throw fail.poolNotFound(name);
    return entry;
  }

  private async registry(): Promise<Map<string, RegistryEntry>> {
    const all = pairsOf(await this.send(['HGETALL', this.registryKey()]));
    return new Map([...all].map(([name, raw]) => [name, readEntry(raw, name)]));
  }

  /** The pools whose hash exists, on every master: a cluster spreads pools over them. */
  private async poolKeysOnMasters(): Promise<Set<string>> {
    const head = `${this.prefix}:{`;
    const tail = '}:pool';
    const names = new Set<string>();
    let masters: RedisNode[];
    try {
      masters = await this.conn.masters();
    } catch (err) {
      throw this.mapError(err);
    }
    for (const m of masters) {
      let cursor = '0';
      do {
        let page: RedisReply;
        try {
          page = await m.send(['SCAN', cursor, 'MATCH', `${head}*${tail}`, 'COUNT', 1000]);
        } catch (err) {
          throw this.mapError(err);
        }
        const [next, keys] = page as [string, string[]];
        cursor = next;
        for (const k of keys) if (k.startsWith(head) && k.endsWith(tail)) names.add(k.slice(head.length, -tail.length));
      } while (cursor !== '0');
    }
    return names;
  }

  /** What can make one master lose pool data without a word, read from its settings. */
  private async nodeWarnings(node: RedisNode): Promise<string[]> {
    const out: string[] = [];
    const say = (text: string) => out.push(`redis ${node.name}: ${text}`);
    let settings: Map<string, string>;
    let role: RedisReply;
    try {
      settings = pairsOf(await node.send(['CONFIG', 'GET', 'maxmemory-policy', 'appendonly', 'appendfsync', 'min-replicas-to-write']));
      role = await node.send(['ROLE']);
    } catch (err) {
      say(`cannot read its settings (${(err as Error).message}), so berth cannot tell whether it can lose pool data; allow CONFIG GET and ROLE to berth's user`);
      return out;
    }
    const policy = settings.get('maxmemory-policy') ?? '';
    if (policy.startsWith('allkeys-')) {
      say(`maxmemory-policy ${policy} evicts any key when memory is full, pool records among them (an evicted record is an address handed out twice); set maxmemory-policy noeviction`);
    }
    if (settings.get('appendonly') !== 'yes') {
      say('appendonly no: a restart loses every change since the last snapshot, and replicas that resync from a master restarted empty lose them too; set appendonly yes and appendfsync always');
    } else if (settings.get('appendfsync') !== 'always') {
      say(`appendfsync ${settings.get('appendfsync') ?? '?'}: a crash of the host loses the acknowledged changes of up to the last second; set appendfsync always`);
    }
    const replicas = Array.isArray(role) && role[0] === 'master' && Array.isArray(role[2]) ? role[2].length : 0;
    if (replicas > 0 && Number(settings.get('min-replicas-to-write') ?? '0') === 0) {
      say(
        `${replicas} ${replicas === 1 ? 'replica' : 'replicas'} but min-replicas-to-write 0: a master cut off from its replicas keeps taking changes that a failover then discards (berth waits for a replica before it acknowledges; writers with ?replicas=0 do not); set min-replicas-to-write 1`,
      );
    }
    if (replicas > 0 && requiredReplicas(this.loc, replicas) === 0) {
      say(`?replicas=0 on the store URL while it has ${replicas} ${replicas === 1 ? 'replica' : 'replicas'}: changes are acknowledged before any replica holds them, and a failover loses them`);
    }
    return out;
  }

  private async send(args: RedisArg[]): Promise<RedisReply> {
    try {
      return await this.conn.send(args);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  private async write(args: RedisArg[]): Promise<RedisReply> {
    try {
      return await this.conn.write(args);
    } catch (err) {
      throw this.mapError(err);
    }
  }

  /** Several commands in one round trip; a server error in any of them is thrown. */
  private async pipeline(commands: RedisArg[][]): Promise<RedisReply[]> {
    let replies: Array<RedisReply | RedisReplyError>;
    try {
      replies = await this.conn.pipeline(commands);
    } catch (err) {
      throw this.mapError(err);
    }
    return replies.map((r) => {
      if (r instanceof RedisReplyError) throw this.mapError(r);
      return r;
    });
  }

  private mapError(err: unknown): Error {
    if (err instanceof BerthError) return err;
    if (err instanceof UnconfirmedWriteError) {
      // WAIT rolls nothing back: say what the caller cannot know, and what to do about it.
      return new BerthError(
        'STORE_UNAVAILABLE',
        `failed to confirm a change on store ${this.location}: ${err.message}; it may have been applied on the master all the same, so repeat the same request (ADD and DEL are idempotent per attachment) or look at the address before acting on it`,
        { unconfirmed: true, acked: err.acked, required: err.required },
        { cause: err },
      );
    }
    const msg = (err as Error)?.message ?? String(err);
    // A server that is loading, full, read-only, failing over or refusing us is unavailable, not corrupt.
    if (err instanceof RedisReplyError && !/^(NOAUTH|WRONGPASS|NOPERM|LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|MOVED|ASK|OOM|MISCONF|NOREPLICAS|NOTBUSY|UNBLOCKED)/.test(msg)) {
      return new BerthError('STORE_CORRUPT', `failed to run a command on store ${this.location}: ${msg}`, undefined, { cause: err });
    }
    return new BerthError('STORE_UNAVAILABLE', `failed to reach store ${this.location}: ${msg}`, undefined, { cause: err });
  }
}

/** A flat [field, value, ...] reply as a Map. */
function pairsOf(flat: RedisReply): Map<string, string> {
  const m = new Map<string, string>();
  const a = (flat ?? []) as string[];
  for (let i = 0; i < a.length; i += 2) m.set(a[i]!, a[i + 1]!);
  return m;
}

/** A TIME reply as ms since the epoch. */
function msOf(time: RedisReply | undefined): number {
  const [s, us] = (time ?? ['0', '0']) as string[];
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** Reads the packed counters "CURSOR GEN NA NR XMIN" of a pool hash (see lib.lua). */
function readMeta(m: string | null | undefined, pool: string): PoolMeta {
  if (m === null || m === undefined) return { cursor: '', gen: 0, allocated: 0, reserved: 0 };
  const f = /^(\S+) (\d+) (\d+) (\d+) (\d+)$/.exec(m);
  if (!f) throw new BerthError('STORE_CORRUPT', `failed to read the counters of pool "${pool}": ${JSON.stringify(m)}`);
  return { cursor: f[1] === '-' ? '' : f[1]!, gen: Number(f[2]), allocated: Number(f[3]), reserved: Number(f[4]) };
}

function readEntry(raw: string, name: string): RegistryEntry {
  let entry: RegistryEntry;
  try {
    entry = JSON.parse(raw) as RegistryEntry;
  } catch (err) {
    throw new BerthError('STORE_CORRUPT', `failed to read the registry entry of pool "${name}": ${(err as Error).message}`);
  }
  if (!entry || typeof entry.id !== 'string' || !entry.conf) {
    throw new BerthError('STORE_CORRUPT', `failed to read the registry entry of pool "${name}": missing id or conf`);
  }
  entry.conf = readPoolConfig(JSON.stringify(entry.conf), `registry entry of pool "${name}"`);
  if (entry.st !== undefined && entry.st !== 'creating' && entry.st !== 'removing') {
    throw new BerthError('STORE_CORRUPT', `failed to read the registry entry of pool "${name}": unknown state ${JSON.stringify(entry.st)}`);
  }
  return entry;
}

const STREAM_ID = /^\d+-\d+$/;

/** One pool's XREAD: where it reads from, and once done its entries or its error. */
interface StreamRead {
  from: string;
  done: Promise<void>;
  result?: { items: Array<[string, string[]]> } | { err: Error };
}
const EVENTS = new Set<HistoryEvent>(['allocate', 'release', 'reserve', 'unreserve', 'expire', 'repair', 'pin', 'unpin', 'conflict']);

function historyEntry(id: string, fields: string[]): HistoryEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  const event = f.ev as HistoryEvent;
  if (!EVENTS.has(event)) throw new BerthError('STORE_CORRUPT', `failed to read history entry ${id}: unknown event ${JSON.stringify(f.ev)}`);
  const e: HistoryEntry = { at: Number(f.at ?? id.split('-')[0]), event, ip: f.ip ?? '' };
  if (f.o !== undefined) e.owner = f.o;
  if (f.c !== undefined) e.containerId = f.c;
  if (f.i !== undefined) e.ifname = f.i;
  if (f.g !== undefined) e.gen = Number(f.g);
  if (f.a !== undefined) e.actor = f.a;
  if (f.n !== undefined) e.note = f.n;
  return e;
}
