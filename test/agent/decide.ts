// The agent's decision on one container, as data: each case is one a broken
// decision would get wrong (attaching a stale task, dropping an attachment
// Docker is still starting, running a failed ADD twice for one start, ...).
import t from 'tap';
import { decide, decideAttach, readLabels, STOP_GRACE_MS, type AttachFacts, type DockerView, type Facts, type RecordFacts } from '../../agent/decide.js';
import type { AttachIntent } from '../../agent/labels.js';
import { parsePolicy } from '../../agent/policy.js';

const NOW = 1_000_000;
const HOST = 4026531840;
const NS = 4026532500;
const intent: AttachIntent = { network: 'vlan100', owner: 'web-1', lb: {} };
const docker = (running: boolean, pid = 100, labels: DockerView['labels'] = { intent }): DockerView => ({ name: 'web-1', labels, state: { running, pid: running ? pid : 0 } });
const record = (r: Partial<RecordFacts> = {}): RecordFacts => ({ phase: 'attached', pid: 100, nsInode: NS, network: 'vlan100', pidInode: NS, ...r });
/** Docker reports web-1 running as pid 100, in namespace NS, on a configured network; no record, no problem */
const facts = (f: Partial<Facts> = {}): Facts => ({
  now: NOW,
  trigger: { kind: 'docker' },
  docker: docker(true),
  pidInode: NS,
  hostInode: HOST,
  networkConfigured: true,
  cniConfDir: '/etc/cni/net.d',
  ...f,
});
const target = (pid = 100) => ({ name: 'web-1', pid, intent });

t.test('a containerd task', async (t) => {
  const task = (pid: number, ofContainer = true) => ({ kind: 'task' as const, pid, ofContainer });
  const meta = { name: 'web-1', labels: { intent } };
  t.same(decide(facts({ trigger: task(300, false), docker: meta, pidInode: NS })), { kind: 'ignore', why: 'not its process' }, 'a process that is not the container\'s (ended, pid reused) attaches nothing');
  t.same(decide(facts({ trigger: task(300), docker: null })), { kind: 'ignore', why: "not this engine's" }, 'a container Docker does not know: nothing, not a detach');
  t.same(decide(facts({ trigger: task(300), docker: meta, pidInode: NS + 1 })), { kind: 'attach', target: target(300), inode: NS + 1 }, "the task's process, from the labels Docker gave at creation, before Docker reports the start");
  t.same(decide(facts({ trigger: task(100), docker: meta, record: record() })), { kind: 'keep' }, 'the task of the process already attached (Docker\'s start came first): kept');
  t.same(decide(facts({ trigger: task(300), docker: meta, pidInode: NS + 1, record: record() })), { kind: 'replace', why: 'restarted', target: target(300) }, 'a new task of an attached container: the old attachment goes first');
});

t.test('what Docker says', async (t) => {
  t.same(decide(facts({ docker: null, record: record(), problem: { error: 'x' } })), { kind: 'detach', why: 'removed', clearProblem: true }, 'removed: detached and no longer listed');
  t.same(decide(facts({ docker: docker(false), pidInode: 0 })), { kind: 'detach', why: 'stopped', clearProblem: true }, 'stopped');
  t.same(decide(facts({ docker: docker(true, 100, { intent: null }), record: record() })), { kind: 'detach', why: 'unlabelled', clearProblem: false }, 'running without berth.network');
  t.same(decide(facts({ docker: docker(true, 100, { error: 'label berth.ip: bad', network: 'vlan100' }), record: record() })), { kind: 'reject', error: 'label berth.ip: bad', network: 'vlan100', detach: true }, 'a bad label: listed, and any attachment detached');
  const refusal = { label: 'berth.owner', owner: 'other', network: 'vlan100' };
  t.same(decide(facts({ docker: docker(true, 100, { error: 'refused', network: 'vlan100', refusal }) })), { kind: 'reject', error: 'refused', network: 'vlan100', refusal, detach: true }, 'a label the policy refuses: the refusal goes with it');
  t.same(decide(facts({ docker: docker(false, 0, { error: 'label berth.ip: bad' }), pidInode: 0 })), { kind: 'detach', why: 'stopped', clearProblem: true }, 'the labels of a stopped container are not its problem');
});

