// Probing before an address goes live, in real namespaces on a real bridge:
// a namespace that already uses the address the pool would hand out (set by
// hand, as outside berth) answers the probe, and the ADD takes another one
// and records the conflict; a requested address in use fails the ADD.
import t, { type Test } from 'tap';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { parseIp } from '../../core/address.js';
import type { Store } from '../../ipam/model.js';
import { hostVethName } from '../../cni/attach.js';
import { probeConflicts, probeFrames, arpProbeFrame, garpFrame, unsolicitedNaFrame, dadProbeFrame } from '../../cni/frames.js';
import { BIN, runCni } from '../helpers/cni.js';
import { cleanupLink, ip, netns, skipWithoutNetns, uniqueName } from '../helpers/netns.js';

const hex = (s: string) => parseIp(s, 'ip').hex;

t.test('what counts as someone else claiming a probed address', async (t) => {
  const own = '02:be:0a:00:00:05';
  const other = '02:aa:00:00:00:09';
  t.same(probeConflicts([garpFrame(other, '10.0.0.5')], ['10.0.0.5/24'], own), [{ ip: '10.0.0.5', mac: other }], 'an ARP packet from the address');
  t.same(probeConflicts([arpProbeFrame(other, '10.0.0.5')], ['10.0.0.5'], own), [{ ip: '10.0.0.5', mac: other }], 'someone probing for it at the same time');
  t.same(probeConflicts([arpProbeFrame(own, '10.0.0.5'), garpFrame(own, '10.0.0.5')], ['10.0.0.5'], own), [], 'our own frames are not a conflict');
  t.same(probeConflicts([garpFrame(other, '10.0.0.6'), arpProbeFrame(other, '10.0.0.6')], ['10.0.0.5'], own), [], 'another address is not');
  t.same(probeConflicts([unsolicitedNaFrame(other, 'fd00::5')], ['fd00::5/64'], own), [{ ip: 'fd00::5', mac: other }], 'a neighbour advertisement for it');
  t.same(probeConflicts([dadProbeFrame(other, 'fd00::5')], ['fd00::5'], own), [{ ip: 'fd00::5', mac: other }], 'a DAD probe for it from someone else');
  t.same(probeConflicts([dadProbeFrame(own, 'fd00::5'), Buffer.alloc(10), Buffer.alloc(60)], ['fd00::5'], own), [], 'our own probe, short and empty frames are not');
  const frames = probeFrames(own, ['10.0.0.5/24', 'fd00::5/64']);
  t.equal(frames[0]!.subarray(28, 32).toString('hex'), '00000000', 'an ARP probe has sender address 0.0.0.0');
  t.equal(frames[1]!.subarray(0, 6).toString('hex'), '3333ff000005', 'a DAD probe goes to the solicited-node group');
});

async function setup(t: Test, subnet: string, extra: Record<string, unknown> = {}) {
  const url = `file://${t.testdir()}/store`;
  const store: Store = await openStore(url);
  t.teardown(() => store.close());
  await store.createPool(buildPoolConfig({ name: 'p', subnet, hold: 0 }));
  const bridge = uniqueName('pbr');
  cleanupLink(t, bridge);
  const conf = (more: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0',
    name: 'pnet',
    type: 'berth-bridge',
    bridge,
    isGateway: true,
    ipam: { type: 'berth-ipam', pool: 'p', store: url, host: 'node-a' },
    ...extra,
    ...more,
  });
  return { store, bridge, conf, url };
}

function env(command: string, id: string, nsPath: string, args = '') {
  return { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: nsPath, CNI_IFNAME: 'eth0', CNI_PATH: `${BIN}:/usr/lib/cni`, ...(args ? { CNI_ARGS: args } : {}) };
}

/** A namespace on the bridge that uses `cidr`, configured by hand; returns its MAC. */
function squatter(t: Test, bridge: string, cidr: string): string {
  const ns = netns(t, 'sq');
  const h = uniqueName('sqh');
  cleanupLink(t, h);
  ip('link', 'add', h, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name);
  ip('link', 'set', h, 'master', bridge, 'up');
  ip('-n', ns.name, 'addr', 'add', cidr, 'dev', 'eth0', ...(cidr.includes(':') ? ['nodad'] : []));
  ip('-n', ns.name, 'link', 'set', 'eth0', 'up');
  return /link\/ether (\S+)/.exec(ip('-n', ns.name, 'link', 'show', 'eth0'))![1]!;
}

const addressOf = (r: { json?: Record<string, any> }) => String(r.json!.ips[0].address);

