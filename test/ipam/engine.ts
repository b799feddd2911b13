// ipam/engine.ts on its own: every rule, at times the test chooses, over two
// transactions held in memory (no I/O). The file store's FileTxn (file-txn.ts)
// derives the attachment, held and expiry indexes from the records; MemPool
// keeps each as a structure of its own, as the Redis scripts do, so an index
// write the engine leaves out or gets wrong shows: a MemPool test asserts the
// exact records, indexes, counters, history and errors an operation leaves,
// and after every operation the consistency check (check.ts) must find
// nothing. test/ipam/store.ts holds both stores to the same behaviour end to
// end.
import t, { type Test } from 'tap';
import { isDeepStrictEqual } from 'node:util';
import { formatIp, parseIp } from '../../core/address.js';
import { BerthError, isBerthError } from '../../core/errors.js';
import { checkPool } from '../../ipam/check.js';
import * as engine from '../../ipam/engine.js';
import { FileTxn, newPool, type PoolState } from '../../ipam/file-txn.js';
import { attachmentKey, heldKey, type AddrRecord, type HistoryEntry, type PoolMeta } from '../../ipam/model.js';
import { buildPoolConfig, type PoolConfig, type PoolSpec } from '../../ipam/pool-config.js';

const T0 = 1_700_000_000_000;
/** A pool's hold, in seconds, unless the spec says otherwise. */
const HOLD = 60;
const ip = (text: string): string => parseIp(text, 'ip').hex;
const counters = (p: { meta: PoolMeta }) => ({ allocated: p.meta.allocated, reserved: p.meta.reserved });

// --- the file store's transaction ---

/** A new pool as createPool makes it: 10.0.0.0/29 (assignable .2-.6) unless the spec says otherwise. */
function pool(spec: Partial<PoolSpec> = {}): PoolState {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/29', hold: HOLD, ...spec });
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

// --- MemPool: every index a structure of its own ---

/** One pool's state in memory; txn(now) is the engine's view of it at `now`. */
class MemPool {
  readonly addr = new Map<string, AddrRecord>();
  readonly att = new Map<string, string>();
  readonly held = new Set<string>();
  readonly expiry = new Map<string, number>();
  readonly free = new Map<string, number>();
  readonly history: HistoryEntry[] = [];
  readonly meta: PoolMeta;

  constructor(readonly conf: PoolConfig) {
    this.meta = { cursor: conf.ranges[0]![0], gen: 0, allocated: 0, reserved: 0 };
  }

  txn(now: number): engine.PoolTxn {
    const p = this;
    return {
      conf: p.conf,
      now,
      meta: p.meta,
      getAddr: (hex) => p.addr.get(hex),
      putAddr: (hex, rec) => void (rec ? p.addr.set(hex, rec) : p.addr.delete(hex)),
      getAtt: (key) => p.att.get(key),
      putAtt: (key, hex) => void (hex === undefined ? p.att.delete(key) : p.att.set(key, hex)),
      firstHeld: (owner) =>
        [...p.held]
          .filter((k) => k.startsWith(`${owner}\u0000`))
          .map((k) => k.slice(owner.length + 1))
          .sort()[0],
      putHeld: (owner, hex, present) => void (present ? p.held.add(heldKey(owner, hex)) : p.held.delete(heldKey(owner, hex))),
      expiredHolds: (at, limit) =>
        [...p.expiry]
          .filter(([, u]) => u <= at)
          .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
          .slice(0, limit)
          .map(([hex]) => hex),
      countExpired: (at) => [...p.expiry.values()].filter((u) => u <= at).length,
      putExpiry: (hex, until) => void (until === undefined ? p.expiry.delete(hex) : p.expiry.set(hex, until)),
      freeHas: (hex) => p.free.has(hex),
      putFree: (hex, at) => void (at === undefined ? p.free.delete(hex) : p.free.set(hex, at)),
      oldestFree: () => [...p.free].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0],
      log: (entry) => void p.history.push(entry),
    };
  }

  /** What the consistency check finds: nothing, after any operation. */
  findings(now: number): string[] {
    const snap = { conf: this.conf, meta: this.meta, addr: this.addr, att: this.att, held: this.held, expiry: this.expiry, free: this.free, now };
    return checkPool(snap).findings.map((f) => `${f.kind}: ${f.message}`);
  }
}

/** A MemPool pool: 10.0.0.0/29 (assignable .2-.6) unless the spec says otherwise. */
function memPool(spec: Partial<PoolSpec> = {}): MemPool {
  return new MemPool(buildPoolConfig({ name: 'p', subnet: '10.0.0.0/29', hold: HOLD, ...spec }, new Date(0)));
}

/** Runs one operation at `now` and asserts the pool is consistent after it. */
function at<T>(t: Test, p: MemPool, now: number, op: (txn: engine.PoolTxn) => T): T {
  try {
    return op(p.txn(now));
  } finally {
    t.strictSame(p.findings(now), [], 'the indexes and counters agree with the records');
  }
}

/** Asserts op throws the BerthError `code` with exactly `message`. */
function refuses(t: Test, op: () => unknown, code: string, message: string): void {
  try {
    op();
    t.fail(`expected ${code}`);
  } catch (err) {
    t.ok(err instanceof BerthError, 'a BerthError');
    t.equal((err as BerthError).code, code);
    t.equal((err as Error).message, message);
  }
}

