// A real Prometheus scrapes the agent over --metrics-listen and finds a
// labelled container through the agent's /v1/sd; the Grafana dashboard
// queries only metrics the agent exports.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { agentConfig, atExit, bridgeNetwork, startAgent, waitFor } from '../helpers/agent.js';
import { BIN } from '../helpers/cni.js';
import { skipWithoutDocker, startDocker } from '../helpers/docker.js';
import { skipWithoutNetns } from '../helpers/netns.js';
import { freePort } from '../helpers/redis.js';

const DASHBOARD = new URL('../../deploy/grafana-dashboard.json', import.meta.url);

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

/** The metric names a PromQL expression reads (identifiers followed by { or a space/paren, not functions or labels). */
function metricsIn(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.replace(/\{[^}]*\}/g, ' ').matchAll(/\b(berth_[a-z0-9_]+)\b/g)) names.add(m[1]!);
  return [...names];
}

/** Metric family names an exposition declares (# TYPE), with the series names each family gives. */
function families(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    out.add(m[1]!);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(`${m[1]}${s}`);
  }
  return out;
}

function promMissing(): string | null {
  return spawnSync('prometheus', ['--version']).status === 0 ? null : 'prometheus is not installed (Debian package prometheus)';
}

const missing = promMissing();
if (missing && process.env.CI !== 'true') t.plan(0, missing);
else if (!skipWithoutNetns(t) && !skipWithoutDocker(t)) {
  t.test('Prometheus scrapes the agent and discovers a labelled container through /v1/sd', async (t) => {
    if (missing) return void t.fail(missing);
    const dir = t.testdir();
    const docker = await startDocker();
    t.teardown(() => docker.stop());
    const store = `file://${dir}/store`;
    const { netDir } = await bridgeNetwork(t, { dir, store, network: 'promnet', pool: 'promp', subnet: '10.217.0.0/24', gateway: '10.217.0.1', hold: 0, bridgePrefix: 'brpm' });
    const metricsPort = await freePort();
    const agent = await startAgent(dir, agentConfig(dir, store, netDir, docker, { metricsListen: `127.0.0.1:${metricsPort}` }));
    t.teardown(() => agent.kill('SIGKILL'));
    const base = `http://127.0.0.1:${metricsPort}`;

    const sdEmpty = await get(`${base}/v1/sd`);
    t.equal(sdEmpty.status, 200);
    t.same(JSON.parse(sdEmpty.body), [], 'no labelled container yet: an empty list, not an error');
    t.equal((await get(`${base}/v1/status`)).status, 404, 'nothing of the admin API over TCP');
    t.equal((await get(`${base}/v1/attachments`)).status, 404);

    // a container that serves its own metrics, and one without the label
    const served = 'mkdir -p /www && printf "# TYPE demo_up gauge\\ndemo_up 1\\n" > /www/metrics && exec httpd -f -p 8080 -h /www';
    for (const [name, labels] of [
      ['app1', ['--label', 'berth.metrics=8080/metrics', '--label', 'berth.owner=team/app1']],
      ['app2', []],
    ] as const) {
      const r = await docker.run(['run', '-d', '--network', 'none', '--name', name, '--label', 'berth.network=promnet', ...labels, docker.image, 'sh', '-c', served]);
      t.equal(r.code, 0, r.stderr);
    }
    const sd = await waitFor('app1 in /v1/sd', async () => {
      const list = JSON.parse((await get(`${base}/v1/sd`)).body) as Array<{ targets: string[]; labels: Record<string, string> }>;
      return list.length > 0 ? list : undefined;
    });
    t.equal(sd.length, 1, 'only the labelled container');
    t.match(sd[0], { targets: [/^10\.217\.0\.\d+:8080$/], labels: { __metrics_path__: '/metrics', owner: 'team/app1', network: 'promnet', pool: 'promp', host: /.+/, container: 'app1', service: '' } });

    // the cluster-wide endpoint: berth sd, from what the agents publish to the store
    const sdPort = await freePort();
    const sdProc = spawn(join(BIN, 'berth'), ['sd', '--listen', `127.0.0.1:${sdPort}`, '--store', store], { stdio: ['ignore', 'ignore', 'pipe'] });
    atExit(() => sdProc.kill('SIGKILL'));
    t.teardown(() => void sdProc.kill('SIGTERM'));
    const cluster = await waitFor('app1 in berth sd', async () => {
      const r = await get(`http://127.0.0.1:${sdPort}/v1/sd`).catch(() => undefined);
      const list = r?.status === 200 ? (JSON.parse(r.body) as typeof sd) : [];
      return list.length > 0 ? list : undefined;
    });
    t.same(cluster, sd, "berth sd lists what the host's agent does, read from the store");
    t.equal((await get(`http://127.0.0.1:${sdPort}/v1/status`)).status, 404, 'and serves nothing else');

    const promPort = await freePort();
    const promDir = mkdtempSync(join(tmpdir(), 'berth-prom-'));
    t.teardown(() => rmSync(promDir, { recursive: true, force: true }));
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: berth-agent',
        '    static_configs:',
        `      - targets: ["127.0.0.1:${metricsPort}"]`,
        '  - job_name: berth-containers',
        '    http_sd_configs:',
        `      - url: "${base}/v1/sd"`,
        '        refresh_interval: 1s',
        '  - job_name: berth-cluster',
        '    http_sd_configs:',
        `      - url: "http://127.0.0.1:${sdPort}/v1/sd"`,
        '        refresh_interval: 1s',
        '',
      ].join('\n'),
    );
    const prom: ChildProcess = spawn(
      'prometheus',
      [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'],
      { stdio: 'ignore' },
    );
    const stopProm = () => prom.kill('SIGKILL');
    atExit(stopProm);
    t.teardown(async () => {
      if (prom.exitCode !== null) return;
      const exited = new Promise((r) => prom.once('exit', r));
      prom.kill('SIGTERM');
      const timer = setTimeout(stopProm, 5000);
      await exited;
      clearTimeout(timer);
    });
    const query = async (q: string) => {
      const r = await get(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => ({ status: 0, body: '' }));
      if (r.status !== 200) return [];
      return (JSON.parse(r.body) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result;
    };
    const agentUp = await waitFor('the agent target up', async () => ((await query('up{job="berth-agent"}'))[0]?.value[1] === '1' ? true : undefined), 60000);
    t.ok(agentUp, "Prometheus scrapes the agent's /metrics over TCP");
    const app = await waitFor('the container target up', async () => {
      const r = await query('up{job="berth-containers"}');
      return r[0]?.value[1] === '1' ? r[0] : undefined;
    }, 60000);
    t.match(app.metric, { owner: 'team/app1', network: 'promnet', pool: 'promp', container: 'app1', instance: sd[0]!.targets[0] }, 'discovered through /v1/sd, with its labels');
    t.equal((await waitFor('the container metric', async () => (await query('demo_up'))[0]))?.value[1], '1', "the container's own metric, scraped at its berth IP");
    const viaCluster = await waitFor('the container through berth sd', async () => (await query('up{job="berth-cluster"}')).find((x) => x.value[1] === '1'), 60000);
    t.match(viaCluster.metric, { owner: 'team/app1', container: 'app1', instance: sd[0]!.targets[0] }, 'one Prometheus finds it through the cluster-wide endpoint too');
    const allocated = await waitFor('berth_pool_addresses', async () => (await query('berth_pool_addresses{pool="promp",state="allocated"}'))[0]);
    t.equal(allocated.value[1], '2', 'berth_pool_addresses counts both containers');
    t.equal((await query('berth_pool_addresses{pool="promp",state="free"}'))[0]?.value[1], String(253 - 2), 'and the free ones');

    // the dashboard queries only what the agent exports
    const exported = families((await get(`${base}/metrics`)).body);
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const queried = new Set(dash.panels.flatMap((p) => p.targets.flatMap((x) => metricsIn(x.expr))));
    t.ok(queried.size >= 10, `the dashboard queries ${queried.size} metrics`);
    for (const name of queried) t.ok(exported.has(name), `${name} is exported`);
    for (const title of ['Pool usage', 'CNI ADD / DEL latency', 'Attach and detach errors', 'DEL queue', 'Store and Docker health']) {
      t.ok(dash.panels.some((p) => p.title.startsWith(title)), `a panel: ${title}`);
    }
    t.ok(metricsIn('rate(berth_nosuch_total[5m])').every((n) => !exported.has(n)), 'the control: a metric the agent does not export is not found');

    await docker.run(['rm', '-f', 'app1', 'app2']);
    await waitFor('an empty list again', async () => ((JSON.parse((await get(`${base}/v1/sd`)).body) as unknown[]).length === 0 ? true : undefined));
    await waitFor('and in berth sd', async () => ((JSON.parse((await get(`http://127.0.0.1:${sdPort}/v1/sd`)).body) as unknown[]).length === 0 ? true : undefined));
  });
}
