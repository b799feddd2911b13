// One run at a time, the calls that come meanwhile folded into one more run.
import t from 'tap';
import { Coalesced } from '../../core/coalesce.js';

t.test('a burst of calls during a run costs one more run, and each call waits for a run that started after it', async (t) => {
  const starts: number[] = [];
  let release!: () => void;
  let calls = 0;
  const c = new Coalesced(async () => {
    starts.push(calls);
    await new Promise<void>((r) => (release = r));
  });
  calls = 1;
  const first = c.run();
  t.ok(c.busy);
  const during = Array.from({ length: 10 }, () => ((calls += 1), c.run()));
  let settled = false;
  void Promise.all(during).then(() => (settled = true));
  release(); // the first run ends; one more starts for the ten calls
  await new Promise((r) => setImmediate(r));
  t.equal(starts.length, 2, 'two runs for eleven calls');
  t.equal(starts[1], 11, 'the second run started after every call');
  t.notOk(settled, 'the calls made during the first run wait for the second');
  release();
  await first;
  await Promise.all(during);
  t.notOk(c.busy);
  await c.idle();
});

t.test('more() false ends the loop: no run after a stop', async (t) => {
  let runs = 0;
  let stopping = false;
  let release!: () => void;
  const c = new Coalesced(
    async () => {
      runs++;
      await new Promise<void>((r) => (release = r));
    },
    () => !stopping,
  );
  const p = c.run();
  void c.run();
  stopping = true;
  release();
  await p;
  t.equal(runs, 1, 'the second run was asked for, but the loop stopped');
});

t.test('a task that throws does not wedge it', async (t) => {
  let n = 0;
  const c = new Coalesced(async () => {
    n++;
    if (n === 1) throw new Error('boom');
  });
  await t.rejects(c.run(), /boom/);
  await c.run();
  t.equal(n, 2, 'the next call runs again');
});
