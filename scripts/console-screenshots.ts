// Draws the console screenshots of docs/console.md, docs/img/console-pools.png and
// docs/img/console-map.png, with the tests' Chromium set-up: a console in this
// process over a temporary file store holding made-up pools.
//   node --import tsx scripts/console-screenshots.ts
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIp } from '../core/address.js';
import { openStore } from '../ipam/open-store.js';
import { buildPoolConfig } from '../ipam/pool-config.js';
import { launchChromium } from '../test/helpers/chromium.js';
import { startConsole } from '../test/helpers/console.js';

const OUT = join(import.meta.dirname, '..', 'docs', 'img');
const dir = mkdtempSync(join(tmpdir(), 'berth-screenshots-'));
const teardown: Array<() => unknown> = [];

try {
  const url = `file://${dir}`;
  await seed(url);
  const c = await startConsole({ teardown: (fn) => teardown.push(fn) }, url);
  const chromium = await launchChromium();
  teardown.push(() => chromium.close());
  const page = await chromium.browser.newPage();
  await page.setViewport({ width: 1200, height: 560, deviceScaleFactor: 1 });
  mkdirSync(OUT, { recursive: true });
  await page.goto(`${c.base}/?sort=used&order=desc`, { waitUntil: 'load' });
  await page.waitForSelector('#live.on');
  await page.screenshot({ path: join(OUT, 'console-pools.png') });
  await page.setViewport({ width: 1200, height: 990, deviceScaleFactor: 1 });
  await page.goto(`${c.base}/pools/vlan100-web`, { waitUntil: 'load' });
  await page.waitForSelector('#live.on');
  await page.hover('a.cell[data-ip="10.100.0.37"]');
  await page.screenshot({ path: join(OUT, 'console-map.png') });
  console.log(`wrote ${join(OUT, 'console-pools.png')} and ${join(OUT, 'console-map.png')}`);
} finally {
  for (const fn of teardown.reverse()) await fn();
  rmSync(dir, { recursive: true, force: true });
}

/** Made-up pools: a busy web VLAN, a database VLAN with pinned addresses, a large batch pool, an IPv6 one. */
async function seed(url: string): Promise<void> {
  const store = await openStore(url);
  const hex = (ip: string) => parseIp(ip, 'ip').hex;
  const alloc = (pool: string, i: number, owner: string, host: string) =>
    store.allocate(pool, { containerId: `${owner.replace(/[^a-z0-9]/g, '')}${(0x5a3c00 + i).toString(16)}e1f0`, ifname: 'eth0', owner, host, network: pool, actor: `cni@${host}` });
  try {
    await store.createPool(buildPoolConfig({ name: 'vlan100-web', subnet: '10.100.0.0/24', vlan: 100, hold: 3600 }));
    await store.createPool(buildPoolConfig({ name: 'vlan200-db', subnet: '10.200.0.0/24', vlan: 200, ranges: ['10.200.0.10-10.200.0.250'], hold: 86400 }));
    await store.createPool(buildPoolConfig({ name: 'vlan300-batch', subnet: '10.48.0.0/12', vlan: 300, hold: 600 }));
    await store.createPool(buildPoolConfig({ name: 'edge-v6', subnet: 'fd00:100::/64', vlan: 400 }));
    const apps = ['web', 'api', 'auth', 'search', 'cart', 'pay'];
    for (let i = 0; i < 150; i++) await alloc('vlan100-web', i, `prod/${apps[i % apps.length]}-${Math.floor(i / apps.length)}`, `node-${(i % 7) + 1}`);
    for (const last of [40, 41, 57, 88, 101, 120, 133]) await store.release('vlan100-web', { ip: hex(`10.100.0.${last}`), actor: 'cni@node-3' });
    await store.reserve('vlan100-web', hex('10.100.0.200'), { owner: 'lb-vip', note: 'VIP behind FW-1234', actor: 'cli:ops@admin-1' });
    await store.reserve('vlan100-web', hex('10.100.0.201'), { owner: 'lb-vip-2', note: 'standby VIP', actor: 'cli:ops@admin-1' });
    for (let i = 0; i < 24; i++) await alloc('vlan200-db', i, `db-${i}`, `node-${(i % 3) + 1}`);
    for (const last of [240, 241, 242]) await store.reserve('vlan200-db', hex(`10.200.0.${last}`), { owner: `db-standby-${last - 240}`, note: 'CMDB CI-88', actor: 'cli:ops@admin-1' });
    for (let i = 0; i < 400; i++) await alloc('vlan300-batch', i, `batch-${i}`, `node-${(i % 9) + 1}`);
    for (let i = 0; i < 12; i++) await alloc('edge-v6', i, `edge-${i}`, 'node-1');
  } finally {
    await store.close();
  }
}
