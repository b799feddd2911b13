// berth status and berth attachments as they print what an agent answers
// (a stand-in agent on a unix socket answers what a real one did during a
// Redis and HAProxy outage): the ready line and each dependency's health,
// a STATE column that stays short however long the error, and each
// container listed once. test/agent/status.ts runs the real thing.
import { createServer } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../cli/main.js';
import { stateCell } from '../../cli/commands/status.js';
import { shortDir } from '../helpers/agent.js';

async function berth(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  return { code, stdout, stderr };
}

const LONG = `failed to reach store redis://:***@127.0.0.1:6390/0: ${'connect ECONNREFUSED 127.0.0.1:6390; '.repeat(40)}`;
const ID = (c: string) => c.repeat(64);
const record = { network: 'net', ifname: 'eth0', lb: {}, createdAt: '', updatedAt: '' };
const ATTACHMENTS = [
  { ...record, containerId: ID('a'), name: 'web1', ip: '10.0.0.2', owner: 'web1', phase: 'attached', lb: { web: 8080 }, attempts: 0 },
  // a failed ADD whose undo DEL is queued: the agent lists it with its record only
  { ...record, containerId: ID('b'), name: 'web2', ip: null, owner: 'web2', phase: 'deleting', attempts: 3, lastError: LONG, problem: `failed to allocate in pool "p": ${LONG}` },
  // its container removed while the store was away
  { ...record, containerId: ID('c'), name: 'web3', ip: '10.0.0.4', owner: 'web3', phase: 'deleting', attempts: 1, lastError: LONG },
];
const STATUS = {
  version: '0.1.0',
  host: 'h1',
  pid: 7,
  startedAt: '2024-01-01T00:00:00.000Z',
  ready: false,
  reasons: ['the store does not answer: store redis://:***@127.0.0.1:6390/0 did not answer within 2000 ms', 'HAProxy does not answer: cannot reach HAProxy on /run/haproxy/admin.sock: connect ENOENT'],
  reconciled: true,
  docker: 'connected',
  containerd: [{ socket: '/run/containerd/containerd.sock', connected: true }],
  store: 'redis://:***@127.0.0.1:6390/0',
  health: {
    store: { location: 'redis://:***@127.0.0.1:6390/0', ok: false, ms: 2001, error: 'store redis://:***@127.0.0.1:6390/0 did not answer within 2000 ms' },
    docker: { socket: '/var/run/docker.sock', ok: true },
    containerd: { ok: true, sockets: [{ socket: '/run/containerd/containerd.sock', connected: true }] },
    haproxy: { socket: '/run/haproxy/admin.sock', ok: false, ms: 1, error: 'cannot reach HAProxy on /run/haproxy/admin.sock: connect ENOENT', lastSyncError: 'cannot reach HAProxy' },
    keepalived: { config: '/etc/keepalived/berth.conf', ok: true, ipvs: false, lastError: null },
  },
  attachments: 1,
  adding: 0,
  delQueue: 2,
  problems: [{ containerId: ID('d'), name: 'nonet', network: 'nosuch', error: 'network "nosuch" is not configured in /etc/cni/net.d', at: '' }],
  attachmentErrors: ATTACHMENTS.slice(1),
  lastReconcile: { at: '2024-01-01T00:01:00.000Z', ms: 12 },
  rssBytes: 80 * 1048576,
};

