// bin/berth-ovs as a runtime runs it, against a real ovsdb-server and
// ovs-vswitchd (userspace datapath) started here: VLAN access ports isolate
// for real, a trunk port carries its VLANs tagged both ways, CHECK, DEL and
// GC find their ports by external_ids.
import t, { type Test } from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { hostVethName } from '../../cni/attach.js';
import { parseTrunk } from '../../cni/berth-ovs/config.js';
import { OFPORT_WAIT_MS } from '../../cni/berth-ovs/plugin.js';
import { stableMac } from '../../cni/mac.js';
import { BIN, runCni } from '../helpers/cni.js';
import { capture } from '../helpers/capture.js';
import { waitFor } from '../helpers/agent.js';
import { cleanupLink, ip, netns, skipWithoutNetns, uniqueName } from '../helpers/netns.js';
import { skipWithoutOvs, startOvs } from '../helpers/ovs.js';

const run = promisify(execFile);

// Sends, from a namespace, one broadcast ARP request per VLAN@TARGET argument,
// 802.1Q-tagged with that VLAN, through a raw packet socket: the kernel here
// cannot make a VLAN interface to send them.
const SEND_TAGGED_ARP = `
import socket, struct, sys
ifname, mac, spa = sys.argv[1:4]
src = bytes.fromhex(mac.replace(':', ''))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
for arg in sys.argv[4:]:
    vlan, tpa = arg.split('@')
    arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, src, socket.inet_aton(spa), bytes(6), socket.inet_aton(tpa))
    s.send(bytes([0xff] * 6) + src + struct.pack('!HHH', 0x8100, int(vlan), 0x0806) + arp)
`;

/** Sends tagged broadcast ARP requests ("VLAN@TARGET") from ifname in ns, as mac/spa. */
async function sendTaggedArp(ns: string, ifname: string, mac: string, spa: string, requests: string[]): Promise<void> {
  await run('ip', ['netns', 'exec', ns, 'python3', '-c', SEND_TAGGED_ARP, ifname, mac, spa, ...requests]);
}

/** A private Open vSwitch with a fresh bridge named from `prefix`, and a file store holding pool `pool`; all torn down after t. */
async function ovsWithPool(t: Test, prefix: string, pool: string, subnet: string) {
  const ovs = await startOvs();
  t.teardown(() => ovs.stop());
  const bridge = uniqueName(prefix);
  await ovs.addBridge(bridge);
  const url = `file://${t.testdir()}/store`;
  const store = await openStore(url);
  t.teardown(() => store.close());
  await store.createPool(buildPoolConfig({ name: pool, subnet, hold: 0 }));
  return { ovs, bridge, url, store };
}

t.test('trunk lists: ids and ranges, expanded and sorted; bad ones named', async (t) => {
  t.same(parseTrunk([300, '100-102', 101]), [100, 101, 102, 300]);
  t.throws(() => parseTrunk([]), /non-empty/);
  t.throws(() => parseTrunk(['5-3']), /trunk\[0\].*starts after it ends/);
  t.throws(() => parseTrunk([4095]), /trunk\[0\] must be an integer from 1 to 4094/);
});

