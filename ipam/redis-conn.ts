// The little the Redis store needs from a Redis client. Two implement it:
// ioredis (ipam/ioredis-conn.ts) for the long-lived agent, which needs its
// reconnection and Sentinel failover handling; and berth's own RESP client
// (ipam/resp-client.ts) for one-shot processes, the CNI plugins and the CLI,
// because loading ioredis costs ~85 ms of start-up even bundled (measured,
// see README) and a plugin must answer within 25 ms of `node -e 0`.
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

export interface RedisConn {
  /** Sends one command and resolves with its reply; rejects with RedisReplyError or a transport error. */
  send(args: RedisArg[]): Promise<RedisReply>;
  /** Sends several commands in one round trip; each entry is its reply or its RedisReplyError. */
  pipeline(commands: RedisArg[][]): Promise<Array<RedisReply | RedisReplyError>>;
  /** Closes the connection (QUIT when it is up). */
  close(): Promise<void>;
}

export type RedisLocation = Extract<StoreLocation, { kind: 'redis' }>;
