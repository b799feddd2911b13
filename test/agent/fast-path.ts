// The CNI fast path: bin/berth-* is the launcher (native/launcher.c), which
// hands each call to the agent on its socket, or runs the plugin on Node when
// no agent answers. A real agent with no Docker (`dockerSocket: ""`) serves
// berth-ipam calls over a file store; stand-in servers play an agent that is
// slow, that dies mid-call, or that declines.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { CniServer } from '../../agent/cni-serve.js';
import { Registry } from '../../agent/metrics.js';
import { formatIp } from '../../core/address.js';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { shortDir, startAgent, type AgentProcess } from '../helpers/agent.js';
import { BIN, cniEnv, runCni, type CniRun } from '../helpers/cni.js';
import { cniCallsServed } from '../helpers/fast-path.js';

const POOL = 'fast';

async function poolStore(t: Test): Promise<string> {
  const url = `file://${t.testdir()}/store`;
  const store = await openStore(url);
  await store.createPool(buildPoolConfig({ name: POOL, subnet: '10.77.0.0/24', hold: 60 }));
  await store.close();
  return url;
}

const conf = (store: string) => ({ cniVersion: '1.0.0', name: 'fastnet', type: 'berth-ipam', ipam: { type: 'berth-ipam', pool: POOL, store, host: 'node-a' } });

/** One berth-ipam call through bin/, with the agent socket given (or '' for none). */
function ipam(socket: string, command: string, id: string, stdin: unknown, extra: Record<string, string> = {}): Promise<CniRun> {
  return runCni('berth-ipam', { ...cniEnv(command, id, 'eth0', undefined, { CNI_ARGS: `BERTH_OWNER=${id}` }), BERTH_AGENT_SOCKET: socket, ...extra }, stdin);
}

async function allocated(url: string): Promise<string[]> {
  const store = await openStore(url);
  try {
    return (await store.listAddresses(POOL)).filter((a) => a.state === 'allocated').map((a) => `${a.owner}=${formatIp(a.ip)}`);
  } finally {
    await store.close();
  }
}

async function noDockerAgent(t: Test, store: string, extra: Record<string, unknown> = {}): Promise<AgentProcess> {
  const dir = shortDir();
  const agent = await startAgent(dir, {
    store,
    cniConfDir: join(dir, 'net.d'),
    cniBinDir: '/nonexistent',
    dockerSocket: '',
    containerdSocket: '',
    socket: join(shortDir(), 'agent.sock'),
    stateDir: join(dir, 'state'),
    ...extra,
  });
  t.teardown(() => agent.kill('SIGTERM'));
  return agent;
}

