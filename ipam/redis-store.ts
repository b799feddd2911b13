// The Redis store, shared by every host of a cluster.
//
// Every multi-step change is one Lua script (ipam/lua/<name>-<keys>.lua, each
// prefixed with lib.lua), so it is atomic on the server. All keys of one pool
// share the hash tag {pool}, so each script touches one slot and the store
// runs on Redis Cluster; the pool registry is the one key outside a pool.
import { readFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis, type RedisOptions } from 'ioredis';
import { parseCidr } from './address.js';
import { BerthError } from './errors.js';
import { fail } from './failures.js';
import { capacity, isAssignable, readPoolConfig, type PoolConfig } from './pool-config.js';
import { parseRecord } from './record.js';
import type { StoreLocation } from './store-url.js';
import { redact } from './store-url.js';
import {
  addressInfo,
  type Actor,
  type AddrRecord,
  type AddressInfo,
  type AllocateRequest,
  type Allocation,
  type Fix,
  type HistoryEntry,
  type HistoryEvent,
  type HistoryOptions,
  type PoolMeta,
  type PoolSnapshot,
  type PoolUsage,
  type ReleaseRequest,
  type ReleaseResult,
  type ReserveRequest,
  type Store,
} from './model.js';

/** History entries kept per pool (approximately: Redis trims in whole nodes). */
export const HISTORY_MAX = 100_000;

type Reply = Array<string | number>;
type PoolScript = 'allocate' | 'release' | 'reserve' | 'unreserve' | 'poolInit' | 'poolRemove' | 'repair';
type ScriptRunner = (...args: Array<string | number>) => Promise<Reply>;

const POOL_SCRIPTS: Array<[PoolScript, string]> = [
  ['allocate', 'allocate-7.lua'],
  ['release', 'release-7.lua'],
  ['reserve', 'reserve-7.lua'],
  ['unreserve', 'unreserve-7.lua'],
  ['poolInit', 'pool-init-7.lua'],
  ['poolRemove', 'pool-remove-7.lua'],
  ['repair', 'repair-7.lua'],
];

let scriptCache: Map<string, string> | undefined;

/** Reads the Lua sources once per process: from ipam/lua next to the sources or the package root. */
function scripts(): Map<string, string> {
  if (scriptCache) return scriptCache;
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = [join(here, 'lua'), join(here, '..', '..', 'ipam', 'lua')].find((d) => existsSync(join(d, 'lib.lua')));
  if (!dir) throw new Error('failed to find the berth Lua scripts (ipam/lua)');
  const lib = readFileSync(join(dir, 'lib.lua'), 'utf8');
  scriptCache = new Map();
  for (const [name, file] of POOL_SCRIPTS) scriptCache.set(name, `${lib}\n${readFileSync(join(dir, file), 'utf8')}`);
  for (const file of ['pool-register-1.lua', 'pool-unregister-1.lua']) scriptCache.set(file, readFileSync(join(dir, file), 'utf8'));
  return scriptCache;
}

interface RegistryEntry {
  id: string;
  f: string;
  l: string;
  conf: PoolConfig;
}

/** The Redis store. */
export class RedisStore implements Store {
  readonly location: string;
  private readonly redis: Redis;
  private readonly prefix: string;
  private connecting: Promise<void> | null = null;
  private lastError: Error | undefined;
  private readonly keyCache = new Map<string, string[]>();

  constructor(loc: Extract<StoreLocation, { kind: 'redis' }>, url: string) {
    this.location = redact(url);
    this.prefix = loc.prefix;
    // Before the first connection a refusal fails at once. After it, reconnect
    // for as long as the store lives (a long-lived agent must outlast a Redis
    // restart); each command stays bounded by its timeout meanwhile.
    let connected = false;
    this.redis = new Redis({ ...redisOptions(loc), retryStrategy: (times) => (connected ? Math.min(times * 100, 2000) : null) });
    this.redis.on('ready', () => {
      connected = true;
    });
    // Errors surface on the commands that fail (an unhandled 'error' event would
    // crash the process); the last one names the cause of "Connection is closed".
    this.redis.on('error', (err: Error) => {
      this.lastError = err;
    });
    const s = scripts();
    for (const [name] of POOL_SCRIPTS) this.redis.defineCommand(name, { numberOfKeys: 7, lua: s.get(name)! });
    this.redis.defineCommand('poolRegister', { numberOfKeys: 1, lua: s.get('pool-register-1.lua')! });
    this.redis.defineCommand('poolUnregister', { numberOfKeys: 1, lua: s.get('pool-unregister-1.lua')! });
  }

