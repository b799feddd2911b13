// ipam/engine.ts on its own: every rule, over a small pool held in memory
// (file-txn.ts: newPool and FileTxn, no I/O), at times the test chooses.
import t from 'tap';
import { isDeepStrictEqual } from 'node:util';
import { formatIp, parseIp } from '../../core/address.js';
import { isBerthError } from '../../core/errors.js';
import * as engine from '../../ipam/engine.js';
import { FileTxn, newPool, type PoolState } from '../../ipam/file-txn.js';
import { attachmentKey, type AddrRecord, type HistoryEntry, type PoolMeta } from '../../ipam/model.js';
import { buildPoolConfig, type PoolConfig, type PoolSpec } from '../../ipam/pool-config.js';

const T0 = 1_700_000_000_000;
const ip = (text: string): string => parseIp(text, 'ip').hex;

/** A new pool as createPool makes it: 10.0.0.0/29 (assignable .2-.6) unless the spec says otherwise. */
function pool(spec: Partial<PoolSpec> = {}): PoolState {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/29', hold: 60, ...spec });
  return newPool(conf, { cursor: conf.ranges[0]![0], gen: 0, allocated: 0, reserved: 0 });
}

/** Runs one operation in a transaction of its own at `now`, as the store does; returns its result and what it logged. */
function run<T>(p: PoolState, now: number, op: (txn: FileTxn) => T): { result: T; history: HistoryEntry[]; txn: FileTxn } {
  const txn = new FileTxn(p, now);
  const result = op(txn);
  return { result, history: txn.history.map(({ pool: _, ...e }) => e), txn };
}

function allocate(p: PoolState, now: number, containerId: string, owner: string, more: { ip?: string; host?: string; hostId?: string; network?: string } = {}) {
  return run(p, now, (txn) => engine.allocate(txn, { containerId, ifname: 'eth0', owner, ...more })).result;
}

function release(p: PoolState, now: number, req: Parameters<typeof engine.release>[1]) {
  return run(p, now, (txn) => engine.release(txn, req)).result;
}

/** The error code an operation fails with, or 'ok'. */
function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (isBerthError(err)) return err.code;
    throw err;
  }
}

const counters = (p: PoolState) => ({ allocated: p.meta.allocated, reserved: p.meta.reserved });

t.test('the cursor hands out never-used addresses in address order, skipping excluded, recorded and free-listed ones, across ranges', async (t) => {
  const p = pool({ subnet: '10.0.0.0/28', ranges: ['10.0.0.2-10.0.0.4', '10.0.0.8-10.0.0.9'], gateway: '10.0.0.3', hold: 0 });
  p.free.set(ip('10.0.0.4'), T0 - 1000); // released earlier: the free list, not the cursor, hands it out
  run(p, T0, (txn) => engine.reserve(txn, ip('10.0.0.8'), {}));
  const got = [1, 2, 3].map((i) => allocate(p, T0 + i, `c${i}`, `o${i}`));
  t.same(
    got.map((a) => a.ip),
    [ip('10.0.0.2'), ip('10.0.0.9'), ip('10.0.0.4')],
    '.3 is the gateway, .4 is on the free list, .8 is reserved: the cursor gives .2 and .9, then the free list .4',
  );
  t.same(
    got.map((a) => a.gen),
    [1, 2, 3],
    'each allocation is the next generation',
  );
  t.equal(p.meta.cursor, '', 'the cursor is spent once it has walked every range');
  t.equal(p.free.has(ip('10.0.0.4')), false, 'an address handed out leaves the free list');
  t.throws(() => allocate(p, T0 + 9, 'c9', 'o9'), { code: 'POOL_EXHAUSTED', message: 'pool "p" has no free address (3 allocated, 1 reserved)' }, 'then none is left');
});

