// bin/berth-ipam as a runtime runs it: a real process, real stores (the file
// store and a redis-server started here), every spec version.
import t, { type Test } from 'tap';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig, type PoolSpec } from '../../ipam/pool-config.js';
import { formatIp, parseIp } from '../../core/address.js';
import type { Store } from '../../ipam/model.js';
import { SUPPORTED_VERSIONS } from '../../cni/version.js';
import { cniEnv, runCni } from '../helpers/cni.js';
import { freshStoreUrl, sharedRedis, PROCESS_STORE_KINDS, type StoreKind } from '../helpers/stores.js';
import { freePort, skipWithoutRedis } from '../helpers/redis.js';

const hex = (ip: string) => parseIp(ip, 'ip').hex;

function netconf(store: string, v = '1.0.0', ipam: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return { cniVersion: v, name: 'net1', type: 'bridge', ipam: { type: 'berth-ipam', pool: 'web', store, host: 'node-a', ...ipam }, ...extra };
}

async function setup(t: Test, kind: StoreKind, spec: Partial<PoolSpec> = {}): Promise<{ url: string; store: Store } | null> {
  const url = await freshStoreUrl(t, kind);
  if (!url) return null;
  const store = await openStore(url);
  t.teardown(() => store.close());
  await store.createPool(
    buildPoolConfig({ name: 'web', subnet: '10.50.0.0/24', routes: ['0.0.0.0/0,10.50.0.1'], dns: { nameservers: ['10.50.0.53'] }, hold: 600, ...spec }),
  );
  return { url, store };
}

