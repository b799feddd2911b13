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
