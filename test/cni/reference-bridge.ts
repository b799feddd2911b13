// berth-ipam under a plugin no one here wrote: the reference bridge plugin
// (Debian containernetworking-plugins) finds berth-ipam through CNI_PATH and
// configures the address it hands out inside a real network namespace.
import t from 'tap';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { parseIp } from '../../core/address.js';
import { BIN, runCni } from '../helpers/cni.js';
import { cleanupLink, haveFile, ip, netns, skipWithoutNetns, uniqueName } from '../helpers/netns.js';
import { freshStoreUrl, PROCESS_STORE_KINDS } from '../helpers/stores.js';

const REFERENCE = '/usr/lib/cni/bridge';

if (!skipWithoutNetns(t)) {
  if (!haveFile(REFERENCE)) {
    if (process.env.CI === 'true') t.fail(`${REFERENCE} is missing (Debian containernetworking-plugins)`);
    else t.plan(0, `${REFERENCE} is missing`);
  } else {
    for (const kind of PROCESS_STORE_KINDS) {
      t.test(`reference bridge + berth-ipam (${kind} store): ADD, CHECK, DEL in a real namespace`, async (t) => {
        const url = await freshStoreUrl(t, kind);
        if (!url) return;
        const store = await openStore(url);
        t.teardown(() => store.close());
        await store.createPool(buildPoolConfig({ name: 'ref', subnet: '10.60.0.0/24', hold: 600 }));
        const ns = netns(t);
        const bridge = uniqueName('brb');
        cleanupLink(t, bridge);
        const conf = (extra = {}) => ({
          cniVersion: '1.0.0',
          name: 'refnet',
          type: 'bridge',
          bridge,
          isGateway: true,
          ipam: { type: 'berth-ipam', pool: 'ref', store: url, host: 'node-a' },
          ...extra,
        });
        const env = (cmd: string) => ({
          CNI_COMMAND: cmd,
          CNI_CONTAINERID: 'refc1',
          CNI_NETNS: ns.path,
          CNI_IFNAME: 'eth0',
          CNI_PATH: `${BIN}:/usr/lib/cni`,
          CNI_ARGS: 'IgnoreUnknown=1;BERTH_OWNER=ref-app',
        });
        const add = await runCni(REFERENCE, env('ADD'), conf());
        t.equal(add.code, 0, add.stdout + add.stderr);
        const address = add.json!.ips[0].address as string;
        t.match(address, /^10\.60\.0\.\d+\/24$/, 'the address came from the berth pool');
        t.ok(add.json!.interfaces.some((i: any) => i.name === 'eth0' && i.sandbox === ns.path), 'eth0 in the namespace');
        t.match(ip('-n', ns.name, '-o', 'addr', 'show', 'eth0'), new RegExp(address.replace(/\./g, '\\.')), 'and configured on it for real');
        t.match(await store.getAddress('ref', parseIp(address.split('/')[0]!, 'ip').hex), { state: 'allocated', owner: 'ref-app', containerId: 'refc1' });

        const check = await runCni(REFERENCE, env('CHECK'), conf({ prevResult: add.json }));
        t.equal(check.code, 0, `CHECK passes right after ADD ${check.stdout}`);

        const del = await runCni(REFERENCE, env('DEL'), conf({ prevResult: add.json }));
        t.equal(del.code, 0, del.stdout);
        t.notMatch(ip('-n', ns.name, 'link'), /eth0/, 'the veth is gone');
        t.equal((await store.getAddress('ref', parseIp(address.split('/')[0]!, 'ip').hex)).state, 'reserved', 'the address is held for its owner');
        t.equal((await runCni(REFERENCE, env('DEL'), conf())).code, 0, 'DEL again');
      });
    }
  }
}
