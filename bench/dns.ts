// berth dns against established servers on the same 4,000 names: bin/berth
// dns on a pool of 4,000 owners, dnsmasq with the same names in a hosts file,
// unbound with them as local-data; one thread each reads UDP (berth's native
// UDP thread; its JavaScript thread answers the questions that thread has no
// answer kept for, once per name here). Debian's dnsperf asks
// each in turn, over UDP on loopback, the 4,000 A questions in random order
// for a fixed time, rounds alternating; per-query latencies come from
// dnsperf -v, so p99 is over every answered query.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIp } from '../core/address.js';
import { openStore } from '../ipam/open-store.js';
import { buildPoolConfig } from '../ipam/pool-config.js';
import { startBerthDns, unboundServer, type Resolver } from '../test/helpers/dns.js';
import { freePort } from '../test/helpers/redis.js';
import { percentile } from './stats.js';

const NAMES = 4000;
/** Queries dnsperf keeps in flight. */
const IN_FLIGHT = 50;

interface Run {
  qps: number;
  p50: number;
  p99: number;
  lost: number;
  answered: number;
}

/** One dnsperf run against 127.0.0.1:port; latencies in ms. */
function dnsperf(port: number, queries: string, seconds: number): Run {
  const r = spawnSync('dnsperf', ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(seconds), '-q', String(IN_FLIGHT), '-c', '1', '-v', '-O', 'suppress=timeouts,congestion'], {
    encoding: 'utf8',
    maxBuffer: 1024 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`dnsperf failed: ${r.stderr}${r.stdout.slice(-2000)}`);
  const out = r.stdout;
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1]);
  const lost = Number(/Queries lost:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const latencies: number[] = [];
  // -v: "> NOERROR app-1.bench.berth A 0.000123"
  for (const m of out.matchAll(/^> (\S+) \S+ \S+ ([\d.]+)$/gm)) {
    if (m[1] !== 'NOERROR') throw new Error(`dnsperf: an answer with ${m[1]}`);
    latencies.push(Number(m[2]) * 1000);
  }
  latencies.sort((a, b) => a - b);
  return { qps, p50: percentile(latencies, 50), p99: percentile(latencies, 99), lost, answered: latencies.length };
}

/** unbound with every name as local-data, one thread, no cache of its own to warm. */
async function startUnboundLocal(dir: string, hosts: Array<[string, string]>): Promise<Resolver> {
  const port = await freePort();
  const conf = join(dir, 'unbound-local.conf');
  writeFileSync(
    conf,
    [
      ...unboundServer(dir, port, 0),
      '  num-threads: 1',
      '  access-control: 127.0.0.0/8 allow',
      '  local-zone: "berth." static',
      ...hosts.map(([name, ip]) => `  local-data: "${name}. 5 IN A ${ip}"`),
      '',
    ].join('\n'),
  );
  const child = spawn('unbound', ['-d', '-c', conf], { stdio: 'ignore' });
  await waitUp(port);
  return { port, log: () => '', stop: async () => void child.kill('SIGKILL') };
}

async function startDnsmasqHosts(dir: string, hosts: Array<[string, string]>): Promise<Resolver> {
  const port = await freePort();
  const file = join(dir, 'hosts');
  writeFileSync(file, hosts.map(([name, ip]) => `${ip} ${name}\n`).join(''));
  const child = spawn(
    'dnsmasq',
    ['--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', '--user=root', '--bind-interfaces', '--listen-address=127.0.0.1', `--port=${port}`, `--addn-hosts=${file}`, '--local=/berth/', '--local-ttl=5', `--pid-file=${join(dir, 'dnsmasq.pid')}`],
    { stdio: 'ignore' },
  );
  await waitUp(port);
  return { port, log: () => '', stop: async () => void child.kill('SIGKILL') };
}

async function waitUp(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = spawnSync('dig', ['@127.0.0.1', '-p', String(port), 'app-0.bench.berth', 'A', '+short', '+time=1', '+tries=1'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() !== '') return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`nothing answers app-0.bench.berth on port ${port}`);
}

export async function benchDns({ quick }: { quick: boolean }): Promise<string[]> {
  const missing = ['dnsperf', 'dnsmasq', 'unbound', 'dig'].filter((b) => spawnSync('which', [b]).status !== 0);
  if (missing.length > 0) return [`dns: skipped: ${missing.join(', ')} not installed (scripts/test-deps.sh)`];
  const seconds = quick ? 3 : 8;
  const rounds = 3;
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-dns-'));
  const stops: Array<() => Promise<void>> = [];
  try {
    const url = `file://${join(dir, 'store')}`;
    const store = await openStore(url);
    await store.createPool(buildPoolConfig({ name: 'bench', subnet: '10.50.0.0/20', hold: 600 }));
    const hosts: Array<[string, string]> = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < NAMES) {
          const i = next++;
          const a = await store.allocate('bench', { containerId: `c${i}`, ifname: 'eth0', owner: `app-${i}` });
          hosts.push([`app-${i}.bench.berth`, formatIp(a.ip)]);
        }
      }),
    );
    await store.close();
    const order = hosts.map(([name]) => name).sort(() => Math.random() - 0.5);
    const queries = join(dir, 'queries');
    writeFileSync(queries, order.map((n) => `${n} A\n`).join(''));

    const berth = await startBerthDns(url);
    stops.push(berth.stop);
    const dnsmasq = await startDnsmasqHosts(dir, hosts);
    stops.push(dnsmasq.stop);
    const unbound = await startUnboundLocal(dir, hosts);
    stops.push(unbound.stop);
    const servers: Array<[string, number]> = [
      ['berth dns (bin/berth dns, file store)', berth.port],
      ['dnsmasq 2.90 (--addn-hosts)', dnsmasq.port],
      ['unbound 1.17 (local-data, 1 thread)', unbound.port],
    ];
    const runs = new Map<string, Run[]>(servers.map(([label]) => [label, []]));
    for (const [, port] of servers) dnsperf(port, queries, 1); // warm-up: JIT, caches
    for (let r = 0; r < rounds; r++) for (const [label, port] of servers) runs.get(label)!.push(dnsperf(port, queries, seconds));
    const out = [
      `dns: ${NAMES} names (A), dnsperf over UDP on loopback, ${IN_FLIGHT} queries in flight, ${rounds} rounds of ${seconds} s each, alternating; best round by qps`,
      `  ${'server'.padEnd(42)} ${'queries/s'.padStart(10)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'lost'.padStart(6)}`,
    ];
    for (const [label] of servers) {
      const best = runs.get(label)!.sort((a, b) => b.qps - a.qps)[0]!;
      out.push(`  ${label.padEnd(42)} ${best.qps.toFixed(0).padStart(10)} ${best.p50.toFixed(3).padStart(8)} ${best.p99.toFixed(3).padStart(8)} ${String(best.lost).padStart(6)}`);
    }
    const best = (label: string) => Math.max(...runs.get(label)!.map((r) => r.qps));
    const [berthLabel, dnsmasqLabel, unboundLabel] = servers.map(([label]) => label) as [string, string, string];
    out.push(`  berth / dnsmasq ${(best(berthLabel) / best(dnsmasqLabel)).toFixed(2)}x, berth / unbound ${(best(berthLabel) / best(unboundLabel)).toFixed(2)}x (best rounds; target: at least 1.00x dnsmasq)`);
    out.push(`  every round: ${[...runs].map(([label, rs]) => `${label.split(' ')[0]} ${rs.map((x) => x.qps.toFixed(0)).join('/')}`).join(', ')}`);
    return out;
  } finally {
    for (const stop of stops) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
