// Starts a private redis-server for a test file, on a free loopback port.
//
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { atExit } from './at-exit.js';

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** a store URL with a fresh random key prefix, so tests never see each other's keys */
  freshUrl(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
  cli(...args: string[]): string;
  /** sends a signal without waiting (SIGSTOP/SIGCONT to make Redis stop answering) */
  signal(sig: NodeJS.Signals): void;
}

/** The redis-server binary, or null when it is not installed. */
export function redisServerBinary(): string | null {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) {
    const r = spawnSync(p, ['--version']);
    if (r.status === 0) return p;
  }
  return null;
}

/**
 * Ends a test file early (plan 0) when redis-server is missing on a developer
 * machine. Under CI=true it returns false, so startRedis() throws and the test
 * fails: CI must prove the Redis store, not quietly pass without it.
 */
export function skipWithoutRedis(t: { plan: (n: number, why?: string) => void }): boolean {
  if (redisServerBinary() || process.env.CI === 'true') return false;
  t.plan(0, 'redis-server is not installed (scripts/test-deps.sh installs it)');
  return true;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, up: boolean, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open === up) return;
    if (Date.now() > deadline) throw new Error(`redis on port ${port} did not come ${up ? 'up' : 'down'}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface RedisOptions {
  /** extra redis.conf lines */
  config?: string[];
  /** keep an append-only file, fsync'd on every write */
  durable?: boolean;
  /** listen here rather than on a fresh free port */
  port?: number;
  /** serve TLS only, with these PEM files */
  tls?: { cert: string; key: string; ca: string };
}

/** Starts redis-server; call stop() in teardown. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const bin = redisServerBinary();
  if (!bin) throw new Error('redis-server is not installed');
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'berth-redis-'));
  const conf = [
    `port ${port}`,
    'bind 127.0.0.1',
    `dir ${dir}`,
    "save ''",
    opts.durable ? 'appendonly yes' : 'appendonly no',
    opts.durable ? 'appendfsync always' : '',
    ...(opts.tls
      ? ['port 0', `tls-port ${port}`, `tls-cert-file ${opts.tls.cert}`, `tls-key-file ${opts.tls.key}`, `tls-ca-cert-file ${opts.tls.ca}`, 'tls-auth-clients no']
      : []),
    ...(opts.config ?? []),
  ].join('\n');
  writeFileSync(join(dir, 'redis.conf'), conf);
  let child: ChildProcess | null = null;
  const server: RedisServer = {
    port,
    dir,
    url: `${opts.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}/0`,
    freshUrl: () => `${opts.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}/0?prefix=t${randomBytes(4).toString('hex')}`,
    async start() {
      child = spawn(bin, [join(dir, 'redis.conf')], { stdio: 'ignore' });
      child.unref(); // killed at process exit; must not keep the test process alive
      await waitForPort(port, true);
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.ref(); // keep the process alive until the exit is seen
      c.kill(signal);
      await exited;
      child = null;
    },
    signal(sig: NodeJS.Signals) {
      (child as ChildProcess | null)?.kill(sig);
    },
    cli(...args: string[]) {
      const r = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' });
      return r.stdout.trim();
    },
  };
  await server.start();
  atExit(() => {
    (child as ChildProcess | null)?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}
