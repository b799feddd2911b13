// Opens the store a URL names. Each store module is loaded only when used, so
// a process that talks to the file store never pays for loading ioredis.
import type { Store } from './model.js';
import { parseStoreUrl } from './store-url.js';

export interface OpenOptions {
  /** ms to wait for the file store's lock before failing as STORE_UNAVAILABLE */
  lockTimeout?: number;
}

/** Opens a store from its URL (see CONTRACT.md). */
export async function openStore(url: string, opts: OpenOptions = {}): Promise<Store> {
  const loc = parseStoreUrl(url);
  if (loc.kind === 'file') {
    const { FileStore } = await import('./file-store.js');
    return new FileStore(loc.dir, opts);
  }
  const { RedisStore } = await import('./redis-store.js');
  return new RedisStore(loc, url);
}
