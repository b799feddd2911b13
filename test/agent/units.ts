// The agent's pure parts: config, labels, network configs, metrics text, and
// the chain runner (ADD order with prevResult, DEL in reverse, rollback of a
// failed ADD, GC lists) with small shell-script plugins that record calls.
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseAgentConfig } from '../../agent/config.js';
import { CniRuntime } from '../../agent/cni-runtime.js';
import { parseLabels } from '../../agent/labels.js';
import { Counter, Histogram, Registry } from '../../agent/metrics.js';
import { loadNetworks, parseNetworkList } from '../../agent/netconf.js';
import { StateDir } from '../../agent/state.js';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';

const BIN = new URL('../../bin/', import.meta.url).pathname;

t.test('agent config: defaults, flags over the file, every bad field named', async (t) => {
  const c = parseAgentConfig(undefined, {}, {}, 'host1');
  t.match(c, {
    store: 'file:///var/lib/berth',
    cniConfDir: '/etc/cni/net.d',
    cniBinDir: ['/opt/cni/bin'],
    dockerSocket: '/var/run/docker.sock',
    socket: '/run/berth/agent.sock',
    stateDir: '/var/lib/berth/agent',
    hostname: 'host1',
    inProcess: true,
    pluginThreads: 1,
    addSlots: 8,
    nice: -10,
    events: { stream: 'events' },
  });
  t.equal(parseAgentConfig(undefined, {}, { BERTH_STORE: 'redis://r:6379/0' }, 'h').store, 'redis://r:6379/0', 'BERTH_STORE');
  const f = parseAgentConfig({ store: 'redis://a:1/0', cniBinDir: '/a:/b', socket: '/x/s.sock' }, { store: 'redis://b:2/0', socket: '/y/s.sock' }, {}, 'h');
  t.equal(f.store, 'redis://b:2/0', 'the flag wins over the file');
  t.equal(f.socket, '/y/s.sock');
  t.equal(parseAgentConfig({ addSlots: 4 }, {}, {}, 'h').addSlots, 4);
  t.same(f.cniBinDir, ['/a', '/b']);
  const bad: Array<[unknown, RegExp]> = [
    [{ sockett: '/x' }, /sockett: unknown field/],
    [{ socket: 3 }, /socket must be a string, got number/],
    [{ stateDir: 'relative' }, /stateDir must be an absolute path/],
    [{ store: 'http://x' }, /store/],
    [{ reconcileInterval: 0 }, /reconcileInterval must be between 1 and 86400/],
    [{ logLevel: 'loud' }, /logLevel must be one of/],
    [{ nice: -21 }, /nice must be an integer from -20 to 19/],
    [{ nice: 1.5 }, /nice must be an integer/],
    [{ pluginThreads: 17 }, /pluginThreads must be an integer from 0 to 16, got 17/],
    [{ pluginThreads: '2' }, /pluginThreads must be a number, got string/],
    [{ addSlots: 0 }, /addSlots must be an integer from 1 to 64, got 0/],
    [{ addSlots: 2.5 }, /addSlots must be an integer from 1 to 64, got 2.5/],
    [{ addSlots: '8' }, /addSlots must be a number, got string/],
    [{ hostname: 'a b' }, /hostname must be a host name/],
    [{ events: { webhook: { url: 'ftp://x' } } }, /events\.webhook\.url must be an http or https URL/],
    [{ events: { webhook: { url: 'http://x', retries: 0 } } }, /events\.webhook\.retries/],
    [{ events: { stream: 'a b' } }, /events\.stream/],
    [{ events: { nope: 1 } }, /events\.nope: unknown field/],
    [[], /must be a JSON object/],
  ];
  for (const [file, re] of bad) t.throws(() => parseAgentConfig(file, {}, {}, 'h'), re, JSON.stringify(file));
  t.throws(() => parseAgentConfig({}, { cniBinDir: 'rel' }, {}, 'h'), /cniBinDir entries must be absolute/);
  t.throws(() => parseAgentConfig({}, { socket: `/${'x'.repeat(110)}` }, {}, 'h'), /socket must be at most 107 bytes/);
  // containerd: both of Docker's usual sockets unless told; "" for none; the flag over the file
  t.same(c.containerdSockets, ['/run/containerd/containerd.sock', '/var/run/docker/containerd/containerd.sock']);
  t.equal(c.containerdNamespace, 'moby');
  t.same(parseAgentConfig({ containerdSocket: '' }, {}, {}, 'h').containerdSockets, [], '"" turns the stream off');
  t.same(parseAgentConfig({ containerdSocket: '/a/c.sock' }, { containerdSocket: '/b/c.sock' }, {}, 'h').containerdSockets, ['/b/c.sock']);
  t.equal(parseAgentConfig({ containerdNamespace: 'berth-test.1' }, {}, {}, 'h').containerdNamespace, 'berth-test.1');
  t.throws(() => parseAgentConfig({ containerdSocket: 'c.sock' }, {}, {}, 'h'), /containerdSocket must be an absolute path \(or "" for none\), got "c.sock"/);
  t.throws(() => parseAgentConfig({}, { containerdSocket: `/${'x'.repeat(110)}` }, {}, 'h'), /containerdSocket must be at most 107 bytes/);
  for (const ns of ['a b', 'a"b', '-a', 'a..b', '', 'x'.repeat(77)]) {
    t.throws(() => parseAgentConfig({ containerdNamespace: ns }, {}, {}, 'h'), /containerdNamespace must be a containerd namespace name/, JSON.stringify(ns));
  }
  t.throws(() => parseAgentConfig({ containerdNamespace: 5 }, {}, {}, 'h'), /containerdNamespace must be a string, got number/);
});

