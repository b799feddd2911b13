// The pool's data model and the Store interface that both stores implement.
//
// Only non-free addresses have a record, so a store's size follows the
// addresses in use (plus the released ones remembered for least-recently-
// released order), never the size of the subnet.
import type { PoolConfig } from './pool-config.js';

import type { HostAnnouncement } from './hosts.js';

export type AddressState = 'free' | 'allocated' | 'reserved';

/**
 * The stored record of one non-free address. Keys are short because Redis
 * holds one per address in use.
 */
export interface AddrRecord {
  /** 'a' allocated, 'r' reserved */
  s: 'a' | 'r';
  /** owner key */
  o?: string;
  /** container id: of the attachment (allocated) or of the last one (held) */
  c?: string;
  /** interface name of the attachment */
  i?: string;
  /** generation of the allocation: unique within the pool */
  g?: number;
  /** since (ms since the epoch) */
  t: number;
  /** reserved until (ms): set on a hold after release, absent on admin reservations */
  u?: number;
  /** admin note */
  n?: string;
  /** 1 when the address came from an admin reservation it returns to on release */
  p?: 1;
  /** host that made the allocation, NAME or NAME@ID (hostField): a host's CNI GC releases only its own */
  h?: string;
  /** CNI network name of the allocation */
  w?: string;
}

/** The pool's counters and allocation cursor. */
export interface PoolMeta {
  /** next never-used address to consider; '' once every range has been walked */
  cursor: string;
  /** last generation handed out */
  gen: number;
  allocated: number;
  /** reserved records: a hold past its end counts until a change expires it (engine.ts usage() reads it as free) */
  reserved: number;
}

/** Who asks: recorded in the history. */
export interface Actor {
  actor?: string;
}

export interface AllocateRequest extends Actor {
  containerId: string;
  ifname: string;
  owner: string;
  /** a specific address (hex) */
  ip?: string;
  /** the host asking (CNI GC on a host releases only that host's allocations) */
  host?: string;
  /** its machine identity (/etc/machine-id): two hosts of one name keep apart */
  hostId?: string;
  /** the CNI network name */
  network?: string;
}

export interface Allocation {
  pool: string;
  /** hex */
  ip: string;
  gen: number;
  owner: string;
  /** true when the attachment already had this address (idempotent ADD) */
  existing: boolean;
}

export type ReleaseRequest = Actor &
  ({ containerId: string; ifname: string; ip?: undefined } | { ip: string; containerId?: undefined; ifname?: undefined }) & {
    /** refuse unless the address is still at this generation */
    gen?: number;
  };

export interface ReleaseResult {
  released: boolean;
  /** hex, when something was released */
  ip?: string;
  /** the state the address went to */
  state?: AddressState;
}

export interface ReserveRequest extends Actor {
  owner?: string;
  note?: string;
}

/** An address as the CLI and API show it. */
export interface AddressInfo {
  pool: string;
  /** hex */
  ip: string;
  state: AddressState;
  owner?: string;
  containerId?: string;
  ifname?: string;
  gen?: number;
  since?: number;
  /** hold end (ms) of an address reserved after release */
  until?: number;
  note?: string;
  pinned?: boolean;
  host?: string;
  /** the machine identity of the host, when it recorded one */
  hostId?: string;
  network?: string;
}

export interface PoolUsage {
  conf: PoolConfig;
  allocated: number;
  reserved: number;
  /** assignable addresses (decimal string: an IPv6 pool may exceed 2^53) */
  capacity: string;
}

export type HistoryEvent = 'allocate' | 'release' | 'reserve' | 'unreserve' | 'expire' | 'repair' | 'pin' | 'unpin' | 'conflict';

export interface HistoryEntry {
  /** ms since the epoch */
  at: number;
  event: HistoryEvent;
  /** hex */
  ip: string;
  owner?: string;
  containerId?: string;
  ifname?: string;
  gen?: number;
  actor?: string;
  note?: string;
}