  async createPool(conf: PoolConfig): Promise<PoolConfig> {
    const subnet = parseCidr(conf.subnet, 'subnet');
    const id = randomBytes(8).toString('hex');
    const entry: RegistryEntry = { id, f: subnet.first, l: subnet.last, conf };
    const reply = await this.call(() => this.run('poolRegister', this.registryKey(), conf.name, JSON.stringify(entry)));
    if (reply[0] === -10) throw fail.poolExists(conf.name);
    if (reply[0] === -11) throw fail.poolOverlap(conf.subnet, String(reply[1]), String(reply[2]));
    try {
      const ranges = conf.ranges.map(([first, last]) => `${first}-${last}`).join(',');
      const packed = `${conf.hold} ${HISTORY_MAX} ,${conf.exclude.join(',')}, ${ranges}`;
      await this.call(() => this.runPool('poolInit', conf.name, id, packed, conf.ranges[0]![0]));
    } catch (err) {
      // Undo the registration so the name is not left claimed by a pool with no keys.
      await this.run('poolUnregister', this.registryKey(), conf.name, id).catch(() => {});
      throw err;
    }
    return conf;
  }

  async removePool(name: string, opts: { force?: boolean } = {}): Promise<{ allocated: number }> {
    const entry = await this.entry(name);
    const reply = await this.call(() => this.runPool('poolRemove', name, opts.force ? '1' : '0', entry.id));
    if (reply[0] === -12) throw fail.poolInUse(name, Number(reply[1]));
    await this.call(() => this.run('poolUnregister', this.registryKey(), name, entry.id));
    return { allocated: Number(reply[1]) };
  }

  async getPool(name: string): Promise<PoolConfig> {
    return (await this.entry(name)).conf;
  }

  async listPools(): Promise<PoolUsage[]> {
    const all = await this.call(() => this.redis.hgetall(this.registryKey()));
    const names = Object.keys(all).sort();
    const pipe = this.redis.pipeline();
    for (const name of names) pipe.hget(this.key(name, 'pool'), 'm');
    const replies = names.length ? await this.call(() => pipe.exec()) : [];
    return names.map((name, i) => {
      const conf = readEntry(all[name]!, name).conf;
      const [err, m] = replies?.[i] ?? [null, null];
      if (err) throw this.mapError(err);
      const meta = readMeta(m as string | null, name);
      return { conf, allocated: meta.allocated, reserved: meta.reserved, capacity: capacity(conf).toString() };
    });
  }

  async usage(name: string): Promise<PoolUsage> {
    const conf = await this.getPool(name);
    const meta = readMeta(await this.call(() => this.redis.hget(this.key(name, 'pool'), 'm')), name);
    return { conf, allocated: meta.allocated, reserved: meta.reserved, capacity: capacity(conf).toString() };
  }

  async allocate(pool: string, req: AllocateRequest): Promise<Allocation> {
    const r = await this.poolOp('allocate', pool, [req.containerId, req.ifname, req.owner, req.ip ?? '', req.actor ?? '']);
    return { pool, ip: String(r[1]), gen: Number(r[2]), owner: String(r[3]), existing: Number(r[4]) === 1 };
  }

  async release(pool: string, req: ReleaseRequest): Promise<ReleaseResult> {
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
    const args: Record<string, string> = { ip };
    if (req.owner !== undefined) args.owner = req.owner;
    if (req.note !== undefined) args.note = req.note;
    if (req.actor !== undefined) args.actor = req.actor;
    const r = await this.poolOp('reserve', pool, [JSON.stringify(args)]);
    return addressInfo(pool, ip, parseRecord(String(r[1]), ip), Date.now());
  }

  async unreserve(pool: string, ip: string, req: Actor): Promise<AddressInfo> {
    const args: Record<string, string> = { ip };
    if (req.actor !== undefined) args.actor = req.actor;
    const r = await this.poolOp('unreserve', pool, [JSON.stringify(args)]);
    const rec = r[1] ? parseRecord(String(r[1]), ip) : undefined;
    return addressInfo(pool, ip, rec, Date.now());
  }