t.test('labels: network, owner, ip and lb services validated by name', async (t) => {
  t.equal(parseLabels({ other: 'x' }, 'web'), null, 'not berth: no berth.network');
  t.same(parseLabels({ 'berth.network': 'vlan100' }, 'web-1'), { network: 'vlan100', owner: 'web-1', lb: {} }, 'the owner defaults to the name');
  t.same(parseLabels({ 'berth.network': 'n', 'berth.owner': 'ns/app-0', 'berth.ip': '10.0.0.10', 'berth.lb.web': '8080', 'berth.lb.api_v2': '9000' }, 'x'), {
    network: 'n',
    owner: 'ns/app-0',
    ip: '10.0.0.10',
    lb: { web: 8080, api_v2: 9000 },
  });
  t.equal(parseLabels({ 'berth.network': 'n', 'berth.ip': '2001:DB8::0:1' }, 'x')?.ip, '2001:db8::1');
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ 'berth.network': 'a b' }, /label berth\.network: must be a CNI network name/],
    [{ 'berth.network': '../etc' }, /berth\.network/],
    [{ 'berth.network': 'n', 'berth.owner': 'a;IP=10.0.0.9' }, /label berth\.owner/],
    [{ 'berth.network': 'n', 'berth.owner': '' }, /label berth\.owner/],
    [{ 'berth.network': 'n', 'berth.ip': '10.0.0.300' }, /label berth\.ip: must be an IPv4 or IPv6 address/],
    [{ 'berth.network': 'n', 'berth.ip': '10.0.0.010' }, /label berth\.ip/],
    [{ 'berth.network': 'n', 'berth.lb.web': '0' }, /label berth\.lb\.web: must be a port from 1 to 65535/],
    [{ 'berth.network': 'n', 'berth.lb.web': '80\nserver x' }, /berth\.lb\.web/],
    [{ 'berth.network': 'n', 'berth.lb.a b': '80' }, /the service name must be/],
    [{ 'berth.network': 'n', 'berth.lb.x\nbackend': '80' }, /the service name must be/],
  ];
  for (const [labels, re] of bad) t.throws(() => parseLabels(labels, 'x'), re, JSON.stringify(labels));
});