/** Everything of one pool, read at one instant: the input of the consistency check. */
export interface PoolSnapshot {
  conf: PoolConfig;
  meta: PoolMeta;
  addr: Map<string, AddrRecord>;
  att: Map<string, string>;
  /** owner "\0" hex */
  held: Set<string>;
  expiry: Map<string, number>;
  free: Map<string, number>;
  /** addresses whose records cannot be read */
  corrupt?: string[];
  now: number;
}

/** A guarded repair: applied only if the current value still equals `expect`. */
export type Fix =
  | { kind: 'addr'; key: string; expect: string | null; value: string | null }
  | { kind: 'att'; key: string; expect: string | null; value: string | null }
  | { kind: 'held'; key: string; present: boolean }
  | { kind: 'expiry'; key: string; value: number | null }
  | { kind: 'free'; key: string; value: number | null }
  | { kind: 'meta'; key: 'allocated' | 'reserved' | 'cursor' | 'gen'; value: string };

/** Who found an address in use on the wire, and what was seen. */
export interface ConflictRequest {
  /** the attachment that found it: its allocation of the address is withdrawn */
  containerId?: string;
  ifname?: string;
  /** what answered or claims it: "in use by 02:aa:…", "held by web-2 on host-b" */
  note: string;
  actor?: string;
}

/** A disagreement the consistency check found (check.ts) or the registry check (checkRegistry). */
export interface Finding {
  /** what kind of disagreement */
  kind:
    | 'attachment-missing'
    | 'attachment-stale'
    | 'held-missing'
    | 'held-stale'
    | 'expiry-missing'
    | 'expiry-stale'
    | 'free-but-used'
    | 'free-outside-pool'
    | 'outside-pool'
    | 'bad-record'
    | 'counter'
    | 'generation'
    // between the pool registry and the pools' keys (Redis: RedisStore.checkRegistry)
    | 'unregistered'
    | 'keys-missing'
    | 'unfinished-create'
    | 'unfinished-remove';
  /** the address concerned, as text */
  ip?: string;
  message: string;
  /** false when repair cannot settle it and an operator must */
  repairable: boolean;
}

/** A disagreement between a store's pool registry and the pools themselves (see checkRegistry). */
export interface RegistryFinding {
  pool: string;
  finding: Finding;
  /** set by a repair: whether it settled the finding */
  repaired?: boolean;
}

export interface ListOptions {
  state?: AddressState;
}

export interface HistoryOptions {
  ip?: string;
  limit?: number;
}

/** Where a reader of pool histories has read to: per pool, a position only the store that gave it understands. */
export type HistoryCursor = Record<string, string>;

/** History entries read after a cursor (historyAfter). */
export interface HistoryTail {
  /** where to read on from */
  cursor: HistoryCursor;
  /** the new entries with their pool, oldest first */
  entries: Array<HistoryEntry & { pool: string }>;
}

