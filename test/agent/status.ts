// berth status and /readyz against a real agent on a real Docker engine,
// a Redis store (with a password) and HAProxy: found through the agent's own
// config file; not ready, and saying why, while the store hangs, while it is
// down and while HAProxy is away, ready again when they are back; a status
// call bounded in time by a store that does not answer; a container whose
// ADD failed in the outage and whose undo DEL is queued listed once, with a
// short STATE.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import { main } from '../../cli/main.js';
import { parseLbConfig } from '../../lb/config.js';
import { renderHaproxy } from '../../lb/render.js';
import { agentConfig, bridgeNetwork, startAgent, waitFor } from '../helpers/agent.js';
import { skipWithoutDocker, startDocker } from '../helpers/docker.js';
import { skipWithoutHaproxy, startHaproxy } from '../helpers/haproxy.js';
import { skipWithoutNetns } from '../helpers/netns.js';
import { freePort, skipWithoutRedis, startRedis } from '../helpers/redis.js';

interface Status {
  ready: boolean;
  reasons: string[];
  reconciled: boolean;
  health: {
    store: { location: string; ok: boolean; ms: number; error?: string };
    docker: { ok: boolean };
    containerd: { ok: boolean };
    haproxy: { ok: boolean; pid?: number; error?: string };
  };
  problems: Array<{ name: string }>;
  attachmentErrors: Array<{ name: string; phase: string; lastError?: string; problem?: string }>;
}

const PASSWORD = 's3cretPW';

/** Connects to the unix socket argv[1] and prints "connected" or the error code. */
const CONNECT = "const s = require('node:net').connect(process.argv[1]); s.on('connect', () => { console.log('connected'); s.destroy(); }); s.on('error', (e) => console.log(e.code));";