t.test('network configs: conflist, conf and json; the first file of a name wins; bad files reported', async (t) => {
  const dir = t.testdir({
    '10-a.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'berth-bridge' }, { type: 'tuning' }] }),
    '20-a.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'other' }] }),
    '30-b.conf': JSON.stringify({ cniVersion: '0.4.0', name: 'b', type: 'bridge', bridge: 'x' }),
    '40-c.json': JSON.stringify({ cniVersion: '1.1.0', name: 'c', plugins: [{ type: 'berth-ovs' }] }),
    '50-bad.conflist': '{not json',
    '60-evil.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'evil', plugins: [{ type: '../../bin/sh' }] }),
    'README.md': 'ignored',
  });
  const { networks, errors } = loadNetworks(dir);
  t.same([...networks.keys()].sort(), ['a', 'b', 'c']);
  t.same(networks.get('a')!.plugins.map((p) => p.type), ['berth-bridge', 'tuning'], '10-a wins over 20-a');
  t.same(networks.get('b')!.plugins, [{ type: 'bridge', bridge: 'x' }], 'a .conf is a list of one, without cniVersion and name');
  t.equal(errors.length, 2);
  t.match(errors.join('\n'), /50-bad\.conflist/);
  t.match(errors.join('\n'), /60-evil\.conflist: plugins\[0\]\.type must be a plugin file name/);
  t.throws(() => parseNetworkList({ cniVersion: '9.9.9', name: 'x', plugins: [{ type: 'a' }] }, 'f', false), /cniVersion "9\.9\.9"/);
  t.throws(() => parseNetworkList({ cniVersion: '1.0.0', name: 'x', plugins: [] }, 'f', false), /plugins must be a non-empty list/);
  t.match(loadNetworks(join(dir, 'missing')).errors[0], /missing/);
});

t.test('metrics: the text format, with labels escaped and histogram buckets cumulative', async (t) => {
  const r = new Registry();
  const c = r.add(new Counter('x_total', 'things'));
  c.inc({ net: 'a"b\\c\nd' });
  c.inc({ net: 'a"b\\c\nd' }, 2);
  const h = r.add(new Histogram('lat_seconds', 'latency', [0.1, 1]));
  h.observe({ op: 'add' }, 0.05);
  h.observe({ op: 'add' }, 0.5);
  h.observe({ op: 'add' }, 5);
  const text = r.render();
  t.match(text, /# TYPE x_total counter\nx_total\{net="a\\"b\\\\c\\nd"\} 3\n/);
  t.match(text, /lat_seconds_bucket\{op="add",le="0.1"\} 1\nlat_seconds_bucket\{op="add",le="1"\} 2\nlat_seconds_bucket\{op="add",le="\+Inf"\} 3\nlat_seconds_sum\{op="add"\} 5.55\nlat_seconds_count\{op="add"\} 3\n/);
});

t.test('state dir: records survive a reload; a newer file torn by a crash falls back to the one before; bad files reported', async (t) => {
  const root = t.testdir();
  const dir = join(root, 'attachments');
  const s = new StateDir(root, true);
  const rec = {
    containerId: 'abc',
    name: 'web',
    ifname: 'eth0',
    intent: { network: 'n', owner: 'web', lb: {} },
    network: { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'x' }], file: '/f' },
    phase: 'adding' as const,
    pid: 1,
    nsInode: 2,
    createdAt: '',
    updatedAt: '',
    attempts: 0,
  };
  await s.save(rec);
  await s.save({ ...rec, phase: 'attached' });
  t.same(readdirSync(dir), ['abc.2.json'], 'each write is a new file; the one before is unlinked');
  writeFileSync(join(dir, 'def.json.tmp'), '{"half');
  writeFileSync(join(dir, 'zzz.json'), '{"containerId":"other"}');
  // a crash after a newer write was created and before it was whole
  writeFileSync(join(dir, 'abc.7.json'), '{"containerId":"ab');
  // and one between a write and the unlink of the one before it
  writeFileSync(join(dir, 'abc.1.json'), JSON.stringify({ ...rec, phase: 'deleting' }));
  // a first write killed before its content (the agent had not acted on it yet)
  writeFileSync(join(dir, 'e1.5.json'), '');
  // a record as berth wrote them before (ID.json)
  writeFileSync(join(dir, 'old1.json'), JSON.stringify({ ...rec, containerId: 'old1', phase: 'deleting' }));
  const again = new StateDir(root);
  const { records, errors } = again.load();
  t.same(records.map((r) => [r.containerId, r.phase]).sort(), [['abc', 'attached'], ['old1', 'deleting']], 'the newest whole generation of each record');
  t.equal(errors.length, 1, 'a record whose name does not match is reported');
  t.same(readdirSync(dir).sort(), ['abc.2.json', 'old1.json', 'zzz.json'], 'the torn, empty, older and temporary files are gone; the bad one is left for an operator');
  await again.save({ ...rec, containerId: 'old1', phase: 'attached' });
  t.ok(readdirSync(dir).includes('old1.8.json') && !readdirSync(dir).includes('old1.json'), 'new generations continue above every one seen');
  await again.remove('abc');
  await again.remove('abc'); // absent is fine
  await again.remove('old1');
  t.same(new StateDir(root).load().records, []);
  await t.rejects(s.save({ ...rec, containerId: '../x' }), /not a file name/);
  await Promise.all(Array.from({ length: 20 }, (_, i) => s.save({ ...rec, containerId: `c${i}` })));
  t.equal(new StateDir(root).load().records.length, 20, 'concurrent writes all land');
  // writes of one record land in the order they were made
  const writes = Promise.all([s.save({ ...rec, containerId: 'c0', phase: 'attached' }), s.save({ ...rec, containerId: 'c0', phase: 'deleting' })]);
  await writes;
  t.same(new StateDir(root).load().records.find((r) => r.containerId === 'c0')?.phase, 'deleting', 'the last write wins');
  t.equal(readdirSync(dir).filter((n) => n.startsWith('c0.')).length, 1, 'and one file is left of it');
});