t.test('a failed ADD backing off keeps its listing while Docker does not report the container running', async (t) => {
  t.same(decide(facts({ docker: docker(false), pidInode: 0, problem: { error: 'pool exhausted', pid: 100, retryAt: NOW + 1 } })), { kind: 'detach', why: 'stopped', clearProblem: false }, 'Docker may still be starting it: its retry finds out');
  t.same(decide(facts({ docker: docker(false), pidInode: 0, problem: { error: 'pool exhausted', pid: 100, retryAt: NOW } })), { kind: 'detach', why: 'stopped', clearProblem: true }, 'its backoff over and still not running: no longer listed');
  t.same(decide(facts({ docker: null, problem: { error: 'pool exhausted', pid: 100, retryAt: NOW + 1 } })), { kind: 'detach', why: 'removed', clearProblem: true }, 'removed: gone whatever its backoff');
});

t.test('an attachment whose process lives while Docker does not report the container running yet', async (t) => {
  const starting = (r: Partial<RecordFacts>) => facts({ docker: docker(false), pidInode: 0, record: record(r) });
  t.same(decide(starting({})), { kind: 'keep' }, 'attached from its task, Docker still starting it: kept, not taken for a stopped container');
  t.same(decide(starting({ phase: 'adding' })), { kind: 'replace', why: 'adding', target: target(100) }, 'half added, the process alive: undone and added again for that process');
  t.same(decide(starting({ phase: 'deleting' })), { kind: 'detach', why: 'stopped', clearProblem: true }, 'a DEL due: no process keeps it');
  t.same(decide(starting({ pidInode: NS + 7 })), { kind: 'detach', why: 'stopped', clearProblem: true }, 'the pid reused by another namespace: stopped');
  t.same(decide(starting({ pidInode: 0 })), { kind: 'detach', why: 'stopped', clearProblem: true }, 'the process gone: stopped');
  t.same(decide(starting({ nsInode: 0, pidInode: 0 })), { kind: 'detach', why: 'stopped', clearProblem: true }, 'no namespace recorded: nothing to match');
});

t.test('an attachment of a running container', async (t) => {
  t.same(decide(facts({ record: record() })), { kind: 'keep' }, 'the same process, namespace and network');
  t.same(decide(facts({ record: record({ pid: 99, pidInode: 0 }) })), { kind: 'replace', why: 'restarted', target: target() }, 'another pid: restarted while its die event was missed');
  t.same(decide(facts({ record: record(), pidInode: NS + 1 })), { kind: 'replace', why: 'restarted', target: target() }, 'the same pid in another namespace: a new process');
  t.same(decide(facts({ record: record({ network: 'vlan200' }) })), { kind: 'replace', why: 'restarted', target: target() }, 'on another network than its labels name');
  t.same(decide(facts({ record: record({ phase: 'adding' }) })), { kind: 'replace', why: 'adding', target: target() }, 'half added (the agent died mid-ADD)');
  t.same(decide(facts({ record: record({ phase: 'deleting' }) })), { kind: 'replace', why: 'deleting', target: target() }, 'a DEL still due: done before the ADD');
});

t.test('the stop grace: a container signalled to stop is readmitted to the load balancers once it is over', async (t) => {
  t.same(decide(facts({ record: record(), stoppingSince: NOW - 1000 })), { kind: 'keep' }, 'stopping: still out');
  t.same(decide(facts({ record: record(), stoppingSince: NOW - STOP_GRACE_MS })), { kind: 'keep' }, 'at the grace: still out');
  t.same(decide(facts({ record: record(), stoppingSince: NOW - STOP_GRACE_MS - 1 })), { kind: 'readmit' }, 'past it and still running (it handled the signal): back in');
  t.same(decide(facts({ record: record({ pid: 99, pidInode: 0 }), stoppingSince: NOW - STOP_GRACE_MS - 1 })), { kind: 'replace', why: 'restarted', target: target() }, 'restarted: attached anew, not readmitted');
});

