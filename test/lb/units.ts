// The load-balancer pure parts: service validation (nothing a config or a
// label says can inject HAProxy configuration), rendering, the IPVS plan,
// the recheck schedule of a warming server, and `haproxy -c` /
// `keepalived -t` on what is rendered.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { join } from 'node:path';
import t from 'tap';
import { parseLabels } from '../../agent/labels.js';
import { parseBind, parseLbConfig } from '../../lb/config.js';
import { haproxyCommand } from '../../lb/haproxy-api.js';
import { validateHaproxy } from '../../lb/haproxy.js';
import { desiredRealServers, KeepalivedLb, planIpvs, validateKeepalived } from '../../lb/lvs.js';
import { RECHECK_FIRST_MS, RECHECK_MAX_MS, recheckDelay } from '../../lb/recheck.js';
import { renderHaproxy, renderKeepalived, serverAddr, serverName } from '../../lb/render.js';
import { waitFor } from '../helpers/agent.js';

const HAPROXY = { config: '/etc/haproxy/haproxy.cfg', socket: '/run/haproxy/admin.sock', masterSocket: '/run/haproxy/master.sock' };

t.test('services: defaults, and every bad field named', async (t) => {
  const lb = parseLbConfig({ haproxy: HAPROXY, keepalived: {} }, [
    { name: 'web', haproxy: { bind: ':80' }, lvs: { vip: '192.0.2.1', port: 80 } },
    { name: 'db', haproxy: { bind: '[2001:DB8::1]:5432', mode: 'tcp', balance: 'leastconn' } },
  ]);
  t.match(lb.services[0], { name: 'web', haproxy: { bind: ':80', mode: 'http', balance: 'roundrobin', check: { interval: 2000, rise: 2, fall: 3 } }, lvs: { vip: '192.0.2.1', port: 80, protocol: 'TCP', scheduler: 'wrr', kind: 'NAT' } });
  t.equal(lb.services[1]!.haproxy!.bind, '[2001:db8::1]:5432');
  t.equal(lb.haproxy!.drainTimeout, 30);
  t.equal(lb.keepalived!.config, '/etc/keepalived/berth.conf');
  const bad: Array<[unknown, unknown, RegExp]> = [
    [{ haproxy: HAPROXY }, [{ name: 'web\nlisten evil', haproxy: { bind: ':80' } }], /services\[0\]\.name must be/],
    [{ haproxy: HAPROXY }, [{ name: 'w', haproxy: { bind: ':80\n  server x 1.2.3.4:1' } }], /services\[0\]\.haproxy\.bind must be "ADDRESS:PORT"/],
    [{ haproxy: HAPROXY }, [{ name: 'w', haproxy: { bind: ':80', check: { path: '/x y' } } }], /check\.path must be an HTTP path/],
    [{ haproxy: HAPROXY }, [{ name: 'w', haproxy: { bind: ':80', check: { path: '/x"\nbackend' } } }], /check\.path/],
    [{ haproxy: HAPROXY }, [{ name: 'w', haproxy: { bind: ':80', mode: 'tcp', check: { path: '/' } } }], /check\.path needs mode http/],
    [{ haproxy: HAPROXY }, [{ name: 'w', haproxy: { bind: ':80', balance: 'source' } }], /balance must be one of roundrobin, leastconn, first, random/],
    [{ haproxy: HAPROXY }, [{ name: 'w', haproxy: { bind: ':80' } }, { name: 'w', haproxy: { bind: ':81' } }], /declared twice/],
    [{ haproxy: HAPROXY }, [{ name: 'a', haproxy: { bind: ':80' } }, { name: 'b', haproxy: { bind: ':80' } }], /:80 is used by another service/],
    [{ haproxy: HAPROXY }, [{ name: 'w' }], /services\[0\] needs haproxy and\/or lvs/],
    [{ haproxy: { ...HAPROXY, socket: '/run/x sock' } }, [], /lb\.haproxy\.socket must be an absolute path/],
    [{ haproxy: { ...HAPROXY, config: '/etc/../x' } }, [], /lb\.haproxy\.config/],
    [{}, [{ name: 'w', haproxy: { bind: ':80' } }], /needs lb\.haproxy/],
    [{}, [{ name: 'w', lvs: { vip: '1.2.3.4', port: 80 } }], /need lb\.keepalived/],
    [{ keepalived: {} }, [{ name: 'w', lvs: { vip: 'x', port: 80 } }], /lvs\.vip must be an IP address/],
    [{ keepalived: {} }, [{ name: 'w', lvs: { vip: '1.2.3.4', port: 80, scheduler: 'rr; rm' } }], /lvs\.scheduler must be one of/],
    [{ nope: 1 }, [], /lb\.nope: unknown field/],
    [undefined, 'x', /services must be a list/],
  ];
  for (const [lbRaw, services, re] of bad) t.throws(() => parseLbConfig(lbRaw, services), re, JSON.stringify(services));
  t.throws(() => parseBind('1.2.3.4:0', 'b'), /ADDRESS:PORT/);
  t.throws(() => parseBind('999.1.1.1:80', 'b'), /not an IP address/);
});

