// Open vSwitch: adding and removing a port through berth's OVSDB client
// against `ovs-vsctl add-port`/`del-port` on the same bridge, on equal work:
// once committed to ovsdb-server only (berth's client beside `ovs-vsctl
// --no-wait`), once until vswitchd has applied the change (berth as berth-ovs
// waits, beside `ovs-vsctl` without --no-wait); and ADD/DEL of berth-ovs +
// berth-ipam as processes beside `node -e 0`. In one run, against an
// ovsdb-server + ovs-vswitchd started here (userspace datapath).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { OPEN_VSWITCH_DB, OvsdbClient, op } from '../cni/ovsdb.js';
import { openStore } from '../ipam/open-store.js';
import { buildPoolConfig } from '../ipam/pool-config.js';
import { haveOvs, startOvs } from '../test/helpers/ovs.js';
import { summarize, timeProcess } from './stats.js';

const BIN = new URL('../bin/', import.meta.url).pathname;
/** berth-ovs polls the new port's Interface row this often (cni/berth-ovs/plugin.ts, waitOfport) */
const POLL_MS = 10;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

function timed(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return since(t0);
}

/** Until vswitchd has given the port its OpenFlow port, as berth-ovs's ADD waits (waitOfport). */
async function waitOfport(db: OvsdbClient, name: string): Promise<void> {
  for (;;) {
    const iface = await db.getInterface(name);
    if (iface?.ofport !== undefined && iface.ofport > 0) return;
    if (iface?.ofport === -1) throw new Error(`vswitchd could not open port "${name}": ${iface.error ?? '?'}`);
    await sleep(POLL_MS);
  }
}

/**
 * Until vswitchd has applied every change committed so far: bumps next_cfg
 * and polls cur_cfg until it gets there, what ovs-vsctl without --no-wait
 * waits for (it bumps next_cfg in its own transaction and follows cur_cfg).
 */
async function vswitchdCaughtUp(db: OvsdbClient): Promise<void> {
  const r = await db.transact(OPEN_VSWITCH_DB, [op.mutate('Open_vSwitch', [], [['next_cfg', '+=', 1]]), op.select('Open_vSwitch', [], ['next_cfg'])]);
  const want = Number(r[1]!.rows![0]!['next_cfg']);
  for (;;) {
    const cur = (await db.transact(OPEN_VSWITCH_DB, [op.select('Open_vSwitch', [], ['cur_cfg'])]))[0]!.rows![0]!['cur_cfg'];
    if (Number(cur) >= want) return;
    await sleep(POLL_MS);
  }
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
  // a real device for the ports, made beforehand, so that vswitchd opens
  // each one and gives it an OpenFlow port (a port without a device gets -1)
  const dev = `obv${tag}`;
  try {
    const bridge = `obr${tag}`;
    await ovs.addBridge(bridge);
    const made = spawnSync('ip', ['link', 'add', dev, 'type', 'veth', 'peer', 'name', `obp${tag}`], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`ip link add ${dev}: ${made.stderr}`);
    const vsctl = (...args: string[]) => {
      const r = spawnSync('ovs-vsctl', [`--db=unix:${ovs.sock}`, '--timeout=30', ...args], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`ovs-vsctl ${args.join(' ')}: ${r.stderr}`);
    };
    const client = await OvsdbClient.connect(ovs.sock);
    // [add, remove] in ms, per way
    const ways = {
      berthCommit: { add: [] as number[], del: [] as number[] },
      vsctlNoWait: { add: [] as number[], del: [] as number[] },
      berthApplied: { add: [] as number[], del: [] as number[] },
      vsctlApplied: { add: [] as number[], del: [] as number[] },
    };
    for (let i = 0; i < ports; i++) {
      // one of each in turn, each starting once vswitchd has applied everything before it (untimed)
      let t0 = process.hrtime.bigint();
      await client.addPort(bridge, { name: dev, vlanTag: 100 });
      ways.berthCommit.add.push(since(t0));
      t0 = process.hrtime.bigint();
      await client.deletePort(bridge, dev);
      ways.berthCommit.del.push(since(t0));
      await vswitchdCaughtUp(client);

      ways.vsctlNoWait.add.push(timed(() => vsctl('--no-wait', 'add-port', bridge, dev, 'tag=100')));
      ways.vsctlNoWait.del.push(timed(() => vsctl('--no-wait', 'del-port', bridge, dev)));
      await vswitchdCaughtUp(client);

      t0 = process.hrtime.bigint();
      await client.addPort(bridge, { name: dev, vlanTag: 100 });
      await waitOfport(client, dev);
      ways.berthApplied.add.push(since(t0));
      t0 = process.hrtime.bigint();
      await client.deletePort(bridge, dev);
      await vswitchdCaughtUp(client);
      ways.berthApplied.del.push(since(t0));

      ways.vsctlApplied.add.push(timed(() => vsctl('add-port', bridge, dev, 'tag=100')));
      ways.vsctlApplied.del.push(timed(() => vsctl('del-port', bridge, dev)));
      await vswitchdCaughtUp(client);
    }
    client.close();
    const row = (label: string, w: { add: number[]; del: number[] }) => {
      const both = summarize(w.add.map((a, i) => a + w.del[i]!));
      return {
        mean: both.mean,
        line: `  ${label.padEnd(44)} add + remove mean ${both.mean.toFixed(2)} ms  p50 ${both.p50.toFixed(2)} ms  p95 ${both.p95.toFixed(2)} ms | add p50 ${summarize(w.add).p50.toFixed(2)} ms | remove p50 ${summarize(w.del).p50.toFixed(2)} ms`,
      };
    };
    const bc = row("berth OVSDB client (one connection)", ways.berthCommit);
    const vc = row('ovs-vsctl --no-wait add-port, del-port', ways.vsctlNoWait);
    const ba = row('berth OVSDB client, then polling', ways.berthApplied);
    const va = row('ovs-vsctl add-port, del-port', ways.vsctlApplied);
    const lines = [
      `Open vSwitch: add a VLAN-100 port (a veth) and remove it again, ${ports} times each way, on one bridge`,
      'committed to ovsdb-server only (vswitchd applies it afterwards):',
      bc.line,
      vc.line,
      `  berth vs ovs-vsctl --no-wait: ${(vc.mean / bc.mean).toFixed(1)}x faster`,
      `until vswitchd has applied it: ovs-vsctl waits for vswitchd; berth polls every ${POLL_MS} ms, as berth-ovs's ADD does, for the port's OpenFlow port after adding, and for vswitchd's cur_cfg after removing:`,
      ba.line,
      va.line,
      `  berth vs ovs-vsctl: ${(va.mean / ba.mean).toFixed(1)}x faster`,
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
    spawnSync('ip', ['link', 'del', dev]);
    await ovs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
