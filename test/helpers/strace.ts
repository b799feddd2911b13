// Runs a command under strace and reads from the trace whether each
// acknowledgement came after the syncs that make its change durable.
//
// The rule checked: when the acknowledgement (a write to fd 1 by the traced
// process's main thread) starts, every file under the watched directory that
// was written, truncated or renamed must have had an fsync/fdatasync of it
// start after that write completed, and every directory in which a name was
// renamed, created exclusively (O_EXCL), made (mkdir) or unlinked must have
// had an fsync of the directory start after that. What is still unsynced is
// reported per acknowledgement; the test decides which of it matters.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

const SYSCALLS = [
  'write', 'pwrite64', 'writev', 'pwritev', 'pwritev2', 'ftruncate',
  'fsync', 'fdatasync',
  'rename', 'renameat', 'renameat2', 'openat', 'open', 'creat', 'unlink', 'unlinkat', 'mkdir', 'mkdirat',
];

/** What strace is missing for, or null when it runs here. */
export function straceMissing(): string | null {
  return spawnSync('strace', ['-V']).status === 0 ? null : 'strace is not installed (Debian strace; scripts/test-deps.sh installs it)';
}

/** Ends a test early when strace is missing on a developer machine; under CI=true it fails instead. */
export function skipWithoutStrace(t: { plan: (n: number, why?: string) => void; fail: (msg: string) => void }): boolean {
  const missing = straceMissing();
  if (!missing) return false;
  if (process.env.CI === 'true') t.fail(missing);
  else t.plan(0, missing);
  return true;
}

/** One system call: started at line `start`, returned at line `end`. */
export interface Syscall {
  pid: number;
  name: string;
  args: string;
  ret: string;
  start: number;
  end: number;
}

/** Parses `strace -f -y` output (with unfinished/resumed pairs) into calls, in order of return. */
export function parseTrace(text: string): Syscall[] {
  const calls: Syscall[] = [];
  const pending = new Map<number, { name: string; args: string; start: number }>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    let m = /^(\d+) +<\.\.\. (\w+) resumed>(.*)\) += (.*)$/.exec(line);
    if (m) {
      const pid = Number(m[1]);
      const p = pending.get(pid);
      pending.delete(pid);
      if (p) calls.push({ pid, name: p.name, args: p.args + m[3], ret: m[4]!, start: p.start, end: i });
      continue;
    }
    m = /^(\d+) +(\w+)\((.*) <unfinished \.\.\.>$/.exec(line);
    if (m) {
      pending.set(Number(m[1]), { name: m[2]!, args: m[3]!, start: i });
      continue;
    }
    m = /^(\d+) +(\w+)\((.*)\) += (.*)$/.exec(line);
    if (m) calls.push({ pid: Number(m[1]), name: m[2]!, args: m[3]!, ret: m[4]!, start: i, end: i });
  }
  return calls;
}

/** Something changed under the watched directory and not yet synced. */
export interface Unsynced {
  kind: 'data' | 'rename' | 'create' | 'unlink';
  /** the file (data) or the name (rename, create, unlink) */
  path: string;
}

export interface Ack {
  /** the acknowledgement's bytes as strace printed them */
  text: string;
  /** files written or truncated under the watched directory before this acknowledgement (since the one before) */
  written: string[];
  /** names renamed under it in the same span */
  renamed: string[];
  unsynced: Unsynced[];
}

/** The path strace -y printed for an fd argument: `21</tmp/x/journal.log>`. */
function fdPath(arg: string): string | undefined {
  return /^-?\d+<([^>]*)>/.exec(arg)?.[1] ?? /^AT_FDCWD<([^>]*)>/.exec(arg)?.[1];
}