if (!skipWithoutNetns(t) && !skipWithoutOvs(t)) {
  t.test('berth-ovs on a real Open vSwitch', async (t) => {
    const { ovs, bridge, url, store } = await ovsWithPool(t, 'ovb', 'ovs', '10.96.0.0/24');
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
    for (const [id, ns] of [['oa', a], ['ob', b]] as const) {
      t.match(ip('-n', ns.name, 'link', 'show', 'eth0'), new RegExp(`link/ether ${stableMac(ipOf(id))} `), `${id}: the MAC derived from its address`);
      t.equal(added[id].interfaces[1].mac, stableMac(ipOf(id)), `${id}: and in the result`);
    }
    t.equal(ping(a.name, ipOf('ob')).status, 0, 'two containers on VLAN 100 reach each other');
    // the isolation's control: the container on VLAN 200 reaches a peer on its own VLAN, in the same subnet
    const c2 = netns(t);
    const peer = await runCni('berth-ovs', env('ADD', 'oc2', c2.path), conf('ovs200', { vlan: 200 }));
    t.equal(peer.code, 0, peer.stdout);
    t.equal(ping(c.name, String(peer.json!.ips[0].address).split('/')[0]!).status, 0, 'the one on VLAN 200 reaches its peer on VLAN 200');
    t.not(ping(c.name, ipOf('oa')).status, 0, 'and cannot reach those on VLAN 100');
    t.equal((await runCni('berth-ovs', env('DEL', 'oc2', c2.path), conf('ovs200', { vlan: 200 }))).code, 0);

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

    // DEL takes the veth away and releases the address while it deletes the port row: with OVSDB away, the row stays and DEL asks to be repeated
    const away = await runCni('berth-ovs', env('DEL', 'oc', c.path), { ...conf('ovs200', { vlan: 200 }), ovsdbSocket: `${ovs.dir}/nope.sock` });
    t.match(away.json, { code: 11 }, 'DEL with OVSDB unreachable: try again later');
    t.notMatch(ip('link'), new RegExp(hostVethName('oc', 'eth0')), 'the veth is gone already');
    t.ok((await ports()).includes(hostVethName('oc', 'eth0')), 'the port row is still there');
    t.equal((await store.usage('ovs')).allocated, 1, 'the address was released beside it (that half needs no OVSDB)');
    t.equal((await runCni('berth-ovs', env('DEL', 'oc', c.path), conf('ovs200', { vlan: 200 }))).code, 0, 'the repeated DEL succeeds');
    t.notOk((await ports()).includes(hostVethName('oc', 'eth0')), 'and removes the row');
    t.equal((await store.usage('ovs')).allocated, 1, 'od keeps its address');
  });
}