t.test('once the cursor is spent, the address released longest ago goes first; free-list entries the pool cannot hand out are dropped', async (t) => {
  const p = pool({ hold: 0 });
  const ips = [0, 1, 2, 3, 4].map((i) => allocate(p, T0, `c${i}`, `o${i}`).ip);
  t.same(ips, ['.2', '.3', '.4', '.5', '.6'].map((x) => ip(`10.0.0${x}`)));
  release(p, T0 + 10, { containerId: 'c2', ifname: 'eth0' });
  release(p, T0 + 20, { containerId: 'c0', ifname: 'eth0' });
  release(p, T0 + 30, { containerId: 'c4', ifname: 'eth0' });
  t.equal(p.free.get(ips[2]!), T0 + 10, 'a released address is on the free list at its release time');
  p.free.set(ip('10.0.0.7'), T0 - 2); // the broadcast address: never assignable
  p.free.set(ips[1]!, T0 - 1); // an address that is allocated
  const next = [0, 1, 2].map((i) => allocate(p, T0 + 40, `n${i}`, `n${i}`).ip);
  t.same(next, [ips[2], ips[0], ips[4]], 'released .4 first, then .2, then .6: least recently released first');
  t.equal(p.free.has(ip('10.0.0.7')), false, 'the unassignable entry is dropped');
  t.equal(p.free.has(ips[1]!), false, 'the entry of an address in use is dropped');
  t.equal(p.addr.get(ips[1]!)?.c, 'c1', 'and that address still belongs to its container');

  const q = pool({ subnet: '10.1.0.0/28', hold: 0 });
  const first = allocate(q, T0, 'a', 'a');
  release(q, T0 + 1, { containerId: 'a', ifname: 'eth0' });
  t.not(allocate(q, T0 + 2, 'b', 'b').ip, first.ip, 'a never-used address goes before a just-released one');
});

t.test('an owner gets the lowest address reserved for it (held or an admin reservation) before the cursor; stale held entries are skipped and dropped', async (t) => {
  const p = pool({ hold: 60 });
  allocate(p, T0, 'c1', 'web'); // .2
  allocate(p, T0, 'c2', 'web'); // .3
  allocate(p, T0, 'c3', 'other'); // .4
  release(p, T0 + 1, { containerId: 'c2', ifname: 'eth0' });
  release(p, T0 + 2, { containerId: 'c1', ifname: 'eth0' });
  t.same(counters(p), { allocated: 1, reserved: 2 }, 'two holds');
  const stranger = allocate(p, T0 + 3, 's', 'stranger');
  t.equal(stranger.ip, ip('10.0.0.5'), 'another owner passes the holds by');
  const back = allocate(p, T0 + 4, 'c9', 'web');
  t.equal(back.ip, ip('10.0.0.2'), 'the lowest held address, not the one released last');
  t.equal(p.addr.get(back.ip)?.p, undefined, 'a hold taken back is not pinned');
  t.equal(allocate(p, T0 + 5, 'c10', 'web').ip, ip('10.0.0.3'), 'then the next one held');

  const q = pool({ hold: 60 });
  run(q, T0, (txn) => engine.reserve(txn, ip('10.0.0.5'), { owner: 'db', note: 'primary' }));
  const db = allocate(q, T0 + 1, 'db1', 'db');
  t.equal(db.ip, ip('10.0.0.5'), 'an admin reservation for the owner is handed to it unasked');
  t.match(q.addr.get(db.ip), { s: 'a', p: 1, n: 'primary' }, 'pinned, keeping the note, to come back on release');

  // an owner index entry that no record bears out
  q.held.set('ghost', new Set([db.ip]));
  const ghost = allocate(q, T0 + 2, 'g', 'ghost');
  t.not(ghost.ip, db.ip, 'the stale entry is not handed out');
  t.equal(q.held.get('ghost')?.has(db.ip), false, 'and is dropped');
  t.equal(q.addr.get(db.ip)?.c, 'db1', 'its address still belongs to its container');
});