/** The quoted strings of an argument list, unescaped enough for paths. */
function quoted(args: string): string[] {
  return [...args.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'));
}

/**
 * Walks the calls and reports, at each acknowledgement, what was still
 * unsynced under root. With `atExit`, the end of the trace is one more
 * acknowledgement (a command whose exit status is its answer).
 */
export function checkAcks(calls: Syscall[], opts: { root: string; ackPid: number; ack: RegExp; atExit?: boolean }): Ack[] {
  const under = (p: string) => p === opts.root || p.startsWith(`${opts.root}/`);
  // path -> line where the unsynced change completed
  const data = new Map<string, number>();
  const names = new Map<string, { kind: Unsynced['kind']; dir: string; at: number }>();
  const acks: Ack[] = [];
  let written = new Set<string>();
  let renamed = new Set<string>();
  const ok = (c: Syscall) => !c.ret.startsWith('-1');
  const nameChange = (kind: Unsynced['kind'], path: string, at: number) => {
    if (under(path)) names.set(`${kind}:${path}`, { kind, dir: dirname(path), at });
  };
  // events in the order they happened: a call's effect at its return, an fsync's coverage from its start
  const events: Array<{ line: number; call: Syscall; phase: 'start' | 'end' }> = [];
  for (const c of calls) {
    events.push({ line: c.start, call: c, phase: 'start' }, { line: c.end, call: c, phase: 'end' });
  }
  events.sort((a, b) => a.line - b.line || (a.phase === 'start' ? -1 : 1));
  const acknowledge = (text: string) => {
    const unsynced: Unsynced[] = [];
    for (const path of data.keys()) unsynced.push({ kind: 'data', path });
    for (const [key, n] of names) unsynced.push({ kind: n.kind, path: key.slice(n.kind.length + 1) });
    acks.push({ text, written: [...written], renamed: [...renamed], unsynced });
    written = new Set();
    renamed = new Set();
  };
  for (const { call: c, phase } of events) {
    if (phase === 'start') {
      if (c.pid === opts.ackPid && /^(write|writev)$/.test(c.name) && /^1</.test(c.args) && opts.ack.test(c.args)) acknowledge(c.args);
      continue;
    }
    if (!ok(c)) continue;
    const path = fdPath(c.args);
    switch (c.name) {
      case 'write':
      case 'pwrite64':
      case 'writev':
      case 'pwritev':
      case 'pwritev2':
      case 'ftruncate':
        if (path && under(path)) {
          data.set(path, c.end);
          written.add(path);
        }
        break;
      case 'fsync':
      case 'fdatasync':
        if (!path) break;
        if ((data.get(path) ?? Infinity) < c.start) data.delete(path);
        for (const [key, n] of names) if (n.dir === path && n.at < c.start) names.delete(key);
        break;
      case 'rename':
      case 'renameat':
      case 'renameat2': {
        const [from, to] = quoted(c.args);
        if (!from || !to) break;
        // unsynced data goes with the file to its new name
        const at = data.get(from);
        if (at !== undefined) {
          data.delete(from);
          data.set(to, at);
        }
        nameChange('rename', to, c.end);
        if (under(to)) renamed.add(to);
        break;
      }
      case 'openat':
      case 'open':
      case 'creat': {
        const file = quoted(c.args)[0];
        if (file && /O_CREAT/.test(c.args) && /O_EXCL/.test(c.args)) nameChange('create', file, c.end);
        break;
      }
      case 'mkdir':
      case 'mkdirat': {
        const dir = quoted(c.args)[0];
        if (dir) nameChange('create', dir, c.end);
        break;
      }
      case 'unlink':
      case 'unlinkat': {
        const file = quoted(c.args)[0];
        if (!file) break;
        data.delete(file); // a file gone needs no sync of its data
        nameChange('unlink', file, c.end);
        break;
      }
    }
  }
  if (opts.atExit) acknowledge('(exit)');
  return acks;
}

/** Runs command under `strace -f -y`, feeding it stdin; returns its exit code, stdout, stderr and the parsed trace. */
export async function straced(
  command: string[],
  opts: { traceFile: string; env?: NodeJS.ProcessEnv; stdin?: string; timeoutMs?: number },
): Promise<{ code: number | null; stdout: string; stderr: string; calls: Syscall[]; rootPid: number }> {
  const args = ['-f', '-qq', '--seccomp-bpf', '-y', '-s', '96', '-e', `trace=${SYSCALLS.join(',')}`, '-o', opts.traceFile, '--', ...command];
  const child = spawn('strace', args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin.end(opts.stdin ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  clearTimeout(timer);
  const text = readFileSync(opts.traceFile, 'utf8');
  rmSync(opts.traceFile, { force: true });
  // the first call traced is the command's own (nothing is forked before it); its main thread's tid is its pid
  const rootPid = Number(/^(\d+)/.exec(text)?.[1] ?? -1);
  return { code, stdout, stderr, calls: parseTrace(text), rootPid };
}