t.test('chain runner: ADD in order with prevResult, DEL in reverse, a failed ADD undone, GC with the list', async (t) => {
  const dir = t.testdir();
  const log = join(dir, 'calls.log');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  // a plugin that appends "NAME COMMAND prevResult-ips" to the log and returns a result with one more address
  const plugin = (name: string, fail = '') => {
    const file = join(bin, name);
    writeFileSync(
      file,
      `#!/bin/sh
conf=$(cat)
prev=$(printf '%s' "$conf" | grep -o '"prevResult":.*' | grep -o '10\\.0\\.0\\.[0-9]*' | tr '\\n' ',')
valid=$(printf '%s' "$conf" | grep -o '"containerID":"[^"]*"' | tr '\\n' ',')
echo "${name} $CNI_COMMAND $CNI_CONTAINERID prev=$prev valid=$valid args=$CNI_ARGS" >> ${log}
if [ "$CNI_COMMAND" = "${fail}" ]; then echo '{"code":11,"msg":"${name} refuses"}'; exit 1; fi
if [ "$CNI_COMMAND" = ADD ]; then
  n=$(printf '%s' "$prev" | tr ',' '\\n' | grep -c .)
  ips=$(printf '%s' "$prev" | tr ',' '\\n' | grep . | sed 's/.*/{"address":"&\\/24"},/' | tr -d '\\n')
  echo "{\\"cniVersion\\":\\"1.1.0\\",\\"ips\\":[$ips{\\"address\\":\\"10.0.0.$((n+1))/24\\"}]}"
fi
`,
    );
    chmodSync(file, 0o755);
  };
  plugin('p1');
  plugin('p2');
  plugin('p3', 'ADD');
  const rt = new CniRuntime([bin], false);
  const att = { containerId: 'c1', ifname: 'eth0', netns: '/proc/self/ns/net', args: [['BERTH_OWNER', 'o']] as Array<[string, string]>, capabilityArgs: {} };
  const list = { cniVersion: '1.1.0', name: 'n', plugins: [{ type: 'p1' }, { type: 'p2' }], file: 'f' };
  const result = await rt.add(list, att);
  t.same((result.ips as Array<{ address: string }>).map((i) => i.address), ['10.0.0.1/24', '10.0.0.2/24'], "p2's result builds on p1's");
  await rt.del(list, att, result);
  await rt.gc(list, [{ containerID: 'keep', ifname: 'eth0' }]);
  const calls = () => readFileSync(log, 'utf8').trim().split('\n');
  t.same(calls(), [
    'p1 ADD c1 prev= valid= args=IgnoreUnknown=1;BERTH_OWNER=o',
    'p2 ADD c1 prev=10.0.0.1, valid= args=IgnoreUnknown=1;BERTH_OWNER=o',
    'p2 DEL c1 prev=10.0.0.1,10.0.0.2, valid= args=IgnoreUnknown=1;BERTH_OWNER=o',
    'p1 DEL c1 prev=10.0.0.1,10.0.0.2, valid= args=IgnoreUnknown=1;BERTH_OWNER=o',
    'p1 GC  prev= valid="containerID":"keep", args=',
    'p2 GC  prev= valid="containerID":"keep", args=',
  ]);
  writeFileSync(log, '');
  const failing = { ...list, plugins: [{ type: 'p1' }, { type: 'p3' }] };
  await t.rejects(rt.add(failing, att), /p3 ADD: p3 refuses/);
  t.same(calls().slice(1), ['p3 ADD c1 prev=10.0.0.1, valid= args=IgnoreUnknown=1;BERTH_OWNER=o', 'p3 DEL c1 prev=10.0.0.1, valid= args=IgnoreUnknown=1;BERTH_OWNER=o', 'p1 DEL c1 prev=10.0.0.1, valid= args=IgnoreUnknown=1;BERTH_OWNER=o'], 'the failed ADD is undone in reverse');
  await t.rejects(rt.add({ ...list, plugins: [{ type: 'nosuch' }] }, att), /plugin "nosuch" is not in/);
  t.equal(await rt.gc({ ...list, cniVersion: '1.0.0' }, []), false, 'GC needs 1.1.0');
});

