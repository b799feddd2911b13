// A real HAProxy (master-worker) in front of real HTTP backends in network
// namespaces, under continuous load from a client namespace, while backends
// scale out and in 100 times (and one topology change reloads the config):
// zero failed requests. A negative control, a backend killed while still in
// rotation, must show failures, so the test can see them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { parseLbConfig } from '../../lb/config.js';
import { HaproxyLb } from '../../lb/haproxy.js';
import { renderHaproxy, type Backend } from '../../lb/render.js';
import { skipWithoutHaproxy, startBackend, startHaproxy, startLoad, testLan } from '../helpers/haproxy.js';
import { skipWithoutNetns } from '../helpers/netns.js';

const CYCLES = 100;

if (!skipWithoutNetns(t) && !skipWithoutHaproxy(t)) t.test('HAProxy follows scale-out and scale-in with no failed request', async (t) => {
  // HAProxy refuses socket paths over 97 bytes: a short directory
  const dir = mkdtempSync(join(tmpdir(), 'bh'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lan = testLan('lbb', '10.215.0.1/24');
  t.teardown(() => lan.cleanup());
  const client = lan.host('10.215.0.100/24');
  const backendNs = [0, 1, 2, 3].map((i) => lan.host(`10.215.0.${10 + i}/24`));
  const servers = await Promise.all(backendNs.map((ns, i) => startBackend(dir, ns, 8080, `b${i}`, 10)));
  t.teardown(() => Promise.all(servers.map((s) => s.kill())));

  const haproxy = { config: join(dir, 'haproxy.cfg'), socket: join(dir, 'admin.sock'), masterSocket: join(dir, 'master.sock'), binary: '/usr/sbin/haproxy', drainTimeout: 10 };
  const web = { name: 'web', haproxy: { bind: '10.215.0.1:18080', mode: 'http', check: { path: '/health', interval: 200, rise: 1, fall: 2 } } };
  const lb1 = parseLbConfig({ haproxy }, [web]);
  writeFileSync(haproxy.config, renderHaproxy(lb1, []));
  const hp = await startHaproxy(haproxy.config, haproxy.socket, haproxy.masterSocket);
  t.teardown(() => hp.stop());
  const log = pino({ level: 'warn' }, pino.destination(2));
  let lb = new HaproxyLb(lb1, log, 10000);
  const be = (i: number, service = 'web'): Backend => ({ service, ip: `10.215.0.${10 + i}`, port: 8080, container: `c${i}` });

  await lb.update([be(0), be(1)]);
  await lb.idle();
  // (HAProxy lists servers in the order they were added, and adds run concurrently)
  t.same((await lb.view()).map((v) => [v.server, v.state]).sort(), [['s_10_215_0_10_8080', 'ready'], ['s_10_215_0_11_8080', 'ready']], 'two backends in rotation');
  t.match(readFileSync(haproxy.config, 'utf8'), /server s_10_215_0_10_8080 10\.215\.0\.10:8080 check inter 200 rise 1 fall 2 # c0/, 'the file lists the dynamic servers');

  const load = await startLoad(dir, client, 'http://10.215.0.1:18080/', 8);
  let reloads = 0;
  for (let i = 0; i < CYCLES; i++) {
    const extra = be(2 + (i % 2));
    await lb.update([be(0), be(1), extra]); // scale out: in rotation once a check passed
    await lb.warmed();
    await new Promise((r) => setTimeout(r, 30));
    await lb.update([be(0), be(1)]); // scale in: drained, then deleted
    await lb.idle();
    if (i === CYCLES / 2) {
      // a topology change under load: a new service, so the whole config is re-rendered and reloaded
      const lb2 = parseLbConfig({ haproxy }, [web, { name: 'api', haproxy: { bind: '10.215.0.1:18081', mode: 'tcp' } }]);
      lb = new HaproxyLb(lb2, log, 10000);
      await lb.update([be(0), be(1), be(2, 'api')]);
      reloads += lb.stats.reloads;
    }
  }
  const result = await load.stop();
  t.equal(reloads, 1, 'one reload, for the topology change');
  t.equal(result.fail, 0, `no failed request (${result.ok} ok; errors: ${result.errs.join(', ')})`);
  t.ok(result.ok > 500, `the load ran (${result.ok} requests)`);
  t.ok((result.by.b2 ?? 0) > 0 && (result.by.b3 ?? 0) > 0, `the scaled-out backends took traffic (${JSON.stringify(result.by)})`);
  t.same((await lb.view()).filter((v) => v.service === 'web').map((v) => v.server).sort(), ['s_10_215_0_10_8080', 's_10_215_0_11_8080'], 'back to two backends');
  t.match(readFileSync(haproxy.config, 'utf8'), /frontend berth_api\n {4}bind 10\.215\.0\.1:18081/);

  t.test('a wanted server found in maintenance (a half-done add or removal) is brought back by a resync', async (t) => {
    const name = 's_10_215_0_10_8080';
    await lb.api.expectOk(`set server berth_web/${name} state maint`);
    t.equal((await lb.view()).find((v) => v.server === name)?.state, 'maint');
    await lb.resync([be(0), be(1), be(2, 'api')]);
    await lb.idle();
    t.equal((await lb.view()).find((v) => v.server === name)?.state, 'ready', 'in rotation again');
  });

  t.test('negative control: a backend killed while in rotation makes requests fail', async (t) => {
    const slow = await startBackend(dir, backendNs[2]!, 8081, 'slow', 300);
    const victim = { service: 'web', ip: '10.215.0.12', port: 8081, container: 'victim' };
    await lb.update([be(0), be(1), be(2, 'api'), victim]);
    await lb.warmed();
    const load2 = await startLoad(dir, client, 'http://10.215.0.1:18080/', 8);
    await new Promise((r) => setTimeout(r, 1000));
    await slow.kill('SIGKILL'); // requests in flight on it are lost
    await new Promise((r) => setTimeout(r, 500));
    const r = await load2.stop();
    t.ok(r.fail > 0, `failures are seen (${r.fail} failed, ${r.ok} ok: ${r.errs.slice(0, 3).join(', ')})`);
    await lb.update([be(0), be(1), be(2, 'api')]);
    await lb.idle();
  });
});