for (const kind of PROCESS_STORE_KINDS) {
  t.test(`${kind} store`, async (t) => {
    t.test('ADD, CHECK, DEL and DEL again, for every spec version', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      for (const [i, v] of SUPPORTED_VERSIONS.entries()) {
        const id = `ver${i}`;
        const add = await runCni('berth-ipam', cniEnv('ADD', id), netconf(s.url, v));
        t.equal(add.code, 0, `${v} ADD ${add.stdout}`);
        t.equal(add.json!.cniVersion, v);
        const ip = add.json!.ips[0];
        t.match(ip, { address: /^10\.50\.0\.\d+\/24$/, gateway: '10.50.0.1' });
        t.equal('version' in ip, v.startsWith('0.'), 'ips[].version only before 1.0.0');
        t.notOk('interfaces' in add.json!, 'no interfaces from an IPAM plugin');
        t.same(add.json!.routes, [{ dst: '0.0.0.0/0', gw: '10.50.0.1' }]);
        t.same(add.json!.dns, { nameservers: ['10.50.0.53'] });
        const addr = hex(ip.address.split('/')[0]);
        t.match(await s.store.getAddress('web', addr), { state: 'allocated', containerId: id, ifname: 'eth0', host: 'node-a', network: 'net1' });
        if (v !== '0.3.0' && v !== '0.3.1') {
          const check = await runCni('berth-ipam', cniEnv('CHECK', id), netconf(s.url, v, {}, { prevResult: add.json }));
          t.equal(check.code, 0, `${v} CHECK right after ADD passes ${check.stdout}`);
          t.equal(check.stdout, '', 'CHECK prints nothing on success');
        }
        const del = await runCni('berth-ipam', cniEnv('DEL', id), netconf(s.url, v, {}, { prevResult: add.json }));
        t.equal(del.code, 0, `${v} DEL`);
        t.equal(del.stdout, '');
        t.equal((await s.store.getAddress('web', addr)).state, 'reserved', 'held for its owner after DEL');
        t.equal((await runCni('berth-ipam', cniEnv('DEL', id), netconf(s.url, v))).code, 0, 'DEL again (no prevResult) is fine');
      }
    });

    t.test('sticky owners across new container ids', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const cases: Array<[string, Record<string, string>, Record<string, unknown>]> = [
        ['BERTH_OWNER', { CNI_ARGS: 'BERTH_OWNER=web-1' }, {}],
        ['K8S pod', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=api-0' }, {}],
        ['args.cni.owner', {}, { args: { cni: { owner: 'db-primary' } } }],
      ];
      for (const [label, extraEnv, extraConf] of cases) {
        const first = await runCni('berth-ipam', cniEnv('ADD', `${label.length}a`, 'eth0', undefined, extraEnv), netconf(s.url, '1.0.0', {}, extraConf));
        await runCni('berth-ipam', cniEnv('DEL', `${label.length}a`, 'eth0', undefined, extraEnv), netconf(s.url, '1.0.0', {}, extraConf));
        const other = await runCni('berth-ipam', cniEnv('ADD', `${label.length}x`), netconf(s.url));
        const again = await runCni('berth-ipam', cniEnv('ADD', `${label.length}b`, 'eth0', undefined, extraEnv), netconf(s.url, '1.0.0', {}, extraConf));
        t.equal(again.json!.ips[0].address, first.json!.ips[0].address, `${label}: a new container of the same owner gets the IP back`);
        t.not(other.json!.ips[0].address, first.json!.ips[0].address, `${label}: nobody else got it meanwhile`);
      }
      const k8s = await s.store.history('web', { limit: 100 });
      t.ok(k8s.some((e) => e.owner === 'prod/api-0'), 'the K8S owner key is namespace/name');
    });

    t.test('requested addresses: runtimeConfig.ips, IP=, args.cni.ips', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const a = await runCni('berth-ipam', cniEnv('ADD', 'r1'), netconf(s.url, '1.0.0', {}, { runtimeConfig: { ips: ['10.50.0.77/24'] } }));
      t.equal(a.json!.ips[0].address, '10.50.0.77/24');
      const b = await runCni('berth-ipam', cniEnv('ADD', 'r2', 'eth0', undefined, { CNI_ARGS: 'IP=10.50.0.78' }), netconf(s.url));
      t.equal(b.json!.ips[0].address, '10.50.0.78/24');
      const c = await runCni('berth-ipam', cniEnv('ADD', 'r3'), netconf(s.url, '1.0.0', {}, { args: { cni: { ips: ['10.50.0.79'] } } }));
      t.equal(c.json!.ips[0].address, '10.50.0.79/24');
      const taken = await runCni('berth-ipam', cniEnv('ADD', 'r4', 'eth0', undefined, { CNI_ARGS: 'IP=10.50.0.77' }), netconf(s.url));
      t.match(taken.json, { code: 101, msg: /10\.50\.0\.77 is allocated to r1/ });
      const outside = await runCni('berth-ipam', cniEnv('ADD', 'r5', 'eth0', undefined, { CNI_ARGS: 'IP=10.99.0.1' }), netconf(s.url));
      t.match(outside.json, { code: 103, msg: /10\.99\.0\.1 was requested, but it is in none of the pools "web" \(10\.50\.0\.0\/24\)/ });
      const two = await runCni('berth-ipam', cniEnv('ADD', 'r6', 'eth0', undefined, { CNI_ARGS: 'IP=10.50.0.80,10.50.0.81' }), netconf(s.url));
      t.match(two.json, { code: 7, msg: /one address per family; 10\.50\.0\.80, 10\.50\.0\.81 were requested/ });
      const bad = await runCni('berth-ipam', cniEnv('ADD', 'r7', 'eth0', undefined, { CNI_ARGS: 'IP=10.50.0.300' }), netconf(s.url));
      t.match(bad.json, { code: 7, msg: /CNI_ARGS IP\[0\]/ });
      t.equal((await s.store.usage('web')).allocated, 3, 'failed ADDs allocated nothing');
    });

    t.test('dual-stack and pool lists: one address per family, the next pool when one is full, both or neither', async (t) => {
      const url = await freshStoreUrl(t, kind);
      if (!url) return;
      const store = await openStore(url);
      t.teardown(() => store.close());
      await store.createPool(buildPoolConfig({ name: 'v4a', subnet: '10.60.0.0/30', hold: 0 })); // one address: .2
      await store.createPool(buildPoolConfig({ name: 'v4b', subnet: '10.61.0.0/24', hold: 0, routes: ['10.200.0.0/16'] }));
      await store.createPool(buildPoolConfig({ name: 'v6a', subnet: 'fd00:60::/64', hold: 0 }));
      const conf = (extra: Record<string, unknown> = {}) => ({ cniVersion: '1.1.0', name: 'dual', type: 'bridge', ipam: { type: 'berth-ipam', pools: ['v4a', 'v4b', 'v6a'], store: url, host: 'node-a' }, ...extra });
      const addrs = (r: { json?: Record<string, any> }) => (r.json!.ips as Array<{ address: string; gateway: string }>).map((i) => `${i.address} via ${i.gateway}`);
      const first = await runCni('berth-ipam', cniEnv('ADD', 'd1'), conf());
      t.same(addrs(first), ['10.60.0.2/30 via 10.60.0.1', 'fd00:60::2/64 via fd00:60::1'], 'an IPv4 and an IPv6 address, each with its gateway');
      const second = await runCni('berth-ipam', cniEnv('ADD', 'd2'), conf());
      t.same(addrs(second), ['10.61.0.2/24 via 10.61.0.1', 'fd00:60::3/64 via fd00:60::1'], 'v4a is full: the next IPv4 pool');
      t.same(second.json!.routes, [{ dst: '10.200.0.0/16' }], "the routes of the pools it came from");
      const asked = await runCni('berth-ipam', cniEnv('ADD', 'd3', 'eth0', undefined, { CNI_ARGS: 'IP=10.61.0.50,fd00:60::50' }), conf());
      t.same(addrs(asked), ['10.61.0.50/24 via 10.61.0.1', 'fd00:60::50/64 via fd00:60::1'], 'one requested address per family');
      const cap = await runCni('berth-ipam', cniEnv('ADD', 'd4'), conf({ runtimeConfig: { ips: ['fd00:60::60/64', '10.61.0.60/24'] } }));
      t.same(addrs(cap), ['10.61.0.60/24 via 10.61.0.1', 'fd00:60::60/64 via fd00:60::1'], 'through the ips capability too');
      // the IPv6 address asked for is taken: the IPv4 one this ADD got is released again
      const v4Before = (await store.usage('v4b')).allocated;
      const half = await runCni('berth-ipam', cniEnv('ADD', 'd5', 'eth0', undefined, { CNI_ARGS: 'IP=fd00:60::2' }), conf());
      t.match(half.json, { code: 101, msg: /fd00:60::2 is allocated to d1/ });
      t.equal((await store.usage('v4b')).allocated, v4Before, 'both or neither: the IPv4 address taken first is released');
      t.equal((await store.history('v4b', { limit: 1 }))[0]?.event, 'release', 'as the history shows');
      const wrong = await runCni('berth-ipam', cniEnv('ADD', 'd6', 'eth0', undefined, { CNI_ARGS: 'IP=10.62.0.5' }), conf());
      t.match(wrong.json, { code: 103, msg: /in none of the pools "v4a" \(10\.60\.0\.0\/30\), "v4b"/ });
      const check = await runCni('berth-ipam', cniEnv('CHECK', 'd2'), { ...conf(), prevResult: second.json });
      t.equal(check.code, 0, `CHECK of both: ${check.stdout}`);
      await store.release('v6a', { containerId: 'd2', ifname: 'eth0' });
      const broken = await runCni('berth-ipam', cniEnv('CHECK', 'd2'), { ...conf(), prevResult: second.json });
      t.match(broken.json, { code: 107, msg: /fd00:60::3 is free, not allocated to d2\/eth0/ }, 'CHECK sees the IPv6 one gone');
      t.equal((await runCni('berth-ipam', cniEnv('DEL', 'd1'), conf())).code, 0);
      t.same([(await store.usage('v4a')).allocated, (await store.getAddress('v6a', hex('fd00:60::2'))).state], [0, 'free'], 'DEL releases both');
      const gc = await runCni('berth-ipam', { CNI_COMMAND: 'GC', CNI_PATH: '/x' }, { ...conf(), 'cni.dev/valid-attachments': [{ containerID: 'd3', ifname: 'eth0' }] });
      t.equal(gc.code, 0, gc.stdout);
      const left = async (pool: string) => (await store.listAddresses(pool)).filter((a) => a.state === 'allocated').map((a) => a.containerId).sort();
      t.same([await left('v4b'), await left('v6a')], [['d3'], ['d3']], 'GC covers every pool of the list');
      // STATUS: 50 once every pool of one family is full
      await runCni('berth-ipam', cniEnv('ADD', 'd7'), conf());
      t.equal((await runCni('berth-ipam', { CNI_COMMAND: 'STATUS' }, conf())).code, 0, 'v4b still has room');
      const only = { ...conf(), ipam: { type: 'berth-ipam', pools: ['v4a', 'v6a'], store: url, host: 'node-a' } };
      t.match((await runCni('berth-ipam', { CNI_COMMAND: 'STATUS' }, only)).json, { code: 50, msg: /no IPv4 address left: pool "v4a" \(1 allocated, 0 reserved of 1\) is exhausted/ });
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), { ...conf(), ipam: { type: 'berth-ipam', pool: 'v4a', pools: ['v4b'], store: url } })).json, { code: 7, msg: /give one of them/ });
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), { ...conf(), ipam: { type: 'berth-ipam', pools: ['v4a', 'v4a'], store: url } })).json, { code: 7, msg: /lists "v4a" twice/ });
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), { ...conf(), ipam: { type: 'berth-ipam', pools: [], store: url } })).json, { code: 7, msg: /ipam\.pools must be a list of 1 to 16/ });
    });

    t.test('config errors name the field', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), netconf(s.url, '1.0.0', { subnet: '10.0.0.0/24' }))).json, {
        code: 2,
        msg: /ipam\.subnet: unsupported field "subnet"="10\.0\.0\.0\/24"/,
      });
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), netconf(s.url, '1.0.0', { colour: 'red' }))).json, { code: 7, msg: /ipam\.colour: unknown field/ });
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), netconf(s.url, '1.0.0', { pool: 'no such' }))).json, { code: 7, msg: /ipam\.pool/ });
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), netconf(s.url, '1.0.0', { pool: 'missing' }))).json, { code: 7, msg: /pool "missing" does not exist/ });
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), netconf('http://nope', '1.0.0'))).json, { code: 7, msg: /ipam\.store/ });
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), { cniVersion: '1.0.0', name: 'n', type: 'bridge' })).json, { code: 7, msg: /^ipam must be an object/ });
      t.match((await runCni('berth-ipam', cniEnv('ADD', 'x'), netconf(s.url, '1.0.0', {}, { args: { cni: { owner: 'a\u0001b' } } }))).json, {
        code: 7,
        msg: /args\.cni\.owner/,
      });
    });

    t.test('DEL after a failed ADD, and DEL without a netns still releases', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const failed = await runCni('berth-ipam', cniEnv('ADD', 'f1', 'eth0', undefined, { CNI_ARGS: 'IP=10.99.0.1' }), netconf(s.url));
      t.not(failed.code, 0);
      t.equal((await runCni('berth-ipam', cniEnv('DEL', 'f1'), netconf(s.url))).code, 0, 'DEL after the failed ADD');
      const add = await runCni('berth-ipam', cniEnv('ADD', 'f2'), netconf(s.url));
      const env = cniEnv('DEL', 'f2') as Record<string, string | undefined>;
      delete env.CNI_NETNS;
      t.equal((await runCni('berth-ipam', env, netconf(s.url))).code, 0);
      t.equal((await s.store.getAddress('web', hex(add.json!.ips[0].address.split('/')[0]))).state, 'reserved', 'released without a netns');
    });

    t.test('DEL for a pool that does not exist: nothing to do, logged at debug', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const missing = { pool: 'missing' };
      const add = await runCni('berth-ipam', cniEnv('ADD', 'm1'), netconf(s.url, '1.0.0', missing));
      t.match(add.json, { code: 7, msg: /pool "missing" does not exist/ }, 'the ADD fails');
      const del = await runCni('berth-ipam', cniEnv('DEL', 'm1'), netconf(s.url, '1.0.0', missing));
      t.equal(del.code, 0, 'the DEL that undoes it succeeds');
      t.equal(del.stdout, '');
      t.equal(del.stderr, '', 'nothing at the default level (warn)');
      const debug = await runCni('berth-ipam', cniEnv('DEL', 'm1'), netconf(s.url, '1.0.0', { ...missing, log: { level: 'debug' } }));
      const lines = debug.stderr.trim().split('\n').map((l) => JSON.parse(l));
      t.match(
        lines.filter((l) => l.pool === 'missing'),
        [{ level: 20, msg: 'pool does not exist; nothing to release', containerId: 'm1' }],
        'one line, at debug (pino level 20)',
      );
    });

    t.test('CHECK verifies the allocation against prevResult', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const add = await runCni('berth-ipam', cniEnv('ADD', 'k1'), netconf(s.url));
      const right = await runCni('berth-ipam', cniEnv('CHECK', 'k1'), netconf(s.url, '1.0.0', {}, { prevResult: add.json }));
      t.equal(right.code, 0, `the control: CHECK of the attachment that holds the address passes ${right.stdout}`);
      t.match((await runCni('berth-ipam', cniEnv('CHECK', 'k1'), netconf(s.url))).json, { code: 7, msg: /CHECK needs prevResult/ });
      t.match((await runCni('berth-ipam', cniEnv('CHECK', 'k2'), netconf(s.url, '1.0.0', {}, { prevResult: add.json }))).json, {
        code: 107,
        msg: /allocated to container k1 interface eth0, not allocated to k2\/eth0/,
      });
      await s.store.release('web', { ip: hex(add.json!.ips[0].address.split('/')[0]) });
      t.match((await runCni('berth-ipam', cniEnv('CHECK', 'k1'), netconf(s.url, '1.0.0', {}, { prevResult: add.json }))).json, {
        code: 107,
        msg: /is reserved, not allocated to k1\/eth0/,
      });
      // the record given to another attachment meanwhile
      const hexK = hex(add.json!.ips[0].address.split('/')[0]);
      await s.store.unreserve('web', hexK, { actor: 'test' });
      await s.store.allocate('web', { containerId: 'k3', ifname: 'eth0', owner: 'other', ip: hexK });
      t.match((await runCni('berth-ipam', cniEnv('CHECK', 'k1'), netconf(s.url, '1.0.0', {}, { prevResult: add.json }))).json, {
        code: 107,
        msg: /is allocated to container k3 interface eth0, not allocated to k1\/eth0/,
      });
      t.match((await runCni('berth-ipam', cniEnv('CHECK', 'k1'), netconf(s.url, '1.0.0', {}, { prevResult: { ips: [{ address: '10.99.0.5/24' }] } }))).json, {
        code: 107,
        msg: /no address of pool "web"/,
      });
    });

    t.test('GC releases this host and network\'s unlisted attachments, reading both keys', async (t) => {
      const s = await setup(t, kind, { hold: 0 });
      if (!s) return;
      for (const id of ['g1', 'g2', 'g3']) t.equal((await runCni('berth-ipam', cniEnv('ADD', id), netconf(s.url))).code, 0);
      await runCni('berth-ipam', cniEnv('ADD', 'other-host'), netconf(s.url, '1.0.0', { host: 'node-b' }));
      await runCni('berth-ipam', cniEnv('ADD', 'other-net'), { ...netconf(s.url), name: 'net2' });
      const gc = await runCni('berth-ipam', { CNI_COMMAND: 'GC', CNI_PATH: '/x' }, netconf(s.url, '1.1.0', {}, {
        'cni.dev/valid-attachments': [{ containerID: 'g1', ifname: 'eth0' }],
        'cni.dev/attachments': [{ containerID: 'g2', ifname: 'eth0' }],
      }));
      t.equal(gc.code, 0, gc.stdout);
      t.equal(gc.stdout, '', 'GC prints nothing on success');
      const left = (await s.store.listAddresses('web')).filter((a) => a.state === 'allocated').map((a) => a.containerId).sort();
      t.same(left, ['g1', 'g2', 'other-host', 'other-net'], 'g3 released; other hosts and networks untouched');
      t.match((await runCni('berth-ipam', { CNI_COMMAND: 'GC' }, netconf(s.url, '1.1.0', {}, { 'cni.dev/valid-attachments': 'x' }))).json, { code: 7 });
    });

    t.test('two hosts of one name (cloned VMs) keep each other\'s addresses through GC; the collision is reported', async (t) => {
      const s = await setup(t, kind, { hold: 0 });
      if (!s) return;
      const asHost = (id: string) => netconf(s.url, '1.1.0', { host: 'node-x', hostId: id });
      t.equal((await runCni('berth-ipam', cniEnv('ADD', 'on-a'), asHost('id-a'))).code, 0);
      t.equal((await runCni('berth-ipam', cniEnv('ADD', 'on-b'), asHost('id-b'))).code, 0);
      // a record from before identities: a name alone
      await s.store.allocate('web', { containerId: 'old', ifname: 'eth0', owner: 'old', host: 'node-x', network: 'net1' });
      const byId = new Map((await s.store.listAddresses('web')).map((a) => [a.containerId, a]));
      t.match(byId.get('on-a'), { host: 'node-x', hostId: 'id-a' }, 'the name and the identity are recorded');
      const gc = await runCni('berth-ipam', { CNI_COMMAND: 'GC', CNI_PATH: '/x' }, { ...asHost('id-a'), 'cni.dev/valid-attachments': [] });
      t.equal(gc.code, 0, gc.stdout);
      const left = (await s.store.listAddresses('web')).filter((a) => a.state === 'allocated').map((a) => a.containerId).sort();
      t.same(left, ['on-b'], "host id-a released its own (and the name-only record), not id-b's");
      t.match(gc.stderr, /another machine \(id id-b\) also calls itself \\"node-x\\": its 1 allocations are left alone/, 'the collision is reported');
      t.equal((await runCni('berth-ipam', cniEnv('ADD', 'x'), netconf(s.url, '1.0.0', { hostId: 'a b' }))).json?.code, 7, 'a bad hostId is refused');
    });

    t.test('STATUS: 0 when ADD would work, 50 when the pool is exhausted', async (t) => {
      const s = await setup(t, kind, { subnet: '10.51.0.0/30' });
      if (!s) return;
      t.equal((await runCni('berth-ipam', { CNI_COMMAND: 'STATUS' }, netconf(s.url, '1.1.0'))).code, 0);
      await runCni('berth-ipam', cniEnv('ADD', 's1'), netconf(s.url));
      const full = await runCni('berth-ipam', { CNI_COMMAND: 'STATUS' }, netconf(s.url, '1.1.0'));
      t.match(full.json, { code: 50, msg: /exhausted/ });
      t.match((await runCni('berth-ipam', { CNI_COMMAND: 'STATUS' }, netconf(s.url, '1.1.0', { pool: 'missing' }))).json, { code: 50 });
    });

    t.test('50 parallel ADDs never hand out one address twice', async (t) => {
      const s = await setup(t, kind, { subnet: '10.52.0.0/24' });
      if (!s) return;
      const runs = await Promise.all(Array.from({ length: 50 }, (_, i) => runCni('berth-ipam', cniEnv('ADD', `p${i}`), netconf(s.url))));
      t.ok(runs.every((r) => r.code === 0), runs.find((r) => r.code !== 0)?.stdout ?? 'all succeeded');
      const ips = runs.map((r) => r.json!.ips[0].address);
      t.equal(new Set(ips).size, 50, 'all distinct');
      t.equal((await s.store.usage('web')).allocated, 50);
    });

    t.test('logs go to stderr or a file, never stdout', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const r = await runCni('berth-ipam', cniEnv('ADD', 'l1'), netconf(s.url, '1.0.0', { log: { level: 'debug' } }));
      t.equal(r.code, 0);
      t.doesNotThrow(() => JSON.parse(r.stdout), 'stdout is exactly the result');
      const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l));
      t.ok(lines.some((l) => l.msg === 'allocated' && l.containerId === 'l1' && l.plugin === 'berth-ipam' && l.network === 'net1'), 'a pino line with context');
      const file = `${t.testdir()}/cni.log`;
      const f = await runCni('berth-ipam', cniEnv('ADD', 'l2'), netconf(s.url, '1.0.0', { log: { file, level: 'info' } }));
      t.equal(f.stderr, '');
      const { readFileSync } = await import('node:fs');
      t.match(readFileSync(file, 'utf8'), /"msg":"allocated"/);
      const quiet = await runCni('berth-ipam', cniEnv('ADD', 'l3'), netconf(s.url));
      t.equal(quiet.stderr, '', 'quiet by default');
    });
  });
}

