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
