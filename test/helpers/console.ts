// A real console on a free loopback port: in this process (runConsole) or as
// `bin/berth console`, a process of its own; stopped at teardown either way.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runConsole } from '../../console/daemon.js';
import { freePort } from './redis.js';

const BERTH = fileURLToPath(new URL('../../bin/berth', import.meta.url));

interface TapLike {
  teardown: (fn: () => unknown) => void;
}

export interface RunningConsole {
  /** http://127.0.0.1:PORT */
  base: string;
  /** the parsed log lines so far */
  logs: Array<Record<string, unknown>>;
}

/** Starts runConsole in this process; `token` undefined: read-only. */
export async function startConsole(t: TapLike, store: string, token?: string): Promise<RunningConsole> {
  const port = await freePort();
  let stop!: () => void;
  const until = new Promise<void>((r) => (stop = r));
  const logs: Array<Record<string, unknown>> = [];
  let listening!: () => void;
  const up = new Promise<void>((r) => (listening = r));
  const running = runConsole({
    listen: `127.0.0.1:${port}`,
    store,
    env: token === undefined ? {} : { BERTH_CONSOLE_TOKEN: token },
    warn: () => {},
    until,
    logDest: {
      write(line: string) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'berth console listening') listening();
      },
    },
  });
  t.teardown(async () => {
    stop();
    await running.catch(() => {});
  });
  await Promise.race([up, running.then(() => Promise.reject(new Error('the console stopped before it listened')))]);
  return { base: `http://127.0.0.1:${port}`, logs };
}

/** Starts `bin/berth console` as a process of its own; `env` adds to PATH. */
export async function spawnConsole(t: TapLike, store: string, env: NodeJS.ProcessEnv = {}): Promise<RunningConsole> {
  const port = await freePort();
  const child = spawn(process.execPath, [BERTH, '--store', store, 'console', '--listen', `127.0.0.1:${port}`], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`bin/berth console did not start within 20 s: ${stderr}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'berth console listening') {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`bin/berth console exited: ${stderr}`));
    });
  });
  return { base: `http://127.0.0.1:${port}`, logs };
}
