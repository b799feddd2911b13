// Opens the store a URL names. Each store and client module is loaded only
// when used: a process on the file store never loads a Redis client, and
// one-shot processes never load ioredis.
import type { Store } from './model.js';
import type { RedisConn, RedisLocation } from './redis-conn.js';
import { isBerthError } from './errors.js';
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

// One Redis store per URL, kept open between operations: for plugins running
// inside a long-lived process (the agent), where opening a connection for
// every call costs round trips that a start storm makes slow. The file store
// is cheap to open and is always opened per operation.
let shared: Map<string, Promise<Store>> | undefined;

/** From now on, withStore keeps one open Redis store per URL in this thread, until closeSharedStores. */
export function shareStores(): void {
  shared ??= new Map();
}

/** Closes the stores withStore kept open, and stops keeping them. */
export async function closeSharedStores(): Promise<void> {
  const stores = shared ? [...shared.values()] : [];
  shared = undefined;
  for (const s of doomed) stores.push(Promise.resolve(s));
  doomed.clear();
  users.clear();
  await Promise.all(stores.map(async (s) => (await s.catch(() => undefined))?.close().catch(() => {})));
}

/** Operations running on each kept store, and the kept stores to close once they have none. */
const users = new Map<Store, number>();
const doomed = new Set<Store>();

async function release(store: Store): Promise<void> {
  const n = (users.get(store) ?? 1) - 1;
  if (n > 0) {
    users.set(store, n);
    return;
  }
  users.delete(store);
  if (doomed.delete(store)) await store.close().catch(() => {});
}

/**
 * Runs fn with the store at url: opened for it and closed after, or, once
 * shareStores() was called, the thread's kept store. A kept store that fails
 * as unreachable (STORE_UNAVAILABLE: a reset connection, a timeout, a
 * replica answering READONLY) or with anything but a domain error is no
 * longer handed out, is closed once the operations on it are done, and fn
 * runs once more on a fresh one; so fn must be safe to repeat: berth's
 * allocate and release are.
 */
export async function withStore<T>(url: string, opts: OpenOptions, fn: (store: Store) => Promise<T>, isDomainError: (err: unknown) => boolean): Promise<T> {
  if (!shared || parseStoreUrl(url).kind !== 'redis') {
    const store = await openStore(url, opts);
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  }
  const kept = shared;
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
    users.set(store, (users.get(store) ?? 0) + 1);
    try {
      return await fn(store);
    } catch (err) {
      const broken = isBerthError(err, 'STORE_UNAVAILABLE') || !isDomainError(err);
      if (!broken) throw err;
      if (kept.get(key) === opening) kept.delete(key);
      doomed.add(store);
      if (!reused || attempt > 0) throw err;
    } finally {
      await release(store);
    }
  }
}
