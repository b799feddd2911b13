// Runs one body against each store kind: the embedded file store and a real
// Redis, so both are held to the same behaviour.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../ipam/open-store.js';
import type { Store } from '../../ipam/model.js';
import { skipWithoutRedis, startRedis, type RedisServer } from './redis.js';

/** The file store; Redis through berth's RESP client; Redis through ioredis (the agent's client). */
export type StoreKind = 'file' | 'redis' | 'ioredis';
export const STORE_KINDS: StoreKind[] = ['file', 'redis', 'ioredis'];
/** For tests that spawn processes: those always use the RESP client, so 'ioredis' adds nothing. */
export const PROCESS_STORE_KINDS: StoreKind[] = ['file', 'redis'];

let shared: Promise<RedisServer> | undefined;

/**
 * One redis-server per test process, stopped when the process ends. It runs
 * as the README recommends (AOF, fsync on every write), so that `berth ipam
 * check`, which fails on settings that can lose pool data, passes on it.
 */
export function sharedRedis(): Promise<RedisServer> {
  shared ??= startRedis({ durable: true });
  return shared;
}

interface TapLike {
  plan: (n: number, why?: string) => void;
  teardown: (fn: () => unknown) => void;
}

/** A fresh, empty store URL of the kind (a new directory, removed at teardown, or a new key prefix). */
export async function freshStoreUrl(t: TapLike, kind: StoreKind): Promise<string | null> {
  if (kind === 'file') {
    const dir = mkdtempSync(join(tmpdir(), 'berth-store-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    return `file://${dir}`;
  }
  if (skipWithoutRedis(t)) return null;
  return (await sharedRedis()).freshUrl();
}

/** Opens a fresh store of the kind, closed at teardown; null when the test was skipped. */
export async function freshStore(t: TapLike, kind: StoreKind): Promise<{ store: Store; url: string } | null> {
  const url = await freshStoreUrl(t, kind);
  if (!url) return null;
  const store = await openStore(url, { redisClient: kind === 'ioredis' ? 'ioredis' : 'resp' });
  t.teardown(() => store.close());
  return { store, url };
}
