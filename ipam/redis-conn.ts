// The little the Redis store needs from a Redis client. Two implement it:
// ioredis (ipam/ioredis-conn.ts) for the long-lived agent, which needs its
// reconnection and Sentinel failover handling; and berth's own RESP client
// (ipam/resp-client.ts) for one-shot processes, the CNI plugins and the CLI,
// because loading ioredis costs ~85 ms of start-up even bundled, more than
// a plugin's whole budget (docs/performance.md). Redis
// Cluster is spoken by berth's client only, for every process (see open-store.ts).
import type { StoreLocation } from './store-url.js';

export type RedisArg = string | number;
/** A decoded RESP reply: strings, integers, null, arrays of replies; an error reply is a RedisReplyError. */
export type RedisReply = string | number | null | RedisReply[];

/** An error the server answered with (e.g. NOSCRIPT, WRONGPASS): the connection itself is fine. */
export class RedisReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplyError';
  }
}

/**
 * A change the master ran that fewer replicas than required confirmed in
 * time. WAIT rolls nothing back: the change may be on the master, and may be
 * lost by a failover, so it is neither a success nor a clean failure.
 */
export class UnconfirmedWriteError extends Error {
  constructor(
    readonly node: string,
    readonly acked: number,
    readonly required: number,
    readonly waitedMs: number,
    cause?: unknown,
  ) {
    super(
      cause
        ? `the change ran on ${node}, but WAIT failed there: ${(cause as Error).message}`
        : `the change ran on ${node}, but ${acked} of ${required} ${required === 1 ? 'replica' : 'replicas'} confirmed it within ${waitedMs} ms`,
      cause ? { cause } : undefined,
    );
    this.name = 'UnconfirmedWriteError';
  }
}

/** One master of the store (the one server outside a cluster), for commands that must run on each. */
export interface RedisNode {
  /** host:port */
  readonly name: string;
  send(args: RedisArg[]): Promise<RedisReply>;
}

export interface RedisConn {
  /** Sends one command and resolves with its reply; rejects with RedisReplyError or a transport error. */
  send(args: RedisArg[]): Promise<RedisReply>;
  /** Sends several commands in one round trip; each entry is its reply or its RedisReplyError. */
  pipeline(commands: RedisArg[][]): Promise<Array<RedisReply | RedisReplyError>>;
  /**
   * Runs a command that may change data (a script) and, when replicas must
   * hold changes, `WAIT required timeout` right after it on the same
   * connection. Resolves with its reply only once confirmed; rejects with
   * RedisReplyError for its error reply, UnconfirmedWriteError when WAIT
   * counts too few replicas (or fails: a connection to a demoted master).
   */
  write(args: RedisArg[]): Promise<RedisReply>;
  /**
   * Sends one command on a connection of the lane's own (one per lane and
   * server, opened on first use), so that a command that blocks there (XREAD
   * BLOCK) holds up no other command. Only berth's client has lanes: the
   * store uses them on a Redis Cluster, which it speaks alone.
   */
  sendOn?(lane: string, args: RedisArg[]): Promise<RedisReply>;
  /** Closes the lane's connections. */
  endLane?(lane: string): Promise<void>;
  /** Every master: one outside a cluster, each master of the slot map in one. */
  masters(): Promise<RedisNode[]>;
  /** Calls `fn` each time the connection is made again after it was up (a restart, a failover to a new master). */
  onReconnect?(fn: () => void): void;
  /** Closes the connection (QUIT when it is up). */
  close(): Promise<void>;
}

export type RedisLocation = Extract<StoreLocation, { kind: 'redis' }>;

/**
 * The replicas a change waits for: `?replicas=N` when the URL says, else 1
 * when the master has a replica a failover could promote (`promotable`: the
 * replicas Sentinel or the cluster's node table knows, down ones included;
 * for a plain redis:// URL, those connected to the master), else 0. One is
 * enough by default because Sentinel and Cluster both promote the replica
 * with the most replicated data; waiting for every replica would turn each
 * one into a single point of failure for changes.
 */
export function requiredReplicas(loc: RedisLocation, promotable: number): number {
  return loc.replicas ?? Math.min(1, promotable);
}

/** How long WAIT may block: half the command timeout, so its answer arrives before the client gives up on the connection. */
export function waitTimeout(loc: RedisLocation): number {
  return Math.max(5, Math.floor(loc.timeout / 2));
}