t.test('allocate is idempotent per attachment; another address asked for it conflicts; an attachment index the record does not bear out is not trusted', async (t) => {
  const p = pool();
  const a = allocate(p, T0, 'c1', 'web', { host: 'node-1', hostId: 'm1', network: 'net' });
  t.match(p.addr.get(a.ip), { s: 'a', o: 'web', c: 'c1', i: 'eth0', g: a.gen, t: T0, h: 'node-1@m1', w: 'net' }, 'the record');
  const again = run(p, T0 + 5, (txn) => engine.allocate(txn, { containerId: 'c1', ifname: 'eth0', owner: 'someone-else' }));
  t.same(again.result, { pool: 'p', ip: a.ip, gen: a.gen, owner: 'web', existing: true }, 'the same address, generation and recorded owner');
  t.same(again.txn.entries(), [], 'and nothing written');
  t.equal(allocate(p, T0 + 6, 'c1', 'web', { ip: a.ip }).existing, true, 'asking for the address it holds is the same');
  t.equal(code(() => allocate(p, T0 + 7, 'c1', 'web', { ip: ip('10.0.0.6') })), 'ATTACHMENT_CONFLICT');
  const eth1 = run(p, T0, (txn) => engine.allocate(txn, { containerId: 'c1', ifname: 'eth1', owner: 'web' })).result;
  t.not(eth1.ip, a.ip, 'another interface is another attachment');

  p.att.set(attachmentKey('c5', 'eth0'), a.ip);
  const c5 = allocate(p, T0 + 8, 'c5', 'x');
  t.equal(c5.existing, false, 'an index entry pointing at another attachment\'s address is not this attachment\'s');
  t.not(c5.ip, a.ip);
  t.equal(p.addr.get(a.ip)?.c, 'c1', 'and that address stays with c1');
});

t.test('a requested address: outside the pool, allocated, or reserved for someone else is refused; free, held for the asker, or past its hold is taken', async (t) => {
  const p = pool({ hold: 60 });
  for (const bad of ['10.0.0.0', '10.0.0.1', '10.0.0.7', '10.0.1.2']) {
    t.equal(code(() => allocate(p, T0, 'x', 'x', { ip: ip(bad) })), 'IP_NOT_IN_POOL', bad);
  }
  const a = allocate(p, T0, 'c1', 'web', { ip: ip('10.0.0.4') });
  t.equal(a.ip, ip('10.0.0.4'));
  t.throws(() => allocate(p, T0, 'c2', 'db', { ip: a.ip }), { code: 'IP_ALLOCATED', message: '10.0.0.4 is allocated to web (container c1)' });

  run(p, T0, (txn) => engine.reserve(txn, ip('10.0.0.5'), {}));
  t.equal(code(() => allocate(p, T0, 'c3', 'web', { ip: ip('10.0.0.5') })), 'IP_RESERVED', 'an admin reservation for no one is refused to all');
  run(p, T0, (txn) => engine.reserve(txn, ip('10.0.0.6'), { owner: 'db', note: 'n' }));
  t.equal(code(() => allocate(p, T0, 'c3', 'web', { ip: ip('10.0.0.6') })), 'IP_RESERVED', 'one for db is refused to web');
  t.match(allocate(p, T0, 'c4', 'db', { ip: ip('10.0.0.6') }), { ip: ip('10.0.0.6'), existing: false }, 'and given to db');
  t.match(p.addr.get(ip('10.0.0.6')), { p: 1, n: 'n' }, 'pinned to its reservation');

  release(p, T0 + 10, { containerId: 'c1', ifname: 'eth0' }); // .4 held for web until T0 + 60010
  t.equal(code(() => allocate(p, T0 + 20, 'c5', 'db', { ip: a.ip })), 'IP_RESERVED', 'a hold is refused to another owner');
  const back = allocate(p, T0 + 20, 'c5', 'web', { ip: a.ip });
  t.equal(back.ip, a.ip, 'and given to its owner');
  t.equal(p.addr.get(a.ip)?.p, undefined, 'unpinned: a hold is not an admin reservation');

  const free = pool({ hold: 0 });
  free.free.set(ip('10.0.0.3'), T0 - 1);
  allocate(free, T0, 'c1', 'o', { ip: ip('10.0.0.3') });
  t.equal(free.free.has(ip('10.0.0.3')), false, 'a free-listed address asked for leaves the free list');
});

