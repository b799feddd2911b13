// The console as an operator uses it: a real headless Chromium against
// `bin/berth console` (a process of its own, on a free port) over the file
// store and a real Redis. The pools page shows usage; the map leads to an
// address, its owner and history; a reservation made with the token shows
// in the map and in `berth ip show`; without the token nothing changes; an
// allocation made by a CNI ADD from outside appears in the open page without
// a reload; a note holding HTML shows as text.
import t, { type Test } from 'tap';
import type { Browser, Page } from 'puppeteer-core';
import { main } from '../../cli/main.js';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js';
import { cniEnv, runCni } from '../helpers/cni.js';
import { spawnConsole } from '../helpers/console.js';
import { freshStoreUrl, PROCESS_STORE_KINDS } from '../helpers/stores.js';

const TOKEN = 'browser-test-token-0123456789';
const NOTE = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script> FW-1234 & "prod"';

if (!skipWithoutChromium(t)) {
  let browser: Browser;
  t.before(async () => {
    const chromium = await launchChromium();
    browser = chromium.browser;
    t.teardown(() => chromium.close());
  });

  for (const kind of PROCESS_STORE_KINDS) {
    t.test(`${kind} store`, async (t) => {
      const url = await freshStoreUrl(t, kind);
      if (!url) return;
      await seed(url);
      const c = await spawnConsole(t, url, { BERTH_CONSOLE_TOKEN: TOKEN });
      // Each test its own browser context: its own cookies, so logging in in one is not logged in in another.
      const page = async (tt: Test): Promise<Page> => {
        const context = await browser.createBrowserContext();
        tt.teardown(() => context.close());
        const p = await context.newPage();
        p.on('dialog', (d) => {
          tt.fail(`a dialog opened: ${d.message()}`);
          void d.dismiss();
        });
        return p;
      };

      t.test('1. the pools page shows a pool and its usage', async (t) => {
        const p = await page(t);
        await p.goto(`${c.base}/`);
        const row = await p.$eval('tr[data-pool="web"]', (tr) => ({
          text: tr.textContent,
          bar: tr.querySelector('.bar')!.getAttribute('title'),
          allocated: (tr.querySelector('.bar .a') as unknown as { style: { width: string } }).style.width,
        }));
        t.equal(row.bar, '2 allocated, 0 reserved, 251 free of 253');
        t.match(row.text, /10\.60\.0\.0\/24/);
        t.match(row.text, /120/, 'its VLAN');
        t.equal(row.allocated, '0.79%', 'the bar shows the allocated share');
      });

      t.test('2. the map leads to an allocated address: its owner and history', async (t) => {
        const p = await page(t);
        await p.goto(`${c.base}/`);
        await Promise.all([p.waitForNavigation(), p.click('tr[data-pool="web"] a')]);
        const cell = 'a.cell[data-ip="10.60.0.2"]';
        t.equal(await p.$eval(cell, (a) => a.className), 'cell s-allocated');
        t.equal(await p.$eval(cell, (a) => a.getAttribute('aria-label')), '10.60.0.2 · allocated · web-1', 'its owner, shown on hover');
        await p.hover(cell);
        t.equal(await p.$eval(cell, (a) => (globalThis as any).getComputedStyle(a, '::after').content), '"10.60.0.2 · allocated · web-1"', 'the hover shows it');
        await Promise.all([p.waitForNavigation(), p.click(cell)]);
        t.equal(new URL(p.url()).pathname, '/pools/web/10.60.0.2');
        t.equal(await fact(p, 'Owner'), 'web-1');
        t.equal(await fact(p, 'Container'), 'ctr-web-1');
        t.equal(await fact(p, 'Host'), 'node-a');
        const history = await p.$$eval('table.history tbody tr', (rows) => rows.map((r) => Array.from(r.querySelectorAll('td'), (td) => (td as { textContent: string | null }).textContent)));
        t.equal(history.length, 1);
        t.match(history[0], [/^\d{4}-\d\d-\d\dT/, 'allocate', 'web-1', 'ctr-web-1', 'eth0', /\d+/, 'seed@test', '']);
      });

      t.test('3 and 6. a reservation with a note, made with the token: in the map, in berth ip show, and its HTML as text', async (t) => {
        const p = await page(t);
        await p.goto(`${c.base}/pools/web/10.60.0.9`);
        t.equal(await p.$('form#reserve'), null, 'no change form before logging in');
        await Promise.all([p.waitForNavigation(), p.click('main a[href^="/login"]')]);
        await p.type('input[name=token]', TOKEN);
        await Promise.all([p.waitForNavigation(), p.click('form.login button')]);
        t.equal(new URL(p.url()).pathname, '/pools/web/10.60.0.9', 'back where the login started');
        await p.type('form#reserve input[name=owner]', 'db-1');
        await p.type('form#reserve input[name=note]', NOTE);
        await Promise.all([p.waitForNavigation(), p.click('form#reserve button')]);
        t.equal(await p.$eval('p.done', (e) => e.textContent), 'Reserved.');
        t.equal(await fact(p, 'Note'), NOTE, 'the note shows as the text it is');
        t.equal(await p.$eval('dd.note', (dd) => dd.children.length), 0, 'no element was made of it');
        t.equal(await p.evaluate(() => (globalThis as { __xss?: number }).__xss), undefined, 'nothing in it ran');
        const history = await p.$$eval('table.history tbody tr', (rows) => rows.map((r) => r.querySelectorAll('td')[6]!.textContent));
        t.match(history[0], /^console@/, 'the history names the console');

        await Promise.all([p.waitForNavigation(), p.click('nav.crumbs a[href="/pools/web"]')]);
        const cell = await p.$eval('a.cell[data-ip="10.60.0.9"]', (a) => ({ cls: a.className, title: a.getAttribute('aria-label') }));
        t.equal(cell.cls, 'cell s-reserved', 'reserved in the map');
        t.equal(cell.title, `10.60.0.9 · reserved · db-1 · ${NOTE}`);
        t.equal(await p.evaluate(() => (globalThis as { __xss?: number }).__xss), undefined);

        const show = await cli(['--store', url, 'ip', 'show', 'web', '10.60.0.9', '--json']);
        t.match(JSON.parse(show), { state: 'reserved', owner: 'db-1', note: NOTE }, 'berth ip show says the same');
      });

      t.test('4. without the token: no change form, and a change posted anyway is refused', async (t) => {
        const p = await page(t);
        await p.goto(`${c.base}/pools/web/10.60.0.10`);
        t.equal(await p.$('form#reserve'), null);
        t.match(await p.$eval('p.readonly', (e) => e.textContent), /Log in with the admin token to reserve, unreserve or release/);
        const [res] = await Promise.all([
          p.waitForNavigation(),
          p.evaluate(() => {
            // runs in the page
            const document = (globalThis as any).document;
            const f = document.createElement('form');
            f.method = 'post';
            f.action = '/pools/web/10.60.0.10/reserve';
            for (const [k, v] of [['owner', 'intruder'], ['csrf', 'guess']]) {
              const i = document.createElement('input');
              i.name = k!;
              i.value = v!;
              f.appendChild(i);
            }
            document.body.appendChild(f);
            f.submit();
          }),
        ]);
        t.equal(res?.status(), 403);
        t.equal(await p.$eval('p.error', (e) => e.textContent), 'failed to reserve address "10.60.0.10" in pool "web": log in with the admin token first');
        await p.goto(`${c.base}/login`);
        await p.type('input[name=token]', 'not-the-token-0123456789');
        const [login] = await Promise.all([p.waitForNavigation(), p.click('form.login button')]);
        t.equal(login?.status(), 403);
        t.equal(await p.$eval('p.error', (e) => e.textContent), 'failed to log in: that is not the admin token');
        t.match(JSON.parse(await cli(['--store', url, 'ip', 'show', 'web', '10.60.0.10', '--json'])), { state: 'free' }, 'nothing changed');
      });

      t.test('5. an allocation by a CNI ADD from outside appears in the open map and pools page, without a reload', async (t) => {
        const map = await page(t);
        const pools = await page(t);
        await map.goto(`${c.base}/pools/web`);
        await pools.goto(`${c.base}/`);
        for (const p of [map, pools]) {
          await p.evaluate(() => ((globalThis as { __loadedOnce?: boolean }).__loadedOnce = true));
          await p.waitForSelector('#live.on', { timeout: 5000 });
        }
        t.equal(await map.$eval('a.cell[data-ip="10.60.0.4"]', (a) => a.className), 'cell s-free');
        const t0 = Date.now();
        const add = await runCni('berth-ipam', cniEnv('ADD', 'outside-1', 'eth0', undefined, { BERTH_AGENT_SOCKET: '', CNI_ARGS: 'BERTH_OWNER=from-outside' }), {
          cniVersion: '1.0.0',
          name: 'vlan120',
          type: 'bridge',
          ipam: { type: 'berth-ipam', pool: 'web', store: url, host: 'node-b' },
        });
        t.equal(add.code, 0, `CNI ADD ${add.stdout}${add.stderr}`);
        t.equal(add.json!.ips[0].address, '10.60.0.4/24');
        const added = Date.now();
        await map.waitForSelector('a.cell.s-allocated[data-ip="10.60.0.4"]', { timeout: 5000 });
        const shown = Date.now() - added;
        t.ok(shown < 1000, `the map shows it ${shown} ms after the ADD returned (the ADD took ${added - t0} ms)`);
        t.equal(await map.$eval('a.cell[data-ip="10.60.0.4"]', (a) => a.getAttribute('aria-label')), '10.60.0.4 · allocated · from-outside');
        await pools.waitForFunction(() => (globalThis as any).document.querySelector('tr[data-pool="web"] .bar')?.getAttribute('title')?.startsWith('3 allocated'), { timeout: 5000 });
        for (const p of [map, pools]) t.equal(await p.evaluate(() => (globalThis as { __loadedOnce?: boolean }).__loadedOnce), true, 'the page was not reloaded');
      });
    });
  }
}

/** What a store holds when each browser test starts. */
async function seed(url: string): Promise<void> {
  const store = await openStore(url);
  try {
    await store.createPool(buildPoolConfig({ name: 'web', subnet: '10.60.0.0/24', vlan: 120, hold: 600 }));
    await store.allocate('web', { containerId: 'ctr-web-1', ifname: 'eth0', owner: 'web-1', host: 'node-a', actor: 'seed@test' });
    await store.allocate('web', { containerId: 'ctr-web-2', ifname: 'eth0', owner: 'web-2', host: 'node-a', actor: 'seed@test' });
    await store.createPool(buildPoolConfig({ name: 'db', subnet: '10.61.0.0/24' }));
  } finally {
    await store.close();
  }
}

/** A fact (dt/dd pair) of the address page. */
function fact(p: Page, label: string): Promise<string | null> {
  return p.$$eval('dl.facts dt', (dts, l) => dts.find((dt) => dt.textContent === l)?.nextElementSibling?.textContent ?? null, label);
}

/** Runs the CLI in-process; returns stdout, failing on a non-zero exit. */
async function cli(args: string[]): Promise<string> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  if (code !== 0) throw new Error(`berth ${args.join(' ')}: ${stderr}`);
  return stdout;
}
