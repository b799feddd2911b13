// The records cache on a real store and change feed: a pool is read whole
// once, then only the addresses changed (by anyone) are read again; nothing
// is kept while the feed is not following.
import t from 'tap';
import { parseIp } from '../../core/address.js';
import type { Store } from '../../ipam/model.js';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { ChangeFeed } from '../../ipam/change-feed.js';
import { PoolRecords } from '../../ipam/pool-records.js';
import { freshStore, PROCESS_STORE_KINDS } from '../helpers/stores.js';

const hex = (ip: string) => parseIp(ip, 'ip').hex;
const quiet = { info() {}, warn() {} };
const until = async (what: () => boolean | Promise<boolean>, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** The store with its reads counted. */
function counted(store: Store) {
  const n = { list: 0, get: 0 };
  const spy = Object.create(store) as Store;
  spy.listAddresses = (pool) => (n.list++, store.listAddresses(pool));
  spy.getAddress = (pool, ip) => (n.get++, store.getAddress(pool, ip));
  return { spy, n };
}

for (const kind of PROCESS_STORE_KINDS) {
  t.test(`${kind} store`, async (t) => {
    const fresh = await freshStore(t, kind);
    if (!fresh) return;
    const writer = fresh.store;
    await writer.createPool(buildPoolConfig({ name: 'web', subnet: '10.0.0.0/24', hold: 600 }));
    await writer.allocate('web', { containerId: 'c1', ifname: 'eth0', owner: 'a' });
    const reader = await openStore(fresh.url);
    const follow = await openStore(fresh.url);
    t.teardown(() => reader.close());
    const { spy, n } = counted(reader);
    const feed = new ChangeFeed(follow, async () => ['web'], 200, quiet);
    const records = new PoolRecords(spy, feed);
    t.same((await records.list('web')).map((a) => a.owner), ['a'], 'before the feed follows the pool: read from the store');
    t.equal(n.list, 1);
    feed.start();
    t.teardown(() => feed.stop());
    await until(() => feed.following('web'));

    await records.list('web');
    await records.list('web');
    t.equal(n.list, 2, 'once followed, read whole once');
    await writer.allocate('web', { containerId: 'c2', ifname: 'eth0', owner: 'b' });
    await writer.release('web', { containerId: 'c1', ifname: 'eth0' });
    await until(async () => (await records.list('web')).length === 2 && n.get === 2);
    const now = await records.list('web');
    t.same(now.map((a) => [a.owner, a.state]), [['a', 'reserved'], ['b', 'allocated']], 'a change made elsewhere is seen');
    t.equal(n.list, 2, 'without reading the pool whole again');
    t.equal(n.get, 2, 'only the two changed addresses were read');
    t.same(now, await reader.listAddresses('web'), 'the same as the store says');

    await writer.unreserve('web', hex('10.0.0.2'), {});
    await until(async () => (await records.list('web')).length === 1);
    t.same((await records.list('web')).map((a) => a.owner), ['b'], 'an address that became free is gone');

    await feed.stop();
    t.equal(feed.following('web'), false);
    await records.list('web');
    t.equal(n.list, 3, 'not following: read from the store again');
  });
}