t.test('a hold past its end reads as free to a requested allocation even before an operation has expired it', async (t) => {
  const p = pool({ subnet: '10.0.0.0/27', hold: 1 });
  const n = engine.EXPIRE_BATCH + 1;
  const ips: string[] = [];
  for (let i = 0; i < n; i++) ips.push(allocate(p, T0, `c${i}`, `o${i}`).ip);
  for (let i = 0; i < n; i++) release(p, T0 + i, { containerId: `c${i}`, ifname: 'eth0' });
  const last = ips[n - 1]!; // its hold ends last, so one operation's expiry batch does not reach it
  const now = T0 + 5000;
  const { result, history } = run(p, now, (txn) => engine.allocate(txn, { containerId: 'z', ifname: 'eth0', owner: 'other', ip: last }));
  t.equal(result.ip, last, 'taken by another owner');
  t.equal(history.filter((e) => e.event === 'expire').length, engine.EXPIRE_BATCH, `the operation expired ${engine.EXPIRE_BATCH} holds first, not that one`);
  t.same(counters(p), { allocated: 1, reserved: 0 }, 'and the counters count it once, as allocated');
});

t.test('release: a hold for the owner when the pool holds, free when it does not; a pinned address returns to its admin reservation either way', async (t) => {
  const p = pool({ hold: 60 });
  const a = allocate(p, T0, 'c1', 'web');
  t.same(release(p, T0 + 5000, { containerId: 'c1', ifname: 'eth0' }), { released: true, ip: a.ip, state: 'reserved' });
  t.same(p.addr.get(a.ip), { s: 'r', o: 'web', c: 'c1', g: a.gen, t: T0 + 5000, u: T0 + 65_000 }, 'held until the hold time from the release');
  t.same(counters(p), { allocated: 0, reserved: 1 });
  t.equal(p.free.has(a.ip), false, 'a held address is not on the free list');

  const q = pool({ hold: 0 });
  const b = allocate(q, T0, 'c1', 'web');
  const { result, history } = run(q, T0 + 7, (txn) => engine.release(txn, { containerId: 'c1', ifname: 'eth0', actor: 'cni' }));
  t.same(result, { released: true, ip: b.ip, state: 'free' });
  t.equal(q.addr.has(b.ip), false, 'no record');
  t.equal(q.free.get(b.ip), T0 + 7, 'free since now');
  t.same(history, [{ at: T0 + 7, event: 'release', ip: b.ip, owner: 'web', containerId: 'c1', ifname: 'eth0', gen: b.gen, actor: 'cni' }], 'the history names what was released');
  t.same(counters(q), { allocated: 0, reserved: 0 });

  for (const hold of [0, 60]) {
    const r = pool({ hold });
    run(r, T0, (txn) => engine.reserve(txn, ip('10.0.0.5'), { owner: 'db', note: 'primary' }));
    const db = allocate(r, T0 + 1, 'db1', 'db');
    t.same(release(r, T0 + 2, { containerId: 'db1', ifname: 'eth0' }), { released: true, ip: db.ip, state: 'reserved' }, `hold ${hold}: reserved`);
    t.same(r.addr.get(db.ip), { s: 'r', t: T0 + 2, o: 'db', n: 'primary' }, `hold ${hold}: the admin reservation again, with no end`);
  }
});

t.test('generations: a release naming an older generation is refused; a late release by attachment frees nobody else', async (t) => {
  const p = pool({ hold: 0 });
  const a = allocate(p, T0, 'old', 'o1');
  t.same(release(p, T0 + 1, { ip: a.ip, gen: a.gen }), { released: true, ip: a.ip, state: 'free' }, 'the current generation releases');
  const b = allocate(p, T0 + 2, 'new', 'o2', { ip: a.ip });
  t.equal(b.gen, a.gen + 1);
  t.throws(() => release(p, T0 + 3, { ip: a.ip, gen: a.gen }), { code: 'STALE_GENERATION', message: `10.0.0.2 is at generation ${b.gen}, the request refers to ${a.gen}` });
  t.same(release(p, T0 + 3, { containerId: 'old', ifname: 'eth0' }), { released: false }, 'the old attachment has nothing to release');
  p.att.set(attachmentKey('late', 'eth0'), b.ip); // an index entry the record does not bear out
  t.same(release(p, T0 + 3, { containerId: 'late', ifname: 'eth0' }), { released: false }, 'nor has one the index wrongly points at it');
  t.match(p.addr.get(a.ip), { s: 'a', c: 'new', g: b.gen }, 'the new allocation stands');
  t.equal(code(() => release(p, T0 + 4, { ip: ip('10.0.0.6') })), 'IP_NOT_ALLOCATED', 'a free address is not released by address');
  run(p, T0, (txn) => engine.reserve(txn, ip('10.0.0.6'), {}));
  t.throws(() => release(p, T0 + 4, { ip: ip('10.0.0.6') }), { code: 'IP_NOT_ALLOCATED', message: '10.0.0.6 is reserved, not allocated' });
  t.same(release(p, T0 + 5, { ip: b.ip }), { released: true, ip: b.ip, state: 'free' }, 'without a generation, by address');
});

