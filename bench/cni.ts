// Plugin start-up: the wall time of one berth-ipam ADD and one DEL as a
// process, as a runtime runs it, beside `node -e 0` (the floor for any Node
// program) and the reference host-local plugin, in one run.
//
// Each variant runs from a V8 code cache written by its first warm-up call,
// as on a host after its first plugin call.
//
// NODE_EXTRA_CA_CERTS is removed from the children's environment: it makes
// Node parse a CA bundle at every start (+100 ms here), and a container
// runtime does not pass it to plugins.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../ipam/open-store.js';
import { buildPoolConfig } from '../ipam/pool-config.js';
import { startRedis } from '../test/helpers/redis.js';
import { summarize, timeProcess } from './stats.js';

const BIN = new URL('../bin/berth-ipam', import.meta.url).pathname;
const HOST_LOCAL = '/usr/lib/cni/host-local';
const ENTRY = new URL('../cni/entry.cjs', import.meta.url).pathname;

interface Timing {
  name: string;
  runs: number;
  mean: number;
  p50: number;
  p95: number;
}

/** PATH and `extra`; no agent: these rows time the plugin on Node (bench/bridge.ts times the agent's fast path). */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, BERTH_AGENT_SOCKET: '', ...extra };
  return env;
}

/** Times `runs` executions; each call builds its own env/stdin (unique container ids). */
function time(name: string, runs: number, call: (i: number) => { cmd: string; args?: string[]; env: NodeJS.ProcessEnv; input?: string }): Timing {
  const ms: number[] = [];
  for (let i = -3; i < runs; i++) {
    const c = call(i + 1000);
    const dt = timeProcess(c.cmd, c.args ?? [], c.env, c.input ?? '');
    if (i >= 0) ms.push(dt); // the first three warm the page cache
  }
  return { name, runs, ...summarize(ms) };
}

/** The plugin benchmark; returns printable lines. */
export async function benchCni(opts: { quick?: boolean } = {}): Promise<string[]> {
  const runs = opts.quick ? 10 : 40;
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-cni-'));
  const server = await startRedis();
  try {
    const fileUrl = `file://${dir}/store`;
    for (const url of [fileUrl, server.url]) {
      const s = await openStore(url);
      await s.createPool(buildPoolConfig({ name: 'bench', subnet: '10.70.0.0/16', hold: 0 }));
      await s.close();
    }
    const conf = (ipam: Record<string, unknown>) => JSON.stringify({ cniVersion: '1.0.0', name: 'bench', type: 'bridge', ipam });
    const attach = (cmd: string, id: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: `b${id}`, CNI_NETNS: '/var/run/netns/bench', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' });
    const rows: Timing[] = [];
    rows.push(time('node -e 0', runs, () => ({ cmd: process.execPath, args: ['-e', '0'], env: childEnv({}) })));
    const plugin = (label: string, cmd: string, ipam: Record<string, unknown>, args: string[] = []) => {
      const stdin = conf(ipam);
      // The V8 code cache is written by the first call after a build and holds what
      // that call compiled; a host uses one store throughout, so each variant is
      // measured from its own cache, written by its first warm-up call.
      rmSync(new URL('../dist/bundle/berth-ipam.cjs.v8cache', import.meta.url).pathname, { force: true });
      rows.push(time(`${label} ADD`, runs, (i) => ({ cmd, args, env: childEnv(attach('ADD', `${label.length}-${i}`)), input: stdin })));
      rows.push(time(`${label} DEL`, runs, (i) => ({ cmd, args, env: childEnv(attach('DEL', `${label.length}-${i}`)), input: stdin })));
    };
    if (existsSync(HOST_LOCAL)) plugin('host-local (reference)', HOST_LOCAL, { type: 'host-local', subnet: '10.71.0.0/16', dataDir: join(dir, 'host-local') });
    plugin('berth-ipam file', BIN, { type: 'berth-ipam', pool: 'bench', store: fileUrl });
    plugin('berth-ipam redis', BIN, { type: 'berth-ipam', pool: 'bench', store: server.url });
    // what the launcher adds before handing over to Node: the same call with Node started directly
    plugin('node cni/entry.cjs (no launcher), file', process.execPath, { type: 'berth-ipam', pool: 'bench', store: fileUrl }, [ENTRY, 'berth-ipam']);
    rmSync(new URL('../dist/bundle/berth-ipam.cjs.v8cache', import.meta.url).pathname, { force: true });
    const version = time('berth-ipam VERSION', runs, () => ({ cmd: BIN, env: childEnv({ CNI_COMMAND: 'VERSION' }) }));
    rows.push(version);

    const floor = rows[0]!.mean;
    const ref = rows.find((r) => r.name.startsWith('host-local'));
    const head = ['process', 'runs', 'mean ms', 'p50 ms', 'p95 ms', 'vs node -e 0', 'vs host-local'];
    const body = rows.map((r) => {
      const refRow = ref && rows.find((x) => x.name.startsWith('host-local') && x.name.endsWith(r.name.slice(-3)));
      return [
        r.name,
        String(r.runs),
        r.mean.toFixed(1),
        r.p50.toFixed(1),
        r.p95.toFixed(1),
        r === rows[0] ? '' : `${r.mean - floor >= 0 ? '+' : ''}${(r.mean - floor).toFixed(1)} ms`,
        refRow && !r.name.startsWith('host-local') && /ADD|DEL/.test(r.name) ? `${(r.mean / refRow.mean).toFixed(1)}x` : '',
      ];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const lines = [`CNI plugins as processes, one call each (NODE_EXTRA_CA_CERTS unset for the children)`];
    for (const cells of [head, ...body]) lines.push(cells.map((c, i) => c.padEnd(widths[i]!)).join('  '));
    const within = rows.filter((r) => r.name.startsWith('berth-ipam') && /ADD|DEL/.test(r.name)).map((r) => `${r.name} ${r.mean - floor <= 25 ? 'met' : 'MISSED'}`);
    lines.push('', `target: each berth-ipam call within 25 ms of node -e 0: ${within.join(', ')}`);
    const direct = rows.filter((r) => r.name.startsWith('node cni/entry.cjs'));
    const launched = rows.filter((r) => r.name.startsWith('berth-ipam file'));
    if (direct.length === 2 && launched.length === 2) {
      const extra = (launched[0]!.p50 + launched[1]!.p50 - direct[0]!.p50 - direct[1]!.p50) / 2;
      lines.push(`the launcher before Node (agent down): ${extra.toFixed(1)} ms per call at p50 (target <= 2 ms: ${extra <= 2 ? 'met' : 'MISSED'})`);
    }
    return lines;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