t.test('attaching: backoff, network, namespace', async (t) => {
  const a = (f: Partial<AttachFacts> = {}): AttachFacts => ({ now: NOW, target: target(), inode: NS, hostInode: HOST, networkConfigured: true, cniConfDir: '/etc/cni/net.d', ...f });
  t.same(decideAttach(a()), { kind: 'attach', target: target(), inode: NS });
  t.same(decideAttach(a({ problem: { error: 'e', pid: 100, retryAt: NOW + 1 } })), { kind: 'wait-for-backoff', retryAt: NOW + 1 }, 'its ADD failed for this process: not before the backoff (the start event after the task event)');
  t.same(decideAttach(a({ problem: { error: 'e', pid: 100, retryAt: NOW } })), { kind: 'attach', target: target(), inode: NS }, 'the backoff over');
  t.same(decideAttach(a({ problem: { error: 'e', pid: 99, retryAt: NOW + 1 } })), { kind: 'attach', target: target(), inode: NS }, 'failed for another process (restarted): at once');
  t.same(decideAttach(a({ problem: { error: 'label berth.ip: bad' } })), { kind: 'attach', target: target(), inode: NS }, 'a problem with no backoff holds nothing up');
  t.same(decideAttach(a({ networkConfigured: false })), { kind: 'reject', error: 'network "vlan100" is not configured in /etc/cni/net.d', network: 'vlan100', detach: false }, 'no such network: listed, no backoff (retried at each reconciliation)');
  t.same(decideAttach(a({ inode: 0 })), { kind: 'ignore', why: 'exited' }, 'the process exited: its die event follows');
  t.same(decideAttach(a({ inode: HOST })), { kind: 'reject', error: "the container's process 100 is in the host's network namespace", network: 'vlan100', detach: false }, "never the host's namespace");
  t.same(decideAttach(a({ networkConfigured: false, problem: { error: 'e', pid: 100, retryAt: NOW + 1 } })), { kind: 'wait-for-backoff', retryAt: NOW + 1 }, 'the backoff first');
  t.match(decideAttach(a({ networkConfigured: false, inode: 0 })), { kind: 'reject' }, 'then the network, then the process');
  t.same(decide(facts({ problem: { error: 'e', pid: 100, retryAt: NOW + 1 } })), { kind: 'wait-for-backoff', retryAt: NOW + 1 }, 'decide: no record, so the attach rules');
  t.same(decide(facts({ hostInode: NS })), { kind: 'reject', error: "the container's process 100 is in the host's network namespace", network: 'vlan100', detach: false });
});

t.test('readLabels: the labels, the network mode and the policy in one verdict', async (t) => {
  const none = parsePolicy(undefined);
  t.same(readLabels({}, 'web-1', 'bridge', none), { intent: null }, 'not berth\'s, whatever its network mode');
  t.same(readLabels({ 'berth.network': 'vlan100' }, 'web-1', 'none', none), { intent });
  t.same(readLabels({ 'berth.network': 'vlan100' }, 'web-1', 'bridge', none), { error: 'label berth.network: the container must run with --network none (it has "bridge")', network: 'vlan100' });
  t.match(readLabels({ 'berth.network': 'bad name' }, 'web-1', 'none', none), { error: /^label berth\.network: must be a CNI network name/, network: 'bad name' });
  t.notOk('refusal' in readLabels({ 'berth.network': 'vlan100', 'berth.ip': 'x' }, 'web-1', 'none', none), 'a bad label is no refusal');
  const policy = parsePolicy({ vlan100: { owners: ['{name}'] } });
  t.match(readLabels({ 'berth.network': 'vlan100', 'berth.owner': 'other' }, 'web-1', 'none', policy), {
    error: /owner "other" is not allowed on network "vlan100"/,
    network: 'vlan100',
    refusal: { label: 'berth.owner', owner: 'other', network: 'vlan100' },
  });
});
