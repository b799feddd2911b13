// berth.metrics: where Prometheus scrapes a container, validated before it
// reaches a discovery answer.
import t from 'tap';
import { LABEL_IP, LABEL_LB_PREFIX, LABEL_METRICS, LABEL_NETWORK, LABEL_OWNER, LABEL_PREFIX, LabelError, parseLabels } from '../../agent/labels.js';

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

t.test('the label names are the contract (docs/contract.md)', async (t) => {
  t.equal(LABEL_PREFIX, 'berth.');
  t.same([LABEL_NETWORK, LABEL_OWNER, LABEL_IP, LABEL_LB_PREFIX, LABEL_METRICS], ['berth.network', 'berth.owner', 'berth.ip', 'berth.lb.', 'berth.metrics']);
});

t.test('not berth: no berth.network label, whatever else is there', async (t) => {
  t.equal(parseLabels(undefined, 'x'), null);
  t.equal(parseLabels(null, 'x'), null);
  t.equal(parseLabels({}, 'x'), null);
  t.equal(parseLabels({ 'berth.owner': 'o', 'berth.ip': 'bad', 'berth.lb.web': '0', network: 'n' }, 'x'), null, 'nothing else is read');
});

t.test('berth.network: a CNI network name', async (t) => {
  for (const ok of ['n', 'N', '0', 'vlan100', 'a_b.c-d', 'a'.repeat(128)]) t.equal(parseLabels({ 'berth.network': ok }, 'x')?.network, ok, ok);
  for (const bad of ['', '-a', '_a', '.a', 'a b', 'a/b', 'a;b', 'a\n', '\na', 'a'.repeat(129), 'é']) {
    t.throws(() => parseLabels({ 'berth.network': bad }, 'x'), new LabelError('berth.network', `must be a CNI network name (letters, digits, "_", ".", "-"), got ${JSON.stringify(bad)}`), JSON.stringify(bad));
  }
});

t.test('berth.owner: its value, or the container name; either checked', async (t) => {
  const net = { 'berth.network': 'n' };
  t.same(parseLabels(net, 'web-1'), { network: 'n', owner: 'web-1', lb: {} }, 'the name by default, and nothing else set');
  t.equal(parseLabels({ ...net, 'berth.owner': 'ns/app-0' }, 'web-1')?.owner, 'ns/app-0', 'the label wins over the name');
  for (const ok of ['a', '0', 'a_b.c:d/e@f-g', 'a'.repeat(253)]) t.equal(parseLabels({ ...net, 'berth.owner': ok }, 'x')?.owner, ok, ok);
  for (const bad of ['', '-a', '/a', 'a b', 'a;IP=1', 'a=b', 'a,b', 'a\n', 'a'.repeat(254)]) {
    t.throws(
      () => parseLabels({ ...net, 'berth.owner': bad }, 'x'),
      new LabelError('berth.owner', `berth.owner must be 1-253 letters, digits or "_.:/@-", starting with a letter or digit; got ${JSON.stringify(bad)}`),
      JSON.stringify(bad),
    );
  }
  // a container name that cannot be an owner is named as such
  t.throws(
    () => parseLabels(net, 'bad name'),
    new LabelError('berth.owner', 'the container name (the default owner) must be 1-253 letters, digits or "_.:/@-", starting with a letter or digit; got "bad name"'),
  );
  t.equal(parseLabels({ ...net, 'berth.owner': 'ok' }, 'bad name')?.owner, 'ok', 'a good label saves a bad name');
});

t.test('berth.ip: normalized, and its error message', async (t) => {
  const net = { 'berth.network': 'n' };
  t.equal(parseLabels({ ...net, 'berth.ip': ' fd00::5 , 10.0.0.5 ' }, 'x')?.ip, 'fd00::5,10.0.0.5', 'trimmed, in the order given');
  t.equal(parseLabels({ ...net, 'berth.ip': '2001:DB8:0:0::1' }, 'x')?.ip, '2001:db8::1');
  t.notOk('ip' in parseLabels(net, 'x')!, 'absent: no ip key');
  t.throws(() => parseLabels({ ...net, 'berth.ip': 'x' }, 'x'), new LabelError('berth.ip', 'must be an IPv4 or IPv6 address, or one of each separated by ",", got "x"'));
  t.throws(() => parseLabels({ ...net, 'berth.ip': 'fd00::5,fd00::6' }, 'x'), new LabelError('berth.ip', 'takes at most one IPv4 and one IPv6 address, got "fd00::5,fd00::6"'));
});

t.test('berth.metrics: the port range ends included', async (t) => {
  const net = { 'berth.network': 'n' };
  t.same(parseLabels({ ...net, 'berth.metrics': '1' }, 'x')?.metrics, { port: 1, path: '/metrics' });
  t.same(parseLabels({ ...net, 'berth.metrics': '65535/' }, 'x')?.metrics, { port: 65535, path: '/' });
  t.same(parseLabels({ ...net, 'berth.metrics': '80/a/b_c.d~e-f' }, 'x')?.metrics, { port: 80, path: '/a/b_c.d~e-f' });
  for (const bad of ['', '123456', 'x80', '80x', '80/a?', '/metrics']) {
    t.throws(
      () => parseLabels({ ...net, 'berth.metrics': bad }, 'x'),
      new LabelError('berth.metrics', `must be PORT or PORT/PATH (a port from 1 to 65535, a path of letters, digits and "/_.~-"), got ${JSON.stringify(bad)}`),
      JSON.stringify(bad),
    );
  }
});

t.test('berth.lb.SERVICE=PORT: every such label, and only those', async (t) => {
  const net = { 'berth.network': 'n' };
  t.same(parseLabels({ ...net, 'berth.lb.web': '1', 'berth.lb.a_b-C9': '65535', 'x.berth.lb.z': '80', 'berth.lbx': '80', 'lb.web': '80' }, 'x')?.lb, { web: 1, 'a_b-C9': 65535 });
  t.same(parseLabels({ ...net, 'berth.lb.web': '08080' }, 'x')?.lb, { web: 8080 }, 'a leading zero is still the number');
  for (const bad of ['0', '65536', '99999', '123456', '', 'x', '80 ', '-1', '8.0']) {
    t.throws(() => parseLabels({ ...net, 'berth.lb.web': bad }, 'x'), new LabelError('berth.lb.web', `must be a port from 1 to 65535, got ${JSON.stringify(bad)}`), JSON.stringify(bad));
  }
  for (const service of ['', '-web', '_web', 'a.b', 'a'.repeat(64)]) {
    t.throws(
      () => parseLabels({ ...net, [`berth.lb.${service}`]: '80' }, 'x'),
      new LabelError(`berth.lb.${service}`, 'the service name must be 1-63 letters, digits, "_" or "-", starting with a letter or digit'),
      JSON.stringify(service),
    );
  }
  t.same(parseLabels({ ...net, [`berth.lb.${'a'.repeat(63)}`]: '80' }, 'x')?.lb, { ['a'.repeat(63)]: 80 }, '63 characters');
});

t.test('LabelError names the label and says why', async (t) => {
  const e = new LabelError('berth.ip', 'bad');
  t.ok(e instanceof Error);
  t.equal(e.label, 'berth.ip');
  t.equal(e.message, 'label berth.ip: bad');
});
