// RedisConn over ioredis, for the long-lived agent: it reconnects by itself
// after a Redis restart and follows a Sentinel failover: a +switch-master
// message from the sentinels (failoverDetector), a READONLY answer from a
// demoted master, or a master whose ROLE is not master at connect (ioredis's
// ready check) makes it ask the sentinels again. Not for Redis Cluster: its
// cluster pipeline cannot keep WAIT on the node that ran the script across a
// redirection, so open-store.ts gives a cluster berth's own client.
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { readPasswordFiles, type Warn } from './password-files.js';
import { RespClient, TOPOLOGY_TTL_MS } from './resp-client.js';
import {
  RedisReplyError,
  requiredReplicas,
  UnconfirmedWriteError,
  waitTimeout,
  type RedisArg,
  type RedisConn,
  type RedisLocation,
  type RedisNode,
  type RedisReply,
} from './redis-conn.js';

/** A RedisConn backed by one ioredis client. */
export class IoredisConn implements RedisConn {
  private readonly redis: Redis;
  private connecting: Promise<void> | null = null;
  private lastError: Error | undefined;
  private readonly connectTimeout: number;
  /** the replicas a change waits for, read again on each connection (a failover may change them) and after TOPOLOGY_TTL_MS */
  private required: Promise<number> | null = null;
  private requiredAt = 0;
  private readonly reconnected: Array<() => void> = [];

  /** Reads the location's password files now; `warn` hears of one others can read. */
  constructor(
    private readonly loc: RedisLocation,
    warn?: Warn,
  ) {
    if (loc.cluster) throw new Error('ioredis-conn does not speak Redis Cluster; open-store.ts uses resp-client.ts for it');
    // Before the first connection a refusal fails at once. After it, reconnect
    // for as long as the client lives (a long-lived agent must outlast a Redis
    // restart); each command stays bounded by its timeout meanwhile.
    let connected = false;
    const retry = (times: number) => (connected ? Math.min(times * 100, 2000) : null);
    this.connectTimeout = loc.connectTimeout;
    this.redis = new Redis({ ...options(readPasswordFiles(loc, warn)), retryStrategy: retry, sentinelRetryStrategy: retry });
    this.redis.on('ready', () => {
      if (connected) for (const fn of this.reconnected) fn();
      connected = true;
      this.required = null;
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

  async write(args: RedisArg[]): Promise<RedisReply> {
    await this.ready();
    if (Date.now() - this.requiredAt > TOPOLOGY_TTL_MS) this.required = null;
    if (!this.required) this.requiredAt = Date.now();
    const required = await (this.required ??= this.readRequired().catch((err: unknown) => {
      this.required = null;
      throw this.translate(err);
    }));
    if (required === 0) return this.send(args);
    const waitMs = waitTimeout(this.loc);
    // One pipeline is one connection: WAIT counts the replicas holding this connection's writes.
    const [reply, waited] = await this.pipeline([args, ['WAIT', required, waitMs]]);
    if (reply instanceof RedisReplyError) throw reply;
    if (typeof waited !== 'number' || waited < required) {
      throw new UnconfirmedWriteError(this.where(), typeof waited === 'number' ? waited : 0, required, waitMs, waited instanceof RedisReplyError ? waited : undefined);
    }
    return reply!;
  }

  onReconnect(fn: () => void): void {
    this.reconnected.push(fn);
  }

  async masters(): Promise<RedisNode[]> {
    await this.ready();
    return [{ name: this.where(), send: (args) => this.send(args) }];
  }

  /** The server the connection is on (behind Sentinel: the master it found). */
  private where(): string {
    const s = this.redis.stream as { remoteAddress?: string; remotePort?: number } | undefined;
    const host = s?.remoteAddress ?? this.redis.options.host ?? '?';
    const port = s?.remotePort ?? this.redis.options.port ?? '?';
    return String(host).includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
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

  /** See requiredReplicas: the sentinels' list of replicas, or the master's own (ROLE). */
  private async readRequired(): Promise<number> {
    if (this.loc.replicas !== undefined) return this.loc.replicas;
    if (this.loc.sentinelName) {
      const probe = new RespClient(this.loc);
      try {
        return requiredReplicas(this.loc, await probe.sentinelReplicas());
      } finally {
        await probe.close();
      }
    }
    const role = (await this.send(['ROLE'])) as RedisReply[];
    return requiredReplicas(this.loc, role[0] === 'master' && Array.isArray(role[2]) ? role[2].length : 0);
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
    // A demoted master: reconnect (through the sentinels, to the new one), without sending the command again.
    reconnectOnError: (err: Error) => (/^READONLY/.test(err.message) ? 1 : false),
    // RESP2, as berth's own client speaks: the store reads one reply shape
    // (under RESP3, ZRANGE WITHSCORES nests its pairs even in "legacy" mapping).
    protocol: 2,
    // Off: with many operations in flight, batching per tick delays each reply
    // a hop (bench/ipam.ts: 4,600 pairs/s off, 2,900 on).
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
    // +switch-master from any sentinel: reconnect to the master it names
    opts.failoverDetector = true;
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
