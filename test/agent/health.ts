// agent/health.ts: which dependencies make the agent not ready (as data),
// and the store check's rules with a store that answers when told to: every
// check bounded in time, concurrent checks sharing one question, a store
// that hangs asked one question at a time, a question that never settles
// given up on. test/agent/status.ts checks a real Redis and HAProxy.
import t from 'tap';
import type { Agent } from '../../agent/agent.js';
import { Health, readiness, type HealthReport } from '../../agent/health.js';
import type { Store } from '../../ipam/model.js';

const up: HealthReport = {
  store: { location: 'file:///s', ok: true, ms: 1 },
  docker: { socket: '/d.sock', ok: true },
  containerd: { ok: true, sockets: [] },
  haproxy: { socket: '/h.sock', ok: true, ms: 1, pid: 9, lastSyncError: 'a sync failed' },
  keepalived: { config: '/k.conf', ok: false, ipvs: false, lastError: 'keepalived -t rejected it' },
};

t.test('readiness: the reconciliation, Docker, the store and HAProxy; not containerd or keepalived', async (t) => {
  t.same(readiness(true, up), [], "ready, whatever HAProxy's last sync or keepalived's last update said");
  t.same(readiness(false, up), ['the first reconciliation has not finished']);
  t.same(readiness(true, { ...up, docker: { socket: '/d.sock', ok: false } }), ['the Docker event stream is down (/d.sock)']);
  t.same(readiness(true, { ...up, store: { location: 'file:///s', ok: false, ms: 5, error: 'store file:///s: EIO' } }), ['the store does not answer: store file:///s: EIO']);
  t.same(readiness(true, { ...up, haproxy: { socket: '/h.sock', ok: false, ms: 1, error: 'cannot reach HAProxy on /h.sock: ENOENT', lastSyncError: null } }), ['HAProxy does not answer: cannot reach HAProxy on /h.sock: ENOENT']);
  t.same(readiness(true, { ...up, containerd: { ok: false, sockets: [{ socket: '/c.sock', connected: false }] } }), [], 'containerd only makes attaching faster');
});

t.test('the store check', async (t) => {
  let calls = 0;
  let answer: () => Promise<unknown> = () => new Promise(() => undefined); // never settles
  const store = { location: 'redis://:***@h:1/0', listPools: () => (calls++, answer()) } as unknown as Store;
  const agent = { containerd: [], storeWarnings: [], cfg: { dockerSocket: '/d.sock', lb: {} }, docker: { connected: true } } as unknown as Agent;
  const health = new Health(agent, store, 50);

  const started = Date.now();
  const [a, b] = await Promise.all([health.check(), health.check()]);
  const took = Date.now() - started;
  t.ok(took >= 45 && took < 3000, `bounded by the check's 50 ms, and not answered before it (${took} ms)`);
  t.equal(a, b, 'concurrent checks share one');
  t.match(a.store, { ok: false, error: 'store redis://:***@h:1/0 did not answer within 50 ms' });
  t.equal(calls, 1, 'one question');
  answer = async () => [];
  t.equal((await health.check()).store.ok, false, 'the question still pending is waited on again');
  t.equal(calls, 1, 'and not asked anew');
  await new Promise((r) => setTimeout(r, 550));
  t.equal((await health.check()).store.ok, true, 'pending for ten checks\' time: given up on, asked anew');
  t.equal(calls, 2);
  answer = () => Promise.reject(new Error('ECONNREFUSED'));
  t.match((await health.check()).store, { ok: false, error: 'store redis://:***@h:1/0: ECONNREFUSED' }, "an error names the store (the store's own errors already do)");
  t.equal((await health.check()).store.ok, false);
  t.equal(calls, 4, 'once a question has settled, the next check asks anew');
});
