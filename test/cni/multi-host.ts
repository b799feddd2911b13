// The cluster case: two simulated hosts share one pool in Redis, each with
// its own host identity and its own Open vSwitch bridge, the bridges joined
// by a trunk the way top-of-rack switches join hosts. (One ovs-vswitchd
// serves both bridges: its userspace datapath is one per network namespace.) Containers on the same VLAN on different
// hosts talk, another VLAN stays isolated, and a GC on one host never
// touches the other host's addresses or ports.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { parseIp } from '../../core/address.js';
import { hostVethName } from '../../cni/attach.js';
import { BIN, runCni } from '../helpers/cni.js';
import { cleanupLink, ip, netns, skipWithoutNetns, uniqueName } from '../helpers/netns.js';
import { skipWithoutOvs, startOvs, type OvsServer } from '../helpers/ovs.js';
import { skipWithoutRedis, startRedis } from '../helpers/redis.js';

const hex = (s: string) => parseIp(s, 'ip').hex;

if (!skipWithoutNetns(t) && !skipWithoutOvs(t) && !skipWithoutRedis(t)) {
  t.test('two hosts, one pool: VLANs across a trunk, GC scoped to its host', async (t) => {
    const redis = await startRedis();
    t.teardown(() => redis.stop());
    const url = redis.freshUrl();
    const store = await openStore(url);
    t.teardown(() => store.close());
    for (const [name, subnet, vlan] of [['v100', '10.97.100.0/24', 100], ['v200', '10.97.200.0/24', 200]] as const) {
      await store.createPool(buildPoolConfig({ name, subnet, vlan, hold: 0 }));
    }
    const ovs = await startOvs();
    t.teardown(() => ovs.stop());
    const hosts: Array<{ name: string; ovs: OvsServer; bridge: string }> = [];
    for (const name of ['host-1', 'host-2']) {
      const bridge = uniqueName('mh');
      await ovs.addBridge(bridge);
      hosts.push({ name, ovs, bridge });
    }
    // the uplink: a veth between the two hosts' bridges, a trunk port on each
    const [up1, up2] = [uniqueName('up'), uniqueName('up')];
    cleanupLink(t, up1);
    ip('link', 'add', up1, 'type', 'veth', 'peer', 'name', up2);
    ip('link', 'set', up1, 'up');
    ip('link', 'set', up2, 'up');
    await hosts[0]!.ovs.vsctl('add-port', hosts[0]!.bridge, up1, '--', 'set', 'port', up1, 'trunks=100,200');
    await hosts[1]!.ovs.vsctl('add-port', hosts[1]!.bridge, up2, '--', 'set', 'port', up2, 'trunks=100,200');

    const conf = (h: (typeof hosts)[number], network: string, vlan: number) => ({
      cniVersion: '1.1.0',
      name: network,
      type: 'berth-ovs',
      bridge: h.bridge,
      vlan,
      ovsdbSocket: h.ovs.sock,
      ipam: { type: 'berth-ipam', pool: network, store: url, host: h.name },
    });
    const env = (cmd: string, id: string, nsPath: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: nsPath, CNI_IFNAME: 'eth0', CNI_PATH: BIN });
    const added: Record<string, { ip: string; ns: string }> = {};
    for (const [id, h, network, vlan] of [
      ['a1', hosts[0]!, 'v100', 100],
      ['b1', hosts[0]!, 'v200', 200],
      ['a2', hosts[1]!, 'v100', 100],
      ['b2', hosts[1]!, 'v200', 200],
    ] as const) {
      const ns = netns(t);
      const r = await runCni('berth-ovs', env('ADD', id, ns.path), conf(h, network, vlan));
      t.equal(r.code, 0, `${id} on ${h.name}: ${r.stdout}`);
      added[id] = { ip: String(r.json!.ips[0].address).split('/')[0]!, ns: ns.name };
    }
    t.not(added.a1!.ip, added.a2!.ip, 'one pool, distinct addresses on the two hosts');
    t.match(await store.getAddress('v100', hex(added.a1!.ip)), { host: 'host-1' });
    t.match(await store.getAddress('v100', hex(added.a2!.ip)), { host: 'host-2' });
    const ping = (from: string, to: string) => spawnSync('ip', ['netns', 'exec', added[from]!.ns, '/bin/busybox', 'ping', '-c', '2', '-W', '2', added[to]!.ip]).status === 0;
    t.ok(ping('a1', 'a2'), 'VLAN 100 on host-1 reaches VLAN 100 on host-2, across the trunk');
    t.ok(ping('b2', 'b1'), 'and VLAN 200 its own');
    // the isolation, with the reachability above as its control: same subnet given by hand, other VLAN
    ip('-n', added.b1!.ns, 'addr', 'add', '10.97.100.250/24', 'dev', 'eth0');
    t.notOk(spawnSync('ip', ['netns', 'exec', added.b1!.ns, '/bin/busybox', 'ping', '-c', '2', '-W', '1', added.a2!.ip]).status === 0, 'a container on VLAN 200 cannot reach VLAN 100 on the other host, even with an address of its subnet');

    // GC on host-1 keeping nothing of its own: host-2's addresses and ports stay
    const gc = { ...conf(hosts[0]!, 'v100', 100), 'cni.dev/valid-attachments': [] };
    const r = await runCni('berth-ovs', { CNI_COMMAND: 'GC', CNI_PATH: BIN }, gc);
    t.equal(r.code, 0, r.stdout);
    t.equal((await store.getAddress('v100', hex(added.a1!.ip))).state, 'free', "host-1's own attachment, not listed, is released");
    t.match(await store.getAddress('v100', hex(added.a2!.ip)), { state: 'allocated', containerId: 'a2', host: 'host-2' }, "host-2's is untouched");
    t.notMatch(await hosts[0]!.ovs.vsctl('list-ports', hosts[0]!.bridge), new RegExp(hostVethName('a1', 'eth0')), "host-1's port is gone");
    t.match(await hosts[1]!.ovs.vsctl('list-ports', hosts[1]!.bridge), new RegExp(hostVethName('a2', 'eth0')), "host-2's port stays");
    const ns3 = netns(t);
    const a3 = await runCni('berth-ovs', env('ADD', 'a3', ns3.path), conf(hosts[0]!, 'v100', 100));
    t.equal(a3.code, 0, a3.stdout);
    added.a3 = { ip: String(a3.json!.ips[0].address).split('/')[0]!, ns: ns3.name };
    t.ok(ping('a3', 'a2'), "a new container on host-1 reaches host-2's, which kept its address and port");
  });
}