t.test('status and attachments during an outage', async (t) => {
  const socket = join(shortDir(), 'a.sock');
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/v1/status' ? STATUS : ATTACHMENTS));
  });
  await new Promise<void>((r) => server.listen(socket, () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));

  const list = await berth(['attachments', '--socket', socket]);
  t.equal(list.code, 0);
  const rows = list.stdout.split('\n');
  t.match(rows[0], /^NAME\s+CONTAINER\s+NETWORK\s+IP\s+OWNER\s+STATE\s+LB$/);
  t.match(rows[1], /^web1\s+a{12}\s+net\s+10\.0\.0\.2\s+web1\s+attached\s+web:8080$/);
  t.match(rows[2], /^web2\s+b{12}\s+net\s+-\s+web2\s+deleting! \(retry 3\)$/, 'a failed ADD being undone: short');
  t.match(rows[3], /^web3\s+c{12}\s+net\s+10\.0\.0\.4\s+web3\s+deleting! \(retry 1\)$/);
  t.equal(rows[5], '2 with errors (!): berth status lists them, berth attachments --json has them in full');
  t.ok(rows.every((r) => r.length < 100), 'no line carries an error message');
  t.notMatch(list.stdout, /ECONNREFUSED/);
  const json = JSON.parse((await berth(['attachments', '--socket', socket, '--json'])).stdout) as Array<{ lastError?: string }>;
  t.equal(json[1]!.lastError, LONG, '--json keeps the error in full');

  const st = await berth(['status', '--socket', socket]);
  t.equal(st.code, 0);
  const out = st.stdout;
  t.match(out, /^ready:\s+no: the store does not answer: store redis:\/\/:\*\*\*@127\.0\.0\.1:6390\/0 did not answer within 2000 ms; HAProxy does not answer: cannot reach HAProxy/m);
  t.match(out, /^docker:\s+connected at \/var\/run\/docker\.sock$/m);
  t.match(out, /^store:\s+redis:\/\/:\*\*\*@127\.0\.0\.1:6390\/0: not answering$/m);
  t.match(out, /^haproxy:\s+not answering on \/run\/haproxy\/admin\.sock; last sync failed: cannot reach HAProxy$/m);
  t.match(out, /^keepalived:\s+rendering \/etc\/keepalived\/berth\.conf \(no IPVS on this kernel: not applied here\)$/m);
  t.match(out, /^1 labelled container not attached:\n\s+NAME\s+NETWORK\s+PROBLEM\n\s+nonet\s+nosuch\s+network "nosuch" is not configured/m);
  t.match(out, /^2 attachments with errors:\n\s+NAME\s+NETWORK\s+STATE\s+ERROR\n\s+web2\s+net\s+deleting! \(retry 3\)\s+not attached: failed to allocate in pool "p": failed to reach store .*; DEL failed: failed to reach store /m);
  t.match(out, /\n\s+web3\s+net\s+deleting! \(retry 1\)\s+DEL failed: failed to reach store /);
  // each container once: web2 is an attachment being undone, not also "not attached"
  t.equal(out.match(/\bweb2\b/g)?.length, 1, 'web2 is listed once');

  const healthy = { ...STATUS, ready: true, reasons: [], health: { ...STATUS.health, store: { ...STATUS.health.store, ok: true, ms: 3 }, haproxy: { socket: '/run/haproxy/admin.sock', ok: true, ms: 1, pid: 42, lastSyncError: null } } };
  server.removeAllListeners('request');
  server.on('request', (_req, res) => res.end(JSON.stringify(healthy)));
  const ok = (await berth(['status', '--socket', socket])).stdout;
  t.match(ok, /^ready:\s+yes$/m);
  t.match(ok, /^store:\s+redis:\/\/:\*\*\*@127\.0\.0\.1:6390\/0: answering \(3 ms\)$/m);
  t.match(ok, /^haproxy:\s+answering on \/run\/haproxy\/admin\.sock \(worker pid 42\)$/m);

  // keepalived's last update is shown; the agent decides it is no readiness reason
  const lvsFailed = { ...healthy, health: { ...healthy.health, keepalived: { config: '/etc/keepalived/berth.conf', ok: false, ipvs: true, lastError: 'keepalived -t rejected /etc/keepalived/berth.conf.berth-tmp: bad\nconfig' } } };
  server.removeAllListeners('request');
  server.on('request', (_req, res) => res.end(JSON.stringify(lvsFailed)));
  const lvs = (await berth(['status', '--socket', socket])).stdout;
  t.match(lvs, /^ready:\s+yes$/m);
  t.match(lvs, /^keepalived:\s+rendering \/etc\/keepalived\/berth\.conf; last update failed: keepalived -t rejected \/etc\/keepalived\/berth\.conf\.berth-tmp: bad config$/m);
});

t.test('the STATE cell', async (t) => {
  t.equal(stateCell({ phase: 'attached', attempts: 0 }), 'attached');
  t.equal(stateCell({ phase: 'adding', attempts: 0, problem: 'x' }), 'adding!', 'added again after a failed ADD');
  t.equal(stateCell({ phase: 'deleting', attempts: 0 }), 'deleting');
  t.equal(stateCell({ phase: 'deleting', attempts: 12, lastError: 'x'.repeat(5000) }), 'deleting! (retry 12)');
});
