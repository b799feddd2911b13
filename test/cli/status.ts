// berth status as it prints what an agent answers (a stand-in agent on a
// unix socket answers what a real one did during a Redis and HAProxy
// outage): the ready line and each dependency's health.
// test/agent/status.ts runs the real thing.
import { createServer } from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../cli/main.js';
import { shortDir } from '../helpers/agent.js';

async function berth(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  return { code, stdout, stderr };
}

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
  delQueue: 0,
  problems: [{ containerId: 'd'.repeat(64), name: 'nonet', network: 'nosuch', error: 'network "nosuch" is not configured in /etc/cni/net.d', at: '' }],
  lastReconcile: { at: '2024-01-01T00:01:00.000Z', ms: 12 },
  rssBytes: 80 * 1048576,
};

t.test('status during an outage, and after', async (t) => {
  const socket = join(shortDir(), 'a.sock');
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/v1/status' ? STATUS : {}));
  });
  await new Promise<void>((r) => server.listen(socket, () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));

  const st = await berth(['status', '--socket', socket]);
  t.equal(st.code, 0);
  const out = st.stdout;
  t.match(out, /^ready:\s+no: the store does not answer: store redis:\/\/:\*\*\*@127\.0\.0\.1:6390\/0 did not answer within 2000 ms; HAProxy does not answer: cannot reach HAProxy/m);
  t.match(out, /^docker:\s+connected at \/var\/run\/docker\.sock$/m);
  t.match(out, /^store:\s+redis:\/\/:\*\*\*@127\.0\.0\.1:6390\/0: not answering$/m);
  t.match(out, /^haproxy:\s+not answering on \/run\/haproxy\/admin\.sock; last sync failed: cannot reach HAProxy$/m);
  t.match(out, /^keepalived:\s+rendering \/etc\/keepalived\/berth\.conf \(no IPVS on this kernel: not applied here\)$/m);
  t.match(out, /^1 labelled container not attached:\n\s+NAME\s+NETWORK\s+PROBLEM\n\s+nonet\s+nosuch\s+network "nosuch" is not configured/m);

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
