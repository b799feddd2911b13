// berth.metrics: where Prometheus scrapes a container, validated before it
// reaches a discovery answer.
import t from 'tap';
import { parseLabels } from '../../agent/labels.js';

t.test('berth.metrics=PORT[/PATH]', async (t) => {
  const net = { 'berth.network': 'n' };
  t.same(parseLabels({ ...net, 'berth.metrics': '9100' }, 'x')?.metrics, { port: 9100, path: '/metrics' }, 'the path defaults to /metrics');
  t.same(parseLabels({ ...net, 'berth.metrics': '8080/actuator/prometheus' }, 'x')?.metrics, { port: 8080, path: '/actuator/prometheus' });
  t.equal(parseLabels(net, 'x')?.metrics, undefined, 'absent: not a target');
  for (const bad of ['0', '65536', 'http', '80/a b', '80/?x=1', '80/%2e', '80\n', ':80']) {
    t.throws(() => parseLabels({ ...net, 'berth.metrics': bad }, 'x'), /label berth\.metrics: must be PORT or PORT\/PATH/, JSON.stringify(bad));
  }
});

t.test('berth.ip: one address, or one of each family', async (t) => {
  const net = { 'berth.network': 'n' };
  t.equal(parseLabels({ ...net, 'berth.ip': '10.0.0.5' }, 'x')?.ip, '10.0.0.5');
  t.equal(parseLabels({ ...net, 'berth.ip': '10.0.0.5, FD00::0:5' }, 'x')?.ip, '10.0.0.5,fd00::5', 'dual-stack, normalized');
  t.throws(() => parseLabels({ ...net, 'berth.ip': '10.0.0.5,10.0.0.6' }, 'x'), /label berth\.ip: takes at most one IPv4 and one IPv6 address/);
  t.throws(() => parseLabels({ ...net, 'berth.ip': '10.0.0.5,fd00::5,fd00::6' }, 'x'), /at most one IPv4 and one IPv6/);
  t.throws(() => parseLabels({ ...net, 'berth.ip': '10.0.0.5,' }, 'x'), /label berth\.ip: must be an IPv4 or IPv6 address/);
  t.throws(() => parseLabels({ ...net, 'berth.ip': '10.0.0.5;IP=10.0.0.9' }, 'x'), /label berth\.ip/);
});

t.test('labels: network, owner, ip and lb services validated by name', async (t) => {
  t.equal(parseLabels({ other: 'x' }, 'web'), null, 'not berth: no berth.network');
  t.same(parseLabels({ 'berth.network': 'vlan100' }, 'web-1'), { network: 'vlan100', owner: 'web-1', lb: {} }, 'the owner defaults to the name');
  t.same(parseLabels({ 'berth.network': 'n', 'berth.owner': 'ns/app-0', 'berth.ip': '10.0.0.10', 'berth.lb.web': '8080', 'berth.lb.api_v2': '9000' }, 'x'), {
    network: 'n',
    owner: 'ns/app-0',
    ip: '10.0.0.10',
    lb: { web: 8080, api_v2: 9000 },
  });
  t.equal(parseLabels({ 'berth.network': 'n', 'berth.ip': '2001:DB8::0:1' }, 'x')?.ip, '2001:db8::1');
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ 'berth.network': 'a b' }, /label berth\.network: must be a CNI network name/],
    [{ 'berth.network': '../etc' }, /berth\.network/],
    [{ 'berth.network': 'n', 'berth.owner': 'a;IP=10.0.0.9' }, /label berth\.owner/],
    [{ 'berth.network': 'n', 'berth.owner': '' }, /label berth\.owner/],
    [{ 'berth.network': 'n', 'berth.ip': '10.0.0.300' }, /label berth\.ip: must be an IPv4 or IPv6 address/],
    [{ 'berth.network': 'n', 'berth.ip': '10.0.0.010' }, /label berth\.ip/],
    [{ 'berth.network': 'n', 'berth.lb.web': '0' }, /label berth\.lb\.web: must be a port from 1 to 65535/],
    [{ 'berth.network': 'n', 'berth.lb.web': '80\nserver x' }, /berth\.lb\.web/],
    [{ 'berth.network': 'n', 'berth.lb.a b': '80' }, /the service name must be/],
    [{ 'berth.network': 'n', 'berth.lb.x\nbackend': '80' }, /the service name must be/],
  ];
  for (const [labels, re] of bad) t.throws(() => parseLabels(labels, 'x'), re, JSON.stringify(labels));
});
