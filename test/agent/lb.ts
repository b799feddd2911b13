// The agent driving the load balancers for real: Docker containers labelled
// berth.lb.web=8080 become HAProxy servers (health-checked before traffic)
// and keepalived real servers; `docker stop` drains and removes them;
// `berth lb show` lists them. berth dns, on the same store, names them
// (A, PTR, and SRV from what the agent publishes) as they come and go.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../cli/main.js';
import { parseLbConfig } from '../../lb/config.js';
import { openStore } from '../../ipam/open-store.js';
import { renderHaproxy } from '../../lb/render.js';
import { agentConfig, bridgeNetwork, startAgent, waitFor } from '../helpers/agent.js';
import { dataOf, dig, dnsToolsMissing, startBerthDns } from '../helpers/dns.js';
import { skipWithoutDocker, startDocker } from '../helpers/docker.js';
import { reverseName } from '../../dns/names.js';
import { formatIp, parseIp } from '../../core/address.js';
import { skipWithoutHaproxy, startHaproxy } from '../helpers/haproxy.js';
import { skipWithoutNetns } from '../helpers/netns.js';
import { freePort } from '../helpers/redis.js';

interface LbView {
  haproxy: { servers: Array<{ server: string; addr: string; state: string; container?: string }> };
  backends: Array<{ ip: string }>;
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, timeout: 5000 }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString()));
      r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

