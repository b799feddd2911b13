// podman with its CNI backend, isolated per test: its own storage, run root,
// containers.conf and network config dir, and a busybox image imported from
// Debian's busybox-static (no registry is reachable).
//
// What these machines need, found by hand (ENVIRONMENT.md's `--ulimit host` is
// not enough): crun refuses the hybrid cgroup layout, so the runtime is runc;
// the sandbox lacks CAP_SYS_RESOURCE and podman asks for rlimits above the
// current ones, so nofile/nproc are set below them; storage is vfs.
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from './cni.js';

export interface Podman {
  /** runs podman with the isolated settings; resolves with its exit code and output */
  run(args: string[], timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  /** the flags `podman run` needs on these machines */
  runFlags: string[];
  image: string;
  /** writes a network conflist podman finds by its name */
  network(name: string, conflist: Record<string, unknown>): void;
}

/** What is missing for podman tests, or null when all is there. */
export function podmanMissing(): string | null {
  for (const [bin, pkg] of [
    ['podman', 'podman'],
    ['runc', 'runc'],
  ]) {
    if (spawnSync(bin!, ['--version']).status !== 0) return `${bin} is not installed (Debian ${pkg})`;
  }
  if (!existsSync('/bin/busybox')) return '/bin/busybox is missing (Debian busybox-static)';
  if (!existsSync('/usr/lib/cni/bridge')) return '/usr/lib/cni/bridge is missing (Debian containernetworking-plugins)';
  return null;
}

/** Sets up an isolated podman in `dir` and imports the busybox image. */
export async function setupPodman(dir: string): Promise<Podman> {
  // podman refuses a run root over 50 characters, and its config and network
  // files must outlive the test's fixture dir (teardowns run `podman rm`, which
  // runs CNI DEL): all of it lives in a short temporary directory, removed at exit.
  const state = mkdtempSync(join(tmpdir(), 'bp'));
  process.once('exit', () => {
    // podman may leave a container's shm mounted under its state: unmount, then remove, best effort
    spawnSync('sh', ['-c', 'grep -o " [^ ]*/userdata/shm " /proc/mounts | while read m; do umount "$m"; done']);
    try {
      rmSync(state, { recursive: true, force: true });
    } catch {
      // a temporary directory left behind is not a test failure
    }
  });
  const netDir = join(state, 'cni');
  mkdirSync(netDir, { recursive: true });
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const applet of ['sh', 'ip', 'sleep', 'cat', 'ping', 'ls', 'nc', 'wget', 'httpd', 'echo', 'true']) symlinkSync('busybox', join(rootfs, 'bin', applet));
  const conf = join(state, 'containers.conf');
  writeFileSync(
    conf,
    [
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = ["${BIN.replace(/\/$/, '')}", "/usr/lib/cni"]`,
      `network_config_dir = "${netDir}"`,
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      'runtime = "runc"',
      // podman's cleanup (run by conmon when the container exits, where the CNI DEL happens) does not inherit the caller's environment, only what containers.conf sets
      ...(process.env.BERTH_AGENT_SOCKET !== undefined ? [`env = ["BERTH_AGENT_SOCKET=${process.env.BERTH_AGENT_SOCKET}"]`] : []),
      '',
    ].join('\n'),
  );
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const base = ['--root', join(state, 'root'), '--runroot', join(state, 'run'), '--storage-driver', 'vfs'];
  const run = (args: string[], timeoutMs = 120000) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('podman', [...base, ...args], { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  const image = 'localhost/berth-busybox:test';
  const tar = spawnSync('tar', ['-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.']);
  if (tar.status !== 0) throw new Error(`failed to pack the busybox rootfs: ${tar.stderr}`);
  const imported = await run(['import', join(dir, 'rootfs.tar'), image]);
  if (imported.code !== 0) throw new Error(`failed to import the busybox image: ${imported.stderr}`);
  return {
    run,
    image,
    runFlags: ['--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096'],
    network(name, conflist) {
      writeFileSync(join(netDir, `${name}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name, ...conflist }));
    },
  };
}