t.test('reserve: a free or held address becomes an admin reservation; an allocated one is pinned for its own owner only', async (t) => {
  const p = pool({ hold: 60 });
  p.free.set(ip('10.0.0.5'), T0 - 1);
  const { result, history } = run(p, T0, (txn) => engine.reserve(txn, ip('10.0.0.5'), { owner: 'db', note: 'n1', actor: 'admin' }));
  t.match(result, { state: 'reserved', owner: 'db', note: 'n1' });
  t.same(p.addr.get(ip('10.0.0.5')), { s: 'r', t: T0, o: 'db', n: 'n1' }, 'no end: an admin reservation');
  t.equal(p.free.has(ip('10.0.0.5')), false, 'it leaves the free list');
  t.same(history, [{ at: T0, event: 'reserve', ip: ip('10.0.0.5'), owner: 'db', actor: 'admin', note: 'n1' }]);

  const a = allocate(p, T0, 'c1', 'web');
  release(p, T0 + 1, { containerId: 'c1', ifname: 'eth0' });
  run(p, T0 + 2, (txn) => engine.reserve(txn, a.ip, {}));
  t.same(p.addr.get(a.ip), { s: 'r', t: T0 + 2 }, 'a hold reserved for no one loses its owner and its end');
  t.same(counters(p), { allocated: 0, reserved: 2 });

  const w = allocate(p, T0 + 3, 'w1', 'w');
  t.equal(code(() => run(p, T0 + 4, (txn) => engine.reserve(txn, w.ip, {}))), 'IP_ALLOCATED', 'for no one');
  t.equal(code(() => run(p, T0 + 4, (txn) => engine.reserve(txn, w.ip, { owner: 'x' }))), 'IP_ALLOCATED', 'for another owner');
  const pin = run(p, T0 + 4, (txn) => engine.reserve(txn, w.ip, { owner: 'w', note: 'keep' }));
  t.match(pin.result, { state: 'allocated', pinned: true, note: 'keep', containerId: 'w1' });
  t.equal(pin.history[0]?.event, 'pin');
  t.same(counters(p), { allocated: 1, reserved: 2 }, 'pinning changes no counter');
  t.equal(code(() => run(p, T0, (txn) => engine.reserve(txn, ip('10.0.0.7'), {}))), 'IP_NOT_IN_POOL');
});