if (!skipWithoutNetns(t) && !skipWithoutDocker(t) && !skipWithoutHaproxy(t)) t.test('the agent keeps HAProxy and keepalived in step with containers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bl')); // HAProxy socket paths must stay short
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const docker = await startDocker();
  t.teardown(() => docker.stop());
  const store = `file://${dir}/store`;
  const io = { stdout: { write: () => true }, stderr: { write: (s: string) => process.stderr.write(s) }, env: {} };
  const { netDir } = await bridgeNetwork(t, { dir, store, network: 'lbnet', pool: 'lbp', subnet: '10.216.0.0/24', gateway: '10.216.0.1', hold: 0, bridgePrefix: 'brlb' });
  const port = await freePort();
  const lbSection = {
    haproxy: { config: join(dir, 'haproxy.cfg'), socket: join(dir, 'admin.sock'), masterSocket: join(dir, 'master.sock'), drainTimeout: 5 },
    keepalived: { config: join(dir, 'keepalived-berth.conf'), pidFile: join(dir, 'keepalived.pid') },
  };
  // keepalived's stand-in: its pid in the pid file, each SIGHUP it gets written down
  const hups = join(dir, 'hups');
  const standIn = spawn('sh', ['-c', `trap 'echo HUP >> ${hups}' HUP; echo $$ > ${lbSection.keepalived.pidFile}; while :; do sleep 0.05; done`], { stdio: 'ignore' });
  t.teardown(() => void standIn.kill('SIGKILL'));
  await waitFor('the stand-in for keepalived', () => (existsSync(lbSection.keepalived.pidFile) && readFileSync(lbSection.keepalived.pidFile, 'utf8').endsWith('\n') ? true : undefined));
  const hupCount = () => (existsSync(hups) ? readFileSync(hups, 'utf8').split('\n').filter(Boolean).length : 0);
  const services = [{ name: 'web', haproxy: { bind: `127.0.0.1:${port}`, mode: 'http', check: { path: '/', interval: 200, rise: 1, fall: 2 } }, lvs: { vip: '192.0.2.10', port: 80 } }];
  // HAProxy starts on berth's rendering with no servers, as an operator would start it
  writeFileSync(lbSection.haproxy.config, renderHaproxy(parseLbConfig(lbSection, services), []));
  const hp = await startHaproxy(lbSection.haproxy.config, lbSection.haproxy.socket, lbSection.haproxy.masterSocket);
  t.teardown(() => hp.stop());
  // on Docker's start events alone: the way without containerd's stream stays proven
  const agent = await startAgent(dir, agentConfig(dir, store, netDir, docker, { lb: lbSection, services, containerdSocket: '' }));
  t.teardown(() => agent.kill('SIGKILL'));
  // berth dns on the agent's store, from before the first container
  const dnsMissing = dnsToolsMissing(['dig']);
  if (dnsMissing && process.env.CI === 'true') t.fail(dnsMissing);
  const dns = dnsMissing ? undefined : await startBerthDns(store);
  if (dns) t.teardown(() => dns.stop());
  /** Polls dig until the answer's data is `want` (sorted), or the status is NXDOMAIN when want is null. */
  const named = async (name: string, type: string, want: string[] | null) =>
    dns &&
    waitFor(`${name} ${type} to be ${JSON.stringify(want)}`, async () => {
      const r = await dig(dns.port, name, type);
      return (want === null ? r.status === 'NXDOMAIN' : JSON.stringify(dataOf(r)) === JSON.stringify([...want].sort())) ? r : undefined;
    }, 15000);
  const web = async (name: string, extra: string[] = []) => {
    const r = await docker.run([
      'run', '-d', '--network', 'none', '--name', name, '--label', 'berth.network=lbnet', '--label', 'berth.lb.web=8080', ...extra,
      // "/" answers at once (the health check); /cgi-bin/slow after 0.2 s, so that requests are in flight when it is stopped
      docker.image, 'sh', '-c', `busybox mkdir -p /www/cgi-bin && echo ${name} > /www/index.html && printf '#!/bin/sh\\nsleep 0.2\\necho Content-Type: text/plain\\necho\\necho ${name}\\n' > /www/cgi-bin/slow && busybox chmod +x /www/cgi-bin/slow && exec httpd -f -p 8080 -h /www`,
    ]);
    if (r.code !== 0) throw new Error(r.stderr);
  };
  await web('web1');
  await web('web2', ['--label', 'berth.lb.nosuch=9000']);
  const view = async () => (await agent.get<LbView>('/v1/lb')).body;
  const both = await waitFor('two servers in rotation', async () => {
    const v = await view();
    return v.haproxy.servers.length === 2 && v.haproxy.servers.every((s) => s.state === 'ready') ? v : undefined;
  });
  t.equal(both.backends.length, 2, 'the undeclared service label is ignored');
  t.match(agent.log(), /"msg":"attached"/);
  t.notMatch(agent.log(), /"via":"containerd"/, 'attached on Docker\'s start events: no containerd stream here');
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) {
    const r = await httpGet(`http://127.0.0.1:${port}/`);
    t.equal(r.status, 200);
    seen.add(r.body.trim());
  }
  t.same([...seen].sort(), ['web1', 'web2'], 'HAProxy balances over both containers');
  // published to the store for cluster-wide readers (berth dns's SRV records): the declared service's members only
  const s = await openStore(store);
  const members = await waitFor('the members in the store', async () => {
    const hosts = await s.listHosts();
    const m = hosts.flatMap((h) => h.members);
    return m.length === 2 ? m : undefined;
  });
  await s.close();
  t.same(members.map((m) => [m.service, m.port, m.container, m.pool]).sort(), [['web', 8080, 'web1', 'lbp'], ['web', 8080, 'web2', 'lbp']], 'the web members, not the undeclared nosuch service');
  const ips = both.backends.map((b) => b.ip).sort();
  const keepalived = readFileSync(lbSection.keepalived.config, 'utf8');
  for (const ip of ips) t.match(keepalived, new RegExp(`real_server ${ip.replace(/\./g, '\\.')} 8080 \\{`), `keepalived lists ${ip}`);
  t.match(keepalived, /virtual_server 192\.0\.2\.10 80 \{/);
  const hupsWithTwo = await waitFor('keepalived to get SIGHUP', () => (hupCount() > 0 ? hupCount() : undefined));
  t.ok(hupsWithTwo > 0, `keepalived got SIGHUP through its pid file (${hupsWithTwo} times)`);
  if (spawnSync('keepalived', ['-v']).status === 0) {
    const check = spawnSync('keepalived', ['-t', '-f', lbSection.keepalived.config, '-l', '-n'], { encoding: 'utf8' });
    t.equal(check.status, 0, `keepalived -t accepts the rendered file: ${check.stderr}`);
  }
  let out = '';
  t.equal(await main(['lb', 'show', '--socket', agent.socket], { ...io, stdout: { write: (s: string) => (out += s) } }), 0);
  t.match(out, /web\s+http 127\.0\.0\.1:\d+\s+TCP 192\.0\.2\.10:80\s+2/);
  t.match(out, /web\s+s_10_216_0_\d+_8080\s+10\.216\.0\.\d+:8080\s+ready\s+[0-9a-f]{12}/);

  // berth dns: each container by its owner (its name), and the service's members as SRV
  const ipOf = Object.fromEntries(members.map((m) => [m.container, m.ip])) as Record<string, string>;
  if (dns) {
    t.ok(await named('web1.lbp.berth', 'A', [`A ${ipOf.web1}`]), 'berth dns: web1.lbp.berth A');
    t.ok(await named(reverseName(parseIp(ipOf.web2, 'ip').hex), 'PTR', ['PTR web2.lbp.berth.']), "and web2's address PTR");
    t.ok(await named('_web._tcp.berth', 'SRV', ['SRV 0 1 8080 web1.lbp.berth.', 'SRV 0 1 8080 web2.lbp.berth.']), '_web._tcp.berth SRV: both members, from what the agent published');
  }

  // docker restart under load: drained before it stops, back in rotation within a few check intervals of answering
  let load = true;
  const results = { ok: 0, failed: 0, web1After: 0 };
  let restarted = false;
  const loop = (async () => {
    while (load) {
      try {
        const r = await httpGet(`http://127.0.0.1:${port}/`);
        if (r.status === 200) {
          results.ok++;
          if (restarted && r.body.trim() === 'web1') results.web1After++;
        } else results.failed++;
      } catch {
        results.failed++;
      }
    }
  })();
  t.equal((await docker.run(['restart', '-t', '2', 'web1'])).code, 0, 'docker restart web1 under load');
  restarted = true;
  // checks every 200 ms: 10 s is 50 intervals, where the next periodic sync would be 60 s away
  await waitFor('web1 back in rotation and serving', () => (results.web1After > 0 ? true : undefined), 10000);
  load = false;
  await loop;
  t.ok(results.web1After > 0, `the restarted web1 serves again (${results.web1After} requests)`);
  t.equal(results.failed, 0, `no request failed while web1 restarted (${results.ok} answered)`);
  if (dns) {
    // hold 0: the restart released web1's address and it took another
    const s2 = await openStore(store);
    const now = (await s2.listAddresses('lbp')).find((a) => a.owner === 'web1' && a.state === 'allocated');
    await s2.close();
    const ip = formatIp(now!.ip);
    t.not(ip, ipOf.web1, `web1 came back on a new address (${ipOf.web1} -> ${ip})`);
    t.ok(await named('web1.lbp.berth', 'A', [`A ${ip}`]), 'berth dns: the name follows it');
    t.ok(await named(reverseName(now!.ip), 'PTR', ['PTR web1.lbp.berth.']), 'the new address names it');
    t.ok(await named(reverseName(parseIp(ipOf.web1, 'ip').hex), 'PTR', null), 'the old one no longer');
    ipOf.web1 = ip;
  }

  // docker stop under load, on the slow path: drained while it still answers (httpd, as pid 1, ignores
  // SIGTERM, and is killed 2 s later), so no request fails; and it was serving right before
  const slow = { ok: 0, failed: 0, web2Before: 0, errors: [] as string[] };
  let stopSent = false;
  load = true;
  const loops = Array.from({ length: 8 }, async () => {
    while (load) {
      try {
        const r = await httpGet(`http://127.0.0.1:${port}/cgi-bin/slow`);
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
        slow.ok++;
        if (!stopSent && r.body.trim() === 'web2') slow.web2Before++;
      } catch (err) {
        slow.failed++;
        slow.errors.push((err as Error).message);
      }
    }
  });
  let one: LbView;
  try {
    await waitFor('web2 serving the load', () => (slow.web2Before >= 3 ? true : undefined));
    stopSent = true;
    t.equal((await docker.run(['stop', '-t', '2', 'web2'])).code, 0, 'docker stop web2 under load');
    one = await waitFor('web2 out of HAProxy', async () => {
      const v = await view();
      return v.haproxy.servers.length === 1 ? v : undefined;
    });
  } finally {
    load = false;
    await Promise.all(loops);
  }
  t.ok(slow.web2Before >= 3, `web2 was serving right before the stop (${slow.web2Before} requests)`);
  t.equal(slow.failed, 0, `no request failed while web2 stopped (${slow.ok} answered; ${slow.errors.slice(0, 5).join(', ')})`);
  t.equal(one.backends.length, 1);
  for (let i = 0; i < 5; i++) t.equal((await httpGet(`http://127.0.0.1:${port}/`)).body.trim(), 'web1', 'only web1 answers');
  await waitFor('keepalived to drop web2', () => ((readFileSync(lbSection.keepalived.config, 'utf8').match(/real_server/g) ?? []).length === 1 ? true : undefined));
  t.ok(await waitFor('another SIGHUP', () => (hupCount() > hupsWithTwo ? true : undefined)), 'and another SIGHUP once its file changed again');
  t.equal((readFileSync(lbSection.haproxy.config, 'utf8').match(/^\s+server /gm) ?? []).length, 1, 'the HAProxy file lists one server');
  t.match(hp.log(), /Server deleted|Server berth_web\/s_\S+ .*maintenance/, 'HAProxy saw the server drained and deleted');
  if (!dns) return;
  t.ok(await named('_web._tcp.berth', 'SRV', ['SRV 0 1 8080 web1.lbp.berth.']), 'berth dns: web2 is out of the SRV answer');
  t.ok(await named('web2.lbp.berth', 'A', null), 'and its name is gone: NXDOMAIN (hold 0: its address is free)');
});
