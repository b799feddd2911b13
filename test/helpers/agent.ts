// Runs `bin/berth agent` as a real process for a test, and talks to its socket.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentGet } from '../../cli/agent-client.js';
import { main } from '../../cli/main.js';
import { atExit } from './at-exit.js';
import { BIN } from './cni.js';
import { uniqueName } from './netns.js';

export interface AgentProcess {
  socket: string;
  /** the agent's process id */
  pid(): number;
  /** log lines so far (pino JSON) */
  log(): string;
  get<T = unknown>(path: string): Promise<{ status: number; body: T }>;
  /** waits until /readyz answers 200 */
  ready(timeoutMs?: number): Promise<void>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
  /** starts it again with the same config */
  restart(): Promise<void>;
}

/** Writes `config` to DIR/agent.json and starts the agent on it; waits until it is ready unless `opts.ready` is false. */
export async function startAgent(dir: string, config: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, opts: { ready?: boolean } = {}): Promise<AgentProcess> {
  const file = join(dir, 'agent.json');
  writeFileSync(file, JSON.stringify(config));
  const socket = String(config.socket);
  let child: ChildProcess;
  let text = '';
  const spawnIt = () => {
    child = spawn(join(BIN, 'berth'), ['agent', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, ...env } });
    child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  };
  spawnIt();
  atExit(() => child.kill('SIGKILL'));
  const a: AgentProcess = {
    socket,
    pid: () => child.pid!,
    log: () => text,
    get: async <T>(path: string) => (await agentGet(socket, path)) as { status: number; body: T },
    async ready(timeoutMs = 60000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`the agent exited ${child.exitCode}: ${text.slice(-3000)}`);
        try {
          if ((await agentGet(socket, '/readyz', 2000)).status === 200) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) throw new Error(`the agent was not ready within ${timeoutMs} ms: ${text.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    kill(signal) {
      return new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        child.once('exit', (code) => resolve(code));
        child.kill(signal);
      });
    },
    async restart() {
      spawnIt();
      await a.ready();
    },
  };
  try {
    if (opts.ready === false) await waitFor('the agent to listen', () => (existsSync(socket) ? true : undefined), 60000);
    else await a.ready();
  } catch (err) {
    // the caller gets no handle to stop it with; a test ended by its timeout never runs exit hooks
    await a.kill('SIGKILL');
    throw err;
  }
  return a;
}

/** Polls fn until it returns a value other than undefined, or fails after timeoutMs with `what`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface TapLike {
  teardown(fn: () => unknown): void;
}

/**
 * A pool and a berth-bridge network (its bridge removed at teardown), the
 * conflist written to DIR/net, naming the store unless `storeInNetwork` is
 * false (the agent's is then used). Returns the conf dir and the bridge name.
 */
export async function bridgeNetwork(
  t: TapLike,
  o: { dir: string; store: string; network: string; pool: string; subnet: string; gateway: string; hold: number; bridgePrefix: string; storeInNetwork?: boolean },
): Promise<{ netDir: string; bridge: string }> {
  const bridge = uniqueName(o.bridgePrefix);
  t.teardown(() => {
    spawnSync('ip', ['link', 'del', bridge]);
  });
  const quiet = { stdout: { write: () => true }, stderr: { write: (s: string) => process.stderr.write(s) }, env: {} };
  const created = await main(['--store', o.store, 'pool', 'create', o.pool, '--subnet', o.subnet, '--gateway', o.gateway, '--hold', String(o.hold)], quiet);
  if (created !== 0) throw new Error(`pool ${o.pool} could not be created`);
  const netDir = join(o.dir, 'net');
  mkdirSync(netDir, { recursive: true });
  writeFileSync(
    join(netDir, `10-${o.network}.conflist`),
    JSON.stringify({
      cniVersion: '1.1.0',
      name: o.network,
      plugins: [{ type: 'berth-bridge', bridge, isGateway: true, ipam: { type: 'berth-ipam', pool: o.pool, ...(o.storeInNetwork === false ? {} : { store: o.store }) } }],
    }),
  );
  return { netDir, bridge };
}

/** A short temporary directory, removed at exit. */
export function shortDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ba'));
  atExit(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export { atExit };

/**
 * The agent config every Docker test starts from: private paths under DIR,
 * quick reconciliations and retries, the engine's own containerd followed.
 */
export function agentConfig(
  dir: string,
  store: string,
  netDir: string,
  docker: { socket: string; containerdSocket: string; containerdNamespace: string },
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    store,
    cniConfDir: netDir,
    cniBinDir: BIN.replace(/\/$/, ''),
    dockerSocket: docker.socket,
    containerdSocket: docker.containerdSocket,
    containerdNamespace: docker.containerdNamespace,
    // a unix socket path must stay under 108 bytes; fixture dirs can be longer
    socket: join(shortDir(), 'agent.sock'),
    stateDir: join(dir, 'state'),
    reconcileInterval: 2,
    retryInterval: 0.2,
    ...extra,
  };
}
