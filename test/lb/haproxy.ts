// A real HAProxy (master-worker) in front of real HTTP backends in network
// namespaces, under continuous load from a client namespace, while backends
// scale out and in 100 times (and one topology change reloads the config):
// zero failed requests. A negative control, a backend killed while still in
// rotation, must show failures, so the test can see them. A backend that
// answers only after its warm timeout, first added or restarted at the same
// address under load, is in rotation after a few health checks.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { parseLbConfig } from '../../lb/config.js';
import { HaproxyLb } from '../../lb/haproxy.js';
import { renderHaproxy, type Backend } from '../../lb/render.js';
import { waitFor } from '../helpers/agent.js';
import { skipWithoutHaproxy, startBackend, startHaproxy, startLoad, testLan, type TestBackend } from '../helpers/haproxy.js';
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

  t.test('a wanted server deleted behind berth\'s back is added again by a resync, and serves', async (t) => {
    const name = 's_10_215_0_11_8080';
    await lb.api.expectOk(`set server berth_web/${name} state maint`);
    await lb.api.expectOk(`del server berth_web/${name}`, /Server deleted/);
    t.notOk((await lb.view()).some((v) => v.server === name), 'gone from HAProxy');
    await lb.resync([be(0), be(1), be(2, 'api')]);
    await lb.idle();
    t.equal((await lb.view()).find((v) => v.server === name)?.state, 'ready', 'added again, in rotation');
    const load2 = await startLoad(dir, client, 'http://10.215.0.1:18080/', 4);
    await new Promise((r) => setTimeout(r, 1000));
    const r = await load2.stop();
    t.ok((r.by.b1 ?? 0) > 0, `and it takes requests again (${JSON.stringify(r.by)})`);
    t.equal(r.fail, 0, `no failed request (${r.errs.join(', ')})`);
  });

  t.test('an unwanted server added behind berth\'s back is drained and removed by a resync, with no failed request', async (t) => {
    // a server berth never asked for, in rotation; slow (300 ms a request), so that requests are in flight on it
    const slow = await startBackend(dir, backendNs[3]!, 8082, 'intruder', 300);
    t.teardown(() => slow.kill());
    await lb.api.expectOk('add server berth_web/intruder 10.215.0.13:8082', /New server registered/);
    await lb.api.expectOk('set server berth_web/intruder state ready');
    t.equal((await lb.view()).find((v) => v.server === 'intruder')?.state, 'ready', 'in rotation');
    const before = await startLoad(dir, client, 'http://10.215.0.1:18080/', 4);
    await new Promise((r) => setTimeout(r, 1000));
    const served = await before.stop();
    t.ok((served.by.intruder ?? 0) > 0, `the control: it serves before the resync (${JSON.stringify(served.by)})`);
    // under load, so that a removal without a drain would cut requests
    const during = await startLoad(dir, client, 'http://10.215.0.1:18080/', 8);
    const removed = lb.stats.removed;
    await lb.resync([be(0), be(1), be(2, 'api')]);
    await lb.idle();
    const r = await during.stop();
    t.notOk((await lb.view()).some((v) => v.server === 'intruder'), 'removed from HAProxy');
    t.equal(lb.stats.removed, removed + 1, 'by berth: one server drained and removed');
    t.equal(r.fail, 0, `no failed request while it was drained and removed (${r.ok} ok; errors: ${r.errs.join(', ')})`);
    t.same((await lb.view()).filter((v) => v.service === 'web').map((v) => v.server).sort(), ['s_10_215_0_10_8080', 's_10_215_0_11_8080'], 'the wanted ones stay');
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

/**
 * Health checks a backend may answer between listening and its first
 * request. HAProxy checks every 200 ms, and berth rechecks at most as often:
 * a backend left out until the next sync (60 s) would answer ~300 first.
 */
const FEW_CHECKS = 15;

if (!skipWithoutNetns(t) && !skipWithoutHaproxy(t)) t.test('a backend that answers late, new or restarted, is in rotation after a few health checks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bh'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lan = testLan('lbr', '10.217.0.1/24');
  t.teardown(() => lan.cleanup());
  const client = lan.host('10.217.0.100/24');
  const steady = await Promise.all([0, 1].map((i) => startBackend(dir, lan.host(`10.217.0.${10 + i}/24`), 8080, `b${i}`, 10)));
  const lateNs = lan.host('10.217.0.12/24');
  const late: TestBackend[] = [];
  t.teardown(() => Promise.all([...steady, ...late].map((s) => s.kill())));

  const haproxy = { config: join(dir, 'haproxy.cfg'), socket: join(dir, 'admin.sock'), masterSocket: join(dir, 'master.sock'), binary: '/usr/sbin/haproxy', drainTimeout: 10 };
  const cfg = parseLbConfig({ haproxy }, [{ name: 'web', haproxy: { bind: '10.217.0.1:18090', mode: 'http', check: { path: '/health', interval: 200, rise: 1, fall: 2 } } }]);
  writeFileSync(haproxy.config, renderHaproxy(cfg, []));
  const hp = await startHaproxy(haproxy.config, haproxy.socket, haproxy.masterSocket);
  t.teardown(() => hp.stop());
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  const warnings = () => lines.map((l) => JSON.parse(l) as { level: number; msg: string; recheckMs?: number }).filter((l) => l.level === 40);
  // warmTimeoutMs 300: the backend below stays down far longer than that
  const lb = new HaproxyLb(cfg, log, 300);
  t.teardown(() => lb.close());
  const be = (i: number): Backend => ({ service: 'web', ip: `10.217.0.${10 + i}`, port: 8080 });
  const state = async (i: number) => (await lb.view()).find((v) => v.addr === `${be(i).ip}:8080`)?.state;
  const inRotation = async (t: Test, b: TestBackend, what: string) => {
    const checks = await waitFor(`${what} to take a request`, () => b.healthBeforeFirst());
    t.ok(checks <= FEW_CHECKS, `${what} took its first request after ${checks} health checks (at most ${FEW_CHECKS})`);
    t.equal(await state(2), 'ready', `${what} is ready`);
  };

  await lb.update([be(0), be(1)]);
  await lb.idle();
  const load = await startLoad(dir, client, 'http://10.217.0.1:18090/', 8);

  t.test('added while not listening, past the warm timeout', async (t) => {
    await lb.update([be(0), be(1), be(2)]);
    await lb.warmed();
    t.equal(await state(2), 'warming', 'warmed() does not wait past the warm timeout');
    await new Promise((r) => setTimeout(r, 1500)); // 5 warm timeouts, 7 check intervals
    t.equal(await state(2), 'warming', 'out of rotation while it does not answer');
    t.same(
      warnings().map((w) => [w.msg, w.recheckMs]),
      [['backend has not passed a health check yet; it stays out of rotation and is checked again until it passes', 200]],
      'one warning, at the warm timeout, saying it keeps checking',
    );
    late.push(await startBackend(dir, lateNs, 8080, 'v1', 10));
    await inRotation(t, late[0]!, 'the late backend');
  });

  t.test('restarted at the same address, down past the warm timeout', async (t) => {
    for (let i = 1; i <= 3; i++) {
      await lb.update([be(0), be(1)]); // its container stops: drained, then deleted
      await lb.idle();
      t.equal(await state(2), undefined, 'removed');
      await late.at(-1)!.kill('SIGTERM');
      await lb.update([be(0), be(1), be(2)]); // started again, same IP:port, not answering yet
      await new Promise((r) => setTimeout(r, 600)); // 2 warm timeouts, 3 check intervals
      t.equal(await state(2), 'warming', 'out of rotation while it does not answer');
      late.push(await startBackend(dir, lateNs, 8080, `v${i + 1}`, 10));
      await inRotation(t, late.at(-1)!, `restart ${i}`);
    }
    t.equal(warnings().length, 4, 'one warning per time it was added');
  });

  t.test('deleted from HAProxy behind berth\'s back while it warms: added again', async (t) => {
    await lb.update([be(0), be(1)]);
    await lb.idle();
    await late.at(-1)!.kill('SIGTERM');
    await lb.update([be(0), be(1), be(2)]);
    await lb.warmed();
    await lb.api.expectOk('set server berth_web/s_10_217_0_12_8080 state maint');
    await lb.api.expectOk('del server berth_web/s_10_217_0_12_8080', /Server deleted/);
    await waitFor('berth to add it again', async () => ((await state(2)) === 'warming' ? true : undefined));
    late.push(await startBackend(dir, lateNs, 8080, 'v5', 10));
    await inRotation(t, late.at(-1)!, 'the backend added again');
  });

  t.test('stops when no longer wanted, and on close()', async (t) => {
    await lb.update([be(0), be(1)]);
    await lb.idle();
    await late.at(-1)!.kill('SIGTERM');
    await lb.update([be(0), be(1), be(2)]); // never answers
    await lb.warmed();
    await lb.update([be(0), be(1)]);
    await lb.idle(); // the warm loop ended, then the server was drained and deleted
    t.equal(await state(2), undefined, 'a server no longer wanted is removed while it warms');
    await lb.update([be(0), be(1), be(2)]);
    await lb.warmed();
    await lb.close(); // ends the loop: the server stays drained
    late.push(await startBackend(dir, lateNs, 8080, 'v6', 10));
    await new Promise((r) => setTimeout(r, 1000));
    t.equal(await state(2), 'warming', 'after close(), nothing puts it in rotation');
    t.equal(late.at(-1)!.healthBeforeFirst(), undefined, 'and it takes no request');
    const next = new HaproxyLb(cfg, log, 300); // the next agent
    t.teardown(() => next.close());
    await next.update([be(0), be(1), be(2)]);
    await next.idle();
    t.equal(await state(2), 'ready', 'a new HaproxyLb finds it drained and warms it');
  });

  t.test('the load', async (t) => {
    const r = await load.stop();
    t.equal(r.fail, 0, `no failed request (${r.ok} ok; errors: ${r.errs.join(', ')})`);
    for (const v of ['v1', 'v2', 'v3', 'v4', 'v5', 'v6']) t.ok((r.by[v] ?? 0) > 0, `${v} took load (${JSON.stringify(r.by)})`);
  });
});
