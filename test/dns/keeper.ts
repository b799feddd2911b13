// The zone keeper in-process on a real file store and change feed: the first
// build, a change followed without a restart, members read from the hosts'
// announcements, a removed pool dropped, clashes logged once, and a storm of
// changes built in a bounded number of builds.
import t from 'tap';
import { formatIp } from '../../core/address.js';
import { ChangeFeed } from '../../ipam/change-feed.js';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { PoolRecords } from '../../ipam/pool-records.js';
import { BUILD_GAP_MS, ZoneKeeper } from '../../dns/keeper.js';
import { freshStore } from '../helpers/stores.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

t.test('follows the store', async (t) => {
  const fresh = (await freshStore(t, 'file'))!;
  const { store, url } = fresh;
  await store.createPool(buildPoolConfig({ name: 'web', subnet: '10.20.0.0/24', hold: 0 }));
  await store.createPool(buildPoolConfig({ name: 'gone', subnet: '10.21.0.0/24', hold: 0 }));
  await store.allocate('gone', { containerId: 'g', ifname: 'eth0', owner: 'g' });
  const follow = await openStore(url);
  const lines: Array<{ level: string; obj: any; msg: string }> = [];
  const log = { info: (obj: object, msg: string) => lines.push({ level: 'info', obj, msg }), warn: (obj: object, msg: string) => lines.push({ level: 'warn', obj, msg }) };
  const feed: ChangeFeed = new ChangeFeed(follow, () => keeper.poolNames(), 1000, log);
  const records = new PoolRecords(store, feed, Date.now, Infinity);
  const keeper = new ZoneKeeper({ store, feed, records, log, zone: 'berth', ttl: 5, nsAddresses: [], hostsEveryMs: 100 });
  await keeper.start();
  feed.start();
  t.teardown(async () => {
    await feed.stop();
    await keeper.stop();
  });
  const answer = (name: string, type = 'A') => keeper.current().lookup(name, type);
  t.equal(answer('g.gone.berth').answers.length, 1, 'the first build holds what the store holds');
  t.match(lines, [{ msg: 'the zone is built', obj: { names: 1, pools: 2 } }]);

  const a = await store.allocate('web', { containerId: 'c1', ifname: 'eth0', owner: 'web-1' });
  await eventually('web-1 named', () => (answer('web-1.web.berth').answers.length === 1 ? true : undefined));
  t.match(answer('web-1.web.berth').answers, [{ data: formatIp(a.ip) }], 'a change is followed');

  await store.publishHost({ host: 'h', at: Date.now(), targets: [], members: [{ service: 'web', ip: formatIp(a.ip), port: 80, owner: 'web-1', pool: 'web', container: 'c1' }] });
  await eventually('the SRV record', () => (answer('_web._tcp.berth', 'SRV').answers.length === 1 ? true : undefined));
  t.pass("the hosts' members are read again");

  await store.allocate('web', { containerId: 'c2', ifname: 'eth0', owner: 'Web-1' });
  await eventually('the clash logged', () => lines.find((l) => l.level === 'warn' && l.obj.clashes === 1));
  await store.allocate('web', { containerId: 'c3', ifname: 'eth0', owner: 'other' });
  await eventually('other named', () => (answer('other.web.berth').answers.length === 1 ? true : undefined));
  t.equal(lines.filter((l) => l.obj.clashes !== undefined).length, 1, 'a clash is logged once, not at every build');
  await store.release('web', { containerId: 'c2', ifname: 'eth0' });
  await eventually('the clash over', () => lines.find((l) => l.obj.clashes === 0));

  await store.release('gone', { containerId: 'g', ifname: 'eth0' });
  await store.removePool('gone');
  await eventually('the removed pool gone', () => (answer('gone.berth').rcode === 'NXDOMAIN' ? true : undefined), 15_000);
  t.equal(answer('1.21.10.in-addr.arpa', 'PTR').rcode, 'REFUSED', 'its reverse zone too');

  // 200 changes as fast as the store takes them: far fewer builds, each BUILD_GAP_MS apart at least
  const before = keeper.stats.builds;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: 200 }, (_, i) => store.allocate('web', { containerId: `s${i}`, ifname: 'eth0', owner: `storm-${i}` })));
  const took = Date.now() - t0;
  await eventually('the storm named', () => (answer('storm-199.web.berth').answers.length === 1 ? true : undefined));
  const builds = keeper.stats.builds - before;
  t.ok(builds <= Math.ceil((Date.now() - t0) / BUILD_GAP_MS) + 1, `${builds} builds for 200 changes in ${took} ms`);
  t.equal(keeper.stats.failures, 0);
});
