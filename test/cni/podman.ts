// podman, with its CNI backend, runs containers on a network whose conflist
// chains the reference bridge plugin with berth-ipam: `--ip` is honoured, and
// a container of the same name gets its address back.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { stableMac } from '../../cni/mac.js';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { parseIp } from '../../core/address.js';
import { capture } from '../helpers/capture.js';
import { podmanMissing, setupPodman } from '../helpers/podman.js';
import { cleanupLink, skipWithoutNetns, uniqueName } from '../helpers/netns.js';

const missing = podmanMissing();
if (!skipWithoutNetns(t)) {
  if (missing) {
    if (process.env.CI === 'true') t.fail(missing);
    else t.plan(0, missing);
  } else {
    t.test('podman run --ip on reference bridge + berth-ipam (file store)', async (t) => {
      const dir = t.testdir();
      const storeUrl = `file://${dir}/pool`;
      const store = await openStore(storeUrl);
      t.teardown(() => store.close());
      await store.createPool(buildPoolConfig({ name: 'pm', subnet: '10.62.0.0/24', hold: 600 }));
      const podman = await setupPodman(dir);
      const bridge = uniqueName('brp');
      cleanupLink(t, bridge);
      podman.network('berthnet', {
        plugins: [{ type: 'bridge', bridge, isGateway: true, ipam: { type: 'berth-ipam', pool: 'pm', store: storeUrl } }],
      });
      const run = (...args: string[]) => podman.run(['run', '--rm', '--network', 'berthnet', ...podman.runFlags, ...args]);

      const first = await run('--name', 'web1', '--ip', '10.62.0.50', podman.image, 'ip', '-o', '-4', 'addr', 'show', 'eth0');
      t.equal(first.code, 0, first.stderr);
      t.match(first.stdout, /inet 10\.62\.0\.50\/24/, 'the requested address, configured inside the container');
      const held = await store.getAddress('pm', parseIp('10.62.0.50', 'ip').hex);
      t.match(held, { state: 'reserved', owner: 'web1' }, 'after --rm the address is held for the container name');

      const again = await run('--name', 'web1', podman.image, 'ip', '-o', '-4', 'addr', 'show', 'eth0');
      t.equal(again.code, 0, again.stderr);
      t.match(again.stdout, /inet 10\.62\.0\.50\/24/, 'a new container of the same name gets it back without asking');

      const other = await run('--name', 'web2', '--ip', '10.62.0.50', podman.image, 'true');
      t.not(other.code, 0, 'another name cannot take it while it is held');
      t.match(other.stderr, /10\.62\.0\.50 is reserved for web1/);
    });
  }
}