if (!skipWithoutNetns(t) && !skipWithoutOvs(t)) {
  t.test('berth-ovs: a trunk port carries its VLANs tagged, both ways, and no other', async (t) => {
    const missing = ['tcpdump', 'python3'].filter((b) => spawnSync(b, ['--version']).status !== 0);
    if (missing.length > 0) {
      const why = `${missing.join(' and ')} not installed (scripts/test-deps.sh installs them)`;
      if (process.env.CI === 'true') t.fail(why);
      else t.plan(0, why);
      return;
    }
    const { ovs, bridge, url, store } = await ovsWithPool(t, 'ovt', 'ovt', '10.97.0.0/24');
    const conf = (extra: Record<string, unknown>) => ({
      cniVersion: '1.1.0',
      name: 'ovstrunk',
      type: 'berth-ovs',
      bridge,
      ovsdbSocket: ovs.sock,
      ipam: { type: 'berth-ipam', pool: 'ovt', store: url },
      ...extra,
    });
    const env = (cmd: string, id: string, nsPath: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: nsPath, CNI_IFNAME: 'eth0', CNI_PATH: BIN });

    interface Container {
      id: string;
      ns: { name: string; path: string };
      extra: Record<string, unknown>;
      ip: string;
      mac: string;
      /** the MAC of the veth's host end, the OVS port */
      hostMac: string;
    }
    const attach = async (id: string, extra: Record<string, unknown>): Promise<Container> => {
      const ns = netns(t);
      const r = await runCni('berth-ovs', env('ADD', id, ns.path), conf(extra));
      if (r.code !== 0) throw new Error(`failed to add "${id}": ${r.stdout}`);
      const [host, inside] = r.json!.interfaces as Array<{ mac: string }>;
      return { id, ns, extra, ip: (r.json!.ips[0].address as string).split('/')[0]!, mac: inside!.mac, hostMac: host!.mac };
    };
    const a = await attach('ta', { vlan: 100 });
    const b = await attach('tb', { vlan: 200 });
    const x = await attach('tx', { vlan: 300 });
    const y = await attach('ty', { vlan: 300 });
    const trunk = await attach('tt', { trunk: [100, 200] });
    t.equal(await ovs.vsctl('get', 'port', hostVethName('tt', 'eth0'), 'trunks'), '[100, 200]', 'T is a trunk port of VLANs 100 and 200');

    const cap = await capture(t, trunk.ns.name, 'eth0');
    // the control of "nothing from X": Y, on X's VLAN, sees what X sends
    const capY = await capture(t, y.ns.name, 'eth0');
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // a tcpdump -e line: "SRC > DST, ethertype 802.1Q (0x8100), length N: vlan V, p 0, ethertype ARP (0x0806), WHAT"
    const arp = (src: Container, vlan: number, what: string) =>
      new RegExp(`^${esc(src.mac)} > \\S+, ethertype 802\\.1Q \\(0x8100\\), length \\d+: vlan ${vlan}, p 0, ethertype ARP \\(0x0806\\), ${esc(what)}`);

    // receive: each access port broadcasts a gratuitous ARP, X (VLAN 300) first
    for (const who of [x, a, b]) await run('ip', ['netns', 'exec', who.ns.name, '/bin/busybox', 'arping', '-U', '-c', '1', '-I', 'eth0', who.ip]);
    const fromA = await cap.waitFor(arp(a, 100, `Request who-has ${a.ip} (ff:ff:ff:ff:ff:ff) tell ${a.ip}`));
    const fromB = await cap.waitFor(arp(b, 200, `Request who-has ${b.ip} (ff:ff:ff:ff:ff:ff) tell ${b.ip}`));
    t.ok(fromA, `T receives A's broadcast tagged VLAN 100: ${fromA}`);
    t.ok(fromB, `T receives B's broadcast tagged VLAN 200: ${fromB}`);
    const fromX = await capY.waitFor(new RegExp(`^${esc(x.mac)} > ff:ff:ff:ff:ff:ff, ethertype ARP \\(0x0806\\), .*Request who-has ${esc(x.ip)} \\(ff:ff:ff:ff:ff:ff\\) tell ${esc(x.ip)}`));
    t.ok(fromX, `X transmits: Y, on VLAN 300 with it, receives its broadcast untagged: ${fromX}`);

    // send: tagged requests from T, the ones that must stay unanswered first
    await sendTaggedArp(trunk.ns.name, 'eth0', trunk.mac, trunk.ip, [`200@${a.ip}`, `300@${x.ip}`, `100@${a.ip}`, `200@${b.ip}`]);
    const replyA = await cap.waitFor(arp(a, 100, `Reply ${a.ip} is-at ${a.mac}`));
    const replyB = await cap.waitFor(arp(b, 200, `Reply ${b.ip} is-at ${b.mac}`));
    t.ok(replyA, `A answers T's request tagged VLAN 100, tagged 100 back: ${replyA}`);
    t.ok(replyB, `B answers T's request tagged VLAN 200, tagged 200 back: ${replyB}`);
    await cap.stop();
    await capY.stop();
    t.same(capY.lines.filter((l) => l.startsWith(`${trunk.mac} > `)), [], "and Y, on VLAN 300, receives none of T's requests (the one tagged 300 included)");

    // T's own frames, and the host end of its veth (its IPv6 link-local chatter goes straight to T, not through OVS)
    const others = cap.lines.filter((l) => l && !l.startsWith(`${trunk.mac} > `) && !l.startsWith(`${trunk.hostMac} > `));
    t.same(others.filter((l) => l.startsWith(`${x.mac} > `)), [], 'nothing from X: VLAN 300 is not on the trunk');
    t.same(others.filter((l) => l.startsWith(`${a.mac} > `) && !l.includes(': vlan 100, ')), [], 'A is seen only on VLAN 100 (the request for A on VLAN 200 went unanswered)');
    t.same(others.filter((l) => l.startsWith(`${b.mac} > `) && !l.includes(': vlan 200, ')), [], 'B is seen only on VLAN 200');
    t.same(others.filter((l) => !l.startsWith(`${a.mac} > `) && !l.startsWith(`${b.mac} > `)), [], 'and no one else');

    for (const who of [a, b, x, y, trunk]) t.equal((await runCni('berth-ovs', env('DEL', who.id, who.ns.path), conf(who.extra))).code, 0, `${who.id} DEL`);
    t.same((await ovs.vsctl('list-ports', bridge)).split('\n').filter(Boolean), [], 'no port left');
    t.equal((await store.usage('ovt')).allocated, 0, 'no address left allocated');
  });
}

