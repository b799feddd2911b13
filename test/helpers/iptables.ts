// Loopback packet filters that cut test servers off from each other: a
// partition on one machine. Servers get their own 127.x source address
// (Redis 7's bind-source-addr), so a rule can drop what one of them sends to
// another port while clients on 127.0.0.1 still get through. Every rule is
// tagged with this process's pid and removed at teardown, at exit and on
// SIGINT/SIGTERM; rules a crashed test process left behind are removed on
// first use here.
import { spawnSync } from 'node:child_process';

const CHAIN = 'INPUT';
const TAG = `berth-test-${process.pid}`;

/** One direction of TCP traffic on loopback to drop. */
export interface DropRule {
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
}

interface TapLike {
  plan: (n: number, why?: string) => void;
  teardown: (fn: () => unknown) => void;
}

/** Whether rules can be set here: iptables present and usable (root). */
export function canIptables(): boolean {
  return spawnSync('iptables', ['-w', '-S', CHAIN], { encoding: 'utf8' }).status === 0;
}

/** Ends the file early when iptables cannot be used, except under CI=true (then the test fails). */
export function skipWithoutIptables(t: TapLike): boolean {
  if (canIptables() || process.env.CI === 'true') return false;
  t.plan(0, 'iptables is missing or not usable (root; scripts/test-deps.sh installs it)');
  return true;
}

function spec(r: DropRule): string[] {
  const out = ['-i', 'lo', '-p', 'tcp'];
  if (r.src) out.push('-s', r.src);
  if (r.dst) out.push('-d', r.dst);
  if (r.sport !== undefined) out.push('--sport', String(r.sport));
  if (r.dport !== undefined) out.push('--dport', String(r.dport));
  return [...out, '-m', 'comment', '--comment', TAG, '-j', 'DROP'];
}

function iptables(args: string[]): void {
  const r = spawnSync('iptables', ['-w', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iptables ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

const live = new Set<string>();
let hooked = false;

/** Removes every rule this process set (best effort: at exit nothing may throw). */
export function removeAllRules(): void {
  for (const key of [...live]) {
    spawnSync('iptables', ['-w', '-D', CHAIN, ...(JSON.parse(key) as string[])]);
    live.delete(key);
  }
}

/** Removes rules tagged by processes that no longer run. */
function removeOrphans(): void {
  const listed = spawnSync('iptables', ['-w', '-S', CHAIN], { encoding: 'utf8' }).stdout ?? '';
  for (const line of listed.split('\n')) {
    const m = /--comment "?berth-test-(\d+)"?/.exec(line);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // its owner still runs
    } catch {
      // gone: its rules are ours to remove
    }
    spawnSync('iptables', ['-w', ...line.replace(/^-A /, '-D ').replace(/"/g, '').trim().split(/\s+/)]);
  }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  removeOrphans();
  process.once('exit', removeAllRules);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      removeAllRules();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
  }
}

/** A set of drop rules in force until heal() (or teardown). */
export interface Cut {
  heal(): void;
}

/** Drops the given traffic now; healed at teardown at the latest. */
export function cut(t: TapLike, rules: DropRule[]): Cut {
  hook();
  const keys = rules.map((r) => JSON.stringify(spec(r)));
  for (const key of keys) {
    iptables(['-I', CHAIN, ...(JSON.parse(key) as string[])]);
    live.add(key);
  }
  let healed = false;
  const heal = () => {
    if (healed) return;
    healed = true;
    for (const key of keys) {
      if (!live.delete(key)) continue;
      spawnSync('iptables', ['-w', '-D', CHAIN, ...(JSON.parse(key) as string[])]);
    }
  };
  t.teardown(heal);
  return { heal };
}

/** Rules cutting a server's port off from a source address, both ways. */
export function isolate(port: number, from: string): DropRule[] {
  return [
    { src: from, dport: port },
    { dst: from, sport: port },
  ];
}

/** The rules this process has in force (for asserting that teardown removed them). */
export function rulesInForce(): string[] {
  const listed = spawnSync('iptables', ['-w', '-S', CHAIN], { encoding: 'utf8' }).stdout ?? '';
  return listed.split('\n').filter((l) => l.includes(TAG));
}
