// berth-bridge as a runtime runs it: ADD and DEL of berth-bridge + berth-ipam
// (Redis and file store) as processes, through the agent (the CNI fast path)
// and on Node (no agent), beside the reference bridge + host-local and
// `node -e 0`, with the CPU time each cycle costs; then `podman run --rm` end
// to end on a berth network, both ways, and on a reference one. All in one
// run, on this machine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** CPU time (user + sys, ms) of this process's waited-for children, and of process `pid` when given. */
function cpuMs(pid?: number): number {
  const fields = (p: string) => readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  const self = fields('self');
  // after the ") ": state is field 3, so utime..cstime (14..17) are at 11..14
  let ticks = Number(self[13]) + Number(self[14]);
  if (pid) {
    const other = fields(String(pid));
    ticks += Number(other[11]) + Number(other[12]);
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** A berth agent with no Docker on a private socket, serving CNI calls only. */
async function startAgent(dir: string, store: string): Promise<{ socket: string; child: ChildProcess }> {
  const socket = join(dir, 'agent.sock');
  const config = join(dir, 'agent.json');
  writeFileSync(config, JSON.stringify({ store, cniConfDir: join(dir, 'net.d'), cniBinDir: BIN.replace(/\/$/, ''), dockerSocket: '', containerdSocket: '', socket, stateDir: join(dir, 'agent-state') }));
  // no pipes: this process blocks in spawnSync while the agent logs
  const child = spawn(join(BIN, 'berth'), ['agent', '--config', config], { stdio: 'ignore', env: { PATH: process.env.PATH } });
  const { agentGet } = await import('../cli/agent-client.js');
  for (let i = 0; ; i++) {
    try {
      if ((await agentGet(socket, '/readyz', 1000)).status === 200) return { socket, child };
    } catch {
      // not listening yet
    }
    if (i > 300 || child.exitCode !== null) throw new Error('the bench agent did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
}

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
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    const fileUrl = `file://${dir}/store`;
    for (const url of [fileUrl, server.url]) {
      const s = await openStore(url);
      await s.createPool(buildPoolConfig({ name: 'bench', subnet: '10.93.0.0/16', hold: 0 }));
      await s.close();
    }
    agent = await startAgent(dir, fileUrl);
    const env = (cmd: string, id: string, socket = ''): NodeJS.ProcessEnv => ({
      PATH: process.env.PATH,
      BERTH_AGENT_SOCKET: socket,
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
    const variants: Array<[string, string, Record<string, unknown>, string]> = [];
    if (existsSync(`${REF}/bridge`)) {
      variants.push(['reference bridge + host-local', `${REF}/bridge`, { type: 'bridge', bridge: bridges[2], isGateway: true, ipam: { type: 'host-local', subnet: '10.94.0.0/16', dataDir: join(dir, 'hl') } }, '']);
    }
    const fileConf = { type: 'berth-bridge', bridge: bridges[0], isGateway: true, ipam: { type: 'berth-ipam', pool: 'bench', store: fileUrl } };
    const redisConf = { type: 'berth-bridge', bridge: bridges[1], isGateway: true, ipam: { type: 'berth-ipam', pool: 'bench', store: server.url } };
    // the same without the conflict probe: the difference in ADD is what the probe costs
    const unprobedConf = { ...redisConf, probe: { count: 0 } };
    variants.push(['berth-bridge + berth-ipam (file), agent', `${BIN}berth-bridge`, fileConf, agent.socket]);
    variants.push(['berth-bridge + berth-ipam (redis), agent', `${BIN}berth-bridge`, redisConf, agent.socket]);
    variants.push(['berth-bridge + berth-ipam (redis), agent, no probe', `${BIN}berth-bridge`, unprobedConf, agent.socket]);
    variants.push(['berth-bridge + berth-ipam (file), Node', `${BIN}berth-bridge`, fileConf, '']);
    variants.push(['berth-bridge + berth-ipam (redis), Node', `${BIN}berth-bridge`, redisConf, '']);
    variants.push(['berth-bridge + berth-ipam (redis), Node, no probe', `${BIN}berth-bridge`, unprobedConf, '']);
    /** per variant: the mean ADD+DEL cycle and its CPU time (the agent's included) */
    const cycles: Array<{ label: string; ms: number; cpu: number }> = [];
    for (const [label, cmd, plugin, socket] of variants) {
      rmSync(join(BIN, '../dist/bundle/berth-bridge.cjs.v8cache'), { force: true });
      const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'bench', ...plugin });
      const add: number[] = [];
      const del: number[] = [];
      let cpu0 = 0;
      for (let i = -2; i < runs; i++) {
        if (i === 0) cpu0 = cpuMs(agent.child.pid);
        const id = `bb${i + 10}`;
        const a = run(cmd, [], env('ADD', id, socket), stdin);
        const d = run(cmd, [], env('DEL', id, socket), stdin);
        if (i >= 0) {
          add.push(a);
          del.push(d);
        }
      }
      const cpu = (cpuMs(agent.child.pid) - cpu0) / runs;
      rows.push(stats(`${label} ADD`, add), stats(`${label} DEL`, del));
      cycles.push({ label, ms: summarize(add).mean + summarize(del).mean, cpu });
    }
    const base = rows[0]!.mean;
    const lines = ['berth-bridge as processes, one call each (bridge, veth into a namespace, IPAM); "agent": through the CNI fast path, "Node": no agent'];
    const head = ['process', 'mean ms', 'p50 ms', 'p95 ms', 'vs node -e 0'];
    const body = rows.map((r) => [r.name, r.mean.toFixed(1), r.p50.toFixed(1), r.p95.toFixed(1), r === rows[0] ? '' : `${r.mean - base >= 0 ? '+' : ''}${(r.mean - base).toFixed(1)} ms`]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    for (const cells of [head, ...body]) lines.push(cells.map((c, i) => c.padEnd(widths[i]!)).join('  '));
    const refCycle = cycles.find((c) => c.label.startsWith('reference'));
    lines.push('', 'ADD+DEL cycle: mean wall time and CPU time (user+sys of every process involved, the agent included)');
    for (const c of cycles) {
      const vs = refCycle && c !== refCycle ? `  ${(c.ms / refCycle.ms).toFixed(2)}x wall, ${(c.cpu / Math.max(refCycle.cpu, 1)).toFixed(2)}x CPU of the reference` : '';
      lines.push(`  ${c.label.padEnd(52)} ${c.ms.toFixed(1).padStart(6)} ms  ${c.cpu.toFixed(1).padStart(5)} ms CPU${vs}`);
    }
    const fast = cycles.find((c) => c.label === 'berth-bridge + berth-ipam (file), agent');
    if (refCycle && fast) lines.push(`target: ADD+DEL through the agent at most 1.0x the reference: ${(fast.ms / refCycle.ms).toFixed(2)}x ${fast.ms <= refCycle.ms ? 'met' : 'MISSED'}; CPU at most the reference's: ${fast.cpu <= refCycle.cpu ? 'met' : 'MISSED'}`);
    const berth = rows.filter((r) => r.name.startsWith('berth-bridge') && r.name.includes('Node'));
    const probed = rows.find((r) => r.name === 'berth-bridge + berth-ipam (redis), agent ADD');
    const unprobed = rows.find((r) => r.name === 'berth-bridge + berth-ipam (redis), agent, no probe ADD');
    if (probed && unprobed) lines.push('', `the conflict probe (2 probes 15 ms apart, 30 ms listened): ADD ${(probed.mean - unprobed.mean).toFixed(1)} ms mean, ${(probed.p50 - unprobed.p50).toFixed(1)} ms p50`);
    lines.push('', `target (no agent): each berth call within 25 ms of node -e 0: ${berth.map((r) => `${r.name.replace('berth-bridge + berth-ipam ', '')} ${r.mean - base <= 25 ? 'met' : 'MISSED'}`).join(', ')}`);

    const missing = podmanMissing();
    if (missing) {
      lines.push('', `podman run --rm: skipped (${missing})`);
      return lines;
    }
    // podman passes its environment on to the plugins: one podman with the agent's socket, one with none
    const saved = process.env.BERTH_AGENT_SOCKET;
    process.env.BERTH_AGENT_SOCKET = agent.socket;
    const viaAgent = await setupPodman(join(dir, 'podman-agent'));
    process.env.BERTH_AGENT_SOCKET = '';
    const onNode = await setupPodman(join(dir, 'podman-node'));
    if (saved === undefined) delete process.env.BERTH_AGENT_SOCKET;
    else process.env.BERTH_AGENT_SOCKET = saved;
    for (const podman of [viaAgent, onNode]) {
      podman.network('refnet', { plugins: [{ type: 'bridge', bridge: `bpr${tag}`, isGateway: true, ipam: { type: 'host-local', subnet: '10.95.0.0/24', dataDir: join(dir, 'hl2') } }] });
      podman.network('berthnet', { plugins: [{ type: 'berth-bridge', bridge: `bpb${tag}`, isGateway: true, ipam: { type: 'berth-ipam', pool: 'bench', store: fileUrl } }] });
      podman.network('berthquiet', { plugins: [{ type: 'berth-bridge', bridge: `bpq${tag}`, isGateway: true, probe: { count: 0 }, ipam: { type: 'berth-ipam', pool: 'bench', store: fileUrl } }] });
    }
    const podmanRuns = opts.quick ? 3 : 8;
    // each berth network beside the reference on the same podman (its own storage and settings): equal work
    const ways = [
      { name: 'reference network (bridge + host-local)', podman: viaAgent, net: 'refnet', ms: [] as number[] },
      { name: 'berth network, through the agent', podman: viaAgent, net: 'berthnet', ms: [] as number[] },
      { name: 'berth network, through the agent, no probe', podman: viaAgent, net: 'berthquiet', ms: [] as number[] },
      { name: 'reference network, the other podman', podman: onNode, net: 'refnet', ms: [] as number[] },
      { name: 'berth network, no agent (Node)', podman: onNode, net: 'berthnet', ms: [] as number[] },
    ];
    for (let i = -1; i < podmanRuns; i++) {
      for (const w of ways) {
        const t0 = process.hrtime.bigint();
        const r = await w.podman.run(['run', '--rm', '--network', w.net, ...w.podman.runFlags, w.podman.image, 'true']);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r.code !== 0) throw new Error(`podman run on ${w.net} failed: ${r.stderr}`);
        if (i >= 0) w.ms.push(ms);
      }
    }
    const [ref, fastRun, quietRun, ref2, nodeRun] = ways.map((w) => stats(w.name, w.ms)) as [Row, Row, Row, Row, Row];
    lines.push('', 'podman run --rm IMAGE true, end to end (ratios against the reference on the same podman)');
    for (const [r, base] of [[ref, undefined], [fastRun, ref], [quietRun, ref], [ref2, undefined], [nodeRun, ref2]] as Array<[Row, Row | undefined]>) {
      lines.push(`${r.name.padEnd(48)}  mean ${r.mean.toFixed(0)} ms  p50 ${r.p50.toFixed(0)} ms  ${base ? `${(r.mean / base.mean).toFixed(2)}x` : ''}`);
    }
    lines.push(`target: through the agent within 1.05x of the reference: ${fastRun.mean / ref.mean <= 1.05 ? 'met' : 'MISSED'} (${(fastRun.mean / ref.mean).toFixed(2)}x; without the conflict probe ${(quietRun.mean / ref.mean).toFixed(2)}x)`);
    return lines;
  } finally {
    agent?.child.kill('SIGTERM');
    spawnSync('ip', ['netns', 'del', ns]);
    for (const b of [...bridges, `bpr${tag}`, `bpb${tag}`, `bpq${tag}`]) spawnSync('ip', ['link', 'del', b]);
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
