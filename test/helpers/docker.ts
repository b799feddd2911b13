// A private Docker engine for a test file: its own data root, exec root,
// socket and containerd namespace, no iptables and no default bridge, and a
// busybox image imported from Debian's busybox-static (no registry here).
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DockerEngineUnderTest {
  socket: string;
  /** the containerd this dockerd started for itself, and its namespace there */
  containerdSocket: string;
  containerdNamespace: string;
  image: string;
  /** runs the docker CLI against this engine */
  run(args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** stops the daemon alone (its containers stop with it; nothing is removed): Docker going away under the agent */
  stopDaemon(): Promise<void>;
  /** starts it again on the same data root and sockets, and waits until it answers */
  startDaemon(): Promise<void>;
  stop(): Promise<void>;
}

/** What is missing for Docker tests, or null when all is there. */
export function dockerMissing(): string | null {
  if (spawnSync('dockerd', ['--version']).status !== 0) return 'dockerd is not installed (Debian docker.io)';
  if (spawnSync('docker', ['--version']).status !== 0) return 'the docker CLI is not installed (Debian docker.io)';
  if (!existsSync('/bin/busybox')) return '/bin/busybox is missing (Debian busybox-static)';
  return null;
}

/** Ends a test file early when Docker is missing on a developer machine; under CI=true it fails instead. */
export function skipWithoutDocker(t: { plan: (n: number, why?: string) => void; fail: (msg: string) => void }): boolean {
  const missing = dockerMissing();
  if (!missing) return false;
  if (process.env.CI === 'true') {
    t.fail(missing);
    return true;
  }
  t.plan(0, missing);
  return true;
}

/** Starts a private dockerd and imports the busybox image. */
export async function startDocker(): Promise<DockerEngineUnderTest> {
  // short paths: containerd's socket path must stay under the unix socket limit
  const dir = mkdtempSync(join(tmpdir(), 'bd'));
  const socket = join(dir, 'docker.sock');
  const ns = `berth-test-${process.pid}`;
  const args = [
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--storage-driver=vfs',
    `--host=unix://${socket}`,
    `--data-root=${join(dir, 'data')}`,
    `--exec-root=${join(dir, 'x')}`,
    `--pidfile=${join(dir, 'docker.pid')}`,
    `--containerd-namespace=${ns}`,
    `--containerd-plugins-namespace=${ns}p`,
    // containers that ignore SIGTERM (a shell as pid 1) stop within 2 s when the daemon does
    '--shutdown-timeout=2',
    '--log-level=warn',
  ];
  let logText = '';
  let child!: ChildProcess;
  const launch = () => {
    child = spawn('dockerd', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    child.stderr!.on('data', (c: Buffer) => {
      if (logText.length < 200000) logText += c.toString();
    });
  };
  const run = (args: string[], timeoutMs = 120000) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('docker', ['-H', `unix://${socket}`, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
      });
    });
  const answering = async () => {
    const deadline = Date.now() + 60000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`dockerd exited ${child.exitCode}: ${logText.slice(-2000)}`);
      if ((await run(['version', '--format', '{{.Server.Version}}'], 5000)).code === 0) return;
      if (Date.now() > deadline) throw new Error(`dockerd did not come up within 60 s: ${logText.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  /** SIGTERM to the daemon, then waits for it to exit (SIGKILL after 20 s). */
  const terminate = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const t = setTimeout(() => (child.kill('SIGKILL'), resolve()), 20000);
      child.once('exit', () => (clearTimeout(t), resolve()));
      child.kill('SIGTERM');
    });
  launch();
  await answering();
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const applet of ['sh', 'ip', 'sleep', 'cat', 'ping', 'ls', 'nc', 'wget', 'httpd', 'echo', 'true']) symlinkSync('busybox', join(rootfs, 'bin', applet));
  const image = 'berth-busybox:test';
  const imported = await new Promise<number>((resolve) => {
    const tar = spawn('tar', ['-C', rootfs, '-c', '.'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const imp = spawn('docker', ['-H', `unix://${socket}`, 'import', '-', image], { stdio: ['pipe', 'ignore', 'inherit'] });
    tar.stdout.pipe(imp.stdin);
    imp.on('close', (code) => resolve(code ?? 1));
  });
  if (imported !== 0) throw new Error('failed to import the busybox image');
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    const ids = (await run(['ps', '-aq'], 30000)).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await run(['rm', '-f', ...ids], 120000);
    await terminate();
    // containers' shm and rootfs mounts under the data root: innermost first
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(dir))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // a directory left in /tmp is not a test failure
    }
  };
  process.once('exit', () => {
    if (!stopped) child.kill('SIGKILL');
  });
  return {
    socket,
    containerdSocket: join(dir, 'x', 'containerd', 'containerd.sock'),
    containerdNamespace: ns,
    image,
    run,
    stop,
    stopDaemon: terminate,
    async startDaemon() {
      launch();
      await answering();
    },
  };
}
