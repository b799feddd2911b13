// A container's addresses announced on the wire, and its MAC kept across a
// restart: real namespaces on a real bridge, a peer's neighbour table and
// tcpdump as the witnesses, through the plugin executable (the repeats sent
// by a detached process) and in-process as the agent runs it (on timers).
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import type { Store } from '../../ipam/model.js';
import { stableMac } from '../../cni/mac.js';
import { ownPlugin, runOwn } from '../../agent/own-plugins.js';
import { capture } from '../helpers/capture.js';
import { BIN, runCni } from '../helpers/cni.js';
import { cleanupLink, ip, netns, skipWithoutNetns, uniqueName } from '../helpers/netns.js';

async function setup(t: Test, subnet: string) {
  const url = `file://${t.testdir()}/store`;
  const store: Store = await openStore(url);
  t.teardown(() => store.close());
  await store.createPool(buildPoolConfig({ name: 'p', subnet, hold: 600 }));
  const bridge = uniqueName('abr');
  cleanupLink(t, bridge);
  const conf = (extra: Record<string, unknown> = {}) => ({
    cniVersion: '1.0.0',
    name: 'anet',
    type: 'berth-bridge',
    bridge,
    isGateway: true,
    ipam: { type: 'berth-ipam', pool: 'p', store: url, host: 'node-a' },
    ...extra,
  });
  return { conf };
}

function env(command: string, id: string, nsPath: string, args = '') {
  return { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: nsPath, CNI_IFNAME: 'eth0', CNI_PATH: BIN, ...(args ? { CNI_ARGS: args } : {}) };
}

const addr = (r: { json?: Record<string, any> | undefined }) => String(r.json!.ips[0].address).split('/')[0]!;
const macOf = (ns: string) => /link\/ether (\S+)/.exec(ip('-n', ns, 'link', 'show', 'eth0'))?.[1];
const neighbour = (ns: string, address: string) => /lladdr (\S+)/.exec(ip('-n', ns, 'neigh', 'show', address))?.[1];

