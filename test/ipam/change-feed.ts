// The change feed's loop against a store that answers as told: entries
// become changes, a failure pauses live updates until the store answers
// again, a new pool is announced and followed, and stop() ends the wait.
import t from 'tap';
import type { HistoryCursor, HistoryTail, Store } from '../../ipam/model.js';
import { ChangeFeed, type Change } from '../../ipam/change-feed.js';

type Answer = HistoryTail | Error;

/** historyAfter answers from a script, one answer per call; with none left it waits until closed. */
function scriptedStore(answers: Answer[]) {
  const calls: Array<{ pools: string[]; cursor: HistoryCursor }> = [];
  let release: () => void = () => {};
  let closed = false;
  const store = {
    async historyAfter(pools: string[], cursor: HistoryCursor): Promise<HistoryTail> {
      calls.push({ pools, cursor });
      const next = answers.shift();
      if (next instanceof Error) throw next;
      if (next) return next;
      await new Promise<void>((r) => (release = r));
      if (closed) throw new Error('closed');
      return { cursor, entries: [] };
    },
    async close() {
      closed = true;
      release();
    },
  };
  return { store: store as unknown as Store, calls };
}

const quiet = { info() {}, warn() {} };

t.test('entries become changes with the address as text; the cursor is carried on', async (t) => {
  const { store, calls } = scriptedStore([
    { cursor: { web: '1-0' }, entries: [] },
    { cursor: { web: '2-0' }, entries: [{ pool: 'web', at: 5, event: 'allocate', ip: '0a000005', owner: 'o' }] },
  ]);
  const feed = new ChangeFeed(store, async () => ['web'], 100, quiet);
  const seen: Change[] = [];
  const live: boolean[] = [];
  feed.subscribe((c) => seen.push(c), (l) => live.push(l));
  feed.start();
  while (calls.length < 3) await new Promise((r) => setTimeout(r, 5));
  await feed.stop();
  t.same(seen, [{ pool: 'web', ip: '10.0.0.5', hex: '0a000005', event: 'allocate', at: 5 }]);
  t.equal(feed.following('web'), false, 'once stopped, no longer');
  t.same(calls.map((c) => c.cursor), [{}, { web: '1-0' }, { web: '2-0' }]);
  t.same(live, [true, false], 'live, then not once stopped');
  t.equal(feed.live, false);
});

t.test('a failing store pauses live updates, which come back when it answers', async (t) => {
  const { store, calls } = scriptedStore([{ cursor: { web: '1-0' }, entries: [] }, new Error('connection refused'), { cursor: { web: '1-0' }, entries: [] }]);
  const warnings: string[] = [];
  const feed = new ChangeFeed(store, async () => ['web'], 100, { info() {}, warn: (o: object, m: string) => warnings.push(`${m} ${JSON.stringify(o)}`) });
  const live: boolean[] = [];
  feed.subscribe(() => {}, (l) => live.push(l));
  feed.start();
  while (calls.length < 4) await new Promise((r) => setTimeout(r, 10));
  await feed.stop();
  t.same(live, [true, false, true, false], 'the pages hear of the pause, the return and the stop');
  t.same(warnings, ['live updates paused: failed to follow the pool histories {"err":"connection refused"}']);
});

t.test('a new pool is announced to the pages, and followed', async (t) => {
  let names = ['web'];
  const { store, calls } = scriptedStore([]);
  const feed = new ChangeFeed(store, async () => names, 100, quiet);
  const seen: Change[] = [];
  feed.subscribe((c) => seen.push(c));
  const poolsChanged = (feed as unknown as { poolsChanged(b: string[], a: string[]): void }).poolsChanged.bind(feed);
  poolsChanged(['web'], ['db', 'web']);
  t.match(seen, [{ pool: 'db', ip: null, event: 'pool' }]);
  names = ['db', 'web'];
  feed.start();
  while (calls.length < 1) await new Promise((r) => setTimeout(r, 5));
  t.same(calls[0]!.pools, ['db', 'web']);
  const t0 = Date.now();
  await feed.stop();
  t.ok(Date.now() - t0 < 1000, 'stop() ends a wait in progress');
});