t.test('plugin threads: berth-ipam on worker threads answers as on the main thread; errors come back; closed threads refuse', async (t) => {
  const url = `file://${t.testdir()}/store`;
  const store = await openStore(url);
  await store.createPool(buildPoolConfig({ name: 'thr', subnet: '10.99.7.0/24', hold: 0 }));
  await store.close();
  const list = { cniVersion: '1.1.0', name: 'thr', plugins: [{ type: 'berth-ipam', ipam: { type: 'berth-ipam', pool: 'thr', store: url } }], file: 'f' };
  const att = (id: string) => ({ containerId: id, ifname: 'eth0', netns: '/proc/self/ns/net', args: [['BERTH_OWNER', id]] as Array<[string, string]>, capabilityArgs: {} });
  const threaded = new CniRuntime([BIN], true, 2);
  const inline = new CniRuntime([BIN], true, 0);
  t.teardown(() => Promise.all([threaded.close(), inline.close()]));
  await threaded.warm([list]);
  // eight at once over two threads, then one on the main thread
  const many = await Promise.all(Array.from({ length: 8 }, (_, i) => threaded.add(list, att(`w${i}`))));
  const ips = many.map((r) => (r.ips as Array<{ address: string }>)[0]!.address);
  t.equal(new Set(ips).size, 8, `eight distinct addresses from the threads: ${ips.join(' ')}`);
  const one = await inline.add(list, att('m0'));
  t.notOk(ips.includes((one.ips as Array<{ address: string }>)[0]!.address), 'the main thread sees what the threads allocated');
  t.same(await threaded.add(list, att('w3')), many[3], 'ADD again on a thread returns the same result');
  for (let i = 0; i < 8; i++) await threaded.del(list, att(`w${i}`), many[i]);
  t.equal(threaded.threadCalls, 17, 'the threads ran every call (8 ADD, 1 ADD again, 8 DEL)');
  t.equal(inline.threadCalls, 0, 'with 0 threads, none');
  const after = await openStore(url);
  t.same((await after.listAddresses('thr')).map((a) => a.containerId), ['m0'], 'DEL on the threads released theirs');
  await after.close();
  await t.rejects(threaded.add({ ...list, plugins: [{ type: 'berth-ipam', ipam: { type: 'berth-ipam', pool: 'nosuch', store: url } }] }, att('x')), /nosuch/, "a plugin's error crosses the thread");
  await threaded.close();
  await t.rejects(threaded.add(list, att('late')), /plugin threads are stopped/, 'closed threads refuse new calls');
});
