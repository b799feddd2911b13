import t from 'tap';
import { TimeQueue } from '../../ipam/time-queue.js';

const addr = (n: number): string => n.toString(16).padStart(8, '0');
const all = (q: TimeQueue): Array<[string, number]> => [...q];

/** Deterministic PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** The reference: a plain map, sorted on demand by (time, address). */
class Model {
  readonly map = new Map<string, number>();
  order(): Array<[string, number]> {
    return [...this.map].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
  upTo(until: number, limit: number): string[] {
    return this.order()
      .filter(([, time]) => time <= until)
      .slice(0, limit)
      .map(([hex]) => hex);
  }
}

t.test('an empty queue', async (t) => {
  const q = new TimeQueue();
  t.equal(q.size, 0);
  t.equal(q.first(), undefined);
  t.strictSame(q.upTo(Infinity, 10), []);
  t.strictSame(all(q), []);
  t.equal(q.has(addr(1)), false);
  t.equal(q.get(addr(1)), undefined);
  q.delete(addr(1));
  t.equal(q.size, 0, 'deleting an absent address is a no-op');
});

t.test('ordered by time, then by address', async (t) => {
  const q = new TimeQueue();
  q.set(addr(5), 100);
  q.set(addr(3), 200);
  q.set(addr(9), 100);
  q.set(addr(1), 100);
  q.set(addr(2), 50);
  t.strictSame(all(q), [
    [addr(2), 50],
    [addr(1), 100],
    [addr(5), 100],
    [addr(9), 100],
    [addr(3), 200],
  ]);
  t.equal(q.first(), addr(2));
  t.equal(q.size, 5);
  t.equal(q.get(addr(9)), 100);
  t.equal(q.has(addr(3)), true);
  t.equal(q.has(addr(4)), false);
});

t.test('out-of-order inserts land in place', async (t) => {
  const q = new TimeQueue();
  for (const [n, time] of [[1, 10], [2, 20], [3, 30], [4, 40], [5, 5], [6, 25], [7, 45], [8, 0], [9, 25]] as const) q.set(addr(n), time);
  t.strictSame(
    all(q).map(([hex]) => hex),
    [8, 5, 1, 2, 6, 9, 3, 4, 7].map(addr),
  );
  t.equal(q.first(), addr(8));
});

t.test('first() skips deleted heads', async (t) => {
  const q = new TimeQueue();
  q.set(addr(1), 1);
  q.set(addr(2), 2);
  q.set(addr(3), 3);
  q.delete(addr(1));
  t.equal(q.first(), addr(2));
  q.delete(addr(2));
  t.equal(q.first(), addr(3));
  q.delete(addr(3));
  t.equal(q.first(), undefined);
  t.equal(q.size, 0);
  // and the queue is still usable
  q.set(addr(4), 0);
  t.equal(q.first(), addr(4));
});

t.test('upTo: inclusive bound, limit, dead entries not counted', async (t) => {
  const q = new TimeQueue();
  for (let n = 1; n <= 6; n++) q.set(addr(n), n * 10);
  t.strictSame(q.upTo(30, 10), [addr(1), addr(2), addr(3)], 'time == until is included');
  t.strictSame(q.upTo(29, 10), [addr(1), addr(2)]);
  t.strictSame(q.upTo(9, 10), []);
  t.strictSame(q.upTo(1000, 2), [addr(1), addr(2)], 'limit');
  t.strictSame(q.upTo(1000, 0), []);
  q.delete(addr(2));
  q.delete(addr(3));
  t.strictSame(q.upTo(1000, 2), [addr(1), addr(4)], 'deleted entries do not use up the limit');
  t.strictSame(q.upTo(40, 10), [addr(1), addr(4)]);
  t.equal(q.countUpTo(40), 2, 'countUpTo: deleted entries are not counted');
  t.equal(q.countUpTo(39), 1);
  t.equal(q.countUpTo(9), 0);
  t.equal(q.countUpTo(Infinity), 4);
  // upTo only reads
  t.equal(q.size, 4);
  t.strictSame(q.upTo(1000, 2), [addr(1), addr(4)]);
});

t.test('moving an address to a new time', async (t) => {
  const q = new TimeQueue();
  q.set(addr(1), 10);
  q.set(addr(2), 20);
  q.set(addr(3), 30);
  q.set(addr(1), 40);
  t.equal(q.size, 3, 'moving does not add');
  t.equal(q.get(addr(1)), 40);
  t.strictSame(all(q), [
    [addr(2), 20],
    [addr(3), 30],
    [addr(1), 40],
  ]);
  t.equal(q.first(), addr(2));
  q.set(addr(3), 5);
  t.strictSame(all(q), [
    [addr(3), 5],
    [addr(2), 20],
    [addr(1), 40],
  ]);
  t.equal(q.first(), addr(3));
  t.strictSame(q.upTo(30, 10), [addr(3), addr(2)], 'the old time of a moved address is gone');
  // back to an earlier time it once had
  q.set(addr(1), 10);
  t.strictSame(all(q).map(([hex]) => hex), [addr(3), addr(1), addr(2)]);
  t.strictSame(q.upTo(1000, 10), [addr(3), addr(1), addr(2)]);
});

t.test('setting the same time twice is one entry', async (t) => {
  const q = new TimeQueue();
  q.set(addr(1), 10);
  q.set(addr(1), 10);
  t.equal(q.size, 1);
  t.strictSame(all(q), [[addr(1), 10]]);
  t.strictSame(q.upTo(10, 10), [addr(1)]);
});

t.test('delete', async (t) => {
  const q = new TimeQueue();
  q.set(addr(1), 10);
  q.set(addr(2), 20);
  q.set(addr(3), 30);
  q.delete(addr(2));
  t.equal(q.size, 2);
  t.equal(q.has(addr(2)), false);
  t.equal(q.get(addr(2)), undefined);
  t.strictSame(all(q), [
    [addr(1), 10],
    [addr(3), 30],
  ]);
  q.delete(addr(2));
  t.equal(q.size, 2, 'a second delete changes nothing');
});

t.test('re-adding a deleted address at the same time yields it once', async (t) => {
  const q = new TimeQueue();
  q.set(addr(1), 10);
  q.set(addr(2), 20);
  q.delete(addr(1));
  q.set(addr(1), 10);
  t.equal(q.size, 2);
  t.strictSame(all(q), [
    [addr(1), 10],
    [addr(2), 20],
  ]);
  t.strictSame(q.upTo(100, 10), [addr(1), addr(2)]);
  t.equal(q.first(), addr(1));

  // the same with the last entry, and several rounds
  for (let i = 0; i < 3; i++) {
    q.delete(addr(2));
    q.set(addr(2), 20);
  }
  t.strictSame(all(q), [
    [addr(1), 10],
    [addr(2), 20],
  ]);
  t.strictSame(q.upTo(100, 10), [addr(1), addr(2)]);

  // and moved away and back to the same time
  q.set(addr(1), 30);
  q.set(addr(1), 10);
  t.strictSame(q.upTo(100, 10), [addr(1), addr(2)]);
  t.strictSame(all(q), [
    [addr(1), 10],
    [addr(2), 20],
  ]);
});

t.test('compaction after many deletes keeps the contents', async (t) => {
  const q = new TimeQueue();
  for (let n = 0; n < 1000; n++) q.set(addr(n), n);
  for (let n = 0; n < 1000; n++) if (n % 10 !== 7) q.delete(addr(n));
  const want = Array.from({ length: 100 }, (_, i) => [addr(i * 10 + 7), i * 10 + 7]);
  t.equal(q.size, 100);
  t.strictSame(all(q), want);
  t.equal(q.first(), addr(7));
  t.strictSame(q.upTo(50, 100), [addr(7), addr(17), addr(27), addr(37), addr(47)]);
  // the dead entries were dropped, not only skipped
  const internal = q as unknown as { entries: unknown[]; head: number };
  t.ok(internal.entries.length - internal.head <= 2 * 100 + 64, `entries compacted (${internal.entries.length - internal.head} kept)`);
  // inserts after compaction still go in order
  q.set(addr(5000), 8);
  q.set(addr(5001), 1);
  t.strictSame(q.upTo(17, 10), [addr(5001), addr(7), addr(5000), addr(17)]);
});

t.test('randomized against a reference model', async (t) => {
  const random = rng(20240601);
  const q = new TimeQueue();
  const model = new Model();
  const addresses = Array.from({ length: 150 }, (_, i) => addr(0x0a000000 + i * 7));
  let clock = 0;
  let mismatches = 0;
  let maxSize = 0;
  // only compaction ever shortens the internal array
  const internal = q as unknown as { entries: unknown[] };
  let compactions = 0;
  let entries = 0;
  const check = (step: number, full: boolean): void => {
    const order = model.order();
    if (q.size !== model.map.size) {
      mismatches++;
      t.equal(q.size, model.map.size, `size at step ${step}`);
    }
    if (q.first() !== order[0]?.[0]) {
      mismatches++;
      t.equal(q.first(), order[0]?.[0], `first() at step ${step}`);
    }
    if (full) {
      const got = all(q);
      if (JSON.stringify(got) !== JSON.stringify(order)) {
        mismatches++;
        t.strictSame(got, order, `iteration at step ${step}`);
      }
      const until = clock - 50 + Math.floor(random() * 100);
      const limit = Math.floor(random() * 20);
      const up = q.upTo(until, limit);
      const wantUp = model.upTo(until, limit);
      if (JSON.stringify(up) !== JSON.stringify(wantUp)) {
        mismatches++;
        t.strictSame(up, wantUp, `upTo(${until}, ${limit}) at step ${step}`);
      }
      const wantCount = model.upTo(until, Infinity).length;
      if (q.countUpTo(until) !== wantCount) {
        mismatches++;
        t.equal(q.countUpTo(until), wantCount, `countUpTo(${until}) at step ${step}`);
      }
    }
  };

  for (let step = 0; step < 5000; step++) {
    const hex = addresses[Math.floor(random() * addresses.length)]!;
    const r = random();
    // phases: fill, churn, drain, so the queue grows, compacts and empties
    const phase = Math.floor(step / 500) % 3;
    const pDelete = phase === 0 ? 0.15 : phase === 1 ? 0.45 : 0.85;
    if (r < pDelete) {
      q.delete(hex);
      model.map.delete(hex);
    } else {
      clock += Math.floor(random() * 3);
      // mostly increasing times, some earlier (out-of-order) and many ties
      const time = random() < 0.2 ? clock - Math.floor(random() * 40) : clock;
      q.set(hex, time);
      model.map.set(hex, time);
    }
    if (model.map.has(hex)) {
      if (q.get(hex) !== model.map.get(hex)) {
        mismatches++;
        t.equal(q.get(hex), model.map.get(hex), `get at step ${step}`);
      }
    } else if (q.has(hex)) {
      mismatches++;
      t.fail(`${hex} still present after delete at step ${step}`);
    }
    maxSize = Math.max(maxSize, model.map.size);
    if (internal.entries.length < entries) compactions++;
    entries = internal.entries.length;
    check(step, step % 7 === 0);
    if (mismatches > 5) break;
  }
  check(5000, true);
  t.equal(mismatches, 0, 'no mismatch with the model');
  t.ok(maxSize > 64, `the queue grew past the compaction threshold (max ${maxSize})`);
  t.ok(compactions >= 3, `the queue was compacted along the way (${compactions} times)`);
});
