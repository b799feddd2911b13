// Repeated log lines: the rule, then the agent reconciling again and again
// with broken network configs and a container on a network nobody configured
// (a stand-in for Docker: the agent asks it for one labelled container).
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Agent } from '../../agent/agent.js';
import { CniRuntime } from '../../agent/cni-runtime.js';
import { parseAgentConfig } from '../../agent/config.js';
import type { DockerEngine } from '../../agent/docker.js';
import { EventPublisher } from '../../agent/events.js';
import { RepeatLimit } from '../../agent/repeat-limit.js';
import { StateDir } from '../../agent/state.js';
import { openStore } from '../../ipam/open-store.js';

t.test('RepeatLimit: new or changed at once, the same again only after the interval, gone then back is new', async (t) => {
  let now = 0;
  const limit = new RepeatLimit(1000, () => now);
  t.strictSame(limit.due(['a', 'b', 'a']), ['a', 'b']);
  now = 500;
  t.strictSame(limit.due(['a', 'b', 'c']), ['c'], 'only the new one');
  now = 999;
  t.strictSame(limit.due(['a', 'b', 'c']), []);
  now = 1000;
  t.strictSame(limit.due(['a', 'b', 'c']), ['a', 'b'], 'a and b once more after the interval');
  t.strictSame(limit.due(['c']), [], 'c: not yet');
  t.strictSame(limit.due(['a', 'c']), ['a'], 'a went away and came back: new');
});

t.test('the agent logs a broken config file and a container on an unconfigured network once, not at every reconciliation', async (t) => {
  const dir = t.testdir({ conf: {}, state: {} });
  const conf = join(dir, 'conf');
  writeFileSync(join(conf, '10-broken.conflist'), '{"cniVersion": "1.0.0", "name": ');
  writeFileSync(join(conf, '20-badname.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'no spaces allowed', plugins: [{ type: 'bridge' }] }));
  const lines: Array<{ msg: string; err?: string }> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const cfg = parseAgentConfig({ cniConfDir: conf, stateDir: join(dir, 'state'), store: `file://${dir}/store`, inProcess: false, gc: false, reconcileInterval: 3600 }, {}, {}, 'h1');
  const docker = {
    connected: true,
    watch() {},
    stop() {},
    listLabelled: async () => [{ id: 'c1', name: 'web' }],
    inspect: async (id: string) => ({ id, name: 'web', running: true, pid: process.pid, labels: { 'berth.network': 'nope' }, networkMode: 'none' }),
  };
  const store = await openStore(cfg.store);
  t.teardown(() => store.close());
  const agent = new Agent(cfg, { docker: docker as unknown as DockerEngine, store, events: new EventPublisher(log), log, state: new StateDir(cfg.stateDir, false), runtime: new CniRuntime(cfg.cniBinDir, false) });
  agent.start();
  t.teardown(() => agent.stop());
  const count = (msg: string) => lines.filter((l) => l.msg === msg).length;
  for (let i = 0; i < 5; i++) await agent.reconcile();
  t.equal(count('network config skipped'), 2, 'each broken file once');
  t.equal(count('container not attached'), 1, 'the container once');
  t.match(agent.problems.get('c1'), { error: /network "nope" is not configured/ }, 'still listed for berth status');
  writeFileSync(join(conf, '10-broken.conflist'), '{"cniVersion": "1.0.0", "name": "n", "plugins": []}');
  for (let i = 0; i < 3; i++) await agent.reconcile();
  t.equal(count('network config skipped'), 3, 'a file broken another way is logged again, once');
  t.match(lines.filter((l) => l.msg === 'network config skipped').at(-1), { err: /10-broken\.conflist: plugins must be a non-empty list/ });
  writeFileSync(join(conf, '20-badname.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'fixed', plugins: [{ type: 'bridge' }] }));
  await agent.reconcile();
  writeFileSync(join(conf, '20-badname.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'no spaces allowed', plugins: [{ type: 'bridge' }] }));
  await agent.reconcile();
  await agent.reconcile();
  t.equal(count('network config skipped'), 4, 'fixed, then broken again: logged again, once');
  t.equal(count('container not attached'), 1);
});
