// bin/berth-ovs as a runtime runs it, against a real ovsdb-server and
// ovs-vswitchd (userspace datapath) started here: VLAN access ports isolate
// for real, trunks are set, CHECK, DEL and GC find their ports by external_ids.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { hostVethName } from '../../cni/berth-bridge/plugin.js';
import { parseTrunk } from '../../cni/berth-ovs/config.js';
import { BIN, runCni } from '../helpers/cni.js';
import { ip, netns, skipWithoutNetns, uniqueName } from '../helpers/netns.js';
import { skipWithoutOvs, startOvs } from '../helpers/ovs.js';

t.test('trunk lists: ids and ranges, expanded and sorted; bad ones named', async (t) => {
  t.same(parseTrunk([300, '100-102', 101]), [100, 101, 102, 300]);
  t.throws(() => parseTrunk([]), /non-empty/);
  t.throws(() => parseTrunk(['5-3']), /trunk\[0\].*starts after it ends/);
  t.throws(() => parseTrunk([4095]), /trunk\[0\] must be an integer from 1 to 4094/);
});

if (!skipWithoutNetns(t) && !skipWithoutOvs(t)) {
  t.test('berth-ovs on a real Open vSwitch', async (t) => {
    const ovs = await startOvs();
    t.teardown(() => ovs.stop());
    const bridge = uniqueName('ovb');
    await ovs.addBridge(bridge);
    const url = `file://${t.testdir()}/store`;
    const store = await openStore(url);
    t.teardown(() => store.close());
    await store.createPool(buildPoolConfig({ name: 'ovs', subnet: '10.96.0.0/24', hold: 0 }));
    const conf = (name: string, extra: Record<string, unknown>) => ({
      cniVersion: '1.1.0',
      name,
      type: 'berth-ovs',
      bridge,
      ovsdbSocket: ovs.sock,
      ipam: { type: 'berth-ipam', pool: 'ovs', store: url },
      ...extra,
    });
    const env = (cmd: string, id: string, nsPath: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: nsPath, CNI_IFNAME: 'eth0', CNI_PATH: BIN });
    const ports = async () => (await ovs.vsctl('list-ports', bridge)).split('\n').filter(Boolean);
    const ping = (from: string, to: string) => spawnSync('ip', ['netns', 'exec', from, '/bin/busybox', 'ping', '-c', '2', '-W', '1', to], { encoding: 'utf8' });

    const [a, b, c] = [netns(t), netns(t), netns(t)];
    const added: Record<string, any> = {};
    for (const [id, ns, name, vlan] of [
      ['oa', a, 'ovs100', 100],
      ['ob', b, 'ovs100', 100],
      ['oc', c, 'ovs200', 200],
    ] as const) {
      const r = await runCni('berth-ovs', env('ADD', id, ns.path), conf(name, { vlan }));
      t.equal(r.code, 0, `${id} ADD ${r.stdout}`);
      added[id] = r.json;
      const port = hostVethName(id, 'eth0');
      t.equal(await ovs.vsctl('get', 'port', port, 'tag'), String(vlan), `${id}: an access port on VLAN ${vlan}`);
      t.match(await ovs.vsctl('get', 'port', port, 'external_ids'), new RegExp(`berth\\.attachment="${id}/eth0"`), 'the attachment is in external_ids');
      t.ok(Number(await ovs.vsctl('get', 'interface', port, 'ofport')) > 0, 'the interface has an OpenFlow port');
    }
    const ipOf = (id: string) => (added[id].ips[0].address as string).split('/')[0]!;
    t.equal(ping(a.name, ipOf('ob')).status, 0, 'two containers on VLAN 100 reach each other');
    t.not(ping(c.name, ipOf('oa')).status, 0, 'the one on VLAN 200 cannot reach them');

    const check = await runCni('berth-ovs', env('CHECK', 'oa', a.path), { ...conf('ovs100', { vlan: 100 }), prevResult: added.oa });
    t.equal(check.code, 0, `CHECK right after ADD ${check.stdout}`);
    await ovs.vsctl('set', 'port', hostVethName('oa', 'eth0'), 'tag=300');
    const moved = await runCni('berth-ovs', env('CHECK', 'oa', a.path), { ...conf('ovs100', { vlan: 100 }), prevResult: added.oa });
    t.match(moved.json, { code: 107, msg: /VLAN tag 300, not 100/ }, 'CHECK sees a changed VLAN tag');

    const d = netns(t);
    const trunk = await runCni('berth-ovs', env('ADD', 'od', d.path), conf('ovstrunk', { trunk: [100, '200-202'] }));
    t.equal(trunk.code, 0, trunk.stdout);
    t.equal(await ovs.vsctl('get', 'port', hostVethName('od', 'eth0'), 'trunks'), '[100, 200, 201, 202]', 'a trunk port carrying the listed VLANs');

    t.equal((await runCni('berth-ovs', env('DEL', 'ob', b.path), conf('ovs100', { vlan: 100 }))).code, 0);
    t.notOk((await ports()).includes(hostVethName('ob', 'eth0')), 'DEL removes the port');
    t.notMatch(ip('link'), new RegExp(hostVethName('ob', 'eth0')), 'and the veth');
    t.equal((await runCni('berth-ovs', env('DEL', 'ob', b.path), conf('ovs100', { vlan: 100 }))).code, 0, 'DEL again');
    t.equal((await store.usage('ovs')).allocated, 3, 'its address released');

    // the container of oa is gone (its namespace deleted); GC of network ovs100 lists nothing valid
    ip('netns', 'del', a.name);
    const gc = await runCni('berth-ovs', { CNI_COMMAND: 'GC', CNI_PATH: BIN }, { ...conf('ovs100', { vlan: 100 }), 'cni.dev/valid-attachments': [] });
    t.equal(gc.code, 0, gc.stdout);
    const left = await ports();
    t.notOk(left.includes(hostVethName('oa', 'eth0')), 'GC removes the port whose container is gone');
    t.ok(left.includes(hostVethName('oc', 'eth0')) && left.includes(hostVethName('od', 'eth0')), 'and leaves other networks alone');

    t.equal((await runCni('berth-ovs', { CNI_COMMAND: 'STATUS' }, conf('ovs100', { vlan: 100 }))).code, 0, 'STATUS: OVSDB answers');
    const down = await runCni('berth-ovs', { CNI_COMMAND: 'STATUS' }, { ...conf('ovs100', { vlan: 100 }), ovsdbSocket: `${ovs.dir}/nope.sock` });
    t.match(down.json, { code: 50 }, 'STATUS: 50 when OVSDB is unreachable');
    const noBridge = await runCni('berth-ovs', env('ADD', 'oe', netns(t).path), { ...conf('ovs100', { vlan: 100 }), bridge: 'nosuchbr' });
    t.match(noBridge.json, { code: 7, msg: /bridge "nosuchbr" does not exist/ });
    const both = await runCni('berth-ovs', env('ADD', 'of', netns(t).path), conf('ovs100', { vlan: 100, trunk: [5] }));
    t.match(both.json, { code: 7, msg: /exclude each other/ });
    t.equal((await store.usage('ovs')).allocated, 2, 'failed ADDs allocated nothing (oc and od remain)');
  });
}

