// Starts a private ovsdb-server and ovs-vswitchd for a test file: own database
// file, socket, pid, log and run directory under a temp dir, so a system-wide
// Open vSwitch (if any) is never touched. Both run as children of the test
// process (not --detach), so they are reaped and never outlive it.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

export interface OvsServer {
  dir: string;
  /** ovsdb-server's unix socket */
  sock: string;
  /** runs ovs-vsctl against this server and returns its trimmed stdout */
  vsctl(...args: string[]): Promise<string>;
  /** creates a userspace (netdev) bridge, deleted again at stop() */
  addBridge(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** True when the OVS daemons and tools are installed and we are root. */
export function haveOvs(): boolean {
  return (
    process.getuid?.() === 0 &&
    ['ovsdb-server', 'ovs-vswitchd', 'ovsdb-tool', 'ovs-vsctl'].every((b) => spawnSync(b, ['--version']).status === 0)
  );
}

/**
 * Ends a test file early (plan 0) when Open vSwitch is missing on a developer
 * machine; under CI=true it returns false so startOvs() throws and the test fails.
 */
export function skipWithoutOvs(t: { plan: (n: number, why?: string) => void }): boolean {
  if (haveOvs() || process.env.CI === 'true') return false;
  t.plan(0, 'Open vSwitch is not installed (scripts/test-deps.sh installs it)');
  return true;
}

async function waitForSocket(path: string, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ path });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`ovsdb-server did not listen on ${path}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function stopChild(c: ChildProcess | null): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts ovsdb-server and ovs-vswitchd on private paths; call stop() in teardown. */
export async function startOvs(): Promise<OvsServer> {
  if (!haveOvs()) throw new Error('Open vSwitch is not installed, or not running as root');
  const dir = mkdtempSync(join(tmpdir(), 'berth-ovs-'));
  const sock = join(dir, 'db.sock');
  const db = join(dir, 'conf.db');
  // vswitchd puts per-bridge mgmt/snoop sockets in the run dir: keep them private too.
  const env = { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
  const bridges: string[] = [];
  let dbServer: ChildProcess | null = null;
  let vswitchd: ChildProcess | null = null;

  const vsctl = async (...args: string[]) =>
    (await run('ovs-vsctl', [`--db=unix:${sock}`, '--timeout=10', ...args], { env, encoding: 'utf8' })).stdout.trim();

  const killAll = () => {
    vswitchd?.kill('SIGKILL');
    dbServer?.kill('SIGKILL');
    for (const b of bridges) spawnSync('ip', ['link', 'del', b]);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killAll);

  try {
    await run('ovsdb-tool', ['create', db, SCHEMA]);
    dbServer = spawn(
      'ovsdb-server',
      [db, `--remote=punix:${sock}`, `--unixctl=${join(dir, 'ovsdb-server.ctl')}`, `--pidfile=${join(dir, 'ovsdb-server.pid')}`, `--log-file=${join(dir, 'ovsdb-server.log')}`, '--no-chdir'],
      { stdio: 'ignore', env },
    );
    await waitForSocket(sock);
    await vsctl('--no-wait', 'init');
    vswitchd = spawn(
      'ovs-vswitchd',
      [`unix:${sock}`, `--unixctl=${join(dir, 'ovs-vswitchd.ctl')}`, `--pidfile=${join(dir, 'ovs-vswitchd.pid')}`, `--log-file=${join(dir, 'ovs-vswitchd.log')}`, '--no-chdir'],
      { stdio: 'ignore', env },
    );
  } catch (err) {
    killAll();
    throw err;
  }

  return {
    dir,
    sock,
    vsctl,
    async addBridge(name: string) {
      bridges.push(name);
      // Without --no-wait this returns once vswitchd has applied it: proof that vswitchd is up.
      await vsctl('add-br', name, '--', 'set', 'bridge', name, 'datapath_type=netdev');
    },
    async stop() {
      // Deleting the bridges through vswitchd removes their tap devices; a SIGTERM alone leaves them.
      for (const b of bridges) await vsctl('--if-exists', 'del-br', b).catch(() => undefined);
      await stopChild(vswitchd);
      await stopChild(dbServer);
      for (const b of bridges) spawnSync('ip', ['link', 'del', b], { stdio: 'ignore' });
      process.removeListener('exit', killAll);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
