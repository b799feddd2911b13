// DNS for tests: `bin/berth dns` as a real process on a free loopback port,
// dig (Debian bind9-dnsutils) to ask it, and real resolvers that forward to
// it: unbound and dnsmasq, each in the foreground on a private port and
// directory, killed at teardown or exit.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atExit } from './agent.js';
import { BIN } from './cni.js';
import { freePort } from './redis.js';

const TOOLS: Array<[string, string[], string]> = [
  ['dig', ['-v'], 'bind9-dnsutils'],
  ['unbound', ['-V'], 'unbound'],
  ['dnsmasq', ['--version'], 'dnsmasq-base'],
];

/** Which of dig, unbound and dnsmasq is missing, as a reason to skip (or, under CI=true, to fail); null when all are there. */
export function dnsToolsMissing(tools = ['dig', 'unbound', 'dnsmasq']): string | null {
  const missing = TOOLS.filter(([bin, args]) => tools.includes(bin) && spawnSync(bin, args).error !== undefined);
  return missing.length === 0 ? null : `${missing.map(([bin, , pkg]) => `${bin} (Debian ${pkg})`).join(', ')} not installed (scripts/test-deps.sh installs them)`;
}

/** A child process stopped with SIGTERM (SIGKILL after 5 s) at teardown, SIGKILL at exit. */
function stoppable(child: ChildProcess): () => Promise<void> {
  atExit(() => child.kill('SIGKILL'));
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
}

export interface BerthDns {
  port: number;
  /** its log so far (pino JSON lines, and stderr) */
  log(): string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts bin/berth dns on 127.0.0.1 and a free port; resolves once it answers. */
export async function startBerthDns(store: string, flags: string[] = []): Promise<BerthDns> {
  const child = spawn(join(BIN, 'berth'), ['dns', '--store', store, '--listen', '127.0.0.1:0', ...flags], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  const stop = stoppable(child);
  let text = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`berth dns did not start within 20 s: ${text}`)), 20000);
    const onData = (c: Buffer) => {
      text += c.toString();
      const m = /"listen":"127\.0\.0\.1:(\d+)"/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`berth dns exited ${code}: ${text}`));
    });
  });
  return { port, pid: child.pid!, log: () => text, stop };
}

export interface Rr {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

export interface DigResult {
  status: string;
  flags: string[];
  answer: Rr[];
  authority: Rr[];
  additional: Rr[];
  /** dig's whole output */
  text: string;
}

/** Asks 127.0.0.1:port with dig (UDP unless +tcp is among opts) and parses its answer. */
export function dig(port: number, name: string, type: string, opts: string[] = []): Promise<DigResult> {
  const args = ['@127.0.0.1', '-p', String(port), name, type, '+norec', '+time=2', '+tries=1', '+nocmd', '+noall', '+comments', '+answer', '+authority', '+additional', ...opts];
  return new Promise((resolve, reject) => {
    execFile('dig', args, { timeout: 15000 }, (err, stdout) => {
      const text = String(stdout);
      const status = /status: ([A-Z0-9_]+)/.exec(text)?.[1];
      if (!status) return reject(new Error(`dig ${args.join(' ')}: no answer${err ? ` (${err.message})` : ''}: ${text}`));
      const flags = (/;; flags: ([a-z ]*);/.exec(text)?.[1] ?? '').split(' ').filter(Boolean);
      const sections: Record<string, Rr[]> = { ANSWER: [], AUTHORITY: [], ADDITIONAL: [] };
      let section: Rr[] | undefined;
      for (const line of text.split('\n')) {
        const head = /^;; (\w+) SECTION:/.exec(line);
        if (head) section = sections[head[1]!];
        else if (line.startsWith(';;')) section = undefined;
        else if (section && !line.startsWith(';') && line.trim() !== '') {
          const [rrName, ttl, , rrType, ...data] = line.split(/\s+/);
          section.push({ name: rrName!, ttl: Number(ttl), type: rrType!, data: data.join(' ') });
        }
      }
      resolve({ status, flags, answer: sections.ANSWER!, authority: sections.AUTHORITY!, additional: sections.ADDITIONAL!, text });
    });
  });
}

/** The data of the answer's records, sorted: what most assertions compare. */
export const dataOf = (r: DigResult): string[] => r.answer.map((rr) => `${rr.type} ${rr.data}`).sort();

export interface Resolver {
  port: number;
  log(): string;
  stop(): Promise<void>;
}

/** A recursive resolver that forwards each of `zones` to 127.0.0.1:berth. */
export type ResolverKind = 'unbound' | 'dnsmasq';

/** The start of an unbound config for a private foreground instance: on 127.0.0.1@port, its files under dir, logging to stderr. */
export function unboundServer(dir: string, port: number, verbosity: number): string[] {
  return [
    'server:',
    `  interface: 127.0.0.1@${port}`,
    '  do-daemonize: no',
    '  username: ""',
    '  chroot: ""',
    `  directory: "${dir}"`,
    `  pidfile: "${join(dir, 'unbound.pid')}"`,
    '  use-syslog: no',
    '  logfile: ""',
    `  verbosity: ${verbosity}`,
  ];
}

/** Starts unbound (forward-zone) or dnsmasq (--server=/ZONE/127.0.0.1#PORT) on a free loopback port, in the foreground. */
export async function startResolver(kind: ResolverKind, berthPort: number, zones: string[]): Promise<Resolver> {
  const dir = mkdtempSync(join(tmpdir(), `berth-${kind}-`));
  atExit(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  let child: ChildProcess;
  if (kind === 'unbound') {
    const conf = join(dir, 'unbound.conf');
    writeFileSync(
      conf,
      [
        ...unboundServer(dir, port, 1),
        '  do-ip6: no',
        '  access-control: 127.0.0.0/8 allow',
        // berth dns is on loopback, which unbound refuses to query by default
        '  do-not-query-localhost: no',
        // no DNSSEC validation for names no one signs
        '  module-config: "iterator"',
        // unbound answers the private reverse zones itself unless told not to
        ...zones.filter((z) => z.endsWith('.arpa')).map((z) => `  local-zone: "${z}." transparent`),
        '  unblock-lan-zones: yes',
        '  insecure-lan-zones: yes',
        ...zones.flatMap((z) => ['forward-zone:', `  name: "${z}."`, `  forward-addr: 127.0.0.1@${berthPort}`]),
        '',
      ].join('\n'),
    );
    const check = spawnSync('unbound-checkconf', [conf], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`unbound-checkconf: ${check.stdout}${check.stderr}`);
    child = spawn('unbound', ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  } else {
    child = spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        '--no-resolv',
        '--no-hosts',
        '--no-poll',
        '--user=root',
        '--bind-interfaces',
        '--listen-address=127.0.0.1',
        `--port=${port}`,
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
        '--log-facility=-',
        ...zones.map((z) => `--server=/${z}/127.0.0.1#${berthPort}`),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  }
  let text = '';
  child.stdout!.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (text += c.toString()));
  const stop = stoppable(child);
  // answering: its own refusal of a name outside every forwarded zone comes back at once
  const deadline = Date.now() + 15000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${kind} exited ${child.exitCode}: ${text}`);
    const up = await dig(port, 'berth-probe.invalid', 'A', ['+time=1']).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${kind} did not answer within 15 s: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, log: () => text, stop };
}
