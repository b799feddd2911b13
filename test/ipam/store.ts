// The pool's behaviour, held to account on both stores: the embedded file
// store and a real redis-server started for this file.
import t from 'tap';
import { formatIp, parseIp } from '../../core/address.js';
import { checkPool } from '../../ipam/check.js';
import { buildPoolConfig, type PoolSpec } from '../../ipam/pool-config.js';
import type { Store } from '../../ipam/model.js';
import { openStore } from '../../ipam/open-store.js';
import { freshStore, STORE_KINDS } from '../helpers/stores.js';

const hex = (text: string): string => parseIp(text, 'ip').hex;
const ipOf = (h: string): string => formatIp(h);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function pool(store: Store, spec: Partial<PoolSpec> & { name?: string } = {}): Promise<string> {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/29', hold: 3600, ...spec });
  await store.createPool(conf);
  return conf.name;
}

async function stateOf(store: Store, p: string, ip: string): Promise<string> {
  return (await store.getAddress(p, hex(ip))).state;
}

for (const kind of STORE_KINDS) {
  t.test(`${kind} store`, async (t) => {
    const open = async (tt: typeof t) => (await freshStore(tt, kind))?.store;

    t.test('allocates in address order, skipping network and gateway; idempotent per attachment', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store);
      const a = await store.allocate(p, { containerId: 'c1', ifname: 'eth0', owner: 'web-1' });
      const b = await store.allocate(p, { containerId: 'c2', ifname: 'eth0', owner: 'web-2' });
      t.equal(ipOf(a.ip), '10.0.0.2', 'network .0 and gateway .1 are never handed out');
      t.equal(ipOf(b.ip), '10.0.0.3');
      t.equal(a.existing, false);
      t.ok(b.gen > a.gen, 'generations increase');
      const again = await store.allocate(p, { containerId: 'c1', ifname: 'eth0', owner: 'web-1' });
      t.same({ ip: again.ip, gen: again.gen, existing: again.existing }, { ip: a.ip, gen: a.gen, existing: true });
      const second = await store.allocate(p, { containerId: 'c1', ifname: 'eth1', owner: 'web-1' });
      t.not(second.ip, a.ip, 'another interface of the same container is another attachment');
      await t.rejects(store.allocate(p, { containerId: 'c1', ifname: 'eth0', owner: 'web-1', ip: hex('10.0.0.6') }), {
        code: 'ATTACHMENT_CONFLICT',
      });
      t.equal((await store.usage(p)).allocated, 3);
      const withHost = await store.allocate(p, { containerId: 'c3', ifname: 'eth0', owner: 'o3', host: 'node-7', network: 'vlan100' });
      t.match(await store.getAddress(p, withHost.ip), { host: 'node-7', network: 'vlan100' }, 'the allocating host and network are recorded');
      await store.release(p, { containerId: 'c3', ifname: 'eth0' });
      const held = await store.getAddress(p, withHost.ip);
      t.equal(held.host, undefined, 'a hold belongs to the owner, not to a host');
    });

    t.test('three states and every transition', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store, { hold: 3600 });
      // free -> allocated
      const a = await store.allocate(p, { containerId: 'c1', ifname: 'eth0', owner: 'web-1' });
      t.equal(await stateOf(store, p, ipOf(a.ip)), 'allocated');
      const info = await store.getAddress(p, a.ip);
      t.match(info, { owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: a.gen });
      // allocated -> reserved (held for the owner)
      const rel = await store.release(p, { containerId: 'c1', ifname: 'eth0' });
      t.same(rel, { released: true, ip: a.ip, state: 'reserved' });
      const held = await store.getAddress(p, a.ip);
      t.equal(held.state, 'reserved');
      t.equal(held.owner, 'web-1');
      t.ok(held.until! - held.since! === 3600 * 1000, 'held for the pool hold time');
      // a held address is not handed to anyone else
      const other = await store.allocate(p, { containerId: 'c2', ifname: 'eth0', owner: 'web-2' });
      t.not(other.ip, a.ip);
      await t.rejects(store.allocate(p, { containerId: 'c3', ifname: 'eth0', owner: 'web-3', ip: a.ip }), { code: 'IP_RESERVED' });
      // reserved (held) -> allocated: a new container of the same owner gets its IP back
      const back = await store.allocate(p, { containerId: 'c9', ifname: 'eth0', owner: 'web-1' });
      t.equal(back.ip, a.ip, 'sticky owner');
      t.ok(back.gen > a.gen, 'a new allocation is a new generation');
      // reserved (held) -> free by unreserve
      await store.release(p, { containerId: 'c9', ifname: 'eth0' });
      const un = await store.unreserve(p, a.ip, {});
      t.equal(un.state, 'free');
      t.equal(await stateOf(store, p, ipOf(a.ip)), 'free');
      // free -> reserved by an admin, with owner and note
      const r = await store.reserve(p, hex('10.0.0.6'), { owner: 'db-1', note: 'primary database' });
      t.match(r, { state: 'reserved', owner: 'db-1', note: 'primary database' });
      t.equal(r.until, undefined, 'an admin reservation does not expire');
      // reserved -> free by an admin
      await store.unreserve(p, hex('10.0.0.6'), {});
      t.equal(await stateOf(store, p, '10.0.0.6'), 'free');
      await t.rejects(store.unreserve(p, hex('10.0.0.6'), {}), { code: 'IP_NOT_RESERVED' });
      // allocated -> free when the pool holds nothing
      const p2 = await pool(store, { name: 'nohold', subnet: '10.1.0.0/29', hold: 0 });
      const x = await store.allocate(p2, { containerId: 'c1', ifname: 'eth0', owner: 'o' });
      t.same(await store.release(p2, { ip: x.ip }), { released: true, ip: x.ip, state: 'free' });
      t.equal((await store.getAddress(p2, x.ip)).state, 'free');
      await t.rejects(store.release(p2, { ip: x.ip }), { code: 'IP_NOT_ALLOCATED' });
    });

    t.test('an admin reservation for an owner is handed to that owner only, and comes back on release', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store);
      await store.reserve(p, hex('10.0.0.5'), { owner: 'db-1', note: 'pinned by change 42' });
      const others = [];
      for (let i = 0; i < 3; i++) others.push((await store.allocate(p, { containerId: `x${i}`, ifname: 'eth0', owner: `x${i}` })).ip);
      t.notOk(others.includes(hex('10.0.0.5')), 'others never get it');
      const db = await store.allocate(p, { containerId: 'db', ifname: 'eth0', owner: 'db-1' });
      t.equal(ipOf(db.ip), '10.0.0.5', 'its owner gets it without asking');
      t.equal((await store.getAddress(p, db.ip)).pinned, true);
      t.same(await store.release(p, { containerId: 'db', ifname: 'eth0' }), { released: true, ip: db.ip, state: 'reserved' });
      const after = await store.getAddress(p, db.ip);
      t.match(after, { state: 'reserved', owner: 'db-1', note: 'pinned by change 42' });
      t.equal(after.until, undefined, 'back to an admin reservation, not a hold');
      // reserving an allocated address for its own owner pins it; for anyone else is refused
      const w = await store.allocate(p, { containerId: 'w', ifname: 'eth0', owner: 'w' });
      await t.rejects(store.reserve(p, w.ip, { owner: 'someone-else' }), { code: 'IP_ALLOCATED' });
      await t.rejects(store.reserve(p, w.ip, {}), { code: 'IP_ALLOCATED' });
      const pinned = await store.reserve(p, w.ip, { owner: 'w', note: 'keep' });
      t.match(pinned, { state: 'allocated', pinned: true, note: 'keep' });
      const unpinned = await store.unreserve(p, w.ip, {});
      t.equal(unpinned.pinned, undefined);
      t.equal(unpinned.state, 'allocated');
    });

    t.test('requested addresses', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store, { subnet: '10.0.0.0/24', ranges: ['10.0.0.10-10.0.0.20'], gateway: '10.0.0.254' });
      const a = await store.allocate(p, { containerId: 'c1', ifname: 'eth0', owner: 'o1', ip: hex('10.0.0.15') });
      t.equal(ipOf(a.ip), '10.0.0.15');
      await t.rejects(store.allocate(p, { containerId: 'c2', ifname: 'eth0', owner: 'o2', ip: hex('10.0.0.15') }), {
        code: 'IP_ALLOCATED',
        message: '10.0.0.15 is allocated to o1 (container c1)',
      });
      for (const bad of ['10.0.0.9', '10.0.0.21', '10.0.0.254', '10.0.0.0', '10.0.0.255', '10.9.0.1']) {
        await t.rejects(store.allocate(p, { containerId: 'c3', ifname: 'eth0', owner: 'o3', ip: hex(bad) }), { code: 'IP_NOT_IN_POOL' }, bad);
      }
      const next = await store.allocate(p, { containerId: 'c4', ifname: 'eth0', owner: 'o4' });
      t.equal(ipOf(next.ip), '10.0.0.10', 'the first of the range, not the gateway');
    });

    t.test('least recently released first; a freed address is not reused at once', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store, { hold: 0 });
      const ips = [];
      for (let i = 0; i < 5; i++) ips.push((await store.allocate(p, { containerId: `c${i}`, ifname: 'eth0', owner: `o${i}` })).ip);
      t.same(ips.map(ipOf), ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
      await t.rejects(store.allocate(p, { containerId: 'z', ifname: 'eth0', owner: 'z' }), { code: 'POOL_EXHAUSTED' });
      for (const i of [2, 0, 4]) {
        await store.release(p, { containerId: `c${i}`, ifname: 'eth0' });
        await sleep(3); // distinct release times
      }
      const order = [];
      for (let i = 0; i < 3; i++) order.push(ipOf((await store.allocate(p, { containerId: `n${i}`, ifname: 'eth0', owner: `n${i}` })).ip));
      t.same(order, ['10.0.0.4', '10.0.0.2', '10.0.0.6']);

      const q = await pool(store, { name: 'q', subnet: '10.2.0.0/24', hold: 0 });
      const first = await store.allocate(q, { containerId: 'a', ifname: 'eth0', owner: 'a' });
      await store.release(q, { containerId: 'a', ifname: 'eth0' });
      const second = await store.allocate(q, { containerId: 'b', ifname: 'eth0', owner: 'b' });
      t.not(second.ip, first.ip, 'never-used addresses go before a just-released one');
    });

    t.test('a stale release is refused and a late DEL frees nobody else', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store, { hold: 0 });
      const a = await store.allocate(p, { containerId: 'old', ifname: 'eth0', owner: 'o1' });
      t.same(await store.release(p, { containerId: 'old', ifname: 'eth0', gen: a.gen }), { released: true, ip: a.ip, state: 'free' });
      const b = await store.allocate(p, { containerId: 'new', ifname: 'eth0', owner: 'o2', ip: a.ip });
      await t.rejects(store.release(p, { ip: a.ip, gen: a.gen }), { code: 'STALE_GENERATION' });
      t.same(await store.release(p, { containerId: 'old', ifname: 'eth0' }), { released: false }, 'late DEL: nothing');
      t.same(await store.release(p, { containerId: 'old', ifname: 'eth0' }), { released: false }, 'and again');
      const still = await store.getAddress(p, a.ip);
      t.match(still, { state: 'allocated', containerId: 'new', gen: b.gen });
      t.same(await store.release(p, { ip: a.ip, gen: b.gen }), { released: true, ip: a.ip, state: 'free' });
    });

    t.test('holds end: a held address becomes free after the hold time, in its state and in the counters', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store, { hold: 1 });
      const long = await pool(store, { name: 'long', subnet: '10.3.0.0/29', hold: 3600 });
      const a = await store.allocate(p, { containerId: 'c1', ifname: 'eth0', owner: 'o1' });
      await store.allocate(p, { containerId: 'c3', ifname: 'eth0', owner: 'o3' });
      await store.reserve(p, hex('10.0.0.6'), { owner: 'db' });
      await store.allocate(long, { containerId: 'l1', ifname: 'eth0', owner: 'o1' });
      await store.release(long, { containerId: 'l1', ifname: 'eth0' });
      await store.release(p, { containerId: 'c1', ifname: 'eth0' });
      t.equal(await stateOf(store, p, ipOf(a.ip)), 'reserved');
      await sleep(1300);
      t.equal(await stateOf(store, p, ipOf(a.ip)), 'free', 'shown free once the hold has ended');

      // No change has expired the hold yet: every view reads it as free all the same.
      const counted = async (name: string) => {
        const states = (await store.listAddresses(name)).map((x) => x.state);
        return { allocated: states.filter((s) => s === 'allocated').length, reserved: states.filter((s) => s === 'reserved').length };
      };
      const counts = ({ allocated, reserved }: { allocated: number; reserved: number }) => ({ allocated, reserved });
      t.same(await counted(p), { allocated: 1, reserved: 1 }, 'ip ls: the admin reservation is reserved, the ended hold free');
      t.same(counts(await store.usage(p)), await counted(p), 'usage agrees with ip ls');
      t.same(counts(await store.usage(long)), { allocated: 0, reserved: 1 }, 'a hold that has not ended still counts as reserved');
      t.same(
        (await store.listPools()).map((u) => [u.conf.name, u.allocated, u.reserved]),
        [
          ['long', 0, 1],
          ['p', 1, 1],
        ],
        'listPools agrees',
      );
      t.same(checkPool(await store.snapshot(p)).findings, [], 'the check finds the stored counters right, with the hold not yet expired');
      t.equal(await store.applyFixes(p, [{ kind: 'meta', key: 'allocated', value: 'recount' }]), 1);
      t.same(counts(await store.usage(p)), { allocated: 1, reserved: 1 }, 'and a recount by repair keeps them right');

      const b = await store.allocate(p, { containerId: 'c2', ifname: 'eth0', owner: 'o2', ip: a.ip });
      t.equal(b.ip, a.ip, 'and can be handed to another owner');
      const events = (await store.history(p, { ip: a.ip })).map((e) => e.event);
      t.same(events, ['allocate', 'expire', 'release', 'allocate'], 'the expiry is in the history');
      t.same(counts(await store.usage(p)), { allocated: 2, reserved: 1 });
      t.same(checkPool(await store.snapshot(p)).findings, []);
    });

    t.test('a conflict found on the wire: the allocation of the attachment that found it is withdrawn and reserved for no one; otherwise history only', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store, { hold: 3600 });
      const a = await store.allocate(p, { containerId: 'c1', ifname: 'eth0', owner: 'web-1' });
      const note = 'conflict: in use by 02:aa:00:00:00:09';
      const info = await store.conflict(p, a.ip, { containerId: 'c1', ifname: 'eth0', note, actor: 'cni@h1' });
      t.match(info, { state: 'reserved', note }, 'reserved, with the note');
      t.equal(info.owner, undefined, 'for no one');
      t.equal((await store.usage(p)).allocated, 0);
      t.equal((await store.usage(p)).reserved, 1);
      const next = await store.allocate(p, { containerId: 'c1', ifname: 'eth0', owner: 'web-1' });
      t.not(next.ip, a.ip, 'the attachment gets another address');
      t.equal(next.existing, false);
      await t.rejects(store.allocate(p, { containerId: 'c9', ifname: 'eth0', owner: 'web-1', ip: a.ip }), { code: 'IP_RESERVED' }, 'and nobody is handed the conflicted one, its old owner neither');
      // found by someone who does not hold it: nothing moves, the history records it
      const b = await store.allocate(p, { containerId: 'c2', ifname: 'eth0', owner: 'web-2' });
      const seen = await store.conflict(p, b.ip, { containerId: 'c7', ifname: 'eth0', note: 'held by c7/eth0 on host-b', actor: 'agent@host-b' });
      t.match(seen, { state: 'allocated', containerId: 'c2' });
      const hist = await store.history(p, { ip: b.ip });
      t.match(hist[0], { event: 'conflict', ip: b.ip, containerId: 'c2', note: 'held by c7/eth0 on host-b', actor: 'agent@host-b' });
      t.match((await store.history(p, { ip: a.ip }))[0], { event: 'conflict', containerId: 'c1', owner: 'web-1', note, actor: 'cni@h1' });
      await t.rejects(store.conflict(p, hex('10.0.0.0'), { note: 'x' }), { code: 'IP_NOT_IN_POOL' });
      await t.rejects(store.conflict(p, a.ip, { note: '' }), { code: 'INVALID' });
      t.same(checkPool(await store.snapshot(p)).findings, [], 'the check is clean');
    });

    t.test('host announcements: each host replaces its own; malformed ones are skipped', async (t) => {
      const store = await open(t);
      if (!store) return;
      t.same(await store.listHosts(), [], 'none yet');
      const member = { service: 'web', ip: '10.0.0.5', port: 8080, owner: 'web-1', pool: 'p', container: 'c1' };
      await store.publishHost({ host: 'h1', hostId: 'a', at: 1, members: [member], targets: [] });
      await store.publishHost({ host: 'h1', hostId: 'b', at: 2, members: [], targets: [{ targets: ['10.0.0.6:9100'], labels: { owner: 'x' } }] });
      await store.publishHost({ host: 'h1', hostId: 'a', at: 3, members: [member, { ...member, ip: '10.0.0.7', container: 'c2' }], targets: [] });
      const all = (await store.listHosts()).sort((x, y) => x.at - y.at);
      t.same(all.map((h) => [h.host, h.hostId, h.at, h.members.length, h.targets.length]), [['h1', 'b', 2, 0, 1], ['h1', 'a', 3, 2, 0]], 'two hosts of one name apart; the later announcement replaces the earlier');
    });

    t.test('history: who, what, when, per pool and per address, newest first', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store);
      const before = Date.now();
      const a = await store.allocate(p, { containerId: 'c1', ifname: 'eth0', owner: 'web-1', actor: 'test@h1' });
      await store.allocate(p, { containerId: 'c2', ifname: 'eth0', owner: 'web-2', actor: 'test@h1' });
      await store.release(p, { containerId: 'c1', ifname: 'eth0', actor: 'test@h2' });
      await store.reserve(p, hex('10.0.0.6'), { owner: 'db', note: 'n1', actor: 'admin' });
      const all = await store.history(p);
      t.same(all.map((e) => [e.event, ipOf(e.ip)]), [
        ['reserve', '10.0.0.6'],
        ['release', '10.0.0.2'],
        ['allocate', '10.0.0.3'],
        ['allocate', '10.0.0.2'],
      ]);
      t.match(all[1], { owner: 'web-1', containerId: 'c1', ifname: 'eth0', gen: a.gen, actor: 'test@h2' });
      t.match(all[0], { owner: 'db', note: 'n1', actor: 'admin' });
      t.ok(all.every((e) => e.at >= before - 1000 && e.at <= Date.now() + 1000), 'timestamps are now');
      t.same((await store.history(p, { ip: a.ip })).map((e) => e.event), ['release', 'allocate']);
      t.equal((await store.history(p, { limit: 2 })).length, 2);
    });

    t.test('historyAfter: follows several pools from a cursor, woken by a change made elsewhere', async (t) => {
      const fresh = await freshStore(t, kind);
      if (!fresh) return;
      const writer = fresh.store;
      // the wait blocks a Redis connection: a follower has a store of its own
      const follower = await openStore(fresh.url, { redisClient: kind === 'ioredis' ? 'ioredis' : 'resp' });
      t.teardown(() => follower.close());
      const a = await pool(writer, { name: 'a', subnet: '10.0.0.0/29' });
      const b = await pool(writer, { name: 'b', subnet: '10.1.0.0/29' });
      await writer.allocate(a, { containerId: 'old', ifname: 'eth0', owner: 'old' });

      let t0 = Date.now();
      const start = await follower.historyAfter([a, b], {}, 5000);
      t.same(start.entries, [], 'a pool the cursor lacks starts at its end: earlier entries are not repeated');
      t.same(Object.keys(start.cursor).sort(), [a, b]);
      t.ok(Date.now() - t0 < 1000, 'and the call returns at once');

      t0 = Date.now();
      const idle = await follower.historyAfter([a, b], start.cursor, 300);
      t.same(idle.entries, [], 'nothing new');
      t.ok(Date.now() - t0 >= 250, `waited for the wait (${Date.now() - t0} ms)`);

      const pending = follower.historyAfter([a, b], idle.cursor, 10_000);
      await sleep(100);
      t0 = Date.now();
      const x = await writer.allocate(b, { containerId: 'c1', ifname: 'eth0', owner: 'web-1', actor: 'test' });
      const woken = await pending;
      t.ok(Date.now() - t0 < 1000, `a change wakes the waiting reader (${Date.now() - t0} ms)`);
      t.match(woken.entries, [{ pool: b, event: 'allocate', ip: x.ip, owner: 'web-1', containerId: 'c1', actor: 'test' }]);

      await writer.release(b, { containerId: 'c1', ifname: 'eth0' });
      await writer.reserve(a, hex('10.0.0.5'), { note: '<b>n</b>' });
      const more = await follower.historyAfter([a, b], woken.cursor, 1000);
      t.same(
        more.entries.map((e) => [e.pool, e.event, ipOf(e.ip)]),
        [
          [b, 'release', ipOf(x.ip)],
          [a, 'reserve', '10.0.0.5'],
        ],
        'entries after the cursor, oldest first, each with its pool',
      );
      t.same((await follower.historyAfter([a, b], more.cursor, 0)).entries, [], 'read once only');
      const onlyA = await follower.historyAfter([a], more.cursor, 0);
      t.same(Object.keys(onlyA.cursor), [a], 'the cursor keeps the pools asked for');

      await t.rejects(follower.historyAfter(['no/such'], {}, 0), { code: 'INVALID', field: 'pools[0]' });
      await t.rejects(follower.historyAfter([a], {}, -1), { code: 'INVALID', field: 'waitMs' });
      await t.rejects(follower.historyAfter([a], { [a]: 'nonsense' }, 0), { code: 'INVALID', field: 'cursor' });
    });

    t.test('pools: create, overlap, duplicate, list, remove', async (t) => {
      const store = await open(t);
      if (!store) return;
      await pool(store, { name: 'a', subnet: '10.0.0.0/24', vlan: 100 });
      await t.rejects(store.createPool(buildPoolConfig({ name: 'a', subnet: '10.9.0.0/24' })), { code: 'POOL_EXISTS' });
      await t.rejects(store.createPool(buildPoolConfig({ name: 'b', subnet: '10.0.0.128/25' })), {
        code: 'POOL_OVERLAP',
        message: 'subnet 10.0.0.128/25 overlaps pool "a" (10.0.0.0/24)',
      });
      await t.rejects(store.createPool(buildPoolConfig({ name: 'b', subnet: '10.0.0.0/8' })), { code: 'POOL_OVERLAP' });
      await pool(store, { name: 'b', subnet: '10.0.1.0/24' });
      await pool(store, { name: 'v6', subnet: 'fd00:10::/64' });
      const list = await store.listPools();
      t.same(list.map((u) => [u.conf.name, u.conf.vlan, u.capacity]), [
        ['a', 100, '253'],
        ['b', null, '253'],
        ['v6', null, String(2n ** 64n - 2n)],
      ]);
      await store.allocate('a', { containerId: 'c', ifname: 'eth0', owner: 'o' });
      await t.rejects(store.removePool('a'), { code: 'POOL_IN_USE' });
      t.same(await store.removePool('a', { force: true }), { allocated: 1 });
      await t.rejects(store.allocate('a', { containerId: 'c', ifname: 'eth0', owner: 'o' }), { code: 'POOL_NOT_FOUND' });
      await t.rejects(store.getPool('a'), { code: 'POOL_NOT_FOUND' });
      await t.rejects(store.removePool('a'), { code: 'POOL_NOT_FOUND' });
      // the name and subnet are free again
      await pool(store, { name: 'a', subnet: '10.0.0.0/24' });
      t.equal((await store.usage('a')).allocated, 0, 'a re-created pool starts empty');
      t.same(await store.history('a'), [], 'and without the old history');
    });

    t.test('IPv6: the cursor steps across hex digits, addresses print in RFC 5952 form', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store, { name: 'v6', subnet: 'fd00::/64', ranges: ['fd00::fe-fd00::101'], hold: 0 });
      const got = [];
      for (let i = 0; i < 4; i++) got.push(ipOf((await store.allocate(p, { containerId: `c${i}`, ifname: 'eth0', owner: `o${i}` })).ip));
      t.same(got, ['fd00::fe', 'fd00::ff', 'fd00::100', 'fd00::101']);
      await t.rejects(store.allocate(p, { containerId: 'x', ifname: 'eth0', owner: 'x' }), { code: 'POOL_EXHAUSTED' });
    });

    t.test('a large pool costs what a small one does', async (t) => {
      const store = await open(t);
      if (!store) return;
      await pool(store, { name: 'big', subnet: '10.16.0.0/12', hold: 0 });
      t.equal((await store.usage('big')).capacity, String(2 ** 20 - 3));
      const ips = new Set<string>();
      for (let i = 0; i < 50; i++) {
        const a = await store.allocate('big', { containerId: `c${i}`, ifname: 'eth0', owner: `o${i}` });
        ips.add(a.ip);
        await store.release('big', { containerId: `c${i}`, ifname: 'eth0' });
      }
      t.equal(ips.size, 50, 'released addresses wait while never-used ones remain');
      t.equal((await store.listAddresses('big')).length, 0, 'only non-free addresses have records');
    });

    t.test('bad requests are refused the same way on every store, naming the field', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store);
      const ok = { containerId: 'c1', ifname: 'eth0', owner: 'o' };
      const bad: Array<[string, Record<string, unknown>]> = [
        ['ip', { ...ok, ip: '' }],
        ['ip', { ...ok, ip: 'zz' }],
        ['ip', { ...ok, ip: '0A000005' }],
        ['containerId', { ...ok, containerId: '' }],
        ['containerId', { ...ok, containerId: 'a/b' }],
        ['ifname', { ...ok, ifname: 'eth/0' }],
        ['ifname', { ...ok, ifname: 'a234567890123456' }],
        ['owner', { ...ok, owner: '' }],
        ['owner', { ...ok, owner: 'a\u0000b' }],
        ['actor', { ...ok, actor: '' }],
        ['host', { ...ok, host: '' }],
        ['network', { ...ok, network: 'x\ny' }],
      ];
      for (const [field, req] of bad) {
        await t.rejects(store.allocate(p, req as never), { code: 'INVALID', field }, `${field}: ${JSON.stringify(req[field])}`);
      }
      await t.rejects(store.release(p, { ip: 'zz' }), { code: 'INVALID', field: 'ip' });
      await t.rejects(store.release(p, { containerId: '', ifname: 'eth0' }), { code: 'INVALID', field: 'containerId' });
      await t.rejects(store.release(p, { containerId: 'c', ifname: 'eth0', gen: 0 }), { code: 'INVALID', field: 'gen' });
      await t.rejects(store.reserve(p, hex('10.0.0.5'), { owner: '' }), { code: 'INVALID', field: 'owner' });
      await t.rejects(store.getAddress(p, '10.0.0.5'), { code: 'INVALID', field: 'ip' });
      t.equal((await store.usage(p)).allocated, 0, 'nothing was allocated');
      await store.allocate(p, ok);
      t.same(await store.history(p, { limit: 0 }), [], 'limit 0 means none');
    });

    t.test('consistency check is clean after a mixed workload', async (t) => {
      const store = await open(t);
      if (!store) return;
      const p = await pool(store, { subnet: '10.0.0.0/26', hold: 3600 });
      for (let i = 0; i < 30; i++) await store.allocate(p, { containerId: `c${i}`, ifname: 'eth0', owner: `o${i % 20}` });
      for (let i = 0; i < 30; i += 3) await store.release(p, { containerId: `c${i}`, ifname: 'eth0' });
      await store.reserve(p, hex('10.0.0.60'), { owner: 'x' });
      const result = checkPool(await store.snapshot(p));
      t.same(result.findings, []);
      const u = await store.usage(p);
      t.equal(u.allocated, 20);
      t.equal(u.reserved, 11);
    });
  });
}
