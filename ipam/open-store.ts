// Opens the store a URL names. Each store and client module is loaded only
// when used: a process on the file store never loads a Redis client, and
// one-shot processes never load ioredis.
import type { Store } from './model.js';
import type { RedisConn, RedisLocation } from './redis-conn.js';
import { isBerthError } from '../core/errors.js';
import type { Warn } from './password-files.js';
import { parseStoreUrl, redact } from './store-url.js';

export interface OpenOptions {
  /** ms to wait for the file store's lock before failing as STORE_UNAVAILABLE */
  lockTimeout?: number;
  /**
   * The Redis client: 'ioredis' reconnects and follows Sentinel failovers, for
   * long-lived processes (the agent); 'resp' is berth's lean client, for
   * one-shot processes (plugins, CLI), which start ~85 ms faster without ioredis.
   * Default: 'resp'. A Redis Cluster always gets 'resp' (see ioredis-conn.ts).
   */
  redisClient?: 'ioredis' | 'resp';
  /** hears of a problem that does not stop the store opening (a password file others can read) */
  warn?: Warn;
}

/** Opens a store from its URL (see CONTRACT.md). */
export async function openStore(url: string, opts: OpenOptions = {}): Promise<Store> {
  const loc = parseStoreUrl(url);
  if (loc.kind === 'file') {
    const { FileStore } = await import('./file-store.js');
    return new FileStore(loc.dir, opts);
  }
  const { RedisStore } = await import('./redis-store.js');
  const conn = await connectRedis(loc, opts.redisClient ?? 'resp', opts.warn);
  return new RedisStore(conn, loc, redact(url));
}

/** A connection to the Redis a location names, through the client asked for ('resp' for a cluster, whatever was asked). */
export async function connectRedis(loc: RedisLocation, client: 'ioredis' | 'resp', warn?: Warn): Promise<RedisConn> {
  if (client === 'ioredis' && !loc.cluster) {
    const { IoredisConn } = await import('./ioredis-conn.js');
    return new IoredisConn(loc, warn);
  }
  const { RespClient } = await import('./resp-client.js');
  return new RespClient(loc, warn);
}

/**
 * One Redis store per URL, kept open between operations: for plugins running
 * inside a long-lived process (the agent), where opening a connection for
 * every call costs round trips that a start storm makes slow. A thread that
 * runs plugins keeps one cache and hands it to each call (Request.stores).
 * The file store is cheap to open and is always opened per operation.
 */
export class StoreCache {
  readonly kept = new Map<string, Promise<Store>>();
  /** operations running on each kept store, and the kept stores to close once they have none */
  readonly users = new Map<Store, number>();
  readonly doomed = new Set<Store>();

  /** Closes every kept store. */
  async close(): Promise<void> {
    const stores = [...this.kept.values()];
    this.kept.clear();
    for (const s of this.doomed) stores.push(Promise.resolve(s));
    this.doomed.clear();
    this.users.clear();
    await Promise.all(stores.map(async (s) => (await s.catch(() => undefined))?.close().catch(() => {})));
  }

  async release(store: Store): Promise<void> {
    const n = (this.users.get(store) ?? 1) - 1;
    if (n > 0) {
      this.users.set(store, n);
      return;
    }
    this.users.delete(store);
    if (this.doomed.delete(store)) await store.close().catch(() => {});
  }
}

/**
 * Runs fn with the store at url: opened for it and closed after, or, with
 * a cache, the cache's kept store. A kept store that fails
 * as unreachable (STORE_UNAVAILABLE: a reset connection, a timeout, a
 * replica answering READONLY) or with anything but a domain error is no
 * longer handed out, is closed once the operations on it are done, and fn
 * runs once more on a fresh one; so fn must be safe to repeat: berth's
 * allocate and release are.
 */
export async function withStore<T>(
  url: string,
  opts: OpenOptions,
  fn: (store: Store) => Promise<T>,
  isDomainError: (err: unknown) => boolean,
  cache?: StoreCache,
): Promise<T> {
  if (!cache || parseStoreUrl(url).kind !== 'redis') {
    const store = await openStore(url, opts);
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }
  const kept = cache.kept;
  const key = `${opts.redisClient ?? 'resp'} ${url}`;
  for (let attempt = 0; ; attempt++) {
    const reused = kept.has(key);
    let opening = kept.get(key);
    if (!opening) {
      opening = openStore(url, opts);
      kept.set(key, opening);
      opening.catch(() => kept.get(key) === opening && kept.delete(key));
    }
    const store = await opening;
    cache.users.set(store, (cache.users.get(store) ?? 0) + 1);
    try {
      return await fn(store);
    } catch (err) {
      const broken = isBerthError(err, 'STORE_UNAVAILABLE') || !isDomainError(err);
      if (!broken) throw err;
      if (kept.get(key) === opening) kept.delete(key);
      cache.doomed.add(store);
      if (!reused || attempt > 0) throw err;
    } finally {
      await cache.release(store);
    }
  }
}
