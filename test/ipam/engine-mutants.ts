// ipam/engine.ts on its own, over an in-memory PoolTxn that keeps every index
// as its own structure (as the Redis scripts do, where the file store derives
// some from the records): each test asserts the exact records, indexes,
// counters, history and errors an operation leaves, and after every operation
// the consistency check (check.ts) must find nothing. Written to kill the
// mutants `npm run mutate` makes of engine.ts; the tests of a store
// (test/ipam/store.ts) hold both stores to the same behaviour end to end.
// (Named engine-mutants.ts while test/ipam/engine.ts is being written on
// another branch; the two are to be merged.)
import t, { type Test } from 'tap';
import { parseIp } from '../../core/address.js';
import { BerthError } from '../../core/errors.js';
import { checkPool } from '../../ipam/check.js';
import * as engine from '../../ipam/engine.js';
import { heldKey, type AddrRecord, type HistoryEntry, type PoolMeta } from '../../ipam/model.js';
import { buildPoolConfig, type PoolConfig, type PoolSpec } from '../../ipam/pool-config.js';

const h = (ip: string): string => parseIp(ip, 'ip').hex;
const T0 = 1_700_000_000_000;
const HOLD = 60;

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

function newPool(spec: Partial<PoolSpec> = {}): MemPool {
  // 10.0.0.2-10.0.0.6 assignable: .0 network, .1 gateway, .7 broadcast
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

t.test('allocate: in address order from the cursor, with the exact record, index, counters and history', async (t) => {
  const p = newPool();
  const a = at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  t.strictSame(a, { pool: 'p', ip: h('10.0.0.2'), gen: 1, owner: 'web-1', existing: false });
  t.strictSame(p.addr.get(h('10.0.0.2')), { s: 'a', o: 'web-1', c: 'c1', i: 'eth0', g: 1, t: T0 });
  t.equal(p.att.get('c1/eth0'), h('10.0.0.2'));
  t.strictSame(p.meta, { cursor: h('10.0.0.3'), gen: 1, allocated: 1, reserved: 0 });
  t.strictSame(p.history, [{ at: T0, event: 'allocate', ip: h('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1 }]);

  const b = at(t, p, T0 + 1, (x) => engine.allocate(x, alloc('c2', 'web-2', { actor: 'cni', host: 'node-1', hostId: 'm1', network: 'net' })));
  t.strictSame(b, { pool: 'p', ip: h('10.0.0.3'), gen: 2, owner: 'web-2', existing: false });
  t.strictSame(p.addr.get(h('10.0.0.3')), { s: 'a', o: 'web-2', c: 'c2', i: 'eth0', g: 2, t: T0 + 1, h: 'node-1@m1', w: 'net' });
  t.strictSame(p.history[1], { at: T0 + 1, event: 'allocate', ip: h('10.0.0.3'), owner: 'web-2', containerId: 'c2', ifname: 'eth0', gen: 2, actor: 'cni' });
  at(t, p, T0 + 2, (x) => engine.allocate(x, alloc('c3', 'web-3', { host: 'node-1' })));
  t.equal(p.addr.get(h('10.0.0.4'))!.h, 'node-1', 'a host without identity: the name alone');
  t.strictSame(p.meta, { cursor: h('10.0.0.5'), gen: 3, allocated: 3, reserved: 0 });
});

t.test('allocate: idempotent per attachment, and nothing written when it already holds an address', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  const before = structuredClone({ addr: [...p.addr], meta: p.meta, history: p.history.length });
  // another owner asking for the same attachment gets what it holds, with its owner
  const again = at(t, p, T0 + 5, (x) => engine.allocate(x, alloc('c1', 'other')));
  t.strictSame(again, { pool: 'p', ip: h('10.0.0.2'), gen: 1, owner: 'web-1', existing: true });
  t.strictSame(at(t, p, T0 + 5, (x) => engine.allocate(x, alloc('c1', 'web-1', { ip: h('10.0.0.2') }))).existing, true, 'asking for the address it holds');
  t.strictSame(structuredClone({ addr: [...p.addr], meta: p.meta, history: p.history.length }), before, 'nothing changed');
  refuses(t, () => at(t, p, T0 + 5, (x) => engine.allocate(x, alloc('c1', 'web-1', { ip: h('10.0.0.5') }))), 'ATTACHMENT_CONFLICT', 'attachment c1/eth0 already holds 10.0.0.2, not 10.0.0.5');
  // another interface of the same container is another attachment
  t.equal(at(t, p, T0 + 6, (x) => engine.allocate(x, { containerId: 'c1', ifname: 'eth1', owner: 'web-1' })).ip, h('10.0.0.3'));
  // a record without owner or generation (written by hand): what it holds is still answered
  p.addr.set(h('10.0.0.6'), { s: 'a', c: 'c9', i: 'eth0', t: T0 });
  p.att.set('c9/eth0', h('10.0.0.6'));
  p.meta.allocated++;
  t.strictSame(engine.allocate(p.txn(T0 + 7), alloc('c9', 'asker')), { pool: 'p', ip: h('10.0.0.6'), gen: 0, owner: 'asker', existing: true });
});

t.test('allocate: an attachment index entry its record does not bear out is dropped, and a new address given', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  for (const stale of [h('10.0.0.2'), h('10.0.0.6')]) {
    // c2 "holds" c1's address, then an address with no record
    p.att.set('c2/eth0', stale);
    const got = at(t, p, T0 + 1, (x) => engine.allocate(x, alloc('c2', 'web-2')));
    t.equal(got.existing, false);
    t.not(got.ip, stale);
    t.equal(p.att.get('c2/eth0'), got.ip);
    t.equal(p.att.get('c1/eth0'), h('10.0.0.2'), "c1's entry untouched");
    at(t, p, T0 + 2, (x) => engine.release(x, { containerId: 'c2', ifname: 'eth0' }));
  }
  // a record of the same container on another interface does not bear it out either
  at(t, p, T0 + 3, (x) => engine.allocate(x, { containerId: 'c1', ifname: 'eth1', owner: 'web-1' }));
  p.att.set('c1/eth2', p.att.get('c1/eth1')!);
  t.equal(at(t, p, T0 + 4, (x) => engine.allocate(x, { containerId: 'c1', ifname: 'eth2', owner: 'web-1' })).existing, false);
});

t.test('allocate: the cursor walks the ranges, skipping excluded, used and free-listed addresses', async (t) => {
  const p = newPool({ subnet: '10.0.0.0/28', ranges: ['10.0.0.0-10.0.0.3', '10.0.0.6', '10.0.0.9-10.0.0.11'] });
  t.equal(p.meta.cursor, h('10.0.0.0'));
  // .3 reserved by an admin, .9 already on the free list
  at(t, p, T0, (x) => engine.reserve(x, h('10.0.0.3'), {}));
  p.free.set(h('10.0.0.9'), T0);
  const got: string[] = [];
  const cursors: string[] = [];
  for (let i = 0; i < 4; i++) {
    got.push(at(t, p, T0 + 1, (x) => engine.allocate(x, alloc(`c${i}`, `o${i}`))).ip);
    cursors.push(p.meta.cursor);
  }
  // .0 network and .1 gateway excluded, .3 reserved, then the next range from its start, .9 on the free list
  t.strictSame(got, [h('10.0.0.2'), h('10.0.0.6'), h('10.0.0.10'), h('10.0.0.11')]);
  t.strictSame(cursors, [h('10.0.0.3'), h('10.0.0.7'), h('10.0.0.11'), h('10.0.0.12')]);
  // past the last range: the cursor is spent, and the free list serves
  t.equal(at(t, p, T0 + 2, (x) => engine.allocate(x, alloc('c9', 'o9'))).ip, h('10.0.0.9'));
  t.equal(p.meta.cursor, '', 'spent');
  t.notOk(p.free.has(h('10.0.0.9')), 'taken off the free list');
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

t.test('allocate: once the cursor is spent, the address released longest ago; stale free entries dropped', async (t) => {
  const p = newPool({ hold: 0 });
  for (let i = 2; i <= 6; i++) at(t, p, T0, (x) => engine.allocate(x, alloc(`c${i}`, `o${i}`)));
  t.equal(p.meta.cursor, h('10.0.0.7'));
  at(t, p, T0 + 30, (x) => engine.release(x, { containerId: 'c5', ifname: 'eth0' }));
  at(t, p, T0 + 10, (x) => engine.release(x, { containerId: 'c3', ifname: 'eth0' }));
  at(t, p, T0 + 20, (x) => engine.release(x, { containerId: 'c4', ifname: 'eth0' }));
  t.strictSame([...p.free], [[h('10.0.0.5'), T0 + 30], [h('10.0.0.3'), T0 + 10], [h('10.0.0.4'), T0 + 20]], 'released at their times');
  // entries the free list should not hold, older than all: an address in use, one outside the ranges
  p.free.set(h('10.0.0.2'), 1);
  p.free.set(h('10.0.0.1'), 2);
  p.free.set(h('10.0.1.2'), 3);
  const order = [0, 1, 2].map((i) => engine.allocate(p.txn(T0 + 40), alloc(`n${i}`, 'x')).ip);
  t.strictSame(order, [h('10.0.0.3'), h('10.0.0.4'), h('10.0.0.5')], 'least recently released first');
  t.strictSame([...p.free], [], 'the stale entries went on the way');
  t.strictSame(p.findings(T0 + 40), []);
});

t.test('allocate a requested address: free, held or reserved for the owner; refused otherwise', async (t) => {
  const p = newPool();
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c', 'o', { ip: h('10.0.0.1') })), 'IP_NOT_IN_POOL', '10.0.0.1 is not an assignable address of pool "p"');
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c', 'o', { ip: h('10.0.0.7') })), 'IP_NOT_IN_POOL', '10.0.0.7 is not an assignable address of pool "p"');
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c', 'o', { ip: h('10.0.1.2') })), 'IP_NOT_IN_POOL', '10.0.1.2 is not an assignable address of pool "p"');
  t.strictSame(at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1', { ip: h('10.0.0.5') }))), { pool: 'p', ip: h('10.0.0.5'), gen: 1, owner: 'web-1', existing: false });
  t.equal(p.meta.cursor, h('10.0.0.0'), 'a requested address leaves the cursor where the pool began it');
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c2', 'web-2', { ip: h('10.0.0.5') })), 'IP_ALLOCATED', '10.0.0.5 is allocated to web-1 (container c1)');
  // an admin reservation for web-3, with a note; one for no one
  at(t, p, T0, (x) => engine.reserve(x, h('10.0.0.4'), { owner: 'web-3', note: 'db' }));
  at(t, p, T0, (x) => engine.reserve(x, h('10.0.0.3'), {}));
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c2', 'web-2', { ip: h('10.0.0.4') })), 'IP_RESERVED', '10.0.0.4 is reserved for web-3');
  refuses(t, () => engine.allocate(p.txn(T0), alloc('c2', 'web-2', { ip: h('10.0.0.3') })), 'IP_RESERVED', '10.0.0.3 is reserved');
  // its owner takes it: pinned, so a release gives the reservation back, note and all
  at(t, p, T0 + 1, (x) => engine.allocate(x, alloc('c3', 'web-3', { ip: h('10.0.0.4') })));
  t.strictSame(p.addr.get(h('10.0.0.4')), { s: 'a', o: 'web-3', c: 'c3', i: 'eth0', g: 2, t: T0 + 1, p: 1, n: 'db' });
  t.equal(p.history.at(-1)!.note, 'db', "the history carries the reservation's note");
  t.strictSame(at(t, p, T0 + 2, (x) => engine.release(x, { containerId: 'c3', ifname: 'eth0' })), { released: true, ip: h('10.0.0.4'), state: 'reserved' });
  t.strictSame(p.addr.get(h('10.0.0.4')), { s: 'r', t: T0 + 2, o: 'web-3', n: 'db' }, 'the admin reservation is back, with no hold end');
  // a hold for web-1: only web-1 takes it, and it is no pin
  at(t, p, T0 + 3, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' }));
  refuses(t, () => engine.allocate(p.txn(T0 + 4), alloc('c4', 'web-2', { ip: h('10.0.0.5') })), 'IP_RESERVED', '10.0.0.5 is reserved for web-1');
  at(t, p, T0 + 4, (x) => engine.allocate(x, alloc('c4', 'web-1', { ip: h('10.0.0.5') })));
  t.strictSame(p.addr.get(h('10.0.0.5')), { s: 'a', o: 'web-1', c: 'c4', i: 'eth0', g: 3, t: T0 + 4 });
  // a hold past its end is free to anyone
  at(t, p, T0 + 5, (x) => engine.release(x, { containerId: 'c4', ifname: 'eth0' }));
  p.expiry.delete(h('10.0.0.5')); // not expired by the batch: stateOf alone reads it as free
  p.expiry.set(h('10.0.0.5'), T0 + 5 + HOLD * 1000);
  const later = T0 + 5 + HOLD * 1000;
  t.equal(at(t, p, later, (x) => engine.allocate(x, alloc('c5', 'web-2', { ip: h('10.0.0.5') }))).ip, h('10.0.0.5'));
  // a requested address on the free list comes off it
  at(t, p, later, (x) => engine.allocate(x, alloc('c6', 'o6', { ip: h('10.0.0.6') })));
  at(t, p, later, (x) => engine.release(x, { containerId: 'c6', ifname: 'eth0' }));
  at(t, p, later, (x) => engine.unreserve(x, h('10.0.0.6'), {}));
  t.ok(p.free.has(h('10.0.0.6')));
  at(t, p, later, (x) => engine.allocate(x, alloc('c7', 'o7', { ip: h('10.0.0.6') })));
  t.notOk(p.free.has(h('10.0.0.6')));
});

t.test('allocate: an owner gets its lowest held address back first; stale owner index entries dropped', async (t) => {
  const p = newPool();
  for (const c of ['c2', 'c3', 'c4']) at(t, p, T0, (x) => engine.allocate(x, alloc(c, c === 'c3' ? 'other' : 'web')));
  at(t, p, T0 + 1, (x) => engine.release(x, { containerId: 'c4', ifname: 'eth0' }));
  at(t, p, T0 + 1, (x) => engine.release(x, { containerId: 'c2', ifname: 'eth0' }));
  t.ok(p.held.has(heldKey('web', h('10.0.0.2'))) && p.held.has(heldKey('web', h('10.0.0.4'))));
  // stale: .3 is allocated to someone else, .6 has no record; both sort before .4
  p.held.add(heldKey('web', h('10.0.0.3')));
  p.held.add(heldKey('web', '0a000001'));
  // (the stale .3 entry is only met, and dropped, by the second allocation)
  const a = engine.allocate(p.txn(T0 + 2), alloc('n1', 'web'));
  t.equal(a.ip, h('10.0.0.2'), 'the lowest real hold');
  t.strictSame(p.addr.get(a.ip), { s: 'a', o: 'web', c: 'n1', i: 'eth0', g: 4, t: T0 + 2 }, 'a hold taken back is no pin');
  t.equal(at(t, p, T0 + 2, (x) => engine.allocate(x, alloc('n2', 'web'))).ip, h('10.0.0.4'));
  t.notOk(p.held.has(heldKey('web', h('10.0.0.3'))), 'the stale entry dropped');
  t.notOk(p.held.has(heldKey('web', '0a000001')));
  t.equal(at(t, p, T0 + 2, (x) => engine.allocate(x, alloc('n3', 'web'))).ip, h('10.0.0.5'), 'no hold left: from the cursor');
});

t.test('allocate: an owner index entry counts only where the record is a reservation for that owner', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c2', 'web')));
  at(t, p, T0, (x) => engine.reserve(x, h('10.0.0.3'), { owner: 'db' }));
  // stale: .2 is allocated to web itself, .3 reserved for another owner
  p.held.add(heldKey('web', h('10.0.0.2')));
  p.held.add(heldKey('web', h('10.0.0.3')));
  t.equal(at(t, p, T0 + 1, (x) => engine.allocate(x, alloc('n1', 'web'))).ip, h('10.0.0.4'), 'neither is handed out: from the cursor');
  t.notOk(p.held.has(heldKey('web', h('10.0.0.2'))), 'both entries dropped');
  t.notOk(p.held.has(heldKey('web', h('10.0.0.3'))));
  t.ok(p.held.has(heldKey('db', h('10.0.0.3'))), 'the real reservation keeps its own');
});

t.test('release by attachment: a hold for the owner, or free; idempotent', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  t.strictSame(at(t, p, T0 + 10, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0', actor: 'gc' })), { released: true, ip: h('10.0.0.2'), state: 'reserved' });
  t.strictSame(p.addr.get(h('10.0.0.2')), { s: 'r', o: 'web-1', c: 'c1', g: 1, t: T0 + 10, u: T0 + 10 + HOLD * 1000 });
  t.equal(p.expiry.get(h('10.0.0.2')), T0 + 10 + HOLD * 1000);
  t.notOk(p.att.has('c1/eth0'));
  t.notOk(p.free.has(h('10.0.0.2')), 'a held address is not free');
  t.strictSame(p.meta, { cursor: h('10.0.0.3'), gen: 1, allocated: 0, reserved: 1 });
  t.strictSame(p.history.at(-1), { at: T0 + 10, event: 'release', ip: h('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, actor: 'gc' });
  const n = p.history.length;
  t.strictSame(at(t, p, T0 + 11, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' })), { released: false }, 'again: nothing to do');
  t.equal(p.history.length, n, 'and nothing recorded');

  const q = newPool({ hold: 0 });
  at(t, q, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  t.strictSame(at(t, q, T0 + 10, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' })), { released: true, ip: h('10.0.0.2'), state: 'free' });
  t.notOk(q.addr.has(h('10.0.0.2')));
  t.strictSame([...q.free], [[h('10.0.0.2'), T0 + 10]], 'on the free list at the time of release');
  t.strictSame(q.meta, { cursor: h('10.0.0.3'), gen: 1, allocated: 0, reserved: 0 });

  // an allocation without an owner (written by hand) has no one to hold for
  p.addr.set(h('10.0.0.6'), { s: 'a', c: 'c9', i: 'eth0', g: 7, t: T0 });
  p.att.set('c9/eth0', h('10.0.0.6'));
  p.meta.allocated++;
  p.meta.gen = 7;
  t.strictSame(at(t, p, T0 + 12, (x) => engine.release(x, { containerId: 'c9', ifname: 'eth0' })), { released: true, ip: h('10.0.0.6'), state: 'free' });
});

t.test('release: a stale attachment entry is dropped, and the address it names left alone', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0, (x) => engine.allocate(x, { containerId: 'c1', ifname: 'eth1', owner: 'web-1' }));
  for (const [key, hex] of [['c2/eth0', h('10.0.0.2')], ['c2/eth0', h('10.0.0.6')], ['c1/eth2', h('10.0.0.3')]] as const) {
    p.att.set(key, hex);
    const [containerId, ifname] = key.split('/') as [string, string];
    t.strictSame(at(t, p, T0 + 1, (x) => engine.release(x, { containerId, ifname })), { released: false }, key);
    t.notOk(p.att.has(key), `${key} dropped`);
  }
  t.equal(p.addr.get(h('10.0.0.2'))!.s, 'a', "c1's address untouched");
  t.equal(p.meta.allocated, 2);
});

t.test('release by address, and by generation', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0, (x) => engine.allocate(x, alloc('c2', 'web-2')));
  refuses(t, () => engine.release(p.txn(T0), { ip: h('10.0.0.2'), gen: 2 }), 'STALE_GENERATION', '10.0.0.2 is at generation 1, the request refers to 2');
  refuses(t, () => engine.release(p.txn(T0), { containerId: 'c2', ifname: 'eth0', gen: 1 }), 'STALE_GENERATION', '10.0.0.3 is at generation 2, the request refers to 1');
  t.strictSame(at(t, p, T0 + 1, (x) => engine.release(x, { ip: h('10.0.0.2'), gen: 1 })), { released: true, ip: h('10.0.0.2'), state: 'reserved' });
  t.notOk(p.att.has('c1/eth0'), 'the attachment goes with it');
  refuses(t, () => engine.release(p.txn(T0 + 1), { ip: h('10.0.0.2') }), 'IP_NOT_ALLOCATED', '10.0.0.2 is reserved, not allocated');
  refuses(t, () => engine.release(p.txn(T0 + 1), { ip: h('10.0.0.5') }), 'IP_NOT_ALLOCATED', '10.0.0.5 is free, not allocated');
  t.strictSame(at(t, p, T0 + 2, (x) => engine.release(x, { ip: h('10.0.0.3') })), { released: true, ip: h('10.0.0.3'), state: 'reserved' }, 'no generation: any');
});

t.test('release by address: the attachment index entry goes only when it names that address', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  // a second record for c1/eth0 at .3, which the index now names (a state no
  // operation makes, as after a lost write): releasing .2 by hand must not
  // take .3's entry with it
  p.addr.set(h('10.0.0.3'), { s: 'a', o: 'web-1', c: 'c1', i: 'eth0', g: 1, t: T0 });
  p.att.set('c1/eth0', h('10.0.0.3'));
  t.strictSame(engine.release(p.txn(T0 + 1), { ip: h('10.0.0.2') }), { released: true, ip: h('10.0.0.2'), state: 'reserved' });
  t.equal(p.att.get('c1/eth0'), h('10.0.0.3'), 'the entry for the other address kept');
});

t.test('reserve: a free address for an owner or no one; an allocated one pinned for its owner only', async (t) => {
  const p = newPool();
  t.strictSame(at(t, p, T0, (x) => engine.reserve(x, h('10.0.0.5'), { owner: 'db', note: 'primary', actor: 'admin' })), {
    pool: 'p',
    ip: h('10.0.0.5'),
    state: 'reserved',
    owner: 'db',
    since: T0,
    note: 'primary',
  });
  t.strictSame(p.addr.get(h('10.0.0.5')), { s: 'r', t: T0, o: 'db', n: 'primary' });
  t.ok(p.held.has(heldKey('db', h('10.0.0.5'))));
  t.strictSame(p.history.at(-1), { at: T0, event: 'reserve', ip: h('10.0.0.5'), owner: 'db', actor: 'admin', note: 'primary' });
  t.strictSame(at(t, p, T0, (x) => engine.reserve(x, h('10.0.0.6'), {})), { pool: 'p', ip: h('10.0.0.6'), state: 'reserved', since: T0 });
  t.strictSame(p.addr.get(h('10.0.0.6')), { s: 'r', t: T0 });
  t.strictSame(p.history.at(-1), { at: T0, event: 'reserve', ip: h('10.0.0.6') });
  t.equal(p.meta.reserved, 2);
  refuses(t, () => engine.reserve(p.txn(T0), h('10.0.0.0'), {}), 'IP_NOT_IN_POOL', '10.0.0.0 is not an assignable address of pool "p"');
  refuses(t, () => engine.reserve(p.txn(T0), h('10.0.1.5'), { owner: 'x' }), 'IP_NOT_IN_POOL', '10.0.1.5 is not an assignable address of pool "p"');

  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  refuses(t, () => engine.reserve(p.txn(T0), h('10.0.0.2'), {}), 'IP_ALLOCATED', '10.0.0.2 is allocated to web-1; reserve it for that owner or release it first');
  refuses(t, () => engine.reserve(p.txn(T0), h('10.0.0.2'), { owner: 'web-2' }), 'IP_ALLOCATED', '10.0.0.2 is allocated to web-1; reserve it for that owner or release it first');
  const pinned = at(t, p, T0 + 1, (x) => engine.reserve(x, h('10.0.0.2'), { owner: 'web-1', note: 'keep' }));
  t.strictSame(pinned, { pool: 'p', ip: h('10.0.0.2'), state: 'allocated', owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, since: T0, note: 'keep', pinned: true });
  t.strictSame(p.addr.get(h('10.0.0.2')), { s: 'a', o: 'web-1', c: 'c1', i: 'eth0', g: 1, t: T0, p: 1, n: 'keep' });
  t.strictSame(p.history.at(-1), { at: T0 + 1, event: 'pin', ip: h('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, note: 'keep' });
  t.equal(p.meta.allocated, 1, 'still allocated');
  t.equal(p.meta.reserved, 2);
  // pinned again without a note: the note stays
  at(t, p, T0 + 2, (x) => engine.reserve(x, h('10.0.0.2'), { owner: 'web-1' }));
  t.equal(p.addr.get(h('10.0.0.2'))!.n, 'keep');
  at(t, p, T0 + 3, (x) => engine.allocate(x, alloc('c3', 'web-3')));
  at(t, p, T0 + 3, (x) => engine.reserve(x, h('10.0.0.3'), { owner: 'web-3' }));
  t.notOk('n' in p.addr.get(h('10.0.0.3'))!, 'no note asked for, none set');
});

t.test('reserve over a hold or another reservation replaces it, indexes and all', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0 + 1, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' }));
  t.ok(p.expiry.has(h('10.0.0.2')));
  at(t, p, T0 + 2, (x) => engine.reserve(x, h('10.0.0.2'), { owner: 'db' }));
  t.strictSame(p.addr.get(h('10.0.0.2')), { s: 'r', t: T0 + 2, o: 'db' });
  t.notOk(p.expiry.has(h('10.0.0.2')), 'no hold end any more');
  t.notOk(p.held.has(heldKey('web-1', h('10.0.0.2'))));
  t.ok(p.held.has(heldKey('db', h('10.0.0.2'))));
  at(t, p, T0 + 3, (x) => engine.reserve(x, h('10.0.0.2'), {}));
  t.strictSame([...p.held], [], 'for no one: out of the owner index');
  t.equal(p.meta.reserved, 1);
});

t.test('unreserve: back to free; a pinned allocation unpinned; anything else refused', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.reserve(x, h('10.0.0.5'), { owner: 'db', note: 'primary' }));
  t.strictSame(at(t, p, T0 + 1, (x) => engine.unreserve(x, h('10.0.0.5'), { actor: 'admin' })), { pool: 'p', ip: h('10.0.0.5'), state: 'free' });
  t.notOk(p.addr.has(h('10.0.0.5')));
  t.equal(p.free.get(h('10.0.0.5')), 0, 'an admin reservation that ends is the first free address to reuse');
  t.strictSame(p.history.at(-1), { at: T0 + 1, event: 'unreserve', ip: h('10.0.0.5'), owner: 'db', actor: 'admin', note: 'primary' });
  t.equal(p.meta.reserved, 0);

  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0 + 7, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' }));
  at(t, p, T0 + 8, (x) => engine.unreserve(x, h('10.0.0.2'), {}));
  t.equal(p.free.get(h('10.0.0.2')), T0 + 7, 'an ended hold is free since its release');
  t.strictSame(p.history.at(-1), { at: T0 + 8, event: 'unreserve', ip: h('10.0.0.2'), owner: 'web-1', containerId: 'c1', gen: 1 });

  at(t, p, T0 + 9, (x) => engine.allocate(x, alloc('c2', 'web-2')));
  const ip = p.att.get('c2/eth0')!;
  t.equal(ip, h('10.0.0.3'), 'from the cursor: the free list waits until it is spent');
  refuses(t, () => engine.unreserve(p.txn(T0 + 9), ip, {}), 'IP_NOT_RESERVED', '10.0.0.3 is allocated, not reserved');
  refuses(t, () => engine.unreserve(p.txn(T0 + 9), h('10.0.0.6'), {}), 'IP_NOT_RESERVED', '10.0.0.6 is free, not reserved');
  at(t, p, T0 + 10, (x) => engine.reserve(x, ip, { owner: 'web-2', note: 'n' }));
  const unpinned = at(t, p, T0 + 11, (x) => engine.unreserve(x, ip, { actor: 'admin' }));
  t.strictSame(unpinned, { pool: 'p', ip, state: 'allocated', owner: 'web-2', containerId: 'c2', ifname: 'eth0', gen: 2, since: T0 + 9 });
  t.strictSame(p.addr.get(ip), { s: 'a', o: 'web-2', c: 'c2', i: 'eth0', g: 2, t: T0 + 9 });
  t.strictSame(p.history.at(-1), { at: T0 + 11, event: 'unpin', ip, owner: 'web-2', containerId: 'c2', ifname: 'eth0', gen: 2, actor: 'admin' });
  t.equal(p.meta.allocated, 1);
});

t.test('conflict: withdraws the finder\'s own allocation; otherwise only recorded', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  const before = structuredClone(p.addr.get(h('10.0.0.2')));
  // someone else's report, another interface of the container, another container
  for (const req of [{ note: 'in use by 02:aa' }, { containerId: 'c1', ifname: 'eth1', note: 'x' }, { containerId: 'c2', ifname: 'eth0', note: 'y' }]) {
    const info = at(t, p, T0 + 1, (x) => engine.conflict(x, h('10.0.0.2'), { ...req, actor: 'probe' }));
    t.equal(info.state, 'allocated', JSON.stringify(req));
    t.strictSame(p.addr.get(h('10.0.0.2')), before, 'the allocation stands');
    t.strictSame(p.history.at(-1), { at: T0 + 1, event: 'conflict', ip: h('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, actor: 'probe', note: req.note });
  }
  t.strictSame(at(t, p, T0 + 1, (x) => engine.conflict(x, h('10.0.0.4'), { note: 'seen' })), { pool: 'p', ip: h('10.0.0.4'), state: 'free' });
  t.strictSame(p.history.at(-1), { at: T0 + 1, event: 'conflict', ip: h('10.0.0.4'), note: 'seen' });
  t.notOk(p.addr.has(h('10.0.0.4')), 'a free address stays free');
  refuses(t, () => engine.conflict(p.txn(T0), h('10.0.0.7'), { note: 'x' }), 'IP_NOT_IN_POOL', '10.0.0.7 is not an assignable address of pool "p"');

  const mine = at(t, p, T0 + 2, (x) => engine.conflict(x, h('10.0.0.2'), { containerId: 'c1', ifname: 'eth0', note: 'in use by 02:bb', actor: 'probe' }));
  t.strictSame(mine, { pool: 'p', ip: h('10.0.0.2'), state: 'reserved', since: T0 + 2, note: 'in use by 02:bb' });
  t.strictSame(p.addr.get(h('10.0.0.2')), { s: 'r', t: T0 + 2, n: 'in use by 02:bb' }, 'reserved for no one, with the note');
  t.notOk(p.att.has('c1/eth0'));
  t.strictSame(p.history.at(-1), { at: T0 + 2, event: 'conflict', ip: h('10.0.0.2'), owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: 1, actor: 'probe', note: 'in use by 02:bb' });
  t.strictSame({ allocated: p.meta.allocated, reserved: p.meta.reserved }, { allocated: 0, reserved: 1 });
  // it is not handed out again
  const next = at(t, p, T0 + 3, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  t.not(next.ip, h('10.0.0.2'));
  // a reservation is never "mine"
  at(t, p, T0 + 3, (x) => engine.reserve(x, h('10.0.0.6'), { owner: 'web-1' }));
  at(t, p, T0 + 4, (x) => engine.conflict(x, h('10.0.0.6'), { containerId: 'c1', ifname: 'eth0', note: 'z' }));
  t.strictSame(p.addr.get(h('10.0.0.6')), { s: 'r', t: T0 + 3, o: 'web-1' });
});

t.test('holds end: expired on the next operation, free since their release, recorded', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0 + 5, (x) => engine.release(x, { containerId: 'c1', ifname: 'eth0' }));
  const end = T0 + 5 + HOLD * 1000;
  t.equal(engine.expireHolds(p.txn(end - 1)), 0, 'not before its end');
  t.strictSame(engine.usage(p.txn(end - 1)), { allocated: 0, reserved: 1 });
  t.strictSame(engine.usage(p.txn(end)), { allocated: 0, reserved: 0 }, 'at its end it reads as free before anything expires it');
  t.equal(p.meta.reserved, 1, 'usage writes nothing');
  t.equal(at(t, p, end, (x) => engine.expireHolds(x)), 1, 'at its end');
  t.notOk(p.addr.has(h('10.0.0.2')));
  t.equal(p.free.get(h('10.0.0.2')), T0 + 5, 'free since its release');
  t.strictSame(p.history.at(-1), { at: end, event: 'expire', ip: h('10.0.0.2'), owner: 'web-1', containerId: 'c1', gen: 1 });
  t.strictSame(p.meta, { cursor: h('10.0.0.3'), gen: 1, allocated: 0, reserved: 0 });
  t.equal(at(t, p, end, (x) => engine.expireHolds(x)), 0, 'nothing left');
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
    const p = newPool({ subnet: '10.0.0.0/16', hold: 1 });
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
      Array.from({ length: 16 }, (_, i) => h(`10.0.0.${i + 2}`)),
      `${name}: the earliest ends first`,
    );
  }
  const p = newPool({ subnet: '10.0.0.0/16', hold: 1 });
  for (let i = 0; i < 5; i++) at(t, p, T0, (x) => engine.allocate(x, alloc(`c${i}`, `o${i}`)));
  for (let i = 0; i < 5; i++) at(t, p, T0, (x) => engine.release(x, { containerId: `c${i}`, ifname: 'eth0' }));
  t.equal(at(t, p, T0 + 1000, (x) => engine.expireHolds(x, 2)), 2, 'a smaller limit');
  t.equal(at(t, p, T0 + 1000, (x) => engine.expireHolds(x)), 3);
});

t.test('expiry index entries their records do not bear out are dropped or re-indexed, not expired', async (t) => {
  const p = newPool();
  at(t, p, T0, (x) => engine.allocate(x, alloc('c1', 'web-1')));
  at(t, p, T0, (x) => engine.allocate(x, alloc('c2', 'web-2')));
  at(t, p, T0 + 1, (x) => engine.release(x, { containerId: 'c2', ifname: 'eth0' }));
  at(t, p, T0, (x) => engine.reserve(x, h('10.0.0.4'), { owner: 'db' }));
  const end = T0 + 1 + HOLD * 1000;
  // an allocated address, one with no record, an admin reservation, and a live hold indexed too early
  p.expiry.set(h('10.0.0.2'), T0);
  p.expiry.set(h('10.0.0.6'), T0);
  p.expiry.set(h('10.0.0.4'), T0);
  p.expiry.set(h('10.0.0.3'), T0);
  const history = p.history.length;
  t.equal(at(t, p, T0 + 2, (x) => engine.expireHolds(x)), 0, 'none of them expired');
  t.equal(p.history.length, history, 'nothing recorded');
  t.strictSame([...p.expiry], [[h('10.0.0.3'), end]], 'the live hold at its real end, the others gone');
  t.strictSame([h('10.0.0.2'), h('10.0.0.3'), h('10.0.0.4')].map((x) => p.addr.get(x)!.s), ['a', 'r', 'r'], 'records untouched');
});