t.test('labels cannot inject HAProxy configuration or runtime commands', async (t) => {
  const attempts: Array<Record<string, string>> = [{ 'berth.lb.web': '80\nserver evil 6.6.6.6:80' }, { 'berth.lb.web;del server x': '80' }, { 'berth.lb.web 80': '80' }, { 'berth.lb.web': '80 check' }];
  for (const labels of attempts) {
    t.throws(() => parseLabels({ 'berth.network': 'n', ...labels }, 'x'), /berth\.lb/, JSON.stringify(labels));
  }
  await t.rejects(haproxyCommand('/nonexistent', 'add server a/b 1.2.3.4:80; shutdown'), /refusing a HAProxy command with a separator/);
  await t.rejects(haproxyCommand('/nonexistent', 'show info\nshutdown frontend x'), /refusing/);
});

t.test('rendering: names from addresses, IPv6 servers, checks; HAProxy and keepalived accept it', async (t) => {
  const lb = parseLbConfig({ haproxy: HAPROXY, keepalived: {} }, [
    { name: 'web', haproxy: { bind: '127.0.0.1:8080', check: { path: '/health', interval: 500, rise: 1, fall: 2 } }, lvs: { vip: '192.0.2.1', port: 80 } },
    { name: 'api', haproxy: { bind: ':9090', mode: 'tcp' } },
  ]);
  const backends = [
    { service: 'web', ip: '10.0.0.5', port: 8080, container: 'abcdef0123456789' },
    { service: 'web', ip: '2001:db8::5', port: 8080 },
    { service: 'api', ip: '10.0.0.6', port: 9000 },
  ];
  t.equal(serverName(backends[1]!), 's_2001_db8__5_8080');
  t.equal(serverAddr(backends[1]!), 'ipv6@2001:db8::5:8080');
  const cfg = renderHaproxy(lb, backends);
  t.match(cfg, /frontend berth_web\n {4}bind 127\.0\.0\.1:8080\n {4}mode http\n {4}default_backend berth_web/);
  t.match(cfg, /backend berth_web\n {4}mode http\n {4}balance roundrobin\n {4}option httpchk GET \/health/);
  t.match(cfg, / {4}server s_10_0_0_5_8080 10\.0\.0\.5:8080 check inter 500 rise 1 fall 2 # abcdef012345/);
  t.match(cfg, /backend berth_api\n {4}mode tcp\n {4}balance roundrobin\n {4}retries 3/);
  t.notMatch(cfg, /berth_api[\s\S]*httpchk/, 'no HTTP check in tcp mode');
  const ka = renderKeepalived(lb, backends);
  t.match(ka, /virtual_server 192\.0\.2\.1 80 \{\n {4}delay_loop 5\n {4}lb_algo wrr\n {4}lb_kind NAT\n {4}protocol TCP\n {4}real_server 10\.0\.0\.5 8080 \{/);
  t.notMatch(ka, /10\.0\.0\.6/, 'only the lvs service');
  t.notMatch(ka, /2001:db8::5/, 'no IPv6 real server under an IPv4 VIP');
  const dir = t.testdir();
  if (spawnSync('haproxy', ['-v']).status === 0 || process.env.CI === 'true') {
    const file = join(dir, 'h.cfg');
    writeFileSync(file, cfg);
    await validateHaproxy('haproxy', file);
    writeFileSync(file, `${cfg}\nbackend broken\n    server x\n`);
    await t.rejects(validateHaproxy('haproxy', file), /haproxy -c rejected/);
  }
  if (spawnSync('keepalived', ['-v']).status === 0 || process.env.CI === 'true') {
    const file = join(dir, 'k.conf');
    writeFileSync(file, ka);
    await validateKeepalived('keepalived', file);
    writeFileSync(file, ka.replace('lb_algo wrr', 'lb_algo nonsense'));
    await t.rejects(validateKeepalived('keepalived', file), /keepalived -t rejected/);
  }
});

t.test('keepalived updates run one at a time and the latest backends win', async (t) => {
  const dir = t.testdir();
  const lb = parseLbConfig({ keepalived: { config: join(dir, 'k.conf'), binary: '/nonexistent/keepalived' } }, [{ name: 'web', lvs: { vip: '192.0.2.1', port: 80 } }]);
  const k = new KeepalivedLb(lb, pino({ level: 'silent' }));
  await Promise.all(Array.from({ length: 20 }, (_, i) => k.update([{ service: 'web', ip: `10.0.0.${i + 1}`, port: 8080 }])));
  const text = readFileSync(join(dir, 'k.conf'), 'utf8');
  t.equal((text.match(/real_server/g) ?? []).length, 1);
  t.match(text, /real_server 10\.0\.0\.20 8080/, 'the last update stands');
  t.equal(k.stats.errors, 0);
});

t.test('IPVS plan: add new real servers, drain (weight 0) gone ones, then delete them', async (t) => {
  const lb = parseLbConfig({ keepalived: {} }, [{ name: 'web', lvs: { vip: '192.0.2.1', port: 80 } }]);
  const want = desiredRealServers(lb, [
    { service: 'web', ip: '10.0.0.1', port: 8080 },
    { service: 'web', ip: '10.0.0.2', port: 8080 },
    { service: 'other', ip: '10.0.0.9', port: 1 },
  ]);
  t.equal(want.length, 2);
  const rs = (ip: string, weight: number) => ({ vip: '192.0.2.1', vport: 80, protocol: 'TCP' as const, ip, port: 8080, weight });
  t.same(planIpvs([rs('10.0.0.1', 1), rs('10.0.0.3', 1), rs('10.0.0.4', 0)], want), [
    { op: 'add', rs: rs('10.0.0.2', 1) },
    { op: 'drain', rs: rs('10.0.0.3', 0) },
    { op: 'delete', rs: rs('10.0.0.4', 0) },
  ]);
  t.same(planIpvs(want, want), [], 'nothing to do when in step');
});

t.test('recheck schedule: from 50 ms, doubling, capped at the check interval and at 5 s', async (t) => {
  const schedule = (interval: number, n: number) => Array.from({ length: n }, (_, i) => recheckDelay(i + 1, interval));
  t.same(schedule(200, 6), [50, 100, 200, 200, 200, 200], 'a short interval caps it early');
  t.same(schedule(2000, 8), [50, 100, 200, 400, 800, 1600, 2000, 2000], 'the default interval');
  t.same(schedule(3600000, 9), [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000], 'a long interval: 5 s at most');
  t.equal(recheckDelay(1, 100), RECHECK_FIRST_MS, 'the shortest interval allowed still starts at 50 ms');
  t.equal(recheckDelay(0, 2000), RECHECK_FIRST_MS, 'before any failure: the first wait');
  for (const failed of [60, 1e6, Infinity]) t.equal(recheckDelay(failed, 3600000), RECHECK_MAX_MS, `${failed} failures: still the cap`);
  // a backend that stays down for an hour is checked about as often as HAProxy checks it (interval 2 s)
  let waited = 0;
  let checks = 0;
  while (waited < 3600000) waited += recheckDelay(++checks, 2000);
  t.ok(checks > 1790 && checks <= 1810, `${checks} checks in an hour at interval 2 s`);
});

t.test('keepalived gets SIGHUP when its file changed, and only then', async (t) => {
  const dir = t.testdir();
  // a stand-in for keepalived: its pid in the pid file, each signal it gets written down
  const signals = join(dir, 'signals');
  const pidFile = join(dir, 'keepalived.pid');
  const child = spawn('sh', ['-c', `trap 'echo HUP >> ${signals}' HUP; trap 'echo USR1 >> ${signals}' USR1; echo $$ > ${pidFile}; while :; do sleep 0.05; done`], { stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
  const got = () => (existsSync(signals) ? readFileSync(signals, 'utf8').split('\n').filter(Boolean) : []);
  await waitFor('the stand-in to write its pid', () => (existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n') ? true : undefined), 10000);
  t.equal(Number(readFileSync(pidFile, 'utf8')), child.pid, 'the pid file names it');
  const lb = parseLbConfig({ keepalived: { config: join(dir, 'k.conf'), binary: '/nonexistent/keepalived', pidFile } }, [{ name: 'web', lvs: { vip: '192.0.2.1', port: 80 } }]);
  const k = new KeepalivedLb(lb, pino({ level: 'silent' }));
  const one = [{ service: 'web', ip: '10.0.0.1', port: 8080 }];
  await k.update(one);
  t.same(await waitFor('the first SIGHUP', () => (got().length >= 1 ? got() : undefined), 10000), ['HUP'], 'a new file: one SIGHUP');
  await k.update(one);
  // a marker signal of our own: once it is written down, a SIGHUP sent before it would be too
  process.kill(child.pid!, 'SIGUSR1');
  t.same(await waitFor('the marker', () => (got().includes('USR1') ? got() : undefined), 10000), ['HUP', 'USR1'], 'the same backends again: the file is unchanged and no SIGHUP is sent');
  await k.update([...one, { service: 'web', ip: '10.0.0.2', port: 8080 }]);
  t.same(await waitFor('the second SIGHUP', () => (got().length >= 3 ? got() : undefined), 10000), ['HUP', 'USR1', 'HUP'], 'a changed file: another SIGHUP');
  t.equal(k.stats.renders, 2);
  t.equal(k.stats.errors, 0);
});
