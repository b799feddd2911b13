// Loads the berth_native addon (native/berth.cc), built by node-gyp on install.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Native {
  /** flock(2); false when LOCK_NB is set and the lock is held elsewhere */
  flock(fd: number, operation: number): boolean;
  /** a blocking flock(2) on the thread pool; one at a time per fd */
  flockWait(fd: number, operation: number): Promise<boolean>;
  LOCK_SH: number;
  LOCK_EX: number;
  LOCK_UN: number;
  LOCK_NB: number;
}

let loaded: Native | undefined;

/** The addon, loaded on first use; works from the sources (tsx) and from dist/. */
export function native(): Native {
  if (loaded) return loaded;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', 'build', 'Release', 'berth_native.node'), join(here, '..', '..', 'build', 'Release', 'berth_native.node')];
  const file = candidates.find((p) => existsSync(p));
  if (!file) {
    throw new Error(`failed to load berth_native: not built (run "npm ci" or "npx node-gyp rebuild"); looked in ${candidates.join(', ')}`);
  }
  loaded = createRequire(import.meta.url)(file) as Native;
  return loaded;
}