  async getAddress(pool: string, ip: string): Promise<AddressInfo> {
    const conf = await this.getPool(pool);
    const [raw, now] = await Promise.all([this.call(() => this.redis.hget(this.key(pool, 'addr'), ip)), this.now()]);
    if (raw === null && !isAssignable(conf, ip)) throw fail.notInPool(ip, pool);
    return addressInfo(pool, ip, raw === null ? undefined : parseRecord(raw, ip), now);
  }

  async listAddresses(pool: string): Promise<AddressInfo[]> {
    await this.getPool(pool);
    const [all, now] = await Promise.all([this.call(() => this.redis.hgetall(this.key(pool, 'addr'))), this.now()]);
    return Object.keys(all)
      .sort()
      .map((hex) => addressInfo(pool, hex, parseRecord(all[hex]!, hex), now));
  }

  async history(pool: string, opts: HistoryOptions = {}): Promise<HistoryEntry[]> {
    await this.getPool(pool);
    const key = this.key(pool, 'hist');
    const out: HistoryEntry[] = [];
    let end = '+';
    // Page backwards through the stream; a per-address query filters as it goes.
    for (;;) {
      const page = await this.call(() => this.redis.xrevrange(key, end, '-', 'COUNT', 1000));
      for (const [id, fields] of page) {
        const e = historyEntry(id, fields);
        if (opts.ip === undefined || e.ip === opts.ip) out.push(e);
        if (opts.limit !== undefined && out.length >= opts.limit) return out;
      }
      if (page.length < 1000) return out;
      end = `(${page[page.length - 1]![0]}`;
    }
  }

