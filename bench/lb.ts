// Load balancers: with 4,000 backends configured in a real HAProxy, the time
// to apply one membership change through the Runtime API (the commands alone,
// and berth's whole path: sync, add, its own health check, ready), beside
// rendering + validating the full config and a full regenerate-and-reload
// (marathon-lb's and Bamboo's way), in one run; the ratio divides the
// regenerate by berth's whole path.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseLbConfig } from '../lb/config.js';
import { HaproxyApi, haproxyCommand } from '../lb/haproxy-api.js';
import { HaproxyLb, validateHaproxy } from '../lb/haproxy.js';
import { renderHaproxy, serverName, type Backend } from '../lb/render.js';
import { haproxyMissing, startHaproxy } from '../test/helpers/haproxy.js';
import { freePort } from '../test/helpers/redis.js';
import { summarize } from './stats.js';

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const fmt = (xs: number[]) => {
  const s = summarize(xs);
  return `p50 ${s.p50.toFixed(1)} ms  p95 ${s.p95.toFixed(1)} ms  mean ${s.mean.toFixed(1)} ms`;
};

/** The load-balancer benchmark; returns printable lines. */
export async function benchLb(opts: { quick?: boolean } = {}): Promise<string[]> {
  const missing = haproxyMissing();
  if (missing) return [`lb: skipped (${missing})`];
  const total = 4000;
  const changes = opts.quick ? 10 : 40;
  const reloads = opts.quick ? 3 : 5;
  const dir = mkdtempSync(join(tmpdir(), 'bb'));
  const out: string[] = [];
  // a real backend for the end-to-end change; the 4,000 others are unreachable (their checks fail)
  const live = createServer((_q, r) => r.end('ok'));
  await new Promise<void>((r) => live.listen(0, '127.0.0.1', () => r()));
  const livePort = (live.address() as { port: number }).port;
  let hp: Awaited<ReturnType<typeof startHaproxy>> | undefined;
  try {
    const haproxy = { config: join(dir, 'h.cfg'), socket: join(dir, 'a.sock'), masterSocket: join(dir, 'm.sock'), drainTimeout: 5 };
    const lbc = parseLbConfig({ haproxy }, [{ name: 'big', haproxy: { bind: `127.0.0.1:${await freePort()}`, mode: 'http', check: { path: '/', interval: 1000, rise: 1, fall: 2 } } }]);
    const backends: Backend[] = Array.from({ length: total }, (_, i) => ({ service: 'big', ip: `10.220.${Math.floor(i / 250)}.${(i % 250) + 1}`, port: 8080 }));
    writeFileSync(haproxy.config, renderHaproxy(lbc, backends));
    hp = await startHaproxy(haproxy.config, haproxy.socket, haproxy.masterSocket);
    const api = new HaproxyApi(haproxy.socket);
    const lb = new HaproxyLb(lbc, pino({ level: 'error' }), 30000);
    await lb.update(backends); // adopts the running config: no reload
    if (lb.stats.reloads !== 0) throw new Error('the bench expected HAProxy to run berth\'s config already');

    // 1. one change through the Runtime API: the commands alone (add, health, drain, ready / drain, maint, del)
    const addApi: number[] = [];
    const delApi: number[] = [];
    for (let i = 0; i < changes; i++) {
      const name = `x${i}`;
      let t0 = process.hrtime.bigint();
      await api.expectOk(`add server berth_big/${name} 10.221.0.${i + 1}:8080 check inter 1000 rise 1 fall 2`, /New server registered/);
      await api.expectOk(`enable health berth_big/${name}`);
      await api.expectOk(`set server berth_big/${name} state drain`);
      await api.expectOk(`set server berth_big/${name} state ready`);
      addApi.push(ms(t0));
      t0 = process.hrtime.bigint();
      await api.expectOk(`set server berth_big/${name} state drain`);
      const st = (await api.servers('berth_big')).find((s) => s.name === name)!;
      if ((await api.sessions('berth_big', st)).get(name) !== 0) throw new Error('expected no sessions');
      await api.expectOk(`set server berth_big/${name} state maint`);
      await api.expectOk(`shutdown sessions server berth_big/${name}`);
      await api.expectOk(`del server berth_big/${name}`, /Server deleted/);
      delApi.push(ms(t0));
    }
    // 2. the whole berth path: update() with one more (live) backend until it is in rotation, and back
    const e2eAdd: number[] = [];
    const e2eDel: number[] = [];
    for (let i = 0; i < Math.min(changes, 10); i++) {
      const extra: Backend = { service: 'big', ip: '127.0.0.1', port: livePort };
      let t0 = process.hrtime.bigint();
      await lb.update([...backends, extra]);
      await lb.warmed();
      e2eAdd.push(ms(t0));
      const st = (await api.servers('berth_big')).find((s) => s.name === serverName(extra));
      if (!st || st.admin !== 0) throw new Error('the new server is not in rotation');
      t0 = process.hrtime.bigint();
      await lb.update(backends);
      await lb.idle();
      e2eDel.push(ms(t0));
    }
    // 3. the full regenerate: render, haproxy -c, reload until the new worker answers
    const render: number[] = [];
    const validate: number[] = [];
    const reload: number[] = [];
    for (let i = 0; i < reloads; i++) {
      let t0 = process.hrtime.bigint();
      const text = renderHaproxy(lbc, [...backends, { service: 'big', ip: '10.222.0.1', port: 8080 + i }]);
      render.push(ms(t0));
      t0 = process.hrtime.bigint();
      writeFileSync(`${haproxy.config}.new`, text);
      await validateHaproxy('haproxy', `${haproxy.config}.new`);
      validate.push(ms(t0));
      t0 = process.hrtime.bigint();
      const before = await api.pid();
      writeFileSync(haproxy.config, text);
      await haproxyCommand(haproxy.masterSocket, 'reload', 30000);
      for (;;) {
        const now = await api.pid().catch(() => 0);
        if (now !== 0 && now !== before) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      reload.push(ms(t0));
    }
    // the divisor is berth's whole path for one change, not the Runtime API commands alone
    const berthAdd = summarize(e2eAdd).p50;
    const full = summarize(render).p50 + summarize(validate).p50 + summarize(reload).p50;
    out.push(`lb: ${spawnSync('haproxy', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0]!.split(' ').slice(0, 3).join(' ')}, ${total} backends configured, in one run`);
    out.push(`  one change, Runtime API commands: add ${fmt(addApi)} | remove ${fmt(delApi)} (target: < 50 ms)`);
    out.push(`  one change, berth's whole path (update() until in rotation after a passed check): add ${fmt(e2eAdd)} | remove, drained, deleted and written to the file ${fmt(e2eDel)}`);
    out.push(`  full regenerate: render ${fmt(render)} | haproxy -c ${fmt(validate)} | reload until the new worker answers ${fmt(reload)}`);
    out.push(`  render + validate + reload (p50s) = ${full.toFixed(0)} ms = ${(full / berthAdd).toFixed(0)}x berth's whole path for one change (add, p50 ${berthAdd.toFixed(1)} ms)`);
  } finally {
    await hp?.stop();
    live.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