if (!skipWithoutNetns(t) && !skipWithoutRedis(t) && !skipWithoutDocker(t) && !skipWithoutHaproxy(t)) t.test('berth status and /readyz follow the store and HAProxy', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bs')); // HAProxy's socket paths must stay short
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // durable: the pool must survive the restart
  const redis = await startRedis({ durable: true, config: [`requirepass ${PASSWORD}`] });
  t.teardown(async () => {
    redis.signal('SIGCONT'); // a stopped redis-server would not end on SIGTERM
    await redis.stop();
  });
  const docker = await startDocker();
  t.teardown(() => docker.stop());
  // the store's own command timeout (3 s) bounds a hung call too; test/agent/health.ts proves the check's bound alone
  const store = `redis://:${PASSWORD}@127.0.0.1:${redis.port}/0?prefix=t${randomBytes(4).toString('hex')}`;
  const { netDir } = await bridgeNetwork(t, { dir, store, network: 'stnet', pool: 'stp', subnet: '10.217.0.0/24', gateway: '10.217.0.1', hold: 600, bridgePrefix: 'brst' });
  const lb = { haproxy: { config: join(dir, 'haproxy.cfg'), socket: join(dir, 'admin.sock'), masterSocket: join(dir, 'master.sock'), drainTimeout: 1 } };
  const services = [{ name: 'web', haproxy: { bind: `127.0.0.1:${await freePort()}`, mode: 'http' } }];
  writeFileSync(lb.haproxy.config, renderHaproxy(parseLbConfig(lb, services), []));
  let hp = await startHaproxy(lb.haproxy.config, lb.haproxy.socket, lb.haproxy.masterSocket);
  t.teardown(() => hp.stop());
  const agent = await startAgent(dir, agentConfig(dir, store, netDir, docker, { lb, services }));
  t.teardown(() => agent.kill('SIGKILL'));
  const configFile = join(dir, 'agent.json'); // what startAgent ran the agent on

  const berth = async (...args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
    return { code, stdout, stderr };
  };
  const status = async () => {
    const r = await berth('status', '--config', configFile, '--json');
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as Status;
  };
  const readyz = async () => (await agent.get<string>('/readyz')).body;
  const readyAgain = (what: string) => waitFor(what, async () => ((await agent.get('/readyz')).status === 200 ? true : undefined), 60000);

  t.test('all up: ready, and each dependency says so', async (t) => {
    const text = await berth('status', '--config', configFile);
    t.equal(text.code, 0, `berth status --config finds the agent: ${text.stderr}`);
    t.match(text.stdout, /^ready:\s+yes$/m);
    t.match(text.stdout, /^docker:\s+connected at /m);
    t.match(text.stdout, /^containerd:\s+connected at /m);
    t.match(text.stdout, new RegExp(`^store:\\s+redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redis.port}/0.*: answering \\(\\d+ ms\\)$`, 'm'));
    t.match(text.stdout, new RegExp(`^haproxy:\\s+answering on ${lb.haproxy.socket.replace(/[.]/g, '\\.')} \\(worker pid \\d+\\)$`, 'm'));
    const s = await status();
    t.match(s, { ready: true, reasons: [], reconciled: true });
    t.match(s.health, { store: { ok: true }, docker: { ok: true }, containerd: { ok: true }, haproxy: { ok: true, pid: Number } });
    t.equal((await agent.get('/readyz')).status, 200);
    t.notMatch(text.stdout + JSON.stringify(s) + agent.log(), PASSWORD, 'the password is in neither the status nor the log');
  });

  t.test("the store server's settings that can lose pool data are shown and logged, and clear when fixed", async (t) => {
    t.notMatch((await berth('status', '--config', configFile)).stdout, /can lose pool data/, 'none on a server run as recommended');
    t.equal(redis.cli('--no-auth-warning', '-a', PASSWORD, 'CONFIG', 'SET', 'appendfsync', 'everysec'), 'OK');
    const warned = await waitFor('the warning in status', async () => {
      const s = await status();
      return (s.health.store as { warnings?: string[] }).warnings?.length ? s : undefined;
    });
    t.match((warned.health.store as unknown as { warnings: string[] }).warnings.join('\n'), /appendfsync everysec: a crash of the host loses/);
    t.match((await berth('status', '--config', configFile)).stdout, /^the store can lose pool data:\n {2}.*appendfsync/m);
    t.match(agent.log(), /the store can lose pool data: .*appendfsync/);
    t.equal(redis.cli('--no-auth-warning', '-a', PASSWORD, 'CONFIG', 'SET', 'appendfsync', 'always'), 'OK');
    await waitFor('the warning to clear', async () => ((await status()).health.store as { warnings?: string[] }).warnings === undefined ? true : undefined);
    t.match(agent.log(), /the store server settings are safe now/);
  });

  t.test("the API socket is mode 0600 and root's: another user cannot connect to it, root can", async (t) => {
    const st = statSync(agent.socket);
    t.ok(st.isSocket(), 'a unix socket');
    t.equal((st.mode & 0o777).toString(8), '600', 'mode 0600');
    t.equal(st.uid, 0, "root's");
    // as nobody, in a directory open to it; the control is a socket of mode 0666 beside the agent's
    const sockDir = dirname(agent.socket);
    const dirMode = statSync(sockDir).mode & 0o777;
    chmodSync(sockDir, 0o755);
    t.teardown(() => chmodSync(sockDir, dirMode));
    const open = join(sockDir, 'open.sock');
    const server = createServer((c) => c.end());
    await new Promise<void>((r) => server.listen(open, r));
    t.teardown(() => new Promise<void>((r) => server.close(() => r())));
    chmodSync(open, 0o666);
    const connectAsNobody = (path: string) =>
      spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', CONNECT, path], { encoding: 'utf8' });
    const control = connectAsNobody(open);
    t.equal(control.stdout.trim(), 'connected', `the control: nobody connects to a socket of mode 0666 there ${control.stderr}`);
    t.equal(connectAsNobody(agent.socket).stdout.trim(), 'EACCES', "and cannot connect to the agent's");
    t.equal((await agent.get('/healthz')).status, 200, 'root can');
  });

  t.test('a store that does not answer: not ready, and status answers all the same', async (t) => {
    redis.signal('SIGSTOP');
    try {
      const started = Date.now();
      const s = await status();
      const ms = Date.now() - started;
      t.ok(ms < 6000, `berth status answered in ${ms} ms`);
      t.equal(s.ready, false);
      t.equal(s.health.store.ok, false);
      t.match(s.reasons, [/^the store does not answer: .*redis:\/\/:\*\*\*@127\.0\.0\.1/]);
      const r = await agent.get<string>('/readyz');
      t.equal(r.status, 503);
      t.match(r.body, /^the store does not answer: /);
      const text = await berth('status', '--config', configFile);
      t.match(text.stdout, /^ready:\s+no: the store does not answer: /m);
      t.match(text.stdout, /^store:\s+redis:.*: not answering$/m);
    } finally {
      redis.signal('SIGCONT');
    }
    await readyAgain('ready once the store answers');
    t.equal((await status()).health.store.ok, true);
  });

  t.test('a store that is down, and a container that could not be attached meanwhile', async (t) => {
    await redis.stop();
    await waitFor('/readyz to say so', async () => (/the store does not answer/.test(await readyz()) ? true : undefined));
    const run = await docker.run(['run', '-d', '--network', 'none', '--name', 'during', '--label', 'berth.network=stnet', docker.image, 'sleep', '3600']);
    t.equal(run.code, 0, run.stderr);
    // its ADD fails, and so does the DEL that undoes it: queued
    const s = await waitFor('a failed ADD whose undo is queued', async () => {
      const st = await status();
      return st.attachmentErrors.some((a) => a.name === 'during' && a.phase === 'deleting' && a.lastError && a.problem) ? st : undefined;
    }, 60000);
    t.notOk(s.problems.some((p) => p.name === 'during'), 'not also among the containers "not attached"');
    const list = await berth('attachments', '--config', configFile);
    const row = list.stdout.split('\n').find((l) => l.startsWith('during '));
    t.match(row, /\sdeleting! \(retry \d+\)$/, `a short STATE: ${row}`);
    t.ok(list.stdout.split('\n').every((l) => l.length < 120), 'no error message in the table');
    t.match(list.stdout, /^1 with errors \(!\): berth status lists them/m);
    const json = JSON.parse((await berth('attachments', '--config', configFile, '--json')).stdout) as Array<{ name: string; lastError?: string }>;
    t.match(json.find((a) => a.name === 'during')?.lastError, /store/, '--json keeps the error');
    const text = (await berth('status', '--config', configFile)).stdout;
    t.match(text, /^1 attachment with errors:\n.*\n\s+during\s+stnet\s+deleting! \(retry \d+\)\s+not attached: .*; DEL failed: /m);
    t.notMatch(text, /not attached:\n/, 'no "not attached" section');
    t.equal(text.match(/\bduring\b/g)?.length, 1, 'listed once');
    t.notMatch(text, PASSWORD);

    await redis.start();
    await readyAgain('ready once the store is back');
    const ip = await waitFor('the container attached', async () => {
      const a = (await agent.get<Array<{ name: string; phase: string; ip: string | null }>>('/v1/attachments')).body.find((x) => x.name === 'during');
      return a?.phase === 'attached' ? a.ip : undefined;
    }, 60000);
    t.match(ip, /^10\.217\.0\./);
    const after = await status();
    t.same(after.attachmentErrors, [], 'no errors left');
    t.same(after.problems, []);
    await docker.run(['rm', '-f', 'during']);
  });

  t.test('HAProxy away: not ready; back: ready', async (t) => {
    await hp.stop();
    await waitFor('/readyz to say so', async () => (/^HAProxy does not answer: /m.test(await readyz()) ? true : undefined));
    const s = await status();
    t.equal(s.ready, false);
    t.match(s.health.haproxy, { ok: false, error: /admin\.sock/ });
    t.match((await berth('status', '--config', configFile)).stdout, /^haproxy:\s+not answering on .*admin\.sock/m);
    hp = await startHaproxy(lb.haproxy.config, lb.haproxy.socket, lb.haproxy.masterSocket);
    await readyAgain('ready once HAProxy answers');
    t.match((await status()).health.haproxy, { ok: true, pid: Number });
  });

  t.test('Docker away: not ready, saying so; back: the event stream returns and the agent reconciles', async (t) => {
    interface Seen {
      name: string;
      phase: string;
      ip: string | null;
      /** a new record each time the container is attached anew */
      createdAt: string;
    }
    const attachments = async () => (await agent.get<Seen[]>('/v1/attachments')).body;
    const attached = (name: string, other?: Seen) =>
      waitFor(`${name} attached${other ? ' anew' : ''}`, async () => (await attachments()).find((a) => a.name === name && a.phase === 'attached' && a.createdAt !== other?.createdAt), 60000);
    const run = async (...args: string[]) => {
      const r = await docker.run(['run', '-d', '--network', 'none', ...args, '--label', 'berth.network=stnet', docker.image, 'sleep', '3600']);
      if (r.code !== 0) throw new Error(r.stderr);
    };
    // one that Docker starts again when it comes back, one that it does not
    await run('--name', 'phoenix', '--restart', 'always');
    await run('--name', 'mortal');
    const phoenix = await attached('phoenix');
    const mortal = await attached('mortal');
    const metric = async () => /^berth_agent_docker_connected (\d)$/m.exec((await agent.get<string>('/metrics')).body)?.[1];
    t.equal(await metric(), '1', 'connected to Docker');

    await docker.stopDaemon();
    const down = await waitFor('/readyz to say so', async () => {
      const r = await agent.get<string>('/readyz');
      return /^the Docker event stream is down \(/m.test(r.body) ? r : undefined;
    }, 60000);
    t.equal(down.status, 503, `not ready while Docker is away: ${down.body.trim()}`);
    t.equal(await metric(), '0', 'berth_agent_docker_connected 0');
    t.match((await status()).health.docker, { ok: false });

    // A second agent, started now, on a network of its own, whose periodic reconciliation is an hour
    // away: it cannot reconcile until Docker is back, and then only because its stream connected.
    const dirB = join(dir, 'second');
    mkdirSync(dirB);
    const { netDir: netDirB } = await bridgeNetwork(t, { dir: dirB, store, network: 'recon', pool: 'rcp', subnet: '10.218.0.0/24', gateway: '10.218.0.1', hold: 0, bridgePrefix: 'brrc' });
    const second = await startAgent(dirB, agentConfig(dirB, store, netDirB, docker, { reconcileInterval: 3600 }), {}, { ready: false });
    t.teardown(() => second.kill('SIGKILL'));
    const unready = await second.get<string>('/readyz');
    t.equal(unready.status, 503, 'a new agent is not ready before its first reconciliation');
    t.match(unready.body, /^the first reconciliation has not finished$/m, `and says so: ${unready.body.trim().replace(/\n/g, '; ')}`);
    t.match(unready.body, /^the Docker event stream is down \(/m);
    const reconciledAt = async (a: typeof agent) => (await a.get<{ lastReconcile: { at: string; ms: number; error?: string } | null }>('/v1/status')).body.lastReconcile;
    t.equal(await reconciledAt(second), null, 'it has not reconciled');

    const back = Date.now(); // nothing can reconcile with Docker before this
    await docker.startDaemon();
    await readyAgain('ready once the event stream is back');
    t.equal(await metric(), '1', 'connected again');
    await waitFor('the second agent ready', async () => ((await second.get('/readyz')).status === 200 ? true : undefined), 60000);
    const first = await reconciledAt(second);
    t.ok(first && !first.error && Date.parse(first.at) - first.ms >= back, `the second agent reconciled once its stream connected, its timer an hour away (${first?.at})`);
    // the first agent: a whole reconciliation that started after Docker was back
    const reconciled = await waitFor('a reconciliation after the reconnection', async () => {
      const s = await reconciledAt(agent);
      return s && !s.error && Date.parse(s.at) - s.ms >= back ? s : undefined;
    }, 60000);
    t.ok(reconciled, `the first agent reconciled after reconnecting, at ${reconciled.at}`);
    const again = await attached('phoenix', phoenix);
    t.equal(again.ip, phoenix.ip, 'the container Docker restarted is attached again, in its new process, with its address');
    await waitFor('the stopped container detached', async () => ((await attachments()).some((a) => a.name === 'mortal') ? undefined : true), 60000);
    t.pass(`the container that stopped with Docker (${mortal.ip}) is detached`);
    // the stream carries events again: a container started now is attached
    await run('--name', 'newborn');
    t.match((await attached('newborn')).ip, /^10\.217\.0\./, 'a container started after the reconnection is attached');
    const r = await docker.run(['run', '-d', '--network', 'none', '--name', 'recon1', '--label', 'berth.network=recon', docker.image, 'sleep', '3600']);
    t.equal(r.code, 0, r.stderr);
    const viaSecond = await waitFor('recon1 attached by the second agent', async () => (await second.get<Seen[]>('/v1/attachments')).body.find((a) => a.name === 'recon1' && a.phase === 'attached'), 60000);
    t.match(viaSecond.ip, /^10\.218\.0\./, "and one of the second agent's network by the second agent");
    await docker.run(['rm', '-f', 'phoenix', 'mortal', 'newborn', 'recon1']);
  });
});
