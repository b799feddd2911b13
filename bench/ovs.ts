// Open vSwitch: adding and removing a port through berth's OVSDB client
// against `ovs-vsctl add-port`/`del-port` on the same bridge; and ADD/DEL of
// berth-ovs + berth-ipam as processes beside `node -e 0`. In one run, against
// an ovsdb-server + ovs-vswitchd started here (userspace datapath).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { OvsdbClient } from '../cni/ovsdb.js';
import { openStore } from '../ipam/open-store.js';
import { buildPoolConfig } from '../ipam/pool-config.js';
import { haveOvs, startOvs } from '../test/helpers/ovs.js';
import { summarize, timeProcess } from './stats.js';

const BIN = new URL('../bin/', import.meta.url).pathname;

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** The OVS benchmark; returns printable lines. */
export async function benchOvs(opts: { quick?: boolean } = {}): Promise<string[]> {
  if (process.getuid?.() !== 0 || !haveOvs()) return ['berth-ovs: skipped (needs root and Open vSwitch)'];
  const ports = opts.quick ? 20 : 100;
  const runs = opts.quick ? 8 : 25;
  const ovs = await startOvs();
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-ovs-'));
  const tag = randomBytes(2).toString('hex');
  const ns = `obench${tag}`;
  spawnSync('ip', ['netns', 'add', ns]);
  try {
    const bridge = `obr${tag}`;
    await ovs.addBridge(bridge);
    const vsctl = (...args: string[]) => {
      const r = spawnSync('ovs-vsctl', [`--db=unix:${ovs.sock}`, ...args], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ovs-vsctl ${args.join(' ')}: ${r.stderr}`);
    };
    const client = await OvsdbClient.connect(ovs.sock);
    const viaClient: number[] = [];
    for (let i = 0; i < ports; i++) {
      const t0 = process.hrtime.bigint();
      await client.addPort(bridge, { name: `bc${i}`, vlanTag: 100 });
      await client.deletePort(bridge, `bc${i}`);
      viaClient.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    client.close();
    const viaVsctl: number[] = [];
    for (let i = 0; i < ports; i++) viaVsctl.push(timed(() => vsctl('add-port', bridge, `bv${i}`, 'tag=100')) + timed(() => vsctl('del-port', bridge, `bv${i}`)));
    const c = summarize(viaClient);
    const v = summarize(viaVsctl);
    const lines = [
      `Open vSwitch: add a VLAN-100 port and remove it again, ${ports} times, on one bridge`,
      `berth OVSDB client (one connection)   mean ${c.mean.toFixed(2)} ms  p50 ${c.p50.toFixed(2)} ms  p95 ${c.p95.toFixed(2)} ms`,
      `ovs-vsctl add-port + del-port         mean ${v.mean.toFixed(2)} ms  p50 ${v.p50.toFixed(2)} ms  p95 ${v.p95.toFixed(2)} ms`,
      `berth client vs ovs-vsctl: ${(v.mean / c.mean).toFixed(1)}x faster`,
    ];

    const url = `file://${dir}/store`;
    const store = await openStore(url);
    await store.createPool(buildPoolConfig({ name: 'bench', subnet: '10.97.0.0/16', hold: 0 }));
    await store.close();
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'obench', type: 'berth-ovs', bridge, vlan: 100, ovsdbSocket: ovs.sock, ipam: { type: 'berth-ipam', pool: 'bench', store: url } });
    const env = (cmd: string, id: string) => ({ PATH: process.env.PATH, CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: `/var/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: BIN });
    const run = timeProcess;
    rmSync(join(BIN, '../dist/bundle/berth-ovs.cjs.v8cache'), { force: true });
    const floor: number[] = [];
    const add: number[] = [];
    const del: number[] = [];
    for (let i = -2; i < runs; i++) {
      const f = run(process.execPath, ['-e', '0'], { PATH: process.env.PATH });
      const a = run(`${BIN}berth-ovs`, [], env('ADD', `ob${i + 10}`), stdin);
      const d = run(`${BIN}berth-ovs`, [], env('DEL', `ob${i + 10}`), stdin);
      if (i >= 0) {
        floor.push(f);
        add.push(a);
        del.push(d);
      }
    }
    const base = summarize(floor).mean;
    lines.push('', 'berth-ovs + berth-ipam (file) as processes, one call each');
    lines.push(`node -e 0      mean ${base.toFixed(1)} ms`);
    for (const [name, ms] of [
      ['berth-ovs ADD', add],
      ['berth-ovs DEL', del],
    ] as const) {
      const s = summarize([...ms]);
      lines.push(`${name}  mean ${s.mean.toFixed(1)} ms  p50 ${s.p50.toFixed(1)} ms  (${s.mean - base >= 0 ? '+' : ''}${(s.mean - base).toFixed(1)} ms vs node -e 0)`);
    }
    return lines;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
    await ovs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
