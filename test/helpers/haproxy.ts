// A real HAProxy in master-worker mode for a test (private sockets and
// config in a temporary dir), HTTP backends in network namespaces on a test
// bridge, and a load generator in a client namespace that counts every
// failed request.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HaproxyApi } from '../../lb/haproxy-api.js';
import { atExit } from './agent.js';
import { ip, uniqueName } from './netns.js';

export function haproxyMissing(): string | null {
  return spawnSync('haproxy', ['-v']).status === 0 ? null : 'haproxy is not installed (Debian haproxy)';
}

export function skipWithoutHaproxy(t: { plan: (n: number, why?: string) => void; fail: (m: string) => void }): boolean {
  const missing = haproxyMissing();
  if (!missing) return false;
  if (process.env.CI === 'true') t.fail(missing);
  else t.plan(0, missing);
  return true;
}

/** Starts `haproxy -W -S MASTER -f CONFIG` on an existing config; resolves once its stats socket answers. */
export async function startHaproxy(config: string, socket: string, masterSocket: string): Promise<{ stop(): Promise<void>; log(): string }> {
  const child: ChildProcess = spawn('haproxy', ['-W', '-S', masterSocket, '-f', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  atExit(() => child.kill('SIGKILL'));
  const api = new HaproxyApi(socket);
  const deadline = Date.now() + 20000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}: ${text}`);
    try {
      await api.pid();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`haproxy did not answer on ${socket}: ${text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    log: () => text,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** A bridge with an address on the host, and helpers to put namespaces on it. */
export function testLan(prefix: string, hostCidr: string) {
  const bridge = uniqueName(prefix);
  ip('link', 'add', bridge, 'type', 'bridge');
  ip('addr', 'add', hostCidr, 'dev', bridge);
  ip('link', 'set', bridge, 'up');
  const namespaces: string[] = [];
  return {
    bridge,
    /** a namespace with `cidr` on eth0, plugged into the bridge */
    host(cidr: string): string {
      const ns = uniqueName('lbn');
      const hv = uniqueName('lbv');
      ip('netns', 'add', ns);
      namespaces.push(ns);
      ip('link', 'add', hv, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('link', 'set', hv, 'master', bridge);
      ip('link', 'set', hv, 'up');
      ip('-n', ns, 'addr', 'add', cidr, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      return ns;
    },
    cleanup(): void {
      for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
      spawnSync('ip', ['link', 'del', bridge]);
    },
  };
}

const SERVER = `const http = require('http');
const [port, name, delay] = process.argv.slice(2);
let health = 0, served = 0;
http.createServer((q, r) => {
  if (q.url === '/health') return health++, r.end('ok');
  if (served++ === 0) process.stdout.write('first ' + health + '\\n');
  setTimeout(() => r.end(name), Number(delay));
}).listen(Number(port), '0.0.0.0', () => process.stdout.write('listening\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

const LOAD = `const http = require('http');
const [url, conc] = process.argv.slice(2);
let ok = 0, fail = 0, stop = false;
const by = {}, errs = [];
process.on('SIGTERM', () => { stop = true; });
function one() {
  return new Promise((res) => {
    const req = http.get(url, { agent: false, timeout: 10000 }, (r) => {
      let b = '';
      r.on('data', (c) => (b += c));
      r.on('end', () => {
        if (r.statusCode === 200) { ok++; by[b] = (by[b] || 0) + 1; } else { fail++; errs.push('HTTP ' + r.statusCode); }
        res();
      });
      r.on('error', (e) => { fail++; errs.push(e.code || e.message); res(); });
    });
    req.on('error', (e) => { fail++; errs.push(e.code || e.message); res(); });
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}
async function loop() { while (!stop) await one(); }
process.stdout.write('started\\n');
Promise.all(Array.from({ length: Number(conc) }, loop)).then(() => {
  process.stdout.write(JSON.stringify({ ok, fail, by, errs: errs.slice(0, 20) }) + '\\n');
});
`;

export interface LoadResult {
  ok: number;
  fail: number;
  by: Record<string, number>;
  errs: string[];
}

export interface TestBackend {
  /** health checks (HAProxy's and berth's) answered before the first other request; undefined until that request */
  healthBeforeFirst(): number | undefined;
  kill(sig?: NodeJS.Signals): Promise<void>;
}

/** Starts an HTTP backend named `name` on `port` inside `ns`; kill() stops it abruptly. */
export async function startBackend(dir: string, ns: string, port: number, name: string, delayMs: number): Promise<TestBackend> {
  const file = join(dir, 'backend.cjs');
  writeFileSync(file, SERVER);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, file, String(port), name, String(delayMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  atExit(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`backend ${name} exited ${code}`)));
  });
  return {
    healthBeforeFirst: () => {
      const m = /^first (\d+)$/m.exec(out);
      return m ? Number(m[1]) : undefined;
    },
    kill: (sig: NodeJS.Signals = 'SIGKILL') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(sig);
      }),
  };
}

/** Starts the load generator in `ns` against `url`; stop() ends it and returns what it counted. */
export async function startLoad(dir: string, ns: string, url: string, concurrency: number): Promise<{ stop(): Promise<LoadResult> }> {
  const file = join(dir, 'load.cjs');
  writeFileSync(file, LOAD);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, file, url, String(concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] });
  atExit(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return {
    stop: () =>
      new Promise<LoadResult>((resolve, reject) => {
        child.once('exit', () => {
          const line = out.split('\n').find((l) => l.startsWith('{'));
          if (!line) reject(new Error(`the load generator printed no result: ${out}`));
          else resolve(JSON.parse(line) as LoadResult);
        });
        child.kill('SIGTERM');
      }),
  };
}