t.test('a store that does not answer gives code 11, a refused one at once', async (t) => {
  if (skipWithoutRedis(t)) return;
  const server = await sharedRedis();
  const url = `${server.freshUrl()}&timeout=500`;
  const admin = await openStore(url);
  t.teardown(() => admin.close());
  await admin.createPool(buildPoolConfig({ name: 'web', subnet: '10.53.0.0/24' }));
  const port = await freePort();
  const refused = await runCni('berth-ipam', cniEnv('ADD', 'o1'), netconf(`redis://127.0.0.1:${port}/0`));
  t.match(refused.json, { code: 11, msg: /ECONNREFUSED/ });
  server.signal('SIGSTOP');
  try {
    const started = Date.now();
    const stalled = await runCni('berth-ipam', cniEnv('ADD', 'o2'), netconf(url));
    const took = Date.now() - started;
    t.match(stalled.json, { code: 11, msg: /timed out after 500 ms/ });
    t.ok(took >= 450, `it waited for the store's 500 ms timeout (${took} ms)`);
    t.ok(took < 3000, `and no longer: bounded, not a hang (${took} ms)`);
    const status = await runCni('berth-ipam', { CNI_COMMAND: 'STATUS' }, netconf(url, '1.1.0'));
    t.match(status.json, { code: 50 }, 'STATUS: 50 while the store does not answer');
  } finally {
    server.signal('SIGCONT');
  }
  t.equal((await runCni('berth-ipam', cniEnv('ADD', 'o3'), netconf(url))).code, 0, 'works again once it answers');
  void formatIp;
});

t.test('the plugin bundle reaches a TLS Redis (rediss://): import() works inside the bundle', async (t) => {
  if (skipWithoutRedis(t)) return;
  const { startRedis } = await import('../helpers/redis.js');
  const { makeCerts } = await import('../helpers/tls.js');
  const pem = makeCerts(t.testdir());
  const server = await startRedis({ tls: { cert: pem('server.crt'), key: pem('server.key'), ca: pem('ca.crt') } });
  t.teardown(() => server.stop());
  const url = `rediss://127.0.0.1:${server.port}/0?ca=${encodeURIComponent(pem('ca.crt'))}`;
  const admin = await openStore(url);
  t.teardown(() => admin.close());
  await admin.createPool(buildPoolConfig({ name: 'web', subnet: '10.54.0.0/24' }));
  const add = await runCni('berth-ipam', cniEnv('ADD', 'tls1'), netconf(url));
  t.equal(add.code, 0, add.stdout);
  t.match(add.json, { ips: [{ address: '10.54.0.2/24' }] });
});
