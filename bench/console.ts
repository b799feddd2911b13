// The console's pool map: a /24 with 200 allocations beside a /12 with
// 10,000, on the file store and on Redis. Three times for each: the render
// alone (map and HTML from records in memory), a GET of the page from a
// console on loopback (the store read included), and the page load in
// headless Chromium (navigation to the load event). The /24 is the
// reference: a /12 should open about as fast.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCidr } from '../core/address.js';
import type { Store } from '../ipam/model.js';
import { openStore } from '../ipam/open-store.js';
import { buildPoolConfig } from '../ipam/pool-config.js';
import { buildMap } from '../console/map.js';
import { renderPool } from '../console/render.js';
import { CHROMIUM, launchChromium, type Chromium } from '../test/helpers/chromium.js';
import { startConsole } from '../test/helpers/console.js';
import { startRedis } from '../test/helpers/redis.js';
import { summarize } from './stats.js';

interface Row {
  label: string;
  render: number[];
  get: number[];
  load: number[];
  bytes: number;
}

const INFLIGHT = 32;

async function fill(store: Store, pool: string, subnet: string, n: number): Promise<void> {
  await store.createPool(buildPoolConfig({ name: pool, subnet, hold: 600 }));
  let next = 0;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (next < n) {
        const i = next++;
        await store.allocate(pool, { containerId: `c${i}`, ifname: 'eth0', owner: `app-${i % 500}`, host: `node-${i % 20}` });
      }
    }),
  );
}

async function time(fn: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function measure(store: Store, base: string, chromium: Chromium | null, pool: string, label: string, rounds: number): Promise<Row> {
  const conf = await store.getPool(pool);
  const records = await store.listAddresses(pool);
  const scope = parseCidr(conf.subnet, 'subnet');
  const ctx = { auth: 'none' as const, store: store.location, here: '/' };
  const usage = { conf, allocated: records.length, reserved: 0, capacity: '0' };
  const row: Row = { label, render: [], get: [], load: [], bytes: 0 };
  // warm-up: JIT, connections, the browser's first page
  for (let i = 0; i < 5; i++) renderPool({ usage, map: buildMap(conf, scope, records), trail: [scope] }, ctx);
  await fetch(`${base}/pools/${pool}`).then((r) => r.text());
  for (let i = 0; i < rounds * 4; i++) row.render.push(await time(() => renderPool({ usage, map: buildMap(conf, scope, records), trail: [scope] }, ctx)));
  for (let i = 0; i < rounds * 2; i++) {
    row.get.push(
      await time(async () => {
        row.bytes = (await (await fetch(`${base}/pools/${pool}`)).arrayBuffer()).byteLength;
      }),
    );
  }
  if (chromium) {
    const page = await chromium.browser.newPage();
    await page.goto(`${base}/pools/${pool}`, { waitUntil: 'load' });
    for (let i = 0; i < rounds; i++) row.load.push(await time(() => page.goto(`${base}/pools/${pool}`, { waitUntil: 'load' })));
    await page.close();
  }
  return row;
}

/** The console benchmark; returns printable rows. */
export async function benchConsole(opts: { quick?: boolean } = {}): Promise<string[]> {
  const rounds = opts.quick ? 5 : 20;
  const teardown: Array<() => unknown> = [];
  const t = { teardown: (fn: () => unknown) => teardown.push(fn) };
  const rows: Row[] = [];
  let chromium: Chromium | null = null;
  try {
    if (existsSync(CHROMIUM)) {
      chromium = await launchChromium();
      const c = chromium;
      teardown.push(() => c.close());
    }
    const redis = await startRedis();
    teardown.push(() => redis.stop());
    const dir = mkdtempSync(join(tmpdir(), 'berth-bench-console-'));
    teardown.push(() => rmSync(dir, { recursive: true, force: true }));
    for (const [kind, url] of [
      ['file', `file://${dir}`],
      ['redis', redis.url],
    ] as const) {
      const store = await openStore(url);
      teardown.push(() => store.close());
      await fill(store, 'p24', '10.1.0.0/24', 200);
      await fill(store, 'p12', '10.16.0.0/12', 10_000);
      const c = await startConsole(t, url);
      rows.push(await measure(store, c.base, chromium, 'p24', `${kind} /24, 200 allocated`, rounds));
      rows.push(await measure(store, c.base, chromium, 'p12', `${kind} /12, 10,000 allocated`, rounds));
    }
  } finally {
    for (const fn of teardown.reverse()) await fn();
  }
  const ms = (xs: number[]) => {
    if (xs.length === 0) return 'n/a';
    const s = summarize(xs);
    return `${s.p50.toFixed(1)} / ${s.p95.toFixed(1)}`;
  };
  const table = [
    ['map', 'render ms p50/p95', 'GET ms p50/p95', 'page load ms p50/p95', 'KiB'],
    ...rows.map((r) => [r.label, ms(r.render), ms(r.get), ms(r.load), (r.bytes / 1024).toFixed(0)]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  return [
    'console: the pool map page of a /24 (the reference) and a /12; render = map and HTML from records in memory, GET = one request to a console on loopback (store read included), page load = headless Chromium to the load event',
    ...table.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()),
    ...(chromium ? [] : [`(no page loads: ${CHROMIUM} is not installed)`]),
  ];
}
