// RedisConn over ioredis, for the long-lived agent: it reconnects by itself
// after a Redis restart and follows a Sentinel failover.
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { readPasswordFiles, type Warn } from './password-files.js';
import { RedisReplyError, type RedisArg, type RedisConn, type RedisLocation, type RedisReply } from './redis-conn.js';

/** A RedisConn backed by one ioredis client. */
export class IoredisConn implements RedisConn {
  private readonly redis: Redis;
  private connecting: Promise<void> | null = null;
  private lastError: Error | undefined;
  private readonly connectTimeout: number;

  /** Reads the location's password files now; `warn` hears of one others can read. */
  constructor(loc: RedisLocation, warn?: Warn) {
    // Before the first connection a refusal fails at once. After it, reconnect
    // for as long as the client lives (a long-lived agent must outlast a Redis
    // restart); each command stays bounded by its timeout meanwhile.
    let connected = false;
    const retry = (times: number) => (connected ? Math.min(times * 100, 2000) : null);
    this.connectTimeout = loc.connectTimeout;
    this.redis = new Redis({ ...options(readPasswordFiles(loc, warn)), retryStrategy: retry, sentinelRetryStrategy: retry });
    this.redis.on('ready', () => {
      connected = true;
    });
    // Errors surface on the commands that fail (an unhandled 'error' event would
    // crash the process); the last one names the cause of "Connection is closed".
    this.redis.on('error', (err: Error) => {
      this.lastError = err;
    });
  }

  async send(args: RedisArg[]): Promise<RedisReply> {
    await this.ready();
    try {
      return (await this.redis.call(String(args[0]), ...args.slice(1))) as RedisReply;
    } catch (err) {
      throw this.translate(err);
    }
  }

  async pipeline(commands: RedisArg[][]): Promise<Array<RedisReply | RedisReplyError>> {
    await this.ready();
    let results: Array<[Error | null, unknown]> | null;
    try {
      results = await this.redis.pipeline(commands.map((c) => ['call', ...c.map(String)])).exec();
    } catch (err) {
      throw this.translate(err);
    }
    return (results ?? []).map(([err, value]) => {
      if (!err) return value as RedisReply;
      const e = this.translate(err);
      if (e instanceof RedisReplyError) return e;
      throw e;
    });
  }

  async close(): Promise<void> {
    try {
      if (this.redis.status === 'ready') await this.redis.quit();
    } catch {
      // closing anyway
    }
    this.redis.disconnect();
  }

  /**
   * Connects when the client is idle: first use, or after a first connection
   * that failed (ioredis then stops, and would refuse every later command).
   * Bounded by connectTimeout, whatever the Sentinels do.
   */
  private async ready(): Promise<void> {
    if (this.redis.status === 'wait' || this.redis.status === 'end') {
      this.connecting ??= this.redis.connect().finally(() => {
        this.connecting = null;
      });
    }
    if (!this.connecting) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.connecting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`connection not ready after ${this.connectTimeout} ms`)), this.connectTimeout);
        }),
      ]);
    } catch (err) {
      if (this.redis.status !== 'ready') this.redis.disconnect();
      throw this.translate(err);
    } finally {
      clearTimeout(timer);
    }
  }

  private translate(err: unknown): Error {
    const e = err as Error;
    if (e?.name === 'ReplyError') return new RedisReplyError(e.message);
    let msg = e?.message ?? String(err);
    if (/Connection is closed|Stream isn't writeable|MaxRetriesPerRequest/.test(msg) && this.lastError) {
      msg = `${msg.replace(/\.$/, '')} (${this.lastError.message})`;
    }
    return new Error(msg, { cause: err });
  }
}

function options(loc: RedisLocation): RedisOptions {
  const opts: RedisOptions = {
    db: loc.db,
    lazyConnect: true,
    connectTimeout: loc.connectTimeout,
    commandTimeout: loc.timeout,
    maxRetriesPerRequest: 1,
    // A command whose connection dropped has failed for its caller; sending it
    // again after the reconnect could run an allocation nobody is waiting for.
    autoResendUnfulfilledCommands: false,
    // RESP2, as berth's own client speaks: the store reads one reply shape
    // (under RESP3, ZRANGE WITHSCORES nests its pairs even in "legacy" mapping).
    protocol: 2,
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