/** One ping answered; with `withinMs`, tried again until then (a tentative IPv6 source fails a ping at once). */
async function ping(from: string, to: string, withinMs = 0): Promise<boolean> {
  const args = ['netns', 'exec', from, '/bin/busybox', to.includes(':') ? 'ping6' : 'ping', '-c', '1', '-W', '2', to];
  const deadline = Date.now() + withinMs;
  for (;;) {
    if (spawnSync('ip', args).status === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

if (!skipWithoutNetns(t)) {
  t.test('a restarted instance keeps its IP and its MAC: a peer that cached the MAC reaches it at once', async (t) => {
    const s = await setup(t, '10.93.1.0/24');
    const peer = netns(t);
    t.equal((await runCni('berth-bridge', env('ADD', 'peer1', peer.path), s.conf())).code, 0);
    const a = netns(t);
    const first = await runCni('berth-bridge', env('ADD', 'web-a', a.path, 'BERTH_OWNER=web-1'), s.conf());
    t.equal(first.code, 0, first.stdout);
    const ipA = addr(first);
    t.equal(macOf(a.name), stableMac(ipA), 'the MAC is derived from the address');
    t.equal(first.json!.interfaces[2].mac, stableMac(ipA), 'and reported in the result');
    t.ok(await ping(peer.name, ipA), 'the peer reaches it');
    t.equal(neighbour(peer.name, ipA), stableMac(ipA), "the peer's neighbour entry holds its MAC");
    t.equal((await runCni('berth-bridge', env('DEL', 'web-a', a.path), s.conf())).code, 0);
    // restarted: a new container, a new namespace, the same owner
    const b = netns(t);
    const again = await runCni('berth-bridge', env('ADD', 'web-b', b.path, 'BERTH_OWNER=web-1'), s.conf());
    t.equal(again.code, 0, again.stdout);
    t.equal(addr(again), ipA, 'the same IP');
    t.equal(macOf(b.name), stableMac(ipA), 'the same MAC');
    t.ok(await ping(peer.name, ipA), 'the first ping after the restart is answered');
    const check = await runCni('berth-bridge', env('CHECK', 'web-b', b.path), { ...s.conf(), prevResult: again.json });
    t.equal(check.code, 0, `CHECK right after ADD: ${check.stdout}`);
    ip('-n', b.name, 'link', 'set', 'eth0', 'address', '02:00:00:00:00:99');
    const broken = await runCni('berth-bridge', env('CHECK', 'web-b', b.path), { ...s.conf(), prevResult: again.json });
    t.match(broken.json, { code: 107, msg: new RegExp(`eth0 has MAC 02:00:00:00:00:99, not ${stableMac(ipA)}`) }, 'CHECK sees a changed MAC');
    const random = netns(t);
    const off = await runCni('berth-bridge', env('ADD', 'web-c', random.path), s.conf({ stableMac: false }));
    t.equal(off.code, 0, off.stdout);
    t.not(macOf(random.name), stableMac(addr(off)), 'stableMac: false leaves the kernel its random MAC');
    t.equal(off.json!.interfaces[2].mac, macOf(random.name), 'and reports the MAC the interface has');
    // the control: a new random MAC and no announcement leave the peer's cached entry wrong, and the ping unanswered
    const ipC = addr(off);
    t.ok(await ping(peer.name, ipC), 'the peer reaches the random-MAC container');
    t.equal((await runCni('berth-bridge', env('DEL', 'web-c', random.path), s.conf({ stableMac: false }))).code, 0);
    const again2 = netns(t);
    const back = await runCni('berth-bridge', env('ADD', 'web-d', again2.path), { ...s.conf({ stableMac: false, announce: { count: 0 } }), args: { cni: { owner: 'web-c' } } });
    t.equal(back.code, 0, back.stdout);
    t.equal(addr(back), ipC, 'the same IP for the same owner');
    t.not(neighbour(peer.name, ipC), macOf(again2.name), "the peer's entry still holds the old MAC");
    t.notOk(await ping(peer.name, ipC), 'and the first ping is not answered: what a stable MAC and the announcements prevent');
  });

  t.test('an address that moves to a new MAC is announced: the peer learns it from the gratuitous ARP, which tcpdump sees three times', async (t) => {
    const s = await setup(t, '10.93.2.0/24');
    const peer = netns(t);
    t.equal((await runCni('berth-bridge', env('ADD', 'peer2', peer.path), s.conf())).code, 0);
    const a = netns(t);
    const first = await runCni('berth-bridge', env('ADD', 'mv-a', a.path, 'BERTH_OWNER=mv;MAC=02:aa:00:00:00:01'), s.conf());
    t.equal(first.code, 0, first.stdout);
    const ipA = addr(first);
    t.equal(macOf(a.name), '02:aa:00:00:00:01', 'MAC= wins over the derived MAC');
    t.ok(await ping(peer.name, ipA));
    t.equal(neighbour(peer.name, ipA), '02:aa:00:00:00:01');
    t.equal((await runCni('berth-bridge', env('DEL', 'mv-a', a.path), s.conf())).code, 0);
    const seen = await capture(t, peer.name, 'eth0');
    const b = netns(t);
    const again = await runCni('berth-bridge', env('ADD', 'mv-b', b.path, 'BERTH_OWNER=mv'), { ...s.conf(), runtimeConfig: { mac: '02:aa:00:00:00:02' } });
    t.equal(again.code, 0, again.stdout);
    t.equal(addr(again), ipA);
    t.equal(macOf(b.name), '02:aa:00:00:00:02', 'the mac capability wins too');
    t.equal(neighbour(peer.name, ipA), '02:aa:00:00:00:02', "the peer's entry moved to the new MAC by the time ADD answered");
    const garp = new RegExp(`^02:aa:00:00:00:02 > ff:ff:ff:ff:ff:ff, ethertype ARP .*Request who-has ${ipA.replace(/\./g, '\\.')} tell ${ipA.replace(/\./g, '\\.')},`);
    t.equal((await seen.waitForCount(garp, 3)).length, 3, 'three gratuitous ARPs: the first from the plugin, two from its detached sender');
    t.ok(await ping(peer.name, ipA), 'and reaches it');
  });

  t.test('IPv6: an unsolicited neighbour advertisement moves the peer to the new MAC', async (t) => {
    const s = await setup(t, 'fd00:93:3::/64');
    const peer = netns(t);
    t.equal((await runCni('berth-bridge', env('ADD', 'peer3', peer.path), s.conf())).code, 0);
    const a = netns(t);
    const first = await runCni('berth-bridge', env('ADD', 'v6-a', a.path, 'BERTH_OWNER=v6;MAC=02:aa:00:00:00:03'), s.conf());
    t.equal(first.code, 0, first.stdout);
    const ipA = addr(first);
    // both addresses are tentative until duplicate address detection is done (about a second)
    t.ok(await ping(peer.name, ipA, 15000), 'the peer reaches it');
    t.equal(neighbour(peer.name, ipA), '02:aa:00:00:00:03');
    t.equal((await runCni('berth-bridge', env('DEL', 'v6-a', a.path), s.conf())).code, 0);
    const seen = await capture(t, peer.name, 'eth0');
    const b = netns(t);
    const again = await runCni('berth-bridge', env('ADD', 'v6-b', b.path, 'BERTH_OWNER=v6;MAC=02:aa:00:00:00:04'), s.conf());
    t.equal(again.code, 0, again.stdout);
    t.equal(addr(again), ipA);
    const na = new RegExp(`^02:aa:00:00:00:04 > 33:33:00:00:00:01, .*${ipA} > ff02::1: ICMP6, neighbor advertisement, tgt is ${ipA},`);
    t.equal((await seen.waitForCount(na, 3)).length, 3, 'three advertisements');
    t.equal(neighbour(peer.name, ipA), '02:aa:00:00:00:04', 'the peer took the new MAC (the kernel checked the checksum)');
    const derived = netns(t);
    const d = await runCni('berth-bridge', env('ADD', 'v6-c', derived.path), s.conf());
    t.equal(d.code, 0, d.stdout);
    t.equal(macOf(derived.name), stableMac(addr(d)), 'an IPv6-only container gets the MAC of its IPv6 address');
  });

  t.test('in-process, as the agent runs it, the repeats go out on timers; announce.count 0 sends none', async (t) => {
    const s = await setup(t, '10.93.4.0/24');
    const spec = await ownPlugin('berth-bridge');
    const peer = netns(t);
    t.equal((await runCni('berth-bridge', env('ADD', 'peer4', peer.path), s.conf())).code, 0);
    const seen = await capture(t, peer.name, 'eth0');
    const quiet = netns(t);
    const q = await runOwn(spec, env('ADD', 'in-q', quiet.path), JSON.stringify(s.conf({ announce: { count: 0 } })));
    t.equal(q.code, 0, q.stdout);
    const ipQ = (JSON.parse(q.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address.split('/')[0]!;
    const loud = netns(t);
    const l = await runOwn(spec, env('ADD', 'in-l', loud.path), JSON.stringify(s.conf({ announce: { count: 4, intervalMs: 50 } })));
    t.equal(l.code, 0, l.stdout);
    const ipL = (JSON.parse(l.stdout) as { ips: Array<{ address: string }> }).ips[0]!.address.split('/')[0]!;
    const garp = (a: string) => new RegExp(`ARP .*Request who-has ${a.replace(/\./g, '\\.')} tell ${a.replace(/\./g, '\\.')},`);
    t.equal((await seen.waitForCount(garp(ipL), 4)).length, 4, 'count 4: four announcements, three of them from timers');
    t.equal(seen.lines.filter((x) => garp(ipQ).test(x)).length, 0, 'count 0: none, in the same capture');
    t.equal(macOf(quiet.name), stableMac(ipQ), 'its MAC is still the derived one');
  });

  t.test('config errors name the field', async (t) => {
    const s = await setup(t, '10.93.5.0/24');
    const ns = netns(t);
    const bad = async (extra: Record<string, unknown>) => (await runCni('berth-bridge', env('ADD', 'cfg', ns.path), s.conf(extra))).json;
    t.match(await bad({ stableMac: 'yes' }), { code: 7, msg: /stableMac must be true or false/ });
    t.match(await bad({ announce: 3 }), { code: 7, msg: /announce must be an object/ });
    t.match(await bad({ announce: { count: 11 } }), { code: 7, msg: /announce\.count must be an integer from 0 to 10, got 11/ });
    t.match(await bad({ announce: { intervalMs: 1 } }), { code: 7, msg: /announce\.intervalMs must be an integer from 10 to 10000/ });
    t.match(await bad({ announce: { every: 1 } }), { code: 7, msg: /announce\.every: unknown field/ });
  });
}