if (!skipWithoutNetns(t) && !skipWithoutOvs(t)) {
  t.test('berth-ovs: ADD, CHECK, DEL and DEL again for every spec version', async (t) => {
    const { ovs, bridge, url, store } = await ovsWithPool(t, 'ovv', 'ovv', '10.98.0.0/24');
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

if (!skipWithoutNetns(t) && !skipWithoutOvs(t)) {
  t.test('berth-ovs: CHECK, the OpenFlow-port wait, stale ports', async (t) => {
    const { ovs, bridge, url, store } = await ovsWithPool(t, 'ovc', 'ovc', '10.99.0.0/24');
    const conf = (extra: Record<string, unknown>) => ({
      cniVersion: '1.1.0',
      name: 'ovscheck',
      type: 'berth-ovs',
      bridge,
      ovsdbSocket: ovs.sock,
      ipam: { type: 'berth-ipam', pool: 'ovc', store: url },
      ...extra,
    });
    const env = (cmd: string, id: string, nsPath: string) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: nsPath, CNI_IFNAME: 'eth0', CNI_PATH: BIN });
    const ports = async () => (await ovs.vsctl('list-ports', bridge)).split('\n').filter(Boolean);
    const ofport = async (port: string) => Number(await ovs.vsctl('get', 'interface', port, 'ofport'));
    const attach = async (id: string, extra: Record<string, unknown>) => {
      const ns = netns(t);
      const add = await runCni('berth-ovs', env('ADD', id, ns.path), conf(extra));
      if (add.code !== 0) throw new Error(`failed to add "${id}": ${add.stdout}`);
      const check = () => runCni('berth-ovs', env('CHECK', id, ns.path), { ...conf(extra), prevResult: add.json });
      return { ns, add, check, port: hostVethName(id, 'eth0'), ip: String(add.json!.ips[0].address) };
    };
    type Attached = Awaited<ReturnType<typeof attach>>;
    const passes = async (c: Attached, before: string) => {
      const r = await c.check();
      t.equal(r.code, 0, `CHECK passes ${before}: ${r.stdout}`);
    };
    const fails = async (c: Attached, msg: string, what: string) => {
      const r = await c.check();
      t.match(r.json, { code: 107, msg: new RegExp(`^${msg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }, `CHECK fails: ${what} (${r.stdout.trim()})`);
    };

    t.test('CHECK fails with 107 naming each thing broken, and passes right before each break', async (t) => {
      // (a changed tag is the first test's)
      const a = await attach('ck1', { vlan: 100 });
      await passes(a, 'right after ADD');
      const mac = a.add.json!.interfaces[1].mac as string;
      ip('-n', a.ns.name, 'link', 'set', 'eth0', 'address', '02:00:00:00:00:99');
      await fails(a, `eth0 has MAC 02:00:00:00:00:99, not ${mac}`, "the container's MAC changed");
      ip('-n', a.ns.name, 'link', 'set', 'eth0', 'address', mac);
      await passes(a, 'once the MAC is back');
      // vswitchd cannot open an interface of an unknown type: the port stays, its OpenFlow port goes, the veth is untouched
      await ovs.vsctl('set', 'interface', a.port, 'type=berthbogus');
      await waitFor('the OpenFlow port to go', async () => ((await ofport(a.port)) === -1 ? true : undefined));
      await fails(a, `port "${a.port}" has no OpenFlow port`, 'no OpenFlow port');
      await ovs.vsctl('set', 'interface', a.port, 'type=""');
      await waitFor('an OpenFlow port again', async () => ((await ofport(a.port)) > 0 ? true : undefined));
      await passes(a, 'once it has an OpenFlow port again');
      ip('-n', a.ns.name, 'addr', 'del', a.ip, 'dev', 'eth0');
      await fails(a, `eth0 lacks ${a.ip}`, 'the address removed');
      ip('-n', a.ns.name, 'addr', 'add', a.ip, 'dev', 'eth0');
      await passes(a, 'once the address is back');
      ip('-n', a.ns.name, 'link', 'set', 'eth0', 'down');
      ip('-n', a.ns.name, 'link', 'set', 'eth0', 'name', 'eth9');
      await fails(a, `interface "eth0" is missing from ${a.ns.path}`, "the container's interface gone");

      const b = await attach('ck2', { vlan: 100 });
      await passes(b, 'before its port is removed');
      await ovs.vsctl('del-port', bridge, b.port);
      await fails(b, `port "${b.port}" is not on Open vSwitch bridge "${bridge}"`, 'the port removed');

      const tr = await attach('ck3', { trunk: [100, '200-202'] });
      await passes(tr, 'right after ADD');
      await ovs.vsctl('set', 'port', tr.port, 'trunks=100,200');
      await fails(tr, `port "${tr.port}" trunks 100,200, not 100,200,201,202`, 'the trunks changed');
      await ovs.vsctl('set', 'port', tr.port, 'trunks=100,200,201,202');
      await passes(tr, 'once the trunks are back');
      await ovs.vsctl('set', 'port', tr.port, 'tag=100');
      await fails(tr, `port "${tr.port}" has VLAN tag 100, the config has none`, 'a tag set on a port whose config has none');
      for (const [id, c, extra] of [['ck1', a, { vlan: 100 }], ['ck2', b, { vlan: 100 }], ['ck3', tr, { trunk: [100, '200-202'] }]] as const) {
        t.equal((await runCni('berth-ovs', env('DEL', id, c.ns.path), conf(extra))).code, 0, `${id} DEL`);
      }
    });

    t.test('a port vswitchd does not open in time: ADD fails with 110 and undoes everything', async (t) => {
      const ns = netns(t);
      const vswitchd = Number(readFileSync(join(ovs.dir, 'ovs-vswitchd.pid'), 'utf8').trim());
      process.kill(vswitchd, 'SIGSTOP'); // ovsdb-server commits the port; no one gives it an OpenFlow port
      let r;
      try {
        r = await runCni('berth-ovs', env('ADD', 'slow1', ns.path), conf({ vlan: 100 }));
      } finally {
        process.kill(vswitchd, 'SIGCONT');
      }
      const port = hostVethName('slow1', 'eth0');
      t.match(r.json, { code: 110, msg: `port "${port}" did not come up in Open vSwitch: no OpenFlow port after ${OFPORT_WAIT_MS} ms` });
      t.notOk((await ports()).includes(port), 'no port left');
      t.equal(await ovs.vsctl('--columns=_uuid', 'find', 'Interface', `name=${port}`), '', 'no Interface row left');
      t.notMatch(ip('link'), new RegExp(port), 'no host end left');
      t.notMatch(ip('-n', ns.name, 'link'), /eth0/, 'no container end left');
      t.equal((await store.usage('ovc')).allocated, 0, 'the address released');
      // the control: with vswitchd running, the same ADD succeeds
      const ok = await runCni('berth-ovs', env('ADD', 'slow1', ns.path), conf({ vlan: 100 }));
      t.equal(ok.code, 0, ok.stdout);
      t.ok((await ofport(port)) > 0, 'an OpenFlow port');
      t.equal((await runCni('berth-ovs', env('DEL', 'slow1', ns.path), conf({ vlan: 100 }))).code, 0);
    });

    t.test('ports of the same attachment left by an interrupted ADD are removed by the next ADD; others stay', async (t) => {
      const port = hostVethName('st1', 'eth0');
      // the interrupted ADD left its veth and its port, and a row of the attachment under another name
      ip('link', 'add', port, 'type', 'veth', 'peer', 'name', `${port.slice(0, 12)}p`);
      cleanupLink(t, port);
      const ids = (key: string) => [`external_ids:"berth.attachment"="${key}"`, 'external_ids:"berth.network"=ovscheck'];
      await ovs.vsctl('add-port', bridge, port, '--', 'set', 'port', port, 'tag=100', ...ids('st1/eth0'));
      const stray = uniqueName('stl');
      await ovs.vsctl('add-port', bridge, stray, '--', 'set', 'port', stray, 'tag=100', ...ids('st1/eth0'));
      const otherPort = uniqueName('sto');
      await ovs.vsctl('add-port', bridge, otherPort, '--', 'set', 'port', otherPort, 'tag=100', ...ids('st2/eth0'));
      t.teardown(() => ovs.vsctl('--if-exists', 'del-port', bridge, otherPort));
      t.same((await ports()).filter((p) => [port, stray, otherPort].includes(p)).sort(), [port, stray, otherPort].sort(), 'the stale ports are there');
      const ns = netns(t);
      const r = await runCni('berth-ovs', env('ADD', 'st1', ns.path), conf({ vlan: 100 }));
      t.equal(r.code, 0, r.stdout);
      const left = await ports();
      t.notOk(left.includes(stray), 'the stray row of the attachment is gone');
      t.ok(left.includes(port), 'its port is there, made anew');
      t.ok(left.includes(otherPort), "another attachment's port stays");
      t.match(await ovs.vsctl('get', 'port', port, 'external_ids'), /berth\.netns=/, 'the port is the new ADD\'s (it records the namespace)');
      t.ok((await ofport(port)) > 0, 'with an OpenFlow port');
      t.equal((await runCni('berth-ovs', env('CHECK', 'st1', ns.path), { ...conf({ vlan: 100 }), prevResult: r.json })).code, 0, 'CHECK passes');
      t.equal((await runCni('berth-ovs', env('DEL', 'st1', ns.path), conf({ vlan: 100 }))).code, 0);
      t.equal((await store.usage('ovc')).allocated, 0, 'no address left allocated');
    });
  });
}
