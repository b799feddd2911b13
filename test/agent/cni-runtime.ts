// The chain runner (agent/cni-runtime.ts): ADD order with prevResult, DEL in
// reverse, rollback of a failed ADD, GC lists, with small shell-script
// plugins that record calls; and berth-ipam on worker threads.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CniRuntime } from '../../agent/cni-runtime.js';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';

const BIN = new URL('../../bin/', import.meta.url).pathname;

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
