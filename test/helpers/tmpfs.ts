// A small tmpfs of its own for a test: a real disk that fills up.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const mounted = new Set<string>();
let hooked = false;

function unmount(dir: string): void {
  if (mounted.has(dir)) {
    // lazy: a process still holding a file open there cannot keep the mount
    spawnSync('umount', ['-l', dir]);
    mounted.delete(dir);
  }
  rmSync(dir, { recursive: true, force: true });
}

/** What keeps a tmpfs from being mounted here, or null. */
export function tmpfsMissing(): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'berth-tmpfs-probe-'));
  try {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' });
    if (r.status !== 0) return `cannot mount a tmpfs (needs root and mount(2)): ${(r.stderr || r.error?.message || '').trim()}`;
    spawnSync('umount', [dir]);
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Ends a test early when no tmpfs can be mounted on a developer machine; under CI=true it fails instead. */
export function skipWithoutTmpfs(t: { plan: (n: number, why?: string) => void; fail: (msg: string) => void }): boolean {
  const missing = tmpfsMissing();
  if (!missing) return false;
  if (process.env.CI === 'true') t.fail(missing);
  else t.plan(0, missing);
  return true;
}

/** Mounts a tmpfs of `size` (mount's syntax: 256k) on a new directory, unmounted and removed at teardown, or at exit. */
export function mountTmpfs(t: { teardown: (fn: () => unknown) => void }, size: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`failed to mount a tmpfs on "${dir}": ${r.stderr.trim()}`);
  }
  mounted.add(dir);
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const d of [...mounted]) unmount(d);
    });
  }
  t.teardown(() => unmount(dir));
  return dir;
}
