// Executes a CNI plugin of another project, as a runtime does: the executable
// with the CNI_* environment and the config on stdin, an argument array and
// never a shell. What a plugin may print and how long it may take are
// bounded: past either it is killed and the call fails.
import { createRequire } from 'node:module';
import { CNI_CODES, CniError } from './errors.js';

export interface PluginOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Bytes a plugin may print on stdout: a CNI result is a few KiB. */
export const MAX_STDOUT = 1024 * 1024;
/** Bytes of stderr kept: its start says why a plugin failed. */
const MAX_STDERR = 64 * 1024;

export interface ExecLimits {
  timeoutMs: number;
  maxStdout?: number;
}

/**
 * Runs the plugin at `file`; `what` names it in errors ("IPAM plugin "x"").
 * Resolves with its exit code and output, whatever the code; rejects with a
 * CniError (IO_FAILURE) when it cannot start, prints more than maxStdout on
 * stdout, or runs past timeoutMs.
 */
export function execPlugin(file: string, what: string, env: NodeJS.ProcessEnv, stdin: string, limits: ExecLimits): Promise<PluginOutput> {
  const maxStdout = limits.maxStdout ?? MAX_STDOUT;
  // loaded on the first call: a require, since bundles run without a dynamic-import hook (cni/boot.cjs)
  const { spawn } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let outBytes = 0;
    const err: Buffer[] = [];
    let errBytes = 0;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (cause: string) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      reject(new CniError(CNI_CODES.IO_FAILURE, `failed to run ${what}: ${cause}`));
    };
    // Closing our ends as well: a process the plugin started may hold its stdout and would keep it open.
    const kill = (cause: string) => {
      fail(`${cause}; killed`);
      child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
    };
    timer = setTimeout(() => kill(`no answer within ${limits.timeoutMs} ms`), limits.timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      outBytes += c.length;
      if (outBytes > maxStdout) kill(`it printed more than ${maxStdout} bytes on stdout`);
      else out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      if (errBytes >= MAX_STDERR) return;
      err.push(c);
      errBytes += c.length;
    });
    child.on('error', (e) => fail(e.message));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      const stderr = Buffer.concat(err).subarray(0, MAX_STDERR).toString();
      resolve({
        code: code ?? 128,
        stdout: Buffer.concat(out).toString(),
        stderr: signal ? `killed by ${signal}${stderr ? `: ${stderr}` : ''}` : stderr,
      });
    });
    child.stdin.on('error', () => {}); // a plugin that exits without reading stdin
    child.stdin.end(stdin);
  });
}