  async snapshot(pool: string): Promise<PoolSnapshot> {
    const conf = await this.getPool(pool);
    const k = (s: string) => this.key(pool, s);
    const replies = await this.call(() =>
      this.redis
        .multi()
        .hgetall(k('pool'))
        .hgetall(k('addr'))
        .hgetall(k('att'))
        .zrange(k('held'), '0', '-1')
        .zrange(k('exp'), '0', '-1', 'WITHSCORES')
        .zrange(k('free'), '0', '-1', 'WITHSCORES')
        .time()
        .exec(),
    );
    const values = (replies ?? []).map(([err, v]) => {
      if (err) throw this.mapError(err);
      return v;
    });
    const [meta, addr, att, held, exp, free, time] = values as [
      Record<string, string>,
      Record<string, string>,
      Record<string, string>,
      string[],
      string[],
      string[],
      [string, string],
    ];
    if (!meta.m) throw fail.poolNotFound(pool);
    const pairs = (flat: string[]) => {
      const m = new Map<string, number>();
      for (let i = 0; i < flat.length; i += 2) m.set(flat[i]!, Number(flat[i + 1]));
      return m;
    };
    return {
      conf,
      meta: readMeta(meta.m, pool),
      addr: new Map(Object.entries(addr).map(([hex, raw]) => [hex, parseRecord(raw, hex)] as [string, AddrRecord])),
      att: new Map(Object.entries(att)),
      held: new Set(held),
      expiry: pairs(exp),
      free: pairs(free),
      now: Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000),
    };
  }

  async applyFixes(pool: string, fixes: Fix[]): Promise<number> {
    if (fixes.length === 0) return 0;
    const r = await this.poolOp('repair', pool, [JSON.stringify(fixes)]);
    return Number(r[1]);
  }

  async close(): Promise<void> {
    try {
      if (this.redis.status === 'ready') await this.redis.quit();
    } catch {
      // closing anyway
    }
    this.redis.disconnect();
  }

  // --- plumbing -----------------------------------------------------------

  private key(pool: string, part: string): string {
    return `${this.prefix}:{${pool}}:${part}`;
  }

  private registryKey(): string {
    return `${this.prefix}:pools`;
  }

  private poolKeys(pool: string): string[] {
    let keys = this.keyCache.get(pool);
    if (!keys) {
      keys = ['pool', 'addr', 'att', 'held', 'exp', 'free', 'hist'].map((p) => this.key(pool, p));
      this.keyCache.set(pool, keys);
    }
    return keys;
  }

  private run(name: string, ...args: Array<string | number>): Promise<Reply> {
    return (this.redis as unknown as Record<string, ScriptRunner>)[name]!(...args);
  }

  private runPool(name: PoolScript, pool: string, ...args: Array<string | number>): Promise<Reply> {
    return this.run(name, ...this.poolKeys(pool), ...args);
  }

  /** Runs a pool script and turns its error replies into BerthErrors. */
  private async poolOp(name: PoolScript, pool: string, args: string[]): Promise<Reply> {
    const r = await this.call(() => this.runPool(name, pool, ...args));
    const code = Number(r[0]);
    if (code === 0) return r;
    const s = (i: number): string => String(r[i] ?? '');
    const opt = (i: number): string | undefined => (s(i) === '' ? undefined : s(i));
    switch (code) {
      case -1:
        throw fail.poolNotFound(pool);
      case -2:
        throw fail.exhausted(pool, Number(r[1]), Number(r[2]));
      case -3:
        throw fail.notInPool(s(1), pool);
      case -4:
        throw name === 'reserve' ? fail.allocatedToOther(s(1), opt(2)) : fail.allocated(s(1), opt(2), opt(3));
      case -5:
        throw fail.reservedFor(s(1), opt(2));
      case -6:
        throw fail.notAllocated(s(1), s(2));
      case -7:
        throw fail.notReserved(s(1), s(2));
      case -8:
        throw fail.attachmentConflict(s(1), s(2), s(3));
      case -9:
        throw fail.staleGeneration(s(1), Number(r[2]), Number(r[3]));
      default:
        throw new BerthError('STORE_CORRUPT', `script ${name} returned unknown code ${code}`);
    }
  }

  private async entry(name: string): Promise<RegistryEntry> {
    const raw = await this.call(() => this.redis.hget(this.registryKey(), name));
    if (raw === null) throw fail.poolNotFound(name);
    return readEntry(raw, name);
  }

  private async now(): Promise<number> {
    const [s, us] = await this.call(() => this.redis.time());
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  /** Connects on first use (failing fast when refused) and maps transport failures. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.redis.status === 'wait') {
      this.connecting ??= this.redis.connect().finally(() => {
        this.connecting = null;
      });
    }
    try {
      if (this.connecting) await this.connecting;
      return await fn();
    } catch (err) {
      throw this.mapError(err);
    }
  }

  private mapError(err: unknown): Error {
    if (err instanceof BerthError) return err;
    const e = err as Error & { code?: string };
    let msg = e?.message ?? String(err);
    if (/Connection is closed|Stream isn't writeable|MaxRetriesPerRequest/.test(msg) && this.lastError) {
      msg = `${msg.replace(/\.$/, '')} (${this.lastError.message})`;
    }
    if (e?.name === 'ReplyError' && !/^(NOAUTH|WRONGPASS|NOPERM|LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|MOVED|ASK)/.test(msg)) {
      return new BerthError('STORE_CORRUPT', `failed to run a command on store ${this.location}: ${msg}`, undefined, { cause: err });
    }
    return new BerthError('STORE_UNAVAILABLE', `failed to reach store ${this.location}: ${msg}`, undefined, { cause: err });
  }
}

function redisOptions(loc: Extract<StoreLocation, { kind: 'redis' }>): RedisOptions {
  const opts: RedisOptions = {
    db: loc.db,
    lazyConnect: true,
    connectTimeout: loc.connectTimeout,
    commandTimeout: loc.timeout,
    maxRetriesPerRequest: 1,
    // Off: with many operations in flight, batching per tick delays each reply a
    // hop (measured: 2,900 pairs/s on, 4,600 off, bench/ipam.ts).
    enableAutoPipelining: false,
  };
  if (loc.username) opts.username = loc.username;
  if (loc.password) opts.password = loc.password;
  if (loc.tls) {
    opts.tls = {};
    if (loc.ca) opts.tls.ca = readFileSync(loc.ca);
    if (loc.cert) opts.tls.cert = readFileSync(loc.cert);
    if (loc.key) opts.tls.key = readFileSync(loc.key);
    if (loc.servername) opts.tls.servername = loc.servername;
  }
  if (loc.sentinelName) {
    opts.sentinels = loc.hosts;
    opts.name = loc.sentinelName;
    if (loc.sentinelUsername) opts.sentinelUsername = loc.sentinelUsername;
    if (loc.sentinelPassword) opts.sentinelPassword = loc.sentinelPassword;
    if (loc.tls) {
      opts.enableTLSForSentinelMode = true;
      opts.sentinelTLS = opts.tls;
    }
  } else {
    opts.host = loc.hosts[0]!.host;
    opts.port = loc.hosts[0]!.port;
  }
  return opts;
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
  return entry;
}

const EVENTS = new Set<HistoryEvent>(['allocate', 'release', 'reserve', 'unreserve', 'expire', 'repair', 'pin', 'unpin']);

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
