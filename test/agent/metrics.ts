// The Prometheus registry (agent/metrics.ts): the text format.
import t from 'tap';
import { Counter, Histogram, Registry } from '../../agent/metrics.js';

t.test('metrics: the text format, with labels escaped and histogram buckets cumulative', async (t) => {
  const r = new Registry();
  const c = r.add(new Counter('x_total', 'things'));
  c.inc({ net: 'a"b\\c\nd' });
  c.inc({ net: 'a"b\\c\nd' }, 2);
  const h = r.add(new Histogram('lat_seconds', 'latency', [0.1, 1]));
  h.observe({ op: 'add' }, 0.05);
  h.observe({ op: 'add' }, 0.5);
  h.observe({ op: 'add' }, 5);
  const text = r.render();
  t.match(text, /# TYPE x_total counter\nx_total\{net="a\\"b\\\\c\\nd"\} 3\n/);
  t.match(text, /lat_seconds_bucket\{op="add",le="0.1"\} 1\nlat_seconds_bucket\{op="add",le="1"\} 2\nlat_seconds_bucket\{op="add",le="\+Inf"\} 3\nlat_seconds_sum\{op="add"\} 5.55\nlat_seconds_count\{op="add"\} 3\n/);
});
