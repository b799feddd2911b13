// Runs a real CNI plugin executable the way a runtime does: CNI_* in the
// environment, the config on stdin, the result or error on stdout.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/', import.meta.url));

export interface CniRun {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON */
  json: Record<string, any> | undefined;
}

/** Executes plugin `bin` with env and stdin; never rejects on a non-zero exit. */
export function runCni(bin: string, env: Record<string, string | undefined>, stdin: unknown, timeoutMs = 30000): Promise<CniRun> {
  return new Promise((resolve, reject) => {
    const clean: NodeJS.ProcessEnv = { PATH: process.env.PATH };
    // a test file run on the fast path (helpers/fast-path.ts) sets it for every plugin it runs
    if (process.env.BERTH_AGENT_SOCKET !== undefined) clean.BERTH_AGENT_SOCKET = process.env.BERTH_AGENT_SOCKET;
    for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
    const child = spawn(bin.includes('/') ? bin : `${BIN}${bin}`, [], { env: clean, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      let json: Record<string, any> | undefined;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, stdout, stderr, json });
    });
    child.stdin.end(typeof stdin === 'string' ? stdin : JSON.stringify(stdin));
  });
}

/** The CNI_* environment of one attachment. */
export function cniEnv(command: string, containerId: string, ifname = 'eth0', netns = '/var/run/netns/berth-test', extra: Record<string, string> = {}): Record<string, string> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_IFNAME: ifname, CNI_NETNS: netns, CNI_PATH: BIN, ...extra };
}
