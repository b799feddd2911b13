// tcpdump in a test's network namespace, its lines read as they come.
import { spawn } from 'node:child_process';

export interface Capture {
  lines: string[];
  /** the first line matching re, waiting for it at most ms; undefined when none came */
  waitFor(re: RegExp, ms?: number): Promise<string | undefined>;
  /** the lines matching re once there are n of them, waiting at most ms; fewer when fewer came */
  waitForCount(re: RegExp, n: number, ms?: number): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * tcpdump on an interface in a namespace, link-level headers shown: the kernel
 * here has no 8021q module, yet tcpdump prints a frame's VLAN tag from the
 * packet socket's auxdata. Resolves once tcpdump listens. ns '': the host's.
 */
export async function capture(t: { teardown: (fn: () => unknown) => void }, ns: string, ifname: string): Promise<Capture> {
  const tcpdump = ['tcpdump', '-i', ifname, '-e', '-n', '-t', '-l', '--immediate-mode'];
  const [cmd, ...args] = ns ? ['ip', 'netns', 'exec', ns, ...tcpdump] : tcpdump;
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const listeners = new Set<() => void>();
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    const done = out.split('\n');
    out = done.pop()!;
    lines.push(...done);
    for (const l of listeners) l();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
    for (const l of listeners) l();
  });
  child.on('exit', () => {
    for (const l of listeners) l();
  });
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  t.teardown(stop);
  const until = <T>(found: () => T | undefined, ms: number) =>
    new Promise<T | undefined>((resolve) => {
      const check = () => {
        const hit = found();
        if (hit === undefined && child.exitCode === null && child.signalCode === null) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve(hit);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        resolve(found());
      }, ms);
      listeners.add(check);
      check();
    });
  if (!(await until(() => (/listening on/.test(err) ? true : undefined), 10000))) {
    await stop();
    throw new Error(`failed to start tcpdump on "${ifname}" in "${ns}": ${err.trim() || 'no "listening on" within 10 s'}`);
  }
  const matching = (re: RegExp) => lines.filter((l) => re.test(l));
  return {
    lines,
    waitFor: (re, ms = 5000) => until(() => lines.find((l) => re.test(l)), ms),
    waitForCount: async (re, n, ms = 5000) => (await until(() => (matching(re).length >= n ? true : undefined), ms), matching(re)),
    stop,
  };
}
