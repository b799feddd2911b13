// Opens the store a URL names. Each store and client module is loaded only
// when used: a process on the file store never loads a Redis client, and
// one-shot processes never load ioredis.
import type { Store } from './model.js';
import { parseStoreUrl, redact } from './store-url.js';

export interface OpenOptions {
  /** ms to wait for the file store's lock before failing as STORE_UNAVAILABLE */
  lockTimeout?: number;
  /**
   * The Redis client: 'ioredis' reconnects and follows Sentinel failovers, for
   * long-lived processes (the agent); 'resp' is berth's lean client, for
   * one-shot processes (plugins, CLI), which start ~85 ms faster without ioredis.
   * Default: 'resp'.
   */
  redisClient?: 'ioredis' | 'resp';
}

/** Opens a store from its URL (see CONTRACT.md). */
export async function openStore(url: string, opts: OpenOptions = {}): Promise<Store> {
  const loc = parseStoreUrl(url);
  if (loc.kind === 'file') {
    const { FileStore } = await import('./file-store.js');
    return new FileStore(loc.dir, opts);
  }
  const { RedisStore } = await import('./redis-store.js');
  const conn = await connect(loc, opts.redisClient ?? 'resp');
  return new RedisStore(conn, loc.prefix, redact(url));
}

async function connect(loc: Extract<ReturnType<typeof parseStoreUrl>, { kind: 'redis' }>, client: 'ioredis' | 'resp') {
  if (client === 'ioredis') {
    const { IoredisConn } = await import('./ioredis-conn.js');
    return new IoredisConn(loc);
  }
  const { RespClient } = await import('./resp-client.js');
  return new RespClient(loc);
}
