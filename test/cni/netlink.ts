// In-process rtnetlink, on the host and inside namespaces: what berth-bridge
// and berth-ovs stand on. Real namespaces, real bridge, real ping.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, read, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno, Links, rtnetlink } from '../../cni/netlink.js';
import { parseMac } from '../../cni/mac.js';
import { decodeLink, IFF, linkByNameBody, RTM, setLinkBody } from '../../cni/rtnl.js';
import { cleanupLink, ip, netns, skipWithoutNetns, uniqueName } from '../helpers/netns.js';

if (!skipWithoutNetns(t)) {
  t.test('a socket opened in a namespace sees that namespace, and the thread comes back home', async (t) => {
    const ns = netns(t);
    const inside = new Links(rtnetlink(ns.path));
    const host = new Links(rtnetlink());
    t.teardown(() => {
      inside.close();
      host.close();
    });
    t.same((await inside.list()).map((l) => l.name), ['lo'], 'only lo inside a fresh namespace');
    t.ok((await host.list()).length > 1, 'the host sees its own links');
    const again = new Links(rtnetlink());
    t.teardown(() => again.close());
    t.ok((await again.list()).some((l) => l.name !== 'lo'), 'a socket made afterwards is on the host again');
  });

  t.test('two namespaces on one bridge, configured in-process, ping each other', async (t) => {
    const a = netns(t);
    const b = netns(t);
    const bridge = uniqueName('brn');
    cleanupLink(t, bridge);
    const host = new Links(rtnetlink());
    t.teardown(() => host.close());
    const br = await host.ensureBridge(bridge, 1500);
    t.equal(br.kind, 'bridge');
    t.ok(br.up, 'up');
    for (const [ns, addr, i] of [
      [a, '10.80.0.2/24', 0],
      [b, '10.80.0.3/24', 1],
    ] as const) {
      const hostName = uniqueName('vh');
      cleanupLink(t, hostName);
      const fd = openSync(ns.path, 'r');
      const made = await host.createVeth(hostName, 'eth0', fd, { mtu: 1400, peerMac: `02:00:00:00:00:0${i + 1}` });
      closeSync(fd);
      const veth = (await host.byName(hostName))!;
      t.equal(veth.kind, 'veth');
      t.equal(veth.mtu, 1400);
      t.equal(veth.mac, made.hostMac, 'the host end has the MAC createVeth chose and returned');
      t.match(made.hostMac, /^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/, 'locally administered, unicast');
      t.match(ip('-d', 'link', 'show', hostName), /numtxqueues 1 numrxqueues 1/, 'one queue each way, allocated so (not cut down after)');
      t.match(ip('-n', ns.name, '-d', 'link', 'show', 'eth0'), /numtxqueues 1 numrxqueues 1/, 'on both ends');
      await host.setMaster(veth.index, br.index);
      await host.setUp(veth.index);
      const inside = new Links(rtnetlink(ns.path));
      t.teardown(() => inside.close());
      const eth0 = await inside.byName('eth0');
      t.ok(eth0, 'the peer was created directly inside the namespace');
      t.same(inside.lookup('eth0'), { index: eth0!.index, mac: eth0!.mac, up: false }, 'a lookup without the link lock finds the same index and MAC, and that it is down');
      t.equal(host.lookup(hostName)?.index, veth.index, "a lookup is in its socket's namespace: the host end on the host");
      t.equal(inside.lookup(hostName), undefined, 'the host end is not inside');
      t.equal(inside.lookup('lo')?.index, 1, 'lo, which has no Ethernet address');
      t.equal(inside.lookup('lo')?.mac, undefined);
      t.equal(eth0!.mac, `02:00:00:00:00:0${i + 1}`, 'with the MAC asked for');
      await inside.addAddress(eth0!.index, addr);
      await inside.addAddress(eth0!.index, addr); // idempotent
      await inside.setUp(eth0!.index);
      t.equal(inside.lookup('eth0')?.up, true, 'and then that it is up');
      await inside.setUp((await inside.byName('lo'))!.index);
      await inside.configure(eth0!.index, { addresses: [], routes: [{ dst: '0.0.0.0/0', gw: '10.80.0.1' }] });
      const addrs = await inside.addresses(eth0!.index);
      t.ok(addrs.includes(addr), `configured: ${addrs.join(', ')}`);
      t.equal(addrs.filter((x) => !x.startsWith('fe80:')).length, 1, 'once, beside the kernel\'s link-local');
      t.match(ip('-n', ns.name, 'route'), /default via 10\.80\.0\.1 dev eth0/, 'the default route is there');
      t.equal((await host.byName(hostName))!.master, br.index, 'the host end is on the bridge');
    }
    // busybox's ping: Debian busybox-static is installed for the podman tests anyway
    const ping = spawnSync('ip', ['netns', 'exec', a.name, '/bin/busybox', 'ping', '-c', '2', '-W', '2', '10.80.0.3'], { encoding: 'utf8' });
    t.equal(ping.status, 0, `a reaches b: ${ping.stdout}${ping.stderr}`);
  });

  t.test('ensureBridge: what exists is fine, two at once both succeed, a non-bridge is refused', async (t) => {
    const name = uniqueName('brr');
    cleanupLink(t, name);
    const one = new Links(rtnetlink());
    const two = new Links(rtnetlink());
    t.teardown(() => {
      one.close();
      two.close();
    });
    const [x, y] = await Promise.all([one.ensureBridge(name), two.ensureBridge(name)]);
    t.equal(x.index, y.index, 'the same bridge for both');
    t.equal((await one.ensureBridge(name)).index, x.index, 'and again');
    const ns = netns(t);
    const veth = uniqueName('vx');
    cleanupLink(t, veth);
    const fd = openSync(ns.path, 'r');
    await one.createVeth(veth, 'eth9', fd);
    closeSync(fd);
    await t.rejects(one.ensureBridge(veth), /exists and is not a bridge/);
    await t.rejects(one.createVeth(veth, 'eth8', openSync(ns.path, 'r')), /EEXIST|exists/, 'a veth name in use is refused');
    const link = await one.byName(veth);
    await one.delete(link!.index);
    t.equal(await one.byName(veth), undefined, 'deleted');
    await one.delete(link!.index); // already gone: fine
    const fd2 = openSync(ns.path, 'r');
    await one.createVeth(veth, 'eth7', fd2);
    closeSync(fd2);
    const inside = new Links(rtnetlink(ns.path));
    t.teardown(() => inside.close());
    t.ok(await inside.byName('eth7'));
    await inside.deleteByName('eth7');
    t.equal(await inside.byName('eth7'), undefined, 'deleted by name');
    t.equal(await one.byName(veth), undefined, 'and its peer with it');
    await inside.deleteByName('eth7'); // already gone: fine
    await t.rejects(inside.deleteByName('lo'), { code: 'ENOTSUP', errno: 95, message: /the kernel refused RTM_DELLINK: ENOTSUP/ }, 'what the kernel refuses is still an error, named');
    t.throws(() => parseMac('02:00:00'), /not a MAC address/);
  });

  t.test('a batch: each request in one sendmsg answered, a refused one not stopping the rest; configure() in one batch', async (t) => {
    const ns = netns(t);
    const inside = new Links(rtnetlink(ns.path));
    t.teardown(() => inside.close());
    ip('-n', ns.name, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    const v0 = inside.lookup('v0')!;
    const v1 = inside.lookup('v1')!;
    const answers = await inside.sock.batch([
      { type: RTM.GETLINK, body: linkByNameBody('v0') },
      { type: RTM.GETLINK, body: linkByNameBody('nosuch') },
      { type: RTM.SETLINK, body: setLinkBody(v0.index, { flags: IFF.UP, change: IFF.UP }) },
    ]);
    t.equal(answers.length, 3, 'an answer for each');
    t.equal('bodies' in answers[0]! && decodeLink(answers[0].bodies[0]!).name, 'v0', 'the first: its link');
    t.ok('error' in answers[1]! && isErrno(answers[1].error, 'ENODEV'), 'the second: ENODEV');
    t.same(answers[2], { bodies: [] }, 'the third ran after the refusal: a plain ACK');
    t.match(ip('-n', ns.name, 'link', 'show', 'v0'), /<[^>]*\bUP\b/, 'and v0 is up');
    t.equal((await inside.byName('v0'))?.index, v0.index, 'a request after the batch gets its own answer');

    const want = { addresses: ['10.81.0.2/24'], routes: [{ dst: '0.0.0.0/0', gw: '10.81.0.1' }, { dst: '10.90.0.0/16', gw: '10.81.0.1' }] };
    await inside.configure(v1.index, want);
    t.match(ip('-n', ns.name, '-4', 'addr', 'show', 'v1'), /inet 10\.81\.0\.2\/24/, 'the address');
    t.match(ip('-n', ns.name, 'link', 'show', 'v1'), /<[^>]*\bUP\b/, 'up');
    const routes = ip('-n', ns.name, 'route');
    t.match(routes, /default via 10\.81\.0\.1 dev v1/, 'the default route, added after the address it needs');
    t.match(routes, /10\.90\.0\.0\/16 via 10\.81\.0\.1 dev v1/);
    await inside.configure(v1.index, want); // all there already: fine
    await t.rejects(
      inside.configure(v1.index, { addresses: [], routes: [{ dst: '10.91.0.0/16', gw: '192.0.2.1' }] }),
      /failed to add route 10\.91\.0\.0\/16 via 192\.0\.2\.1: the kernel refused RTM_NEWROUTE: ENETUNREACH/,
      'a route the kernel refuses is named',
    );
    await t.rejects(inside.configure(9999, want), /failed to add 10\.81\.0\.2\/24: the kernel refused RTM_NEWADDR: ENODEV/, 'the first failure is the one reported');
  });

  t.test('the kernel works on the thread pool, not the JavaScript thread: a request waits for a free pool thread', async (t) => {
    // Sent from the JavaScript thread, as the netlink package sends, a request
    // would be done by the time the call returns. Sent from the libuv pool, it
    // cannot run while every pool thread is busy: here each is held in a read
    // of an empty FIFO, so the veth must outlive the call and the turns of the
    // event loop after it, and go only once the threads are let go.
    const host = new Links(rtnetlink());
    t.teardown(() => host.close());
    const name = uniqueName('vq');
    cleanupLink(t, name);
    ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
    const dir = t.testdir();
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4); // libuv's default
    const fifos = Array.from({ length: poolSize }, (_, i) => {
      const path = join(dir, `hold${i}`);
      execFileSync('mkfifo', [path]);
      return openSync(path, 'r+'); // read and write: opening does not wait for a writer
    });
    t.teardown(() => fifos.forEach((fd) => closeSync(fd)));
    const held = fifos.map((fd) => new Promise<void>((resolve, reject) => read(fd, Buffer.alloc(1), 0, 1, null, (err) => (err ? reject(err) : resolve()))));
    const deleting = host.deleteByName(name);
    let settled = false;
    void deleting.finally(() => (settled = true)).catch(() => undefined);
    let turns = 0;
    const timer = setInterval(() => turns++, 10);
    await new Promise((r) => setTimeout(r, 300));
    clearInterval(timer);
    t.ok(turns > 0, `the event loop turned after the call (${turns} timer ticks)`);
    t.ok(existsSync(`/sys/class/net/${name}`), 'and the veth is still there: its request waits for a pool thread');
    t.notOk(settled, 'the call has not settled');
    for (const fd of fifos) writeSync(fd, 'x'); // lets every pool thread go
    await Promise.all(held);
    await deleting;
    t.notOk(existsSync(`/sys/class/net/${name}`), 'once a pool thread is free, the request runs: the veth is gone');
    t.equal(await host.byName(name), undefined);
  });
}
