// berth status and /readyz against a real agent on a real Docker engine,
// a Redis store (with a password) and HAProxy: found through the agent's own
// config file; not ready, and saying why, while the store hangs, while it is
// down and while HAProxy is away, ready again when they are back; a status
// call bounded in time by a store that does not answer; a container whose
// ADD failed in the outage and whose undo DEL is queued listed once, with a
// short STATE.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
});