if (!missing && !skipWithoutNetns(t)) {
  t.test('podman on berth-bridge chained with the reference tuning plugin: restart keeps the IP and the MAC and is announced, two containers talk', async (t) => {
    const dir = t.testdir();
    const storeUrl = `file://${dir}/pool`;
    const store = await openStore(storeUrl);
    t.teardown(() => store.close());
    await store.createPool(buildPoolConfig({ name: 'pb', subnet: '10.63.0.0/24', hold: 600 }));
    const podman = await setupPodman(dir);
    const bridge = uniqueName('bpb');
    cleanupLink(t, bridge);
    podman.network('bbnet', {
      plugins: [
        { type: 'berth-bridge', bridge, isGateway: true, capabilities: { mac: true }, ipam: { type: 'berth-ipam', pool: 'pb', store: storeUrl } },
        { type: 'tuning', sysctl: { 'net.ipv4.conf.all.forwarding': '0' } },
      ],
    });
    t.teardown(async () => {
      const r = await podman.run(['rm', '-f', '-t', '0', 'pb-server']);
      if (r.code !== 0) console.error('podman rm failed:', r.stderr);
    });
    const started = await podman.run(['run', '-d', '--name', 'pb-server', '--network', 'bbnet', ...podman.runFlags, podman.image, 'sleep', '300']);
    t.equal(started.code, 0, started.stderr);
    const addrOf = async () => {
      const r = await podman.run(['exec', 'pb-server', 'ip', '-o', '-4', 'addr', 'show', 'eth0']);
      return /inet (10\.63\.0\.\d+)\//.exec(r.stdout)?.[1];
    };
    const macOf = async (name: string) => /link\/ether (\S+)/.exec((await podman.run(['exec', name, 'ip', 'link', 'show', 'eth0'])).stdout)?.[1];
    const first = await addrOf();
    t.match(first, /^10\.63\.0\.\d+$/, `the server has a pool address: ${first}`);
    t.equal(await macOf('pb-server'), stableMac(first!), 'and the MAC derived from it');
    t.equal(spawnSync('/bin/busybox', ['ping', '-c', '1', '-W', '2', first!]).status, 0, 'the host reaches it, and caches its MAC');
    const seen = await capture(t, '', bridge);
    const restarted = await podman.run(['restart', '-t', '0', 'pb-server']);
    t.equal(restarted.code, 0, restarted.stderr);
    t.equal(await addrOf(), first, 'podman restart keeps the address');
    t.equal(await macOf('pb-server'), stableMac(first!), 'and the MAC');
    const ping = spawnSync('/bin/busybox', ['ping', '-c', '1', '-W', '1', first!], { encoding: 'utf8' });
    t.equal(ping.status, 0, `the host's first ping after the restart is answered within 1 s: ${ping.stdout}${ping.stderr}`);
    const garp = new RegExp(`^${stableMac(first!)} > ff:ff:ff:ff:ff:ff, ethertype ARP .*Request who-has ${first!.replace(/\./g, '\\.')} tell ${first!.replace(/\./g, '\\.')},`);
    t.equal((await seen.waitForCount(garp, 3)).length, 3, 'the bridge saw the restarted container announce its address three times');
    await seen.stop();
    const fixed = await podman.run(['run', '--rm', '--network', 'bbnet', '--mac-address', '02:aa:bb:cc:dd:ee', ...podman.runFlags, podman.image, 'ip', 'link', 'show', 'eth0']);
    t.equal(fixed.code, 0, fixed.stderr);
    t.match(fixed.stdout, /link\/ether 02:aa:bb:cc:dd:ee /, '--mac-address (the mac capability) wins over the derived MAC');
    const client = await podman.run(['run', '--rm', '--name', 'pb-client', '--network', 'bbnet', ...podman.runFlags, podman.image, 'ping', '-c', '2', '-W', '2', first!]);
    t.equal(client.code, 0, `the client reaches the server: ${client.stdout}${client.stderr}`);
    t.match(await store.getAddress('pb', parseIp(first!, 'ip').hex), { state: 'allocated', owner: 'pb-server' });
  });
}

if (!missing && !skipWithoutNetns(t)) {
  t.test('podman --ip and --ip6 on a dual-stack berth network: both addresses, as asked', async (t) => {
    const dir = t.testdir();
    const storeUrl = `file://${dir}/pool`;
    const store = await openStore(storeUrl);
    t.teardown(() => store.close());
    await store.createPool(buildPoolConfig({ name: 'd4', subnet: '10.64.0.0/24', hold: 600 }));
    await store.createPool(buildPoolConfig({ name: 'd6', subnet: 'fd00:64::/64', hold: 600 }));
    const podman = await setupPodman(dir);
    const bridge = uniqueName('bpd');
    cleanupLink(t, bridge);
    podman.network('dualnet', {
      plugins: [{ type: 'berth-bridge', bridge, isGateway: true, capabilities: { ips: true }, ipam: { type: 'berth-ipam', pools: ['d4', 'd6'], store: storeUrl } }],
    });
    const r = await podman.run(['run', '--rm', '--network', 'dualnet', '--ip', '10.64.0.40', '--ip6', 'fd00:64::40', ...podman.runFlags, podman.image, 'ip', 'addr', 'show', 'eth0']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stdout, /inet 10\.64\.0\.40\/24/, 'the IPv4 address asked for');
    t.match(r.stdout, /inet6 fd00:64::40\/64/, 'and the IPv6 one');
    t.match(await store.getAddress('d6', parseIp('fd00:64::40', 'ip').hex), { state: 'reserved' }, 'held for the container after --rm, in its pool');
  });
}