if (!skipWithoutNetns(t) && !skipWithoutOvs(t)) {
  t.test('berth-ovs: ADD, CHECK, DEL and DEL again for every spec version', async (t) => {
    const ovs = await startOvs();
    t.teardown(() => ovs.stop());
    const bridge = uniqueName('ovv');
    await ovs.addBridge(bridge);
    const url = `file://${t.testdir()}/store`;
    const store = await openStore(url);
    t.teardown(() => store.close());
    await store.createPool(buildPoolConfig({ name: 'ovv', subnet: '10.98.0.0/24', hold: 0 }));
    const { SUPPORTED_VERSIONS } = await import('../../cni/version.js');
    for (const [i, v] of SUPPORTED_VERSIONS.entries()) {
      const ns = netns(t);
      const id = `ver${i}`;
      const conf = { cniVersion: v, name: 'ovsver', type: 'berth-ovs', bridge, vlan: 300, ovsdbSocket: ovs.sock, ipam: { type: 'berth-ipam', pool: 'ovv', store: url } };
      const env = (cmd: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: BIN });
      const add = await runCni('berth-ovs', env('ADD'), conf);
      t.equal(add.code, 0, `${v} ADD ${add.stdout}`);
      t.equal(add.json!.cniVersion, v);
      t.equal('version' in add.json!.ips[0], v.startsWith('0.'), `${v}: ips[].version only before 1.0.0`);
      t.equal(add.json!.ips[0].interface, 1, 'the address points at the container interface');
      if (!v.startsWith('0.3')) t.equal((await runCni('berth-ovs', env('CHECK'), { ...conf, prevResult: add.json })).code, 0, `${v} CHECK`);
      t.equal((await runCni('berth-ovs', env('DEL'), { ...conf, prevResult: add.json })).code, 0, `${v} DEL`);
      t.equal((await runCni('berth-ovs', env('DEL'), conf)).code, 0, `${v} DEL again`);
      t.notOk((await ovs.vsctl('list-ports', bridge)).split('\n').includes(hostVethName(id, 'eth0')), 'no port left');
    }
    t.equal((await store.usage('ovv')).allocated, 0, 'no address left allocated');
  });
}