t.test('unreserve: an admin reservation becomes free first in line, a hold free since its release; a pinned allocation is unpinned', async (t) => {
  const p = pool({ hold: 60 });
  run(p, T0, (txn) => engine.reserve(txn, ip('10.0.0.6'), { owner: 'db' }));
  const un = run(p, T0 + 10, (txn) => engine.unreserve(txn, ip('10.0.0.6'), { actor: 'admin' }));
  t.same(un.result, { pool: 'p', ip: ip('10.0.0.6'), state: 'free' });
  t.equal(p.free.get(ip('10.0.0.6')), 0, 'free at time 0: ahead of every released address');
  t.same(un.history, [{ at: T0 + 10, event: 'unreserve', ip: ip('10.0.0.6'), owner: 'db', actor: 'admin' }]);

  const a = allocate(p, T0, 'c1', 'web');
  release(p, T0 + 20, { containerId: 'c1', ifname: 'eth0' });
  run(p, T0 + 30, (txn) => engine.unreserve(txn, a.ip, {}));
  t.equal(p.free.get(a.ip), T0 + 20, 'a hold ended by hand is free since its release');
  t.same(counters(p), { allocated: 0, reserved: 0 });

  const b = allocate(p, T0, 'c2', 'web');
  t.throws(() => run(p, T0, (txn) => engine.unreserve(txn, b.ip, {})), { code: 'IP_NOT_RESERVED', message: `${formatIp(b.ip)} is allocated, not reserved` });
  run(p, T0, (txn) => engine.reserve(txn, b.ip, { owner: 'web', note: 'keep' }));
  const unpin = run(p, T0 + 1, (txn) => engine.unreserve(txn, b.ip, {}));
  t.same(p.addr.get(b.ip), { s: 'a', o: 'web', c: 'c2', i: 'eth0', g: b.gen, t: T0 }, 'still allocated, without the pin or its note');
  t.equal(unpin.history[0]?.event, 'unpin');
  t.equal(code(() => run(p, T0, (txn) => engine.unreserve(txn, ip('10.0.0.5'), {}))), 'IP_NOT_RESERVED', 'a free address');
});

t.test('expireHolds: ended holds become free since their release, earliest end first, a batch at a time; live holds and admin reservations stay', async (t) => {
  const p = pool({ subnet: '10.0.0.0/27', hold: 1 });
  const ips: string[] = [];
  for (let i = 0; i < 20; i++) ips.push(allocate(p, T0, `c${i}`, `o${i}`).ip);
  for (let i = 0; i < 20; i++) release(p, T0 + 19 - i, { containerId: `c${i}`, ifname: 'eth0' }); // the last address's hold ends first
  const now = T0 + 1500;
  const read = run(p, now, (txn) => engine.usage(txn));
  t.same(read.result, { allocated: 0, reserved: 0 }, 'usage reads every ended hold as free');
  t.same(read.txn.entries(), [], 'without writing');
  t.equal(p.meta.reserved, 20, 'the stored counter still counts them');

  const first = run(p, now, (txn) => engine.expireHolds(txn));
  t.equal(first.result, engine.EXPIRE_BATCH, 'one batch');
  t.same(
    first.history.map((e) => e.ip),
    ips.slice(20 - engine.EXPIRE_BATCH).reverse(),
    'earliest end first',
  );
  t.match(first.history[0], { event: 'expire', owner: 'o19', containerId: 'c19', gen: 20 });
  t.equal(p.free.get(ips[19]!), T0, 'free since its release');
  t.equal(p.meta.reserved, 20 - engine.EXPIRE_BATCH);
  t.equal(run(p, now, (txn) => engine.expireHolds(txn)).result, 20 - engine.EXPIRE_BATCH, 'the rest with the next');
  t.same(counters(p), { allocated: 0, reserved: 0 });

  const q = pool({ hold: 60 });
  const live = allocate(q, T0, 'c1', 'web');
  release(q, T0, { containerId: 'c1', ifname: 'eth0' });
  run(q, T0, (txn) => engine.reserve(txn, ip('10.0.0.5'), {}));
  q.expiry.set(live.ip, T0); // an expiry index entry earlier than the hold's real end
  q.expiry.set(ip('10.0.0.5'), T0); // and one for an admin reservation
  t.equal(run(q, T0 + 1000, (txn) => engine.expireHolds(txn)).result, 0, 'nothing expired');
  t.match(q.addr.get(live.ip), { s: 'r', o: 'web', u: T0 + 60_000 }, 'the live hold stands');
  t.match(q.addr.get(ip('10.0.0.5')), { s: 'r', t: T0 }, 'the admin reservation stands');
});