if (!skipWithoutNetns(t)) {
  t.test('IPv4: an address in use on the bridge is skipped and recorded; a requested one fails the ADD', async (t) => {
    const s = await setup(t, '10.94.1.0/24');
    const first = netns(t);
    const ok = await runCni('berth-bridge', env('ADD', 'c0', first.path), s.conf());
    t.equal(ok.code, 0, ok.stdout);
    t.equal(addressOf(ok), '10.94.1.2/24', 'the control: nobody answers for a free address, and it is taken');
    const mac = squatter(t, s.bridge, '10.94.1.3/24');
    const a = netns(t);
    const r = await runCni('berth-bridge', env('ADD', 'c1', a.path), s.conf());
    t.equal(r.code, 0, r.stdout);
    t.equal(addressOf(r), '10.94.1.4/24', 'the next address, not the one in use');
    t.match(ip('-n', a.name, '-o', '-4', 'addr', 'show', 'eth0'), /inet 10\.94\.1\.4\/24/);
    t.match(await s.store.getAddress('p', hex('10.94.1.3')), { state: 'reserved', note: new RegExp(`in use on the network by ${mac}: found by c1/eth0 on node-a`) });
    t.equal((await s.store.getAddress('p', hex('10.94.1.3'))).owner, undefined, 'reserved for no one');
    t.match((await s.store.history('p', { ip: hex('10.94.1.3') }))[0], { event: 'conflict', containerId: 'c1', actor: 'cni@node-a' });
    const b = netns(t);
    const asked = await runCni('berth-bridge', env('ADD', 'c2', b.path, 'IP=10.94.1.3'), s.conf());
    t.match(asked.json, { code: 102 }, `asked for explicitly, it is refused: reserved now (${asked.stdout.trim()})`);
    // a second address in use, asked for before berth knew it
    const mac5 = squatter(t, s.bridge, '10.94.1.5/24');
    const c = netns(t);
    const refused = await runCni('berth-bridge', env('ADD', 'c3', c.path, 'IP=10.94.1.5'), s.conf());
    t.match(refused.json, { code: 112, msg: new RegExp(`10\\.94\\.1\\.5 was requested and is in use on the network by ${mac5}`) }, refused.stdout);
    t.notMatch(ip('link'), new RegExp(hostVethName('c3', 'eth0')), 'the refused ADD left no veth');
    t.notMatch(ip('-n', c.name, 'link'), /eth0/, 'nor a container interface');
    t.match(await s.store.getAddress('p', hex('10.94.1.5')), { state: 'reserved', note: new RegExp(mac5) }, 'and recorded it');
    t.equal((await s.store.usage('p')).allocated, 2, 'c0 and c1 hold addresses, c3 none');
  });

  t.test('probe count 0: the address in use is taken (what the probe prevents)', async (t) => {
    const s = await setup(t, '10.94.2.0/24', { probe: { count: 0 } });
    const first = netns(t);
    t.equal((await runCni('berth-bridge', env('ADD', 'z0', first.path), s.conf())).code, 0);
    squatter(t, s.bridge, '10.94.2.3/24');
    const a = netns(t);
    const r = await runCni('berth-bridge', env('ADD', 'z1', a.path), s.conf());
    t.equal(r.code, 0, r.stdout);
    t.equal(addressOf(r), '10.94.2.3/24', 'a duplicate on the wire');
  });

  t.test('IPv6: duplicate address detection before the address goes live', async (t) => {
    const s = await setup(t, 'fd00:94:3::/64');
    const first = netns(t);
    const ok = await runCni('berth-bridge', env('ADD', 'v0', first.path), s.conf());
    t.equal(ok.code, 0, ok.stdout);
    t.equal(addressOf(ok), 'fd00:94:3::2/64');
    const mac = squatter(t, s.bridge, 'fd00:94:3::3/64');
    const a = netns(t);
    const r = await runCni('berth-bridge', env('ADD', 'v1', a.path), s.conf());
    t.equal(r.code, 0, r.stdout);
    t.equal(addressOf(r), 'fd00:94:3::4/64', 'the next address');
    t.match(await s.store.getAddress('p', hex('fd00:94:3::3')), { state: 'reserved', note: new RegExp(mac) });
  });

  t.test('another IPAM plugin (the reference host-local): the ADD fails, naming who answered, and releases its address', async (t) => {
    const dir = t.testdir();
    const bridge = uniqueName('pbh');
    cleanupLink(t, bridge);
    const conf = { cniVersion: '1.0.0', name: 'hlnet', type: 'berth-bridge', bridge, isGateway: true, ipam: { type: 'host-local', subnet: '10.94.4.0/24', dataDir: `${dir}/hl` } };
    const first = netns(t);
    t.equal((await runCni('berth-bridge', env('ADD', 'h0', first.path), conf)).code, 0);
    const mac = squatter(t, bridge, '10.94.4.3/24');
    const a = netns(t);
    const r = await runCni('berth-bridge', env('ADD', 'h1', a.path), conf);
    t.match(r.json, { code: 112, msg: new RegExp(`10\\.94\\.4\\.3 by ${mac} answered the probe`) }, r.stdout);
    const { readdirSync } = await import('node:fs');
    t.notOk(readdirSync(`${dir}/hl/hlnet`).includes('10.94.4.3'), 'host-local was told to release it');
  });
}
