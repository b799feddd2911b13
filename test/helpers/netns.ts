// Network namespaces for tests: created with iproute2 under unique names, and
// removed at teardown. Only these namespaces and loopback carry test traffic.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

/** Runs `ip` with arguments; throws with its stderr on failure. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A unique short name with a prefix (interface names must stay within 15 bytes). */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(3).toString('hex')}`;
}

/** Whether this process may create network namespaces (root, iproute2 present). */
export function canNetns(): boolean {
  return process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0;
}

interface TapLike {
  plan: (n: number, why?: string) => void;
  teardown: (fn: () => unknown) => void;
}

/** Ends the file early when namespaces cannot be made, except under CI=true (then the test fails). */
export function skipWithoutNetns(t: TapLike): boolean {
  if (canNetns() || process.env.CI === 'true') return false;
  t.plan(0, 'network namespaces need root and iproute2');
  return true;
}

/** Creates a namespace, deleted at teardown; returns its name and path. */
export function netns(t: TapLike, prefix = 'bt'): { name: string; path: string } {
  const name = uniqueName(prefix);
  ip('netns', 'add', name);
  t.teardown(() => {
    spawnSync('ip', ['netns', 'del', name]);
  });
  return { name, path: `/var/run/netns/${name}` };
}

/** Deletes a link at teardown if it exists. */
export function cleanupLink(t: TapLike, name: string): void {
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', name]);
  });
}

/** True when a file exists (for the reference plugins). */
export function haveFile(path: string): boolean {
  return existsSync(path);
}