const alloc = (containerId: string, owner: string, more: Partial<Parameters<typeof engine.allocate>[1]> = {}) => ({ containerId, ifname: 'eth0', owner, ...more });

// --- allocate ---
// One address per attachment: the address asked for, else the owner's lowest
// reservation, else the cursor's next never-used address, else the free
// address released longest ago.

t.test('allocate: in address order from the cursor, with the exact record, index, counters and history', async (t) => {
  const p = memPool();
  const a = at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  t.strictSame(a, { pool: 'p', ip: ip('10.0.0.2'), gen: 1, owner: 'web-1', existing: false });
  t.strictSame(p.addr.get(ip('10.0.0.2')), { s: 'a', o: 'web-1', c: 'c1', i: 'eth0', g: 1, t: T0 });
  t.equal(p.att.get('c1/eth0'), ip('10.0.0.2'));
  t.strictSame(p.meta, { cursor: ip('10.0.0.3'), gen: 1, allocated: 1, reserved: 0 });
  t.strictSame(p.history, [{ at: T0, event: 'allocate', ip: ip('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1 }]);

  const b = at(t, p, T0 + 1, (x) => engine.allocate(x, alloc('c2', 'web-2', { actor: 'cni', host: 'node-1', hostId: 'm1', network: 'net' })));
  t.strictSame(b, { pool: 'p', ip: ip('10.0.0.3'), gen: 2, owner: 'web-2', existing: false });
  t.strictSame(p.addr.get(ip('10.0.0.3')), { s: 'a', o: 'web-2', c: 'c2', i: 'eth0', g: 2, t: T0 + 1, h: 'node-1@m1', w: 'net' });
  t.strictSame(p.history[1], { at: T0 + 1, event: 'allocate', ip: ip('10.0.0.3'), owner: 'web-2', containerId: 'c2', ifname: 'eth0', gen: 2, actor: 'cni' });
  at(t, p, T0 + 2, (x) => engine.allocate(x, alloc('c3', 'web-3', { host: 'node-1' })));
  t.equal(p.addr.get(ip('10.0.0.4'))!.h, 'node-1', 'a host without identity: the name alone');
  t.strictSame(p.meta, { cursor: ip('10.0.0.5'), gen: 3, allocated: 3, reserved: 0 });
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

t.test('allocate: idempotent per attachment, and nothing written when it already holds an address', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  const before = structuredClone({ addr: [...p.addr], meta: p.meta, history: p.history.length });
  // another owner asking for the same attachment gets what it holds, with its owner
  const again = at(t, p, T0 + 5, (x) => engine.allocate(x, alloc('c1', 'other')));
  t.strictSame(again, { pool: 'p', ip: ip('10.0.0.2'), gen: 1, owner: 'web-1', existing: true });
  t.strictSame(at(t, p, T0 + 5, (x) => engine.allocate(x, alloc('c1', 'web-1', { ip: ip('10.0.0.2') }))).existing, true, 'asking for the address it holds');
  t.strictSame(structuredClone({ addr: [...p.addr], meta: p.meta, history: p.history.length }), before, 'nothing changed');
  refuses(t, () => at(t, p, T0 + 5, (x) => engine.allocate(x, alloc('c1', 'web-1', { ip: ip('10.0.0.5') }))), 'ATTACHMENT_CONFLICT', 'attachment c1/eth0 already holds 10.0.0.2, not 10.0.0.5');
  // another interface of the same container is another attachment
  t.equal(at(t, p, T0 + 6, (x) => engine.allocate(x, { containerId: 'c1', ifname: 'eth1', owner: 'web-1' })).ip, ip('10.0.0.3'));
  // a record without owner or generation (written by hand): what it holds is still answered
  p.addr.set(ip('10.0.0.6'), { s: 'a', c: 'c9', i: 'eth0', t: T0 });
  p.att.set('c9/eth0', ip('10.0.0.6'));
  p.meta.allocated++;
  t.strictSame(engine.allocate(p.txn(T0 + 7), alloc('c9', 'asker')), { pool: 'p', ip: ip('10.0.0.6'), gen: 0, owner: 'asker', existing: true });
});

t.test('allocate: an attachment index entry its record does not bear out is dropped, and a new address given', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  for (const stale of [ip('10.0.0.2'), ip('10.0.0.6')]) {
    // c2 "holds" c1's address, then an address with no record
    p.att.set('c2/eth0', stale);
    const got = at(t, p, T0 + 1, (x) => engine.allocate(x, alloc('c2', 'web-2')));
    t.equal(got.existing, false);
    t.not(got.ip, stale);
    t.equal(p.att.get('c2/eth0'), got.ip);
    t.equal(p.att.get('c1/eth0'), ip('10.0.0.2'), "c1's entry untouched");
    at(t, p, T0 + 2, (x) => engine.release(x, { containerId: 'c2', ifname: 'eth0' }));
  }
  // a record of the same container on another interface does not bear it out either
  at(t, p, T0 + 3, (x) => engine.allocate(x, { containerId: 'c1', ifname: 'eth1', owner: 'web-1' }));
  p.att.set('c1/eth2', p.att.get('c1/eth1')!);
  t.equal(at(t, p, T0 + 4, (x) => engine.allocate(x, { containerId: 'c1', ifname: 'eth2', owner: 'web-1' })).existing, false);
});

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

t.test('allocate: the cursor walks the ranges, skipping excluded, used and free-listed addresses', async (t) => {
  const p = memPool({ subnet: '10.0.0.0/28', ranges: ['10.0.0.0-10.0.0.3', '10.0.0.6', '10.0.0.9-10.0.0.11'] });
  t.equal(p.meta.cursor, ip('10.0.0.0'));
  // .3 reserved by an admin, .9 already on the free list
  at(t, p, T0, (x) => engine.reserve(x, ip('10.0.0.3'), {}));
  p.free.set(ip('10.0.0.9'), T0);
  const got: string[] = [];
  const cursors: string[] = [];
  for (let i = 0; i < 4; i++) {
    got.push(at(t, p, T0 + 1, (x) => engine.allocate(x, alloc(`c${i}`, `o${i}`))).ip);
    cursors.push(p.meta.cursor);
  }
  // .0 network and .1 gateway excluded, .3 reserved, then the next range from its start, .9 on the free list
  t.strictSame(got, [ip('10.0.0.2'), ip('10.0.0.6'), ip('10.0.0.10'), ip('10.0.0.11')]);
  t.strictSame(cursors, [ip('10.0.0.3'), ip('10.0.0.7'), ip('10.0.0.11'), ip('10.0.0.12')]);
  // past the last range: the cursor is spent, and the free list serves
  t.equal(at(t, p, T0 + 2, (x) => engine.allocate(x, alloc('c9', 'o9'))).ip, ip('10.0.0.9'));
  t.equal(p.meta.cursor, '', 'spent');
  t.notOk(p.free.has(ip('10.0.0.9')), 'taken off the free list');
  refuses(t, () => at(t, p, T0 + 3, (x) => engine.allocate(x, alloc('c10', 'o10'))), 'POOL_EXHAUSTED', 'pool "p" has no free address (5 allocated, 1 reserved)');
  t.equal(p.meta.cursor, '');
});

t.test('allocate: the cursor stops at the top of the address space', async (t) => {
  const p = new MemPool(buildPoolConfig({ name: 'top', subnet: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126', hold: 0 }, new Date(0)));
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'o')));
  t.equal(at(t, p, T0, (x) => engine.allocate(x, alloc('c2', 'o'))).ip, 'f'.repeat(32));
  t.equal(p.meta.cursor, '', 'no address after the last one');
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c3', 'o')), 'POOL_EXHAUSTED', 'pool "top" has no free address (2 allocated, 0 reserved)');
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

t.test('allocate: once the cursor is spent, the address released longest ago; stale free entries dropped', async (t) => {
  const p = memPool({ hold: 0 });
  for (let i = 2; i <= 6; i++) at(t, p, T0, (x) => engine.allocate(x, alloc(`c${i}`, `o${i}`)));
  t.equal(p.meta.cursor, ip('10.0.0.7'));
  at(t, p, T0 + 30, (x) => engine.release(x, { containerId: 'c5', ifname: 'eth0' }));
  at(t, p, T0 + 10, (x) => engine.release(x, { containerId: 'c3', ifname: 'eth0' }));
  at(t, p, T0 + 20, (x) => engine.release(x, { containerId: 'c4', ifname: 'eth0' }));
  t.strictSame([...p.free], [[ip('10.0.0.5'), T0 + 30], [ip('10.0.0.3'), T0 + 10], [ip('10.0.0.4'), T0 + 20]], 'released at their times');
  // entries the free list should not hold, older than all: an address in use, one outside the ranges
  p.free.set(ip('10.0.0.2'), 1);
  p.free.set(ip('10.0.0.1'), 2);
  p.free.set(ip('10.0.1.2'), 3);
  const order = [0, 1, 2].map((i) => engine.allocate(p.txn(T0 + 40), alloc(`n${i}`, 'x')).ip);
  t.strictSame(order, [ip('10.0.0.3'), ip('10.0.0.4'), ip('10.0.0.5')], 'least recently released first');
  t.strictSame([...p.free], [], 'the stale entries went on the way');
  t.strictSame(p.findings(T0 + 40), []);
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

t.test('allocate: an owner gets its lowest held address back first; stale owner index entries dropped', async (t) => {
  const p = memPool();
  for (const c of ['c2', 'c3', 'c4']) at(t, p, T0, (x) => engine.allocate(x, alloc(c, c === 'c3' ? 'other' : 'web')));
  at(t, p, T0 + 1, (x) => engine.release(x, { containerId: 'c4', ifname: 'eth0' }));
  at(t, p, T0 + 1, (x) => engine.release(x, { containerId: 'c2', ifname: 'eth0' }));
  t.ok(p.held.has(heldKey('web', ip('10.0.0.2'))) && p.held.has(heldKey('web', ip('10.0.0.4'))));
  // stale: .3 is allocated to someone else, .6 has no record; both sort before .4
  p.held.add(heldKey('web', ip('10.0.0.3')));
  p.held.add(heldKey('web', '0a000001'));
  // (the stale .3 entry is only met, and dropped, by the second allocation)
  const a = engine.allocate(p.txn(T0 + 2), alloc('n1', 'web'));
  t.equal(a.ip, ip('10.0.0.2'), 'the lowest real hold');
  t.strictSame(p.addr.get(a.ip), { s: 'a', o: 'web', c: 'n1', i: 'eth0', g: 4, t: T0 + 2 }, 'a hold taken back is no pin');
  t.equal(at(t, p, T0 + 2, (x) => engine.allocate(x, alloc('n2', 'web'))).ip, ip('10.0.0.4'));
  t.notOk(p.held.has(heldKey('web', ip('10.0.0.3'))), 'the stale entry dropped');
  t.notOk(p.held.has(heldKey('web', '0a000001')));
  t.equal(at(t, p, T0 + 2, (x) => engine.allocate(x, alloc('n3', 'web'))).ip, ip('10.0.0.5'), 'no hold left: from the cursor');
});

t.test('allocate: an owner index entry counts only where the record is a reservation for that owner', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c2', 'web')));
  at(t, p, T0, (x) => engine.reserve(x, ip('10.0.0.3'), { owner: 'db' }));
  // stale: .2 is allocated to web itself, .3 reserved for another owner
  p.held.add(heldKey('web', ip('10.0.0.2')));
  p.held.add(heldKey('web', ip('10.0.0.3')));
  t.equal(at(t, p, T0 + 1, (x) => engine.allocate(x, alloc('n1', 'web'))).ip, ip('10.0.0.4'), 'neither is handed out: from the cursor');
  t.notOk(p.held.has(heldKey('web', ip('10.0.0.2'))), 'both entries dropped');
  t.notOk(p.held.has(heldKey('web', ip('10.0.0.3'))));
  t.ok(p.held.has(heldKey('db', ip('10.0.0.3'))), 'the real reservation keeps its own');
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

t.test('allocate a requested address: free, held or reserved for the owner; refused otherwise', async (t) => {
  const p = memPool();
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c', 'o', { ip: ip('10.0.0.1') })), 'IP_NOT_IN_POOL', '10.0.0.1 is not an assignable address of pool "p"');
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c', 'o', { ip: ip('10.0.0.7') })), 'IP_NOT_IN_POOL', '10.0.0.7 is not an assignable address of pool "p"');
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c', 'o', { ip: ip('10.0.1.2') })), 'IP_NOT_IN_POOL', '10.0.1.2 is not an assignable address of pool "p"');
  t.strictSame(at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1', { ip: ip('10.0.0.5') }))), { pool: 'p', ip: ip('10.0.0.5'), gen: 1, owner: 'web-1', existing: false });
  t.equal(p.meta.cursor, ip('10.0.0.0'), 'a requested address leaves the cursor where the pool began it');
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c2', 'web-2', { ip: ip('10.0.0.5') })), 'IP_ALLOCATED', '10.0.0.5 is allocated to web-1 (container c1)');
  // an admin reservation for web-3, with a note; one for no one
  at(t, p, T0, (x) => engine.reserve(x, ip('10.0.0.4'), { owner: 'web-3', note: 'db' }));
  at(t, p, T0, (x) => engine.reserve(x, ip('10.0.0.3'), {}));
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c2', 'web-2', { ip: ip('10.0.0.4') })), 'IP_RESERVED', '10.0.0.4 is reserved for web-3');
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c2', 'web-2', { ip: ip('10.0.0.3') })), 'IP_RESERVED', '10.0.0.3 is reserved');
  // its owner takes it: pinned, so a release gives the reservation back, note and all
  at(t, p, T0 + 1, (x) => engine.allocate(x, alloc('c3', 'web-3', { ip: ip('10.0.0.4') })));
  t.strictSame(p.addr.get(ip('10.0.0.4')), { s: 'a', o: 'web-3', c: 'c3', i: 'eth0', g: 2, t: T0 + 1, p: 1, n: 'db' });
  t.equal(p.history.at(-1)!.note, 'db', "the history carries the reservation's note");
  t.strictSame(at(t, p, T0 + 2, (x) => engine.release(x, { containerId: 'c3', ifname: 'eth0' })), { released: true, ip: ip('10.0.0.4'), state: 'reserved' });
  t.strictSame(p.addr.get(ip('10.0.0.4')), { s: 'r', t: T0 + 2, o: 'web-3', n: 'db' }, 'the admin reservation is back, with no hold end');
  // a hold for web-1: only web-1 takes it, and it is no pin
  at(t, p, T0 + 3, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' }));
  refuses(t, () => engine.allocate(p.txn(T0 + 4), alloc('c4', 'web-2', { ip: ip('10.0.0.5') })), 'IP_RESERVED', '10.0.0.5 is reserved for web-1');
  at(t, p, T0 + 4, (x) => engine.allocate(x, alloc('c4', 'web-1', { ip: ip('10.0.0.5') })));
  t.strictSame(p.addr.get(ip('10.0.0.5')), { s: 'a', o: 'web-1', c: 'c4', i: 'eth0', g: 3, t: T0 + 4 });
  // a hold past its end is free to anyone
  at(t, p, T0 + 5, (x) => engine.release(x, { containerId: 'c4', ifname: 'eth0' }));
  p.expiry.delete(ip('10.0.0.5')); // not expired by the batch: stateOf alone reads it as free
  p.expiry.set(ip('10.0.0.5'), T0 + 5 + HOLD * 1000);
  const later = T0 + 5 + HOLD * 1000;
  t.equal(at(t, p, later, (x) => engine.allocate(x, alloc('c5', 'web-2', { ip: ip('10.0.0.5') }))).ip, ip('10.0.0.5'));
  // a requested address on the free list comes off it
  at(t, p, later, (x) => engine.allocate(x, alloc('c6', 'o6', { ip: ip('10.0.0.6') })));
  at(t, p, later, (x) => engine.release(x, { containerId: 'c6', ifname: 'eth0' }));
  at(t, p, later, (x) => engine.unreserve(x, ip('10.0.0.6'), {}));
  t.ok(p.free.has(ip('10.0.0.6')));
  at(t, p, later, (x) => engine.allocate(x, alloc('c7', 'o7', { ip: ip('10.0.0.6') })));
  t.notOk(p.free.has(ip('10.0.0.6')));
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

// --- release ---
// By attachment (idempotent) or by address, refused at another generation than
// the one named; the address becomes its admin reservation again if pinned,
// else a hold for its owner if the pool holds, else free.

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

t.test('release by attachment: a hold for the owner, or free; idempotent', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  t.strictSame(at(t, p, T0 + 10, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0', actor: 'gc' })), { released: true, ip: ip('10.0.0.2'), state: 'reserved' });
  t.strictSame(p.addr.get(ip('10.0.0.2')), { s: 'r', o: 'web-1', c: 'c1', g: 1, t: T0 + 10, u: T0 + 10 + HOLD * 1000 });
  t.equal(p.expiry.get(ip('10.0.0.2')), T0 + 10 + HOLD * 1000);
  t.notOk(p.att.has('c1/eth0'));
  t.notOk(p.free.has(ip('10.0.0.2')), 'a held address is not free');
  t.strictSame(p.meta, { cursor: ip('10.0.0.3'), gen: 1, allocated: 0, reserved: 1 });
  t.strictSame(p.history.at(-1), { at: T0 + 10, event: 'release', ip: ip('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, actor: 'gc' });
  const n = p.history.length;
  t.strictSame(at(t, p, T0 + 11, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' })), { released: false }, 'again: nothing to do');
  t.equal(p.history.length, n, 'and nothing recorded');

  const q = memPool({ hold: 0 });
  at(t, q, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  t.strictSame(at(t, q, T0 + 10, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' })), { released: true, ip: ip('10.0.0.2'), state: 'free' });
  t.notOk(q.addr.has(ip('10.0.0.2')));
  t.strictSame([...q.free], [[ip('10.0.0.2'), T0 + 10]], 'on the free list at the time of release');
  t.strictSame(q.meta, { cursor: ip('10.0.0.3'), gen: 1, allocated: 0, reserved: 0 });

  // an allocation without an owner (written by hand) has no one to hold for
  p.addr.set(ip('10.0.0.6'), { s: 'a', c: 'c9', i: 'eth0', g: 7, t: T0 });
  p.att.set('c9/eth0', ip('10.0.0.6'));
  p.meta.allocated++;
  p.meta.gen = 7;
  t.strictSame(at(t, p, T0 + 12, (x) => engine.release(x, { containerId: 'c9', ifname: 'eth0' })), { released: true, ip: ip('10.0.0.6'), state: 'free' });
});

t.test('release: a stale attachment entry is dropped, and the address it names left alone', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0, (x) => engine.allocate(x, { containerId: 'c1', ifname: 'eth1', owner: 'web-1' }));
  for (const [key, hex] of [['c2/eth0', ip('10.0.0.2')], ['c2/eth0', ip('10.0.0.6')], ['c1/eth2', ip('10.0.0.3')]] as const) {
    p.att.set(key, hex);
    const [containerId, ifname] = key.split('/') as [string, string];
    t.strictSame(at(t, p, T0 + 1, (x) => engine.release(x, { containerId, ifname })), { released: false }, key);
    t.notOk(p.att.has(key), `${key} dropped`);
  }
  t.equal(p.addr.get(ip('10.0.0.2'))!.s, 'a', "c1's address untouched");
  t.equal(p.meta.allocated, 2);
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

t.test('release by address, and by generation', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0, (x) => engine.allocate(x, alloc('c2', 'web-2')));
  refuses(t, () => engine.release(p.txn(T0), { ip: ip('10.0.0.2'), gen: 2 }), 'STALE_GENERATION', '10.0.0.2 is at generation 1, the request refers to 2');
  refuses(t, () => engine.release(p.txn(T0), { containerId: 'c2', ifname: 'eth0', gen: 1 }), 'STALE_GENERATION', '10.0.0.3 is at generation 2, the request refers to 1');
  t.strictSame(at(t, p, T0 + 1, (x) => engine.release(x, { ip: ip('10.0.0.2'), gen: 1 })), { released: true, ip: ip('10.0.0.2'), state: 'reserved' });
  t.notOk(p.att.has('c1/eth0'), 'the attachment goes with it');
  refuses(t, () => engine.release(p.txn(T0 + 1), { ip: ip('10.0.0.2') }), 'IP_NOT_ALLOCATED', '10.0.0.2 is reserved, not allocated');
  refuses(t, () => engine.release(p.txn(T0 + 1), { ip: ip('10.0.0.5') }), 'IP_NOT_ALLOCATED', '10.0.0.5 is free, not allocated');
  t.strictSame(at(t, p, T0 + 2, (x) => engine.release(x, { ip: ip('10.0.0.3') })), { released: true, ip: ip('10.0.0.3'), state: 'reserved' }, 'no generation: any');
});

t.test('release by address: the attachment index entry goes only when it names that address', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  // a second record for c1/eth0 at .3, which the index now names (a state no
  // operation makes, as after a lost write): releasing .2 by hand must not
  // take .3's entry with it
  p.addr.set(ip('10.0.0.3'), { s: 'a', o: 'web-1', c: 'c1', i: 'eth0', g: 1, t: T0 });
  p.att.set('c1/eth0', ip('10.0.0.3'));
  t.strictSame(engine.release(p.txn(T0 + 1), { ip: ip('10.0.0.2') }), { released: true, ip: ip('10.0.0.2'), state: 'reserved' });
  t.equal(p.att.get('c1/eth0'), ip('10.0.0.3'), 'the entry for the other address kept');
});

// --- reserve ---
// An admin reservation, for an owner or for no one; an allocated address is
// pinned instead, and only for its own owner.

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

t.test('reserve: a free address for an owner or no one; an allocated one pinned for its owner only', async (t) => {
  const p = memPool();
  t.strictSame(at(t, p, T0, (x) => engine.reserve(x, ip('10.0.0.5'), { owner: 'db', note: 'primary', actor: 'admin' })), {
    pool: 'p',
    ip: ip('10.0.0.5'),
    state: 'reserved',
    owner: 'db',
    since: T0,
    note: 'primary',
  });
  t.strictSame(p.addr.get(ip('10.0.0.5')), { s: 'r', t: T0, o: 'db', n: 'primary' });
  t.ok(p.held.has(heldKey('db', ip('10.0.0.5'))));
  t.strictSame(p.history.at(-1), { at: T0, event: 'reserve', ip: ip('10.0.0.5'), owner: 'db', actor: 'admin', note: 'primary' });
  t.strictSame(at(t, p, T0, (x) => engine.reserve(x, ip('10.0.0.6'), {})), { pool: 'p', ip: ip('10.0.0.6'), state: 'reserved', since: T0 });
  t.strictSame(p.addr.get(ip('10.0.0.6')), { s: 'r', t: T0 });
  t.strictSame(p.history.at(-1), { at: T0, event: 'reserve', ip: ip('10.0.0.6') });
  t.equal(p.meta.reserved, 2);
  refuses(t, () => engine.reserve(p.txn(T0), ip('10.0.0.0'), {}), 'IP_NOT_IN_POOL', '10.0.0.0 is not an assignable address of pool "p"');
  refuses(t, () => engine.reserve(p.txn(T0), ip('10.0.1.5'), { owner: 'x' }), 'IP_NOT_IN_POOL', '10.0.1.5 is not an assignable address of pool "p"');

  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  refuses(t, () => engine.reserve(p.txn(T0), ip('10.0.0.2'), {}), 'IP_ALLOCATED', '10.0.0.2 is allocated to web-1; reserve it for that owner or release it first');
  refuses(t, () => engine.reserve(p.txn(T0), ip('10.0.0.2'), { owner: 'web-2' }), 'IP_ALLOCATED', '10.0.0.2 is allocated to web-1; reserve it for that owner or release it first');
  const pinned = at(t, p, T0 + 1, (x) => engine.reserve(x, ip('10.0.0.2'), { owner: 'web-1', note: 'keep' }));
  t.strictSame(pinned, { pool: 'p', ip: ip('10.0.0.2'), state: 'allocated', owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, since: T0, note: 'keep', pinned: true });
  t.strictSame(p.addr.get(ip('10.0.0.2')), { s: 'a', o: 'web-1', c: 'c1', i: 'eth0', g: 1, t: T0, p: 1, n: 'keep' });
  t.strictSame(p.history.at(-1), { at: T0 + 1, event: 'pin', ip: ip('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, note: 'keep' });
  t.equal(p.meta.allocated, 1, 'still allocated');
  t.equal(p.meta.reserved, 2);
  // pinned again without a note: the note stays
  at(t, p, T0 + 2, (x) => engine.reserve(x, ip('10.0.0.2'), { owner: 'web-1' }));
  t.equal(p.addr.get(ip('10.0.0.2'))!.n, 'keep');
  at(t, p, T0 + 3, (x) => engine.allocate(x, alloc('c3', 'web-3')));
  at(t, p, T0 + 3, (x) => engine.reserve(x, ip('10.0.0.3'), { owner: 'web-3' }));
  t.notOk('n' in p.addr.get(ip('10.0.0.3'))!, 'no note asked for, none set');
});

t.test('reserve over a hold or another reservation replaces it, indexes and all', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0 + 1, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' }));
  t.ok(p.expiry.has(ip('10.0.0.2')));
  at(t, p, T0 + 2, (x) => engine.reserve(x, ip('10.0.0.2'), { owner: 'db' }));
  t.strictSame(p.addr.get(ip('10.0.0.2')), { s: 'r', t: T0 + 2, o: 'db' });
  t.notOk(p.expiry.has(ip('10.0.0.2')), 'no hold end any more');
  t.notOk(p.held.has(heldKey('web-1', ip('10.0.0.2'))));
  t.ok(p.held.has(heldKey('db', ip('10.0.0.2'))));
  at(t, p, T0 + 3, (x) => engine.reserve(x, ip('10.0.0.2'), {}));
  t.strictSame([...p.held], [], 'for no one: out of the owner index');
  t.equal(p.meta.reserved, 1);
});

// --- unreserve ---
// A reservation ends and the address is free; a pinned allocation is unpinned.

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

t.test('unreserve: back to free; a pinned allocation unpinned; anything else refused', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.reserve(x, ip('10.0.0.5'), { owner: 'db', note: 'primary' }));
  t.strictSame(at(t, p, T0 + 1, (x) => engine.unreserve(x, ip('10.0.0.5'), { actor: 'admin' })), { pool: 'p', ip: ip('10.0.0.5'), state: 'free' });
  t.notOk(p.addr.has(ip('10.0.0.5')));
  t.equal(p.free.get(ip('10.0.0.5')), 0, 'an admin reservation that ends is the first free address to reuse');
  t.strictSame(p.history.at(-1), { at: T0 + 1, event: 'unreserve', ip: ip('10.0.0.5'), owner: 'db', actor: 'admin', note: 'primary' });
  t.equal(p.meta.reserved, 0);

  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0 + 7, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' }));
  at(t, p, T0 + 8, (x) => engine.unreserve(x, ip('10.0.0.2'), {}));
  t.equal(p.free.get(ip('10.0.0.2')), T0 + 7, 'an ended hold is free since its release');
  t.strictSame(p.history.at(-1), { at: T0 + 8, event: 'unreserve', ip: ip('10.0.0.2'), owner: 'web-1', containerId: 'c1', gen: 1 });

  at(t, p, T0 + 9, (x) => engine.allocate(x, alloc('c2', 'web-2')));
  const c2ip = p.att.get('c2/eth0')!;
  t.equal(c2ip, ip('10.0.0.3'), 'from the cursor: the free list waits until it is spent');
  refuses(t, () => engine.unreserve(p.txn(T0 + 9), c2ip, {}), 'IP_NOT_RESERVED', '10.0.0.3 is allocated, not reserved');
  refuses(t, () => engine.unreserve(p.txn(T0 + 9), ip('10.0.0.6'), {}), 'IP_NOT_RESERVED', '10.0.0.6 is free, not reserved');
  at(t, p, T0 + 10, (x) => engine.reserve(x, c2ip, { owner: 'web-2', note: 'n' }));
  const unpinned = at(t, p, T0 + 11, (x) => engine.unreserve(x, c2ip, { actor: 'admin' }));
  t.strictSame(unpinned, { pool: 'p', ip: c2ip, state: 'allocated', owner: 'web-2', containerId: 'c2', ifname: 'eth0', gen: 2, since: T0 + 9 });
  t.strictSame(p.addr.get(c2ip), { s: 'a', o: 'web-2', c: 'c2', i: 'eth0', g: 2, t: T0 + 9 });
  t.strictSame(p.history.at(-1), { at: T0 + 11, event: 'unpin', ip: c2ip, owner: 'web-2', containerId: 'c2', ifname: 'eth0', gen: 2, actor: 'admin' });
  t.equal(p.meta.allocated, 1);
});

// --- conflict ---
// The finder's own allocation is withdrawn; any other finding is only recorded.

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

t.test('conflict: withdraws the finder\'s own allocation; otherwise only recorded', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  const before = structuredClone(p.addr.get(ip('10.0.0.2')));
  // someone else's report, another interface of the container, another container
  for (const req of [{ note: 'in use by 02:aa' }, { containerId: 'c1', ifname: 'eth1', note: 'x' }, { containerId: 'c2', ifname: 'eth0', note: 'y' }]) {
    const info = at(t, p, T0 + 1, (x) => engine.conflict(x, ip('10.0.0.2'), { ...req, actor: 'probe' }));
    t.equal(info.state, 'allocated', JSON.stringify(req));
    t.strictSame(p.addr.get(ip('10.0.0.2')), before, 'the allocation stands');
    t.strictSame(p.history.at(-1), { at: T0 + 1, event: 'conflict', ip: ip('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, actor: 'probe', note: req.note });
  }
  t.strictSame(at(t, p, T0 + 1, (x) => engine.conflict(x, ip('10.0.0.4'), { note: 'seen' })), { pool: 'p', ip: ip('10.0.0.4'), state: 'free' });
  t.strictSame(p.history.at(-1), { at: T0 + 1, event: 'conflict', ip: ip('10.0.0.4'), note: 'seen' });
  t.notOk(p.addr.has(ip('10.0.0.4')), 'a free address stays free');
  refuses(t, () => engine.conflict(p.txn(T0), ip('10.0.0.7'), { note: 'x' }), 'IP_NOT_IN_POOL', '10.0.0.7 is not an assignable address of pool "p"');

  const mine = at(t, p, T0 + 2, (x) => engine.conflict(x, ip('10.0.0.2'), { containerId: 'c1', ifname: 'eth0', note: 'in use by 02:bb', actor: 'probe' }));
  t.strictSame(mine, { pool: 'p', ip: ip('10.0.0.2'), state: 'reserved', since: T0 + 2, note: 'in use by 02:bb' });
  t.strictSame(p.addr.get(ip('10.0.0.2')), { s: 'r', t: T0 + 2, n: 'in use by 02:bb' }, 'reserved for no one, with the note');
  t.notOk(p.att.has('c1/eth0'));
  t.strictSame(p.history.at(-1), { at: T0 + 2, event: 'conflict', ip: ip('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, actor: 'probe', note: 'in use by 02:bb' });
  t.strictSame(counters(p), { allocated: 0, reserved: 1 });
  // it is not handed out again
  const next = at(t, p, T0 + 3, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  t.not(next.ip, ip('10.0.0.2'));
  // a reservation is never "mine"
  at(t, p, T0 + 3, (x) => engine.reserve(x, ip('10.0.0.6'), { owner: 'web-1' }));
  at(t, p, T0 + 4, (x) => engine.conflict(x, ip('10.0.0.6'), { containerId: 'c1', ifname: 'eth0', note: 'z' }));
  t.strictSame(p.addr.get(ip('10.0.0.6')), { s: 'r', t: T0 + 3, o: 'web-1' });
});

// --- expireHolds and usage ---
// An ended hold reads as free at once and is made free by the next operation,
// at most EXPIRE_BATCH at a time.

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

t.test('holds end: expired on the next operation, free since their release, recorded', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0 + 5, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' }));
  const end = T0 + 5 + HOLD * 1000;
  t.equal(engine.expireHolds(p.txn(end - 1)), 0, 'not before its end');
  t.strictSame(engine.usage(p.txn(end - 1)), { allocated: 0, reserved: 1 });
  t.strictSame(engine.usage(p.txn(end)), { allocated: 0, reserved: 0 }, 'at its end it reads as free before anything expires it');
  t.equal(p.meta.reserved, 1, 'usage writes nothing');
  t.equal(at(t, p, end, (x) => engine.expireHolds(x)), 1, 'at its end');
  t.notOk(p.addr.has(ip('10.0.0.2')));
  t.equal(p.free.get(ip('10.0.0.2')), T0 + 5, 'free since its release');
  t.strictSame(p.history.at(-1), { at: end, event: 'expire', ip: ip('10.0.0.2'), owner: 'web-1', containerId: 'c1', gen: 1 });
  t.strictSame(p.meta, { cursor: ip('10.0.0.3'), gen: 1, allocated: 0, reserved: 0 });
  t.equal(at(t, p, end, (x) => engine.expireHolds(x)), 0, 'nothing left');
});

t.test('expiry index entries their records do not bear out are dropped or re-indexed, not expired', async (t) => {
  const p = memPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0, (x) => engine.allocate(x, alloc('c2', 'web-2')));
  at(t, p, T0 + 1, (x) => engine.release(x, { containerId: 'c2', ifname: 'eth0' }));
  at(t, p, T0, (x) => engine.reserve(x, ip('10.0.0.4'), { owner: 'db' }));
  const end = T0 + 1 + HOLD * 1000;
  // an allocated address, one with no record, an admin reservation, and a live hold indexed too early
  p.expiry.set(ip('10.0.0.2'), T0);
  p.expiry.set(ip('10.0.0.6'), T0);
  p.expiry.set(ip('10.0.0.4'), T0);
  p.expiry.set(ip('10.0.0.3'), T0);
  const history = p.history.length;
  t.equal(at(t, p, T0 + 2, (x) => engine.expireHolds(x)), 0, 'none of them expired');
  t.equal(p.history.length, history, 'nothing recorded');
  t.strictSame([...p.expiry], [[ip('10.0.0.3'), end]], 'the live hold at its real end, the others gone');
  t.strictSame([ip('10.0.0.2'), ip('10.0.0.3'), ip('10.0.0.4')].map((x) => p.addr.get(x)!.s), ['a', 'r', 'r'], 'records untouched');
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

t.test('every operation expires ended holds first, at most EXPIRE_BATCH at a time', async (t) => {
  t.equal(engine.EXPIRE_BATCH, 16);
  const ops: Array<[string, (x: engine.PoolTxn) => unknown]> = [
    ['allocate', (x) => engine.allocate(x, alloc('new', 'new'))],
    ['release', (x) => engine.release(x, { containerId: 'none', ifname: 'eth0' })],
    ['reserve', (x) => engine.reserve(x, '0a00ff01', {})],
    ['unreserve', (x) => engine.unreserve(x, '0a00ff02', {})],
    ['conflict', (x) => engine.conflict(x, '0a00ff03', { note: 'n' })],
  ];
  for (const [name, op] of ops) {
    const p = memPool({ subnet: '10.0.0.0/16', hold: 1 });
    for (let i = 0; i < 20; i++) at(t, p, T0 + i, (x) => engine.allocate(x, alloc(`c${i}`, `o${i}`)));
    for (let i = 0; i < 20; i++) at(t, p, T0 + 100 + i, (x) => engine.release(x, { containerId: `c${i}`, ifname: 'eth0' }));
    p.addr.set('0a00ff02', { s: 'r', t: T0 });
    p.meta.reserved++;
    const later = T0 + 100 + 20 + 1000;
    t.strictSame(engine.usage(p.txn(later)), { allocated: 0, reserved: 1 }, `${name}: 20 ended holds read as free`);
    at(t, p, later, op);
    t.equal(p.history.filter((e) => e.event === 'expire').length, 16, `${name}: 16 expired`);
    t.equal(p.expiry.size, 4, `${name}: 4 left for the next operation`);
    t.strictSame(
      p.history.filter((e) => e.event === 'expire').map((e) => e.ip),
      Array.from({ length: 16 }, (_, i) => ip(`10.0.0.${i + 2}`)),
      `${name}: the earliest ends first`,
    );
  }
  const p = memPool({ subnet: '10.0.0.0/16', hold: 1 });
  for (let i = 0; i < 5; i++) at(t, p, T0, (x) => engine.allocate(x, alloc(`c${i}`, `o${i}`)));
  for (let i = 0; i < 5; i++) at(t, p, T0, (x) => engine.release(x, { containerId: `c${i}`, ifname: 'eth0' }));
  t.equal(at(t, p, T0 + 1000, (x) => engine.expireHolds(x, 2)), 2, 'a smaller limit');
  t.equal(at(t, p, T0 + 1000, (x) => engine.expireHolds(x)), 3);
});

// --- putRecord ---
// Every index moves with the records, whatever the operation.

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