t.test('every operation expires ended holds before its own change, and keeps that when it then fails', async (t) => {
  const ops: Array<[string, (txn: FileTxn) => unknown]> = [
    ['allocate', (txn) => engine.allocate(txn, { containerId: 'n', ifname: 'eth0', owner: 'n' })],
    ['release', (txn) => engine.release(txn, { containerId: 'nobody', ifname: 'eth0' })],
    ['reserve', (txn) => engine.reserve(txn, ip('10.0.0.7'), {})],
    ['unreserve', (txn) => engine.unreserve(txn, ip('10.0.0.6'), {})],
    ['conflict', (txn) => engine.conflict(txn, ip('10.0.0.7'), { note: 'x' })],
  ];
  for (const [name, op] of ops) {
    const p = pool({ hold: 1 });
    const a = allocate(p, T0, 'c1', 'web');
    release(p, T0 + 1, { containerId: 'c1', ifname: 'eth0' });
    code(() => run(p, T0 + 2000, op));
    t.equal(p.addr.has(a.ip), false, `${name}: the ended hold is gone`);
    t.equal(p.free.get(a.ip), T0 + 1, `${name}: and free since its release`);
  }
});

t.test('conflict: the allocation of the attachment that found it is withdrawn and reserved for no one; anyone else\'s finding only enters the history', async (t) => {
  const p = pool({ hold: 60 });
  const a = allocate(p, T0, 'c1', 'web');
  const note = 'in use by 02:aa:00:00:00:09';
  const found = run(p, T0 + 1, (txn) => engine.conflict(txn, a.ip, { containerId: 'c1', ifname: 'eth0', note, actor: 'cni@h1' }));
  t.match(found.result, { state: 'reserved', note });
  t.same(p.addr.get(a.ip), { s: 'r', t: T0 + 1, n: note }, 'reserved for no one, with no end');
  t.same(counters(p), { allocated: 0, reserved: 1 });
  t.same(found.history, [{ at: T0 + 1, event: 'conflict', ip: a.ip, owner: 'web', containerId: 'c1', ifname: 'eth0', gen: a.gen, actor: 'cni@h1', note }], 'the history names the withdrawn allocation');
  const next = allocate(p, T0 + 2, 'c1', 'web');
  t.equal(next.existing, false, 'the attachment has no address any more');
  t.not(next.ip, a.ip, 'and its owner is not handed the conflicted one');

  for (const who of [{ containerId: 'c1', ifname: 'eth1' }, { containerId: 'c7', ifname: 'eth0' }, {}]) {
    const before = structuredClone(p.addr.get(next.ip));
    const seen = run(p, T0 + 3, (txn) => engine.conflict(txn, next.ip, { ...who, note: 'held elsewhere' }));
    t.match(seen.result, { state: 'allocated', containerId: 'c1' }, `${JSON.stringify(who)}: nothing moves`);
    t.same(p.addr.get(next.ip), before);
    t.match(seen.history, [{ event: 'conflict', ip: next.ip, containerId: 'c1', note: 'held elsewhere' }], 'the history records it');
  }
  const free = run(p, T0 + 4, (txn) => engine.conflict(txn, ip('10.0.0.6'), { note: 'x' }));
  t.equal(free.result.state, 'free', 'a free address stays free');
  t.equal(code(() => run(p, T0, (txn) => engine.conflict(txn, ip('10.0.0.0'), { note: 'x' }))), 'IP_NOT_IN_POOL');
});

/**
 * The indexes kept apart from the records, as the Redis store keeps them:
 * read by the engine and changed only by its put calls. The records, the
 * free list and the counters are the FileTxn's.
 */
