// The CNI network configs the agent reads (agent/netconf.ts).
import { join } from 'node:path';
import t from 'tap';
import { loadNetworks, parseNetworkList } from '../../agent/netconf.js';

t.test('network configs: conflist, conf and json; the first file of a name wins; bad files reported', async (t) => {
  const dir = t.testdir({
    '10-a.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'berth-bridge' }, { type: 'tuning' }] }),
    '20-a.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'a', plugins: [{ type: 'other' }] }),
    '30-b.conf': JSON.stringify({ cniVersion: '0.4.0', name: 'b', type: 'bridge', bridge: 'x' }),
    '40-c.json': JSON.stringify({ cniVersion: '1.1.0', name: 'c', plugins: [{ type: 'berth-ovs' }] }),
    '50-bad.conflist': '{not json',
    '60-evil.conflist': JSON.stringify({ cniVersion: '1.0.0', name: 'evil', plugins: [{ type: '../../bin/sh' }] }),
    'README.md': 'ignored',
  });
  const { networks, errors } = loadNetworks(dir);
  t.same([...networks.keys()].sort(), ['a', 'b', 'c']);
  t.same(networks.get('a')!.plugins.map((p) => p.type), ['berth-bridge', 'tuning'], '10-a wins over 20-a');
  t.same(networks.get('b')!.plugins, [{ type: 'bridge', bridge: 'x' }], 'a .conf is a list of one, without cniVersion and name');
  t.equal(errors.length, 2);
  t.match(errors.join('\n'), /50-bad\.conflist/);
  t.match(errors.join('\n'), /60-evil\.conflist: plugins\[0\]\.type must be a plugin file name/);
  t.throws(() => parseNetworkList({ cniVersion: '9.9.9', name: 'x', plugins: [{ type: 'a' }] }, 'f', false), /cniVersion "9\.9\.9"/);
  t.throws(() => parseNetworkList({ cniVersion: '1.0.0', name: 'x', plugins: [] }, 'f', false), /plugins must be a non-empty list/);
  t.match(loadNetworks(join(dir, 'missing')).errors[0], /missing/);
});
