// The attach timing observer: what the start_to_ip and task_to_ip histograms
// count, and the timing fields of the "attached" line, fed the events as the
// agent sees them.
import t from 'tap';
import { Histogram, LATENCY_BUCKETS, Registry } from '../../agent/metrics.js';
import { AttachTiming } from '../../agent/timing.js';

function setup() {
  const registry = new Registry();
  const startToIp = registry.add(new Histogram('start_to_ip', 'h', LATENCY_BUCKETS));
  const taskToIp = registry.add(new Histogram('task_to_ip', 'h', LATENCY_BUCKETS));
  const text = () => registry.render();
  const count = (name: string) => Number(new RegExp(`^${name}_count (\\d+)$`, 'm').exec(text())?.[1] ?? 0);
  const sum = (name: string) => Number(new RegExp(`^${name}_sum (\\S+)$`, 'm').exec(text())?.[1] ?? 0);
  return { timing: new AttachTiming(startToIp, taskToIp), count, sum };
}
const ns = (ms: number) => BigInt(ms) * 1000000n;

t.test("attached on Docker's start event: start_to_ip from the event's time, and the line's fields in order", async (t) => {
  const { timing, count, sum } = setup();
  timing.taskMade('c1', ns(Date.now() - 3000));
  timing.started('c1', ns(Date.now() - 2000));
  const look = timing.look('c1');
  look.read('docker');
  look.stopwatch('saveMs')();
  look.stopwatch('slotMs')();
  const fields = timing.attached('c1', look);
  t.same(Object.keys(fields), ['via', 'inspectMs', 'queuedMs', 'saveMs', 'slotMs', 'sinceTaskMs', 'sinceEventMs']);
  t.equal(fields.via, 'docker');
  t.ok((fields.sinceTaskMs as number) >= 3000, `sinceTaskMs ${fields.sinceTaskMs}`);
  t.equal(count('start_to_ip'), 1);
  t.ok(sum('start_to_ip') >= 2 && sum('start_to_ip') < 10, `start_to_ip ${sum('start_to_ip')} s`);
  t.equal(count('task_to_ip'), 1);
  timing.started('c1', ns(Date.now()));
  t.equal(count('start_to_ip'), 1, 'a start event after the attach is kept for the next one, not counted');
});

t.test('attached from the task before Docker reported the start: 0, counted once the start event comes', async (t) => {
  const { timing, count, sum } = setup();
  timing.taskMade('c1', ns(Date.now()));
  const look = timing.look('c1');
  look.read('containerd');
  const fields = timing.attached('c1', look);
  t.same(Object.keys(fields), ['via', 'labelsMs', 'sinceTaskMs'], 'no queuedMs or sinceEventMs: no start event yet');
  t.equal(count('start_to_ip'), 0);
  timing.started('c1', ns(Date.now()));
  t.equal(count('start_to_ip'), 1);
  t.equal(sum('start_to_ip'), 0);
  timing.started('c1', ns(Date.now()));
  t.equal(count('start_to_ip'), 1, 'once: the next start waits for its attach');
});

t.test('a container not attached drops its times; one detached is no longer up before its next start', async (t) => {
  const { timing, count } = setup();
  timing.taskMade('c1', ns(Date.now()));
  timing.started('c1', ns(Date.now()));
  timing.forget('c1');
  const look = timing.look('c1');
  look.read('docker');
  t.same(Object.keys(timing.attached('c1', look)), ['via', 'inspectMs']);
  t.equal(count('start_to_ip') + count('task_to_ip'), 0);

  const early = timing.look('c2');
  early.read('containerd');
  timing.attached('c2', early);
  timing.detached('c2');
  timing.started('c2', ns(Date.now()));
  t.equal(count('start_to_ip'), 0, 'the start of a container detached meanwhile is not counted as up before it');
});