class IndexedTxn implements engine.PoolTxn {
  constructor(
    private readonly inner: FileTxn,
    private readonly idx: { att: Map<string, string>; held: Map<string, Set<string>>; expiry: Map<string, number> },
  ) {}
  get conf(): PoolConfig {
    return this.inner.conf;
  }
  get now(): number {
    return this.inner.now;
  }
  get meta(): PoolMeta {
    return this.inner.meta;
  }
  getAddr(hex: string): AddrRecord | undefined {
    return this.inner.getAddr(hex);
  }
  putAddr(hex: string, rec: AddrRecord | undefined): void {
    this.inner.putAddr(hex, rec);
  }
  getAtt(key: string): string | undefined {
    return this.idx.att.get(key);
  }
  putAtt(key: string, hex: string | undefined): void {
    if (hex === undefined) this.idx.att.delete(key);
    else this.idx.att.set(key, hex);
  }
  firstHeld(owner: string): string | undefined {
    return [...(this.idx.held.get(owner) ?? [])].sort()[0];
  }
  putHeld(owner: string, hex: string, present: boolean): void {
    const set = this.idx.held.get(owner) ?? new Set<string>();
    if (present) set.add(hex);
    else set.delete(hex);
    if (set.size > 0) this.idx.held.set(owner, set);
    else this.idx.held.delete(owner);
  }
  private ended(now: number): string[] {
    return [...this.idx.expiry]
      .filter(([, until]) => until <= now)
      .sort(([a, x], [b, y]) => x - y || (a < b ? -1 : 1))
      .map(([hex]) => hex);
  }
  expiredHolds(now: number, limit: number): string[] {
    return this.ended(now).slice(0, limit);
  }
  countExpired(now: number): number {
    return this.ended(now).length;
  }
  putExpiry(hex: string, until: number | undefined): void {
    if (until === undefined) this.idx.expiry.delete(hex);
    else this.idx.expiry.set(hex, until);
  }
  freeHas(hex: string): boolean {
    return this.inner.freeHas(hex);
  }
  putFree(hex: string, releasedAt: number | undefined): void {
    this.inner.putFree(hex, releasedAt);
  }
  oldestFree(): string | undefined {
    return this.inner.oldestFree();
  }
  log(entry: HistoryEntry): void {
    this.inner.log(entry);
  }
}

t.test('the index changes the engine makes keep indexes stored apart from the records (as in Redis) equal to the records', async (t) => {
  const p = pool({ hold: 1 });
  const idx = { att: new Map<string, string>(), held: new Map<string, Set<string>>(), expiry: new Map<string, number>() };
  const assignable = ['.2', '.3', '.4', '.5', '.6'].map((x) => ip(`10.0.0${x}`));
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const owners = ['a', 'b', 'c', 'd'];
  const seen = new Set<string>();
  let now = T0;
  let steps = 0;
  for (let step = 0; step < 2000; step++) {
    now += rnd(200);
    const cid = `c${rnd(8)}`;
    const hex = assignable[rnd(assignable.length)]!;
    const owner = owners[rnd(owners.length)]!;
    const ops: Array<[string, (txn: engine.PoolTxn) => unknown]> = [
      ['allocate', (txn) => engine.allocate(txn, { containerId: cid, ifname: 'eth0', owner })],
      ['allocate ip', (txn) => engine.allocate(txn, { containerId: cid, ifname: 'eth0', owner, ip: hex })],
      ['release', (txn) => engine.release(txn, { containerId: cid, ifname: 'eth0' })],
      ['release ip', (txn) => engine.release(txn, { ip: hex })],
      ['reserve', (txn) => engine.reserve(txn, hex, rnd(2) ? { owner } : {})],
      ['unreserve', (txn) => engine.unreserve(txn, hex, {})],
      ['conflict', (txn) => engine.conflict(txn, hex, { containerId: cid, ifname: 'eth0', note: 'seen' })],
    ];
    const [name, op] = ops[rnd(ops.length)]!;
    const outcome = code(() => op(new IndexedTxn(new FileTxn(p, now), idx)));
    seen.add(`${name}: ${outcome}`);
    const derived = { att: p.att, held: new Map([...p.held].filter(([, set]) => set.size > 0)), expiry: new Map(p.expiry) };
    if (!isDeepStrictEqual(idx, derived)) {
      t.strictSame(idx, derived, `step ${step}, ${name} (${outcome}): the stored indexes left the records`);
      break;
    }
    steps++;
  }
  t.equal(steps, 2000, 'after each of 2000 operations the stored indexes equal those derived from the records');
  t.ok(
    ['allocate: ok', 'allocate ip: ok', 'release: ok', 'release ip: ok', 'reserve: ok', 'unreserve: ok', 'conflict: ok', 'allocate: POOL_EXHAUSTED'].every((s) => seen.has(s)),
    `every operation succeeded at least once, and the pool ran full (${[...seen].sort().join(', ')})`,
  );
});