/** A unix socket server standing in for an agent; `onRequest` gets each connection once its request is in. */
async function standIn(t: Test, onRequest: (sock: Socket, request: string) => void): Promise<{ path: string; requests: string[] }> {
  const path = join(shortDir(), 'stand-in.sock');
  const requests: string[] = [];
  const server: Server = createServer((sock) => {
    let text = '';
    sock.on('data', (c: Buffer) => {
      text += c.toString();
      const head = text.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = Number(/content-length: (\d+)/i.exec(text.slice(0, head))?.[1] ?? 0);
      if (text.length - head - 4 < len) return;
      requests.push(text);
      onRequest(sock, text);
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { path, requests };
}

t.test('an agent with no Docker serves the call: the same answer as the plugin alone, counted by the agent', async (t) => {
  const url = await poolStore(t);
  const agent = await noDockerAgent(t, url);
  const status = await agent.get<{ docker: string; cniFastPath: { served: number; parallel: number } }>('/v1/status');
  t.equal(status.body.docker, 'off', 'berth status says Docker is off');

  const add = await ipam(agent.socket, 'ADD', 'web-1', conf(url));
  t.equal(add.code, 0, add.stdout);
  t.match(add.json, { cniVersion: '1.0.0', ips: [{ address: /^10\.77\.0\.\d+\/24$/ }] });
  t.equal(await cniCallsServed(agent, 'plugin="berth-ipam",command="ADD",result="ok"'), 1, 'the agent ran it');

  // the same call on the Node path answers the same: the owner's address
  const again = await ipam('', 'ADD', 'web-1', conf(url));
  t.same(again.json, add.json, 'the plugin alone gives the same result');
  t.equal(await cniCallsServed(agent, 'plugin="berth-ipam",command="ADD",result="ok"'), 1, 'and the agent was not asked');

  // a bad config: the same error, field named, the same exit code, on both paths
  const bad = { ...conf(url), ipam: { type: 'berth-ipam', store: url } };
  const viaAgent = await ipam(agent.socket, 'ADD', 'web-2', bad);
  const alone = await ipam('', 'ADD', 'web-2', bad);
  t.equal(viaAgent.code, 1);
  t.same(viaAgent.json, alone.json, 'the same error either way');
  t.match(viaAgent.json, { code: 7, msg: /pool/ });
  t.equal(await cniCallsServed(agent, 'plugin="berth-ipam",command="ADD",result="7"'), 1, 'counted by its CNI code');

  // DEL through the agent releases it; the owner gets it back on the next ADD
  t.equal((await ipam(agent.socket, 'DEL', 'web-1', conf(url))).code, 0);
  t.same(await allocated(url), [], 'released');
  const back = await ipam(agent.socket, 'ADD', 'web-1', conf(url));
  t.same(back.json!.ips, add.json!.ips, 'the sticky owner gets its address back');
  const after = await agent.get<{ cniFastPath: { served: number; running: number; waiting: number; parallel: number } }>('/v1/status');
  t.match(after.body.cniFastPath, { served: 4, running: 0, waiting: 0, parallel: 16 }, 'berth status shows the calls served');
  const shown = spawnSync(join(BIN, 'berth'), ['status', '--socket', agent.socket], { encoding: 'utf8' });
  t.match(shown.stdout, /docker:\s+off \(serving CNI calls only\)/, 'berth status: Docker off');
  t.match(shown.stdout, /cni calls:\s+4 served, 0 running, 0 waiting \(at most 16 at once\)/, 'berth status: the calls served');
});

t.test('with no agent the launcher runs the plugin itself: no socket, a dead socket, or an agent that declines', async (t) => {
  const url = await poolStore(t);
  const missing = await ipam(join(shortDir(), 'nobody.sock'), 'ADD', 'a-1', conf(url));
  t.equal(missing.code, 0, `no socket: ${missing.stdout}`);
  // a socket file with no one listening (an agent killed before it could clean up): connection refused
  const stale = join(shortDir(), 'stale.sock');
  const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((r) => holder.stdout!.once('data', r));
  holder.kill('SIGKILL');
  await new Promise((r) => holder.once('exit', r));
  t.ok(existsSync(stale), 'the socket file is left behind');
  const refused = await ipam(stale, 'ADD', 'a-3', conf(url));
  t.equal(refused.code, 0, `refused: ${refused.stdout}`);
  const declining = await standIn(t, (sock) => {
    sock.end('HTTP/1.1 503 Service Unavailable\r\nX-Berth-Not-Run: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  const declined = await ipam(declining.path, 'ADD', 'a-2', conf(url));
  t.equal(declined.code, 0, `declined: ${declined.stdout}`);
  t.equal(declining.requests.length, 1, 'asked once, then run by the launcher');
  t.match(declining.requests[0], /^POST \/v1\/cni\/berth-ipam HTTP\/1\.1\r\n/);
  t.match(declining.requests[0], /\r\nX-CNI_ARGS: BERTH_OWNER=a-2\r\n/i, 'the CNI_* variables travel as headers');
  const ip = (r: CniRun) => String(r.json!.ips[0].address).split('/')[0];
  t.same((await allocated(url)).sort(), [`a-1=${ip(missing)}`, `a-2=${ip(declined)}`, `a-3=${ip(refused)}`].sort(), 'each ran once, on the Node path');
});

t.test('once the agent has the call it is never run twice: a slow agent is code 11 after the timeout, a dead one at once', async (t) => {
  const url = await poolStore(t);
  const silent = await standIn(t, () => {});
  const slow = await ipam(silent.path, 'ADD', 'b-1', conf(url), { BERTH_AGENT_TIMEOUT_MS: '300' });
  t.equal(slow.code, 1);
  t.match(slow.json, { code: 11, msg: /did not answer in time/ });
  const dying = await standIn(t, (sock) => sock.destroy());
  const cut = await ipam(dying.path, 'ADD', 'b-2', conf(url));
  t.equal(cut.code, 1);
  t.match(cut.json, { code: 11, msg: /without a whole answer|failed before its answer/ });
  const garbled = await standIn(t, (sock) => sock.end('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  const failed = await ipam(garbled.path, 'ADD', 'b-3', conf(url));
  t.match(failed.json, { code: 11, msg: /could not run the call/ });
  t.same([silent.requests.length, dying.requests.length, garbled.requests.length], [1, 1, 1], 'each asked once');
  t.same(await allocated(url), [], 'and none of the calls ran on the Node path');
});

t.test('a burst of 100 through the launcher: every call answered, the bound held, none dropped, the agent within its memory budget', async (t) => {
  const url = await poolStore(t);
  const agent = await noDockerAgent(t, url, { cniCalls: 2 });
  const N = 100;
  const runs = await Promise.all(Array.from({ length: N }, (_, i) => ipam(agent.socket, 'ADD', `burst-${i}`, conf(url))));
  t.same(runs.filter((r) => r.code !== 0).map((r) => r.stdout), [], 'every call answered with a result');
  const ips = runs.map((r) => r.json!.ips[0].address);
  t.equal(new Set(ips).size, N, 'distinct addresses');
  t.equal(await cniCallsServed(agent, 'plugin="berth-ipam",command="ADD",result="ok"'), N, 'all of them by the agent');
  const peak = /berth_agent_cni_calls_peak (\d+)/.exec(String((await agent.get<string>('/metrics')).body));
  t.ok(peak, 'the peak of calls running at once is exported');
  t.ok(Number(peak![1]) <= 2 && Number(peak![1]) >= 1, `at most cniCalls ran at once (peak ${peak![1]})`);
  // the agent's peak resident memory over its life, the burst included
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${agent.pid()}/status`, 'utf8'))![1]) / 1024;
  t.ok(hwm < 120, `the agent's peak RSS ${hwm.toFixed(0)} MiB is under its 120 MiB budget`);
});

t.test('an agent killed mid-burst: each call is answered or code 11, and a retry leaves one address per owner', async (t) => {
  const url = await poolStore(t);
  const agent = await noDockerAgent(t, url, { cniCalls: 2 });
  const N = 30;
  const calls = Array.from({ length: N }, (_, i) => ipam(agent.socket, 'ADD', `k-${i}`, conf(url)));
  // killed once the first answer is in, with the rest queued or running
  await Promise.race(calls);
  await agent.kill('SIGKILL');
  const runs = await Promise.all(calls);
  const outcomes = runs.map((r) => (r.code === 0 ? 'ok' : String(r.json?.code)));
  t.ok(outcomes.every((o) => o === 'ok' || o === '11'), `only results and code 11 (${[...new Set(outcomes)].join(', ')})`);
  t.ok(outcomes.includes('11'), 'some were cut off');
  // the runtime tries again; the agent is gone, so the launcher runs the plugin itself
  for (let i = 0; i < N; i++) if (runs[i]!.code !== 0) runs[i] = await ipam(agent.socket, 'ADD', `k-${i}`, conf(url));
  t.same(runs.filter((r) => r.code !== 0).map((r) => r.stdout), [], 'every retry succeeded');
  const held = await allocated(url);
  t.equal(held.length, N, 'one address per owner, nothing half-done left holding a second');
  t.equal(new Set(held.map((h) => h.split('=')[1])).size, N, 'no address held twice');
  for (let i = 0; i < N; i++) t.equal(held.includes(`k-${i}=${runs[i]!.json!.ips[0].address.split('/')[0]}`), true, `k-${i} holds what it was answered`);
});

t.test('CniServer: a stopping agent declines, a call past its time is code 11', async (t) => {
  const { request } = await import('node:http');
  const registry = new Registry();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const server = new CniServer(
    async (_type, env) => {
      if (env.CNI_CONTAINERID === 'slow') await gate;
      return { code: 0, stdout: '{"cniVersion":"1.0.0"}\n', stderr: '' };
    },
    registry,
    { parallel: 1, timeoutMs: 200, path: '/usr/bin' },
  );
  const path = join(shortDir(), 'cni.sock');
  const http = (await import('node:http')).createServer((req, res) => void server.handle(req.url!.slice('/v1/cni/'.length), req, res));
  await new Promise<void>((r) => http.listen(path, r));
  t.teardown(() => new Promise<void>((r) => http.close(() => r())));
  const call = (id: string, plugin = 'berth-ipam') =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = request({ socketPath: path, method: 'POST', path: `/v1/cni/${plugin}`, headers: { 'x-cni_command': 'ADD', 'x-cni_containerid': id } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end('{}');
    });
  const slow = await call('slow');
  t.equal(slow.headers['x-berth-exit'], '1');
  t.match(JSON.parse(slow.body), { code: 11, msg: /did not finish within 200 ms/ });
  const other = await call('x', 'portmap');
  t.equal(other.status, 503);
  t.equal(other.headers['x-berth-not-run'], '1', 'not one of berth\'s plugins: declined, for the launcher to run');
  release();
  await server.stop();
  const late = await call('y');
  t.equal(late.headers['x-berth-not-run'], '1', 'after stop: declined');
  t.equal(server.view().served, 1);
});
