// berth-bridge as a runtime runs it: ADD and DEL of berth-bridge + berth-ipam
// (Redis and file store) as processes, beside the reference bridge +
// host-local and `node -e 0`; then `podman run --rm` end to end on a berth
// network and on a reference one. All in one run, on this machine.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openStore } from '../ipam/open-store.js';
import { buildPoolConfig } from '../ipam/pool-config.js';
import { startRedis } from '../test/helpers/redis.js';
import { podmanMissing, setupPodman } from '../test/helpers/podman.js';
import { summarize, timeProcess } from './stats.js';

const BIN = new URL('../bin/', import.meta.url).pathname;
const REF = '/usr/lib/cni';

interface Row {
  name: string;
  mean: number;
  p50: number;
  p95: number;
}

function stats(name: string, ms: number[]): Row {
  return { name, ...summarize(ms) };
}

const run = timeProcess;

/** The bridge benchmark; returns printable lines (needs root and iproute2). */
export async function benchBridge(opts: { quick?: boolean } = {}): Promise<string[]> {
  if (process.getuid?.() !== 0) return ['berth-bridge: skipped (needs root for network namespaces)'];
  const runs = opts.quick ? 8 : 25;
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-br-'));
  const server = await startRedis();
  const tag = randomBytes(2).toString('hex');
  const ns = `bbench${tag}`;
  const bridges = [`bbf${tag}`, `bbr${tag}`, `bbx${tag}`];
  spawnSync('ip', ['netns', 'add', ns]);
  try {
    const fileUrl = `file://${dir}/store`;
    for (const url of [fileUrl, server.url]) {
      const s = await openStore(url);
      await s.createPool(buildPoolConfig({ name: 'bench', subnet: '10.93.0.0/16', hold: 0 }));
      await s.close();
    }
    const env = (cmd: string, id: string): NodeJS.ProcessEnv => ({
      PATH: process.env.PATH,
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: id,
      CNI_NETNS: `/var/run/netns/${ns}`,
      CNI_IFNAME: 'eth0',
      CNI_PATH: `${BIN}:${REF}`,
    });
    const rows: Row[] = [];
    const floor: number[] = [];
    for (let i = 0; i < runs; i++) floor.push(run(process.execPath, ['-e', '0'], { PATH: process.env.PATH }));
    rows.push(stats('node -e 0', floor));
    const variants: Array<[string, string, Record<string, unknown>]> = [];
    if (existsSync(`${REF}/bridge`)) {
      variants.push(['reference bridge + host-local', `${REF}/bridge`, { type: 'bridge', bridge: bridges[2], isGateway: true, ipam: { type: 'host-local', subnet: '10.94.0.0/16', dataDir: join(dir, 'hl') } }]);
    }
    variants.push(['berth-bridge + berth-ipam (file)', `${BIN}berth-bridge`, { type: 'berth-bridge', bridge: bridges[0], isGateway: true, ipam: { type: 'berth-ipam', pool: 'bench', store: fileUrl } }]);
    variants.push(['berth-bridge + berth-ipam (redis)', `${BIN}berth-bridge`, { type: 'berth-bridge', bridge: bridges[1], isGateway: true, ipam: { type: 'berth-ipam', pool: 'bench', store: server.url } }]);
    // the same without the conflict probe: the difference in ADD is what the probe costs
    variants.push(['berth-bridge + berth-ipam (redis), no probe', `${BIN}berth-bridge`, { type: 'berth-bridge', bridge: bridges[1], isGateway: true, probe: { count: 0 }, ipam: { type: 'berth-ipam', pool: 'bench', store: server.url } }]);
    for (const [label, cmd, plugin] of variants) {
      rmSync(join(BIN, '../dist/bundle/berth-bridge.cjs.v8cache'), { force: true });
      const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'bench', ...plugin });
      const add: number[] = [];
      const del: number[] = [];
      for (let i = -2; i < runs; i++) {
        const id = `bb${i + 10}`;
        const a = run(cmd, [], env('ADD', id), stdin);
        const d = run(cmd, [], env('DEL', id), stdin);
        if (i >= 0) {
          add.push(a);
          del.push(d);
        }
      }
      rows.push(stats(`${label} ADD`, add), stats(`${label} DEL`, del));
    }
    const base = rows[0]!.mean;
    const lines = ['berth-bridge as processes, one call each (bridge, veth into a namespace, IPAM)'];
    const head = ['process', 'mean ms', 'p50 ms', 'p95 ms', 'vs node -e 0'];
    const body = rows.map((r) => [r.name, r.mean.toFixed(1), r.p50.toFixed(1), r.p95.toFixed(1), r === rows[0] ? '' : `${r.mean - base >= 0 ? '+' : ''}${(r.mean - base).toFixed(1)} ms`]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    for (const cells of [head, ...body]) lines.push(cells.map((c, i) => c.padEnd(widths[i]!)).join('  '));
    const berth = rows.filter((r) => r.name.startsWith('berth-bridge'));
    const probed = rows.find((r) => r.name === 'berth-bridge + berth-ipam (redis) ADD');
    const unprobed = rows.find((r) => r.name === 'berth-bridge + berth-ipam (redis), no probe ADD');
    if (probed && unprobed) lines.push('', `the conflict probe (2 probes 15 ms apart, 30 ms listened): ADD ${(probed.mean - unprobed.mean).toFixed(1)} ms mean, ${(probed.p50 - unprobed.p50).toFixed(1)} ms p50`);
    lines.push('', `target: each berth call within 25 ms of node -e 0: ${berth.map((r) => `${r.name.replace('berth-bridge + berth-ipam ', '')} ${r.mean - base <= 25 ? 'met' : 'MISSED'}`).join(', ')}`);

    const missing = podmanMissing();
    if (missing) {
      lines.push('', `podman run --rm: skipped (${missing})`);
      return lines;
    }
    const podman = await setupPodman(join(dir, 'podman'));
    podman.network('refnet', { plugins: [{ type: 'bridge', bridge: `bpr${tag}`, isGateway: true, ipam: { type: 'host-local', subnet: '10.95.0.0/24', dataDir: join(dir, 'hl2') } }] });
    podman.network('berthnet', { plugins: [{ type: 'berth-bridge', bridge: `bpb${tag}`, isGateway: true, ipam: { type: 'berth-ipam', pool: 'bench', store: fileUrl } }] });
    const podmanRuns = opts.quick ? 3 : 8;
    const timed: Record<string, number[]> = { refnet: [], berthnet: [] };
    for (let i = -1; i < podmanRuns; i++) {
      for (const net of ['refnet', 'berthnet']) {
        const t0 = process.hrtime.bigint();
        const r = await podman.run(['run', '--rm', '--network', net, ...podman.runFlags, podman.image, 'true']);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.code !== 0) throw new Error(`podman run on ${net} failed: ${r.stderr}`);
        if (i >= 0) timed[net]!.push(ms);
      }
    }
    const ref = stats('reference network (bridge + host-local)', timed.refnet!);
    const ours = stats('berth network (berth-bridge + berth-ipam, file)', timed.berthnet!);
    lines.push('', 'podman run --rm IMAGE true, end to end');
    for (const r of [ref, ours]) lines.push(`${r.name.padEnd(48)}  mean ${r.mean.toFixed(0)} ms  p50 ${r.p50.toFixed(0)} ms`);
    lines.push(`berth / reference: ${(ours.mean / ref.mean).toFixed(2)}x (target <= 1.3x: ${ours.mean / ref.mean <= 1.3 ? 'met' : 'MISSED'})`);
    return lines;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
    for (const b of [...bridges, `bpr${tag}`, `bpb${tag}`]) spawnSync('ip', ['link', 'del', b]);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