/** A pool store: every operation is atomic and, once it resolves, durable. */
export interface Store {
  /** Human-readable location, without credentials. */
  readonly location: string;
  createPool(conf: PoolConfig, actor?: string): Promise<PoolConfig>;
  /** Removes a pool; refuses while addresses are allocated unless forced. Returns how many were allocated. */
  removePool(name: string, opts?: { force?: boolean; actor?: string }): Promise<{ allocated: number }>;
  getPool(name: string): Promise<PoolConfig>;
  listPools(): Promise<PoolUsage[]>;
  usage(name: string): Promise<PoolUsage>;
  allocate(pool: string, req: AllocateRequest): Promise<Allocation>;
  release(pool: string, req: ReleaseRequest): Promise<ReleaseResult>;
  reserve(pool: string, ip: string, req: ReserveRequest): Promise<AddressInfo>;
  unreserve(pool: string, ip: string, req: Actor): Promise<AddressInfo>;
  /** Records that the address was found in use on the wire by someone the pool does not know (engine.conflict). */
  conflict(pool: string, ip: string, req: ConflictRequest): Promise<AddressInfo>;
  getAddress(pool: string, ip: string): Promise<AddressInfo>;
  /** Non-free addresses in address order (free ones are derived by the caller). */
  listAddresses(pool: string): Promise<AddressInfo[]>;
  /** Newest first. */
  history(pool: string, opts?: HistoryOptions): Promise<HistoryEntry[]>;
  /**
   * The pools' history entries appended after `cursor`, waiting up to waitMs
   * for one; it may return empty sooner. A pool the cursor lacks starts at
   * its current end, and the call then returns at once. The Redis store
   * blocks its connection while it waits: follow on a store of its own.
   */
  historyAfter(pools: string[], cursor: HistoryCursor, waitMs: number): Promise<HistoryTail>;
  snapshot(pool: string): Promise<PoolSnapshot>;
  applyFixes(pool: string, fixes: Fix[], actor?: string): Promise<number>;
  /**
   * Checks the pool registry against the pools' own data, on every server
   * that holds pools, settling what it can with `repair`; empty where the
   * registry and the pools cannot disagree (the file store).
   */
  checkRegistry(opts?: { repair?: boolean }): Promise<RegistryFinding[]>;
  /**
   * Settings of the server(s) behind the store that can lose pool data
   * without an error (evicting memory policy, no fsync, replicas no write
   * waits for), one sentence each; empty when there is none (the file store).
   */
  serverWarnings(): Promise<string[]>;
  /** Calls `fn` when a long-lived connection to the store is made again (a restart, a failover): what it holds may have changed. */
  onReconnect?(fn: () => void): void;
  /** Replaces what this host's agent runs (hosts.ts), under its host key. */
  publishHost(a: HostAnnouncement): Promise<void>;
  /** Every host's last announcement, current or not (hosts.ts current() picks the live ones). */
  listHosts(): Promise<HostAnnouncement[]>;
  close(): Promise<void>;
}

/** Key of an attachment in the attachment index. Interface names never hold "/". */
export function attachmentKey(containerId: string, ifname: string): string {
  return `${containerId}/${ifname}`;
}

/** Key of a held-index entry. */
export function heldKey(owner: string, hex: string): string {
  return `${owner}\u0000${hex}`;
}

/** The state of a record at `now`: a hold past its end counts as free. */
export function stateOf(rec: AddrRecord | undefined, now: number): AddressState {
  if (!rec) return 'free';
  if (rec.s === 'a') return 'allocated';
  return rec.u !== undefined && rec.u <= now ? 'free' : 'reserved';
}

/** The CLI/API view of an address. */
export function addressInfo(pool: string, ip: string, rec: AddrRecord | undefined, now: number): AddressInfo {
  const state = stateOf(rec, now);
  const info: AddressInfo = { pool, ip, state };
  if (!rec || state === 'free') return info;
  if (rec.o !== undefined) info.owner = rec.o;
  if (rec.c !== undefined) info.containerId = rec.c;
  if (rec.i !== undefined) info.ifname = rec.i;
  if (rec.g !== undefined) info.gen = rec.g;
  info.since = rec.t;
  if (rec.u !== undefined) info.until = rec.u;
  if (rec.n !== undefined) info.note = rec.n;
  if (rec.p) info.pinned = true;
  if (rec.h !== undefined && state === 'allocated') Object.assign(info, hostOf(rec.h));
  if (rec.w !== undefined && state === 'allocated') info.network = rec.w;
  return info;
}

/**
 * The record's host field: the host's name and, when known, its machine
 * identity, as NAME@ID. A name cannot hold "@", and a reader that knows
 * only names sees a host that is not its own.
 */
export function hostField(host: string, hostId?: string): string {
  return hostId ? `${host}@${hostId}` : host;
}

/** The host's name and identity from a record's host field. */
export function hostOf(field: string): { host: string; hostId?: string } {
  const at = field.indexOf('@');
  return at < 0 ? { host: field } : { host: field.slice(0, at), hostId: field.slice(at + 1) };
}
