// main() in-process against real stores: the same scenario on the file store
// and on Redis, then every bad-input path.
import t, { type Test } from 'tap';
import { main } from '../../cli/main.js';
import { formatIp, parseIp } from '../../core/address.js';
import type { Store } from '../../ipam/model.js';
import { openStore } from '../../ipam/open-store.js';
import { skipWithoutRedis, startRedis, type RedisServer } from '../helpers/redis.js';
import { sharedRedis, STORE_KINDS, type StoreKind } from '../helpers/stores.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function berth(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env,
  });
  return { code, stdout, stderr };
}

/** Runs against one store and expects success; returns stdout. */
function cli(t: Test, url: string) {
  return async (...args: string[]): Promise<string> => {
    const r = await berth(['--store', url, ...args]);
    t.equal(r.code, 0, `berth ${args.join(' ')} exits 0`);
    t.equal(r.stderr, '', `berth ${args.join(' ')} prints nothing on stderr`);
    return r.stdout;
  };
}

/** Runs with --json and parses stdout. */
function cliJson(t: Test, url: string) {
  const run = cli(t, url);
  return async (...args: string[]): Promise<any> => JSON.parse(await run(...args, '--json'));
}

/** Asserts a failure: exit code, exactly one stderr line, no stack, nothing on stdout. */
function assertFails(t: Test, r: Run, code: number, message: string | RegExp, what: string): void {
  t.equal(r.code, code, `${what}: exits ${code}`);
  t.equal(r.stdout, '', `${what}: nothing on stdout`);
  t.match(r.stderr, /^berth: [^\n]+\n$/, `${what}: one "berth: " line on stderr`);
  t.notMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  if (typeof message === 'string') t.equal(r.stderr, `berth: ${message}\n`, what);
  else t.match(r.stderr, message, what);
}

const hex = (ip: string): string => parseIp(ip, 'ip').hex;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

async function withStore<T>(url: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(url);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The scenario every store must pass the same way. */
async function scenario(t: Test, url: string): Promise<void> {
  const run = cli(t, url);
  const json = cliJson(t, url);
  const fails = async (code: number, message: string | RegExp, ...args: string[]) =>
    assertFails(t, await berth(['--store', url, ...args]), code, message, `berth ${args.join(' ')}`);

  t.match(await run('pool', 'ls'), /^no pools in /, 'empty store');
  t.same(await json('pool', 'ls'), []);

  t.equal(
    await run('pool', 'create', 'web', '--subnet', '10.20.0.0/24', '--range', '10.20.0.10-10.20.0.50', '--vlan', '120', '--hold', '600'),
    'created pool "web": 10.20.0.0/24, 41 assignable addresses\n',
  );
  await fails(1, 'failed to create pool "web": pool "web" already exists', 'pool', 'create', 'web', '--subnet', '10.30.0.0/24');
  await fails(1, /^berth: failed to create pool "web2": subnet 10\.20\.0\.0\/25 overlaps pool "web"/, 'pool', 'create', 'web2', '--subnet', '10.20.0.0/25');

  const created = await json(
    'pool', 'create', 'edge', '--subnet', '192.168.8.0/24', '--range', '192.168.8.100-192.168.8.199', '--range', '192.168.8.20',
    '--gateway', '192.168.8.254', '--route', '10.0.0.0/8,192.168.8.254', '--route', '172.16.0.0/12',
    '--dns-server', '192.168.8.53', '--dns-server', '1.1.1.1', '--dns-domain', 'edge.example', '--dns-search', 'edge.example',
    '--dns-search', 'example', '--dns-option', 'ndots:2', '--hold', '0',
  );
  t.match(created, {
    name: 'edge',
    family: 4,
    subnet: '192.168.8.0/24',
    ranges: [{ first: '192.168.8.20', last: '192.168.8.20' }, { first: '192.168.8.100', last: '192.168.8.199' }],
    gateway: '192.168.8.254',
    vlan: null,
    routes: [{ dst: '10.0.0.0/8', gw: '192.168.8.254' }, { dst: '172.16.0.0/12' }],
    dns: { nameservers: ['192.168.8.53', '1.1.1.1'], domain: 'edge.example', search: ['edge.example', 'example'], options: ['ndots:2'] },
    hold: 0,
    allocated: 0,
    reserved: 0,
    capacity: '101',
  });
  t.match(created.created, ISO);

  const pools = await json('pool', 'ls');
  t.same(
    pools.map((p: any) => [p.name, p.subnet, p.vlan, p.allocated, p.reserved, p.capacity, p.hold]),
    [
      ['edge', '192.168.8.0/24', null, 0, 0, '101', 0],
      ['web', '10.20.0.0/24', 120, 0, 0, '41', 600],
    ],
  );
  const table = (await run('pool', 'ls')).split('\n');
  t.match(table[0], /^NAME\s+SUBNET\s+VLAN\s+ALLOCATED\s+RESERVED\s+CAPACITY\s+HOLD$/);
  t.match(table[2], /^web\s+10\.20\.0\.0\/24\s+120\s+0\s+0\s+41\s+10m$/);
  t.equal(table[0]!.indexOf('SUBNET'), table[2]!.indexOf('10.20'), 'columns are aligned');

  const shown = await run('pool', 'show', 'edge');
  t.match(shown, /^ranges:\s+192\.168\.8\.20, 192\.168\.8\.100-192\.168\.8\.199$/m);
  t.match(shown, /^gateway:\s+192\.168\.8\.254$/m);
  t.match(shown, /^routes:\s+10\.0\.0\.0\/8 via 192\.168\.8\.254, 172\.16\.0\.0\/12$/m);
  t.match(shown, /^dns servers:\s+192\.168\.8\.53, 1\.1\.1\.1$/m);
  t.match(shown, /^dns domain:\s+edge\.example$/m);
  t.match(shown, /^capacity:\s+101$/m);
  t.match(await run('pool', 'show', 'web'), /^vlan:\s+120$/m);

  // Allocation is not a CLI verb: it is what the CNI plugin does through the Store.
  const [a1, a2] = await withStore(url, async (store) => [
    await store.allocate('web', { containerId: 'c1', ifname: 'eth0', owner: 'app1', ip: hex('10.20.0.10') }),
    await store.allocate('web', { containerId: 'c2', ifname: 'eth1', owner: 'app2' }),
  ]);
  t.equal(a1!.ip, hex('10.20.0.10'));
  t.not(a2!.ip, a1!.ip);
  const ip2 = formatIp(a2!.ip);

  const listed = await json('ip', 'ls', 'web');
  t.same(
    listed.map((a: any) => [a.ip, a.state, a.owner, a.containerId, a.ifname]),
    [
      ['10.20.0.10', 'allocated', 'app1', 'c1', 'eth0'],
      [ip2, 'allocated', 'app2', 'c2', 'eth1'],
    ],
  );
  t.match(listed[0].since, ISO);
  const lsText = (await run('ip', 'ls', 'web')).split('\n');
  t.match(lsText[0], /^IP\s+STATE\s+OWNER\s+CONTAINER\s+IFNAME\s+SINCE\s+UNTIL\s+NOTE$/);
  t.match(lsText[1], /^10\.20\.0\.10\s+allocated\s+app1\s+c1\s+eth0\s+\d{4}-\S+Z\s+-$/);
  t.same(await json('ip', 'ls', 'web', '--limit', '1'), [listed[0]]);
  t.match(await run('ip', 'ls', 'web', '--limit', '1'), /list cut at 1 addresses/);

  const one = await json('ip', 'show', 'web', '10.20.0.10');
  t.match(one, { pool: 'web', ip: '10.20.0.10', state: 'allocated', owner: 'app1', containerId: 'c1', ifname: 'eth0', gen: a1!.gen });
  t.match(one.since, ISO);
  t.match(await run('ip', 'show', 'web', '10.20.0.10'), /^state:\s+allocated\n(.*\n)*owner:\s+app1$/m);
  t.same(await json('ip', 'show', 'web', '10.20.0.49'), { pool: 'web', ip: '10.20.0.49', state: 'free' });

  // An admin reservation for an owner, with a note.
  t.equal(await run('ip', 'reserve', 'web', '10.20.0.30', '--owner', 'db-0', '--note', 'primary, keep'), 'reserved 10.20.0.30 in pool "web" for db-0\n');
  t.match(await json('ip', 'show', 'web', '10.20.0.30'), { state: 'reserved', owner: 'db-0', note: 'primary, keep' });
  const reservedText = await run('ip', 'show', 'web', '10.20.0.30');
  t.match(reservedText, /^state:\s+reserved$/m);
  t.match(reservedText, /^owner:\s+db-0$/m);
  t.match(reservedText, /^note:\s+primary, keep$/m);
  t.same((await json('ip', 'ls', 'web', '--state', 'reserved')).map((a: any) => a.ip), ['10.20.0.30']);
  t.same((await json('ip', 'ls', 'web', '--state', 'allocated')).map((a: any) => a.ip), ['10.20.0.10', ip2]);
  t.match((await json('pool', 'ls')).find((p: any) => p.name === 'web'), { allocated: 2, reserved: 1 });
  await fails(1, /^berth: failed to reserve address "10\.20\.0\.10" in pool "web": 10\.20\.0\.10 is allocated to app1/, 'ip', 'reserve', 'web', '10.20.0.10', '--owner', 'someone-else');

  t.equal(await run('ip', 'unreserve', 'web', '10.20.0.30'), 'unreserved 10.20.0.30 in pool "web": now free\n');
  t.same(await json('ip', 'show', 'web', '10.20.0.30'), { pool: 'web', ip: '10.20.0.30', state: 'free' });
  await fails(1, 'failed to unreserve address "10.20.0.30" in pool "web": 10.20.0.30 is free, not reserved', 'ip', 'unreserve', 'web', '10.20.0.30');

  // Reserving an allocated address for its own owner pins it.
  t.equal(await run('ip', 'reserve', 'web', ip2, '--owner', 'app2'), `pinned ${ip2} in pool "web" for app2\n`);
  t.match(await json('ip', 'show', 'web', ip2), { state: 'allocated', owner: 'app2', pinned: true });
  t.match(await json('ip', 'unreserve', 'web', ip2), { state: 'allocated', owner: 'app2' });
  t.notOk((await json('ip', 'show', 'web', ip2)).pinned, 'unpinned');

  // Releasing an allocated address holds it for its owner for the pool's hold time.
  const before = Date.now();
  const released = await json('ip', 'release', 'web', '10.20.0.10');
  t.match(released, { pool: 'web', ip: '10.20.0.10', state: 'reserved', owner: 'app1' });
  const until = Date.parse(released.until);
  t.ok(until >= before + 599_000 && until <= Date.now() + 601_000, `held for 600s (until ${released.until})`);
  t.match(await json('ip', 'show', 'web', '10.20.0.10'), { state: 'reserved', owner: 'app1', until: released.until });
  await fails(1, 'failed to release address "10.20.0.10" in pool "web": 10.20.0.10 is reserved, not allocated', 'ip', 'release', 'web', '10.20.0.10');
  t.match(await run('ip', 'release', 'web', ip2), new RegExp(`^released ${ip2.replace(/\./g, '\\.')} in pool "web": now reserved for app2 until \\S+Z\\n$`));
  // On a pool without hold time a released address is free at once.
  await withStore(url, (store) => store.allocate('edge', { containerId: 'c3', ifname: 'eth0', owner: 'app3', ip: hex('192.168.8.20') }));
  t.equal(await run('ip', 'release', 'edge', '192.168.8.20'), 'released 192.168.8.20 in pool "edge": now free\n');

  // History, newest first, with the CLI as actor.
  const history = await json('ip', 'history', 'web');
  t.same(
    history.map((h: any) => [h.event, h.ip]),
    [
      ['release', ip2],
      ['release', '10.20.0.10'],
      ['unpin', ip2],
      ['pin', ip2],
      ['unreserve', '10.20.0.30'],
      ['reserve', '10.20.0.30'],
      ['allocate', ip2],
      ['allocate', '10.20.0.10'],
    ],
  );
  for (const h of history) t.match(h.at, ISO);
  t.ok(history.every((h: any, i: number) => i === 0 || Date.parse(h.at) <= Date.parse(history[i - 1].at)), 'newest first');
  t.match(history[1], { event: 'release', owner: 'app1', containerId: 'c1', actor: /^cli:[^@]+@.+$/ });
  t.match(history[5], { event: 'reserve', owner: 'db-0', note: 'primary, keep', actor: /^cli:/ });
  t.same((await json('ip', 'history', 'web', '10.20.0.10')).map((h: any) => h.event), ['release', 'allocate']);
  t.same((await json('ip', 'history', 'web', '--limit', '2')).map((h: any) => h.event), ['release', 'release']);
  t.same((await json('ip', 'history', 'web', '10.20.0.10', '--limit', '1')).map((h: any) => h.event), ['release']);
  const historyText = (await run('ip', 'history', 'web', '10.20.0.10')).split('\n');
  t.match(historyText[0], /^TIME\s+EVENT\s+IP\s+OWNER\s+CONTAINER\s+IFNAME\s+GEN\s+ACTOR\s+NOTE$/);
  t.match(historyText[1], /^\S+Z\s+release\s+10\.20\.0\.10\s+app1\s+c1\s+eth0\s+\d+\s+cli:\S+@\S+$/);
  t.equal(await run('ip', 'history', 'web', '10.20.0.49'), 'no history for address "10.20.0.49" in pool "web"\n');

  // Free addresses are derived from the ranges: held ones are not free.
  await withStore(url, (store) => store.allocate('web', { containerId: 'c4', ifname: 'eth0', owner: 'app4', ip: hex('10.20.0.12') }));
  const free = await json('ip', 'ls', 'web', '--state', 'free', '--limit', '3');
  const expected = ['10.20.0.11', '10.20.0.12', '10.20.0.13', '10.20.0.14', '10.20.0.15'].filter((ip) => ip !== ip2 && ip !== '10.20.0.12').slice(0, 3);
  t.same(free, expected.map((ip) => ({ pool: 'web', ip, state: 'free' })));
  const allFree = await json('ip', 'ls', 'web', '--state', 'free');
  t.equal(allFree.length, 41 - 3, 'every free address when fewer than the default limit');
  t.notOk(allFree.some((a: any) => ['10.20.0.10', ip2, '10.20.0.12'].includes(a.ip)));
  const freeText = await run('ip', 'ls', 'web', '--state', 'free', '--limit', '3');
  t.match(freeText, /^IP\s+STATE\n/);
  t.match(freeText, /\(list cut at 3 addresses; use --limit N to see more\)\n$/);

  // A /12 has a million addresses: listing free ones must not walk them all.
  await run('pool', 'create', 'big', '--subnet', '10.64.0.0/12');
  // Counted, not timed: every Set lookup while the command runs (the free list tests each address
  // against the taken and excluded sets, test/ipam/free-list.ts), where a walk of the /12 makes two million.
  const has = Set.prototype.has;
  let lookups = 0;
  Set.prototype.has = function (this: Set<unknown>, value: unknown): boolean {
    lookups++;
    return has.call(this, value);
  };
  let first3: any[];
  try {
    first3 = await json('ip', 'ls', 'big', '--state', 'free', '--limit', '3');
  } finally {
    Set.prototype.has = has;
  }
  t.same(first3.map((a: any) => a.ip), ['10.64.0.2', '10.64.0.3', '10.64.0.4']);
  t.ok(lookups < 10000, `${lookups} Set lookups in all for 3 free addresses of a /12, not a walk of its million`);
  t.equal((await json('ip', 'ls', 'big', '--state', 'free')).length, 256, 'the default limit applies to free addresses');
  const bigText = (await run('ip', 'ls', 'big', '--state', 'free')).trimEnd().split('\n');
  t.equal(bigText.length, 1 + 256 + 1, 'header, 256 rows, and a note that the list was cut');
  t.match(bigText[bigText.length - 1], /list cut at 256 addresses/);
  t.match((await json('pool', 'ls')).find((p: any) => p.name === 'big'), { capacity: String(2 ** 20 - 3) });

  // IPv6: addresses shown as text, a capacity beyond 2^53 as a decimal string.
  await run('pool', 'create', 'v6', '--subnet', 'fd00:1::/64');
  t.same((await json('ip', 'ls', 'v6', '--state', 'free', '--limit', '2')).map((a: any) => a.ip), ['fd00:1::2', 'fd00:1::3']);
  t.match(await json('pool', 'show', 'v6'), { family: 6, gateway: 'fd00:1::1', capacity: String(2n ** 64n - 2n) });
  t.equal(await run('ip', 'reserve', 'v6', 'fd00:1::0:abc'), 'reserved fd00:1::abc in pool "v6"\n');
  t.same((await json('ip', 'ls', 'v6')).map((a: any) => [a.ip, a.state]), [['fd00:1::abc', 'reserved']]);

  // A hold that has ended is free, even while its record is still stored.
  await run('pool', 'create', 'short', '--subnet', '10.90.0.0/29', '--hold', '1');
  await withStore(url, (store) => store.allocate('short', { containerId: 'c5', ifname: 'eth0', owner: 'app5', ip: hex('10.90.0.3') }));
  t.match(await json('ip', 'release', 'short', '10.90.0.3'), { state: 'reserved', owner: 'app5' });
  t.same((await json('ip', 'ls', 'short', '--state', 'free')).map((a: any) => a.ip), ['10.90.0.2', '10.90.0.4', '10.90.0.5', '10.90.0.6']);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  t.same(await json('ip', 'ls', 'short'), [], 'an ended hold is not listed as in use');
  t.same(await json('ip', 'ls', 'short', '--state', 'reserved'), []);
  t.same((await json('ip', 'ls', 'short', '--state', 'free')).map((a: any) => a.ip), ['10.90.0.2', '10.90.0.3', '10.90.0.4', '10.90.0.5', '10.90.0.6']);
  t.match(await json('ip', 'show', 'short', '10.90.0.3'), { state: 'free' });

  // The check finds nothing on a store only the API has touched.
  const checked = await run('ipam', 'check');
  t.equal(checked, ['big', 'edge', 'short', 'v6', 'web'].map((p) => `pool "${p}": ok\n`).join(''));
  t.same(await json('ipam', 'check', 'web'), [{ pool: 'web', findings: [], repaired: 0, remaining: [] }]);
  t.same(await json('ipam', 'check', 'web', '--repair'), [{ pool: 'web', findings: [], repaired: 0, remaining: [] }]);

  // Removing a pool: refused while addresses are allocated, unless forced.
  await fails(1, 'failed to remove pool "web": pool "web" has 1 allocated addresses; release them or use --force', 'pool', 'rm', 'web');
  t.ok(await json('pool', 'show', 'web'), 'still there after a refused rm');
  t.equal(await run('pool', 'rm', 'web', '--force'), 'removed pool "web" (1 addresses were still allocated)\n');
  await fails(1, 'failed to show pool "web": pool "web" does not exist', 'pool', 'show', 'web');
  t.same(await json('pool', 'rm', 'edge'), { pool: 'edge', removed: true, allocated: 0 });
  t.same((await json('pool', 'ls')).map((p: any) => p.name), ['big', 'short', 'v6']);
  t.same(await json('ipam', 'check'), [
    { pool: 'big', findings: [], repaired: 0, remaining: [] },
    { pool: 'short', findings: [], repaired: 0, remaining: [] },
    { pool: 'v6', findings: [], repaired: 0, remaining: [] },
  ]);

  // Operations on pools and addresses that do not exist.
  await fails(1, 'failed to list addresses of pool "nope": pool "nope" does not exist', 'ip', 'ls', 'nope');
  await fails(1, 'failed to list addresses of pool "nope": pool "nope" does not exist', 'ip', 'ls', 'nope', '--state', 'free');
  await fails(1, 'failed to show address "10.0.0.1" in pool "nope": pool "nope" does not exist', 'ip', 'show', 'nope', '10.0.0.1');
  await fails(1, 'failed to remove pool "nope": pool "nope" does not exist', 'pool', 'rm', 'nope');
  await fails(1, 'failed to read the history of pool "nope": pool "nope" does not exist', 'ip', 'history', 'nope');
  await fails(1, 'failed to check pool "nope": pool "nope" does not exist', 'ipam', 'check', 'nope');
  await fails(1, 'failed to reserve address "10.99.0.1" in pool "big": 10.99.0.1 is not an assignable address of pool "big"', 'ip', 'reserve', 'big', '10.99.0.1');
  await fails(1, 'failed to show address "10.64.0.1" in pool "big": 10.64.0.1 is not an assignable address of pool "big"', 'ip', 'show', 'big', '10.64.0.1');
  await fails(1, /^berth: failed to reserve address "fd00:1::5" in pool "big": fd00:1::5 is not an assignable address/, 'ip', 'reserve', 'big', 'fd00:1::5');
}

for (const kind of STORE_KINDS) {
  t.test(`${kind} store`, async (t) => {
    const url = await storeUrl(t, kind);
    if (url) await scenario(t, url);
  });
}

t.test('redis: check finds and repairs damaged indexes', async (t) => {
  if (skipWithoutRedis(t)) return;
  await repairScenario(t, await sharedRedis());
});

t.test('redis: check fails on server settings that can lose pool data, and on a pool the registry does not list', async (t) => {
  if (skipWithoutRedis(t)) return;
  const server = await startRedis({ config: ['maxmemory-policy allkeys-lru'] });
  t.teardown(() => server.stop());
  const url = server.freshUrl();
  const prefix = new URL(url.replace(/^redis:/, 'http:')).searchParams.get('prefix')!;
  const run = cli(t, url);
  await run('pool', 'create', 'web', '--subnet', '10.21.0.0/24');
  const at = `redis 127.0.0.1:${server.port}`;

  const warned = await berth(['--store', url, 'ipam', 'check']);
  t.equal(warned.code, 1, 'a setting that can lose pool data fails the check');
  t.equal(
    warned.stdout,
    [
      `warning: ${at}: maxmemory-policy allkeys-lru evicts any key when memory is full, pool records among them (an evicted record is an address handed out twice); set maxmemory-policy noeviction`,
      `warning: ${at}: appendonly no: a restart loses every change since the last snapshot, and replicas that resync from a master restarted empty lose them too; set appendonly yes and appendfsync always`,
      'pool "web": ok',
      '',
    ].join('\n'),
  );
  t.match(warned.stderr, /^berth: store redis:\/\/127\.0\.0\.1:\d+\/0\?prefix=\w+ can lose pool data: redis [^;]+: maxmemory-policy allkeys-lru [^\n]+; redis [^\n]+: appendonly no: [^\n]+\n$/, 'all of it on one stderr line');
  const asJson = await berth(['--store', url, 'ipam', 'check', '--json']);
  t.equal(asJson.code, 1);
  t.same(JSON.parse(asJson.stdout), [{ pool: 'web', findings: [], repaired: 0, remaining: [] }], '--json output keeps its shape');
  t.equal(asJson.stderr, warned.stderr);

  // settings as the README recommends: clean
  server.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
  server.cli('CONFIG', 'SET', 'appendonly', 'yes');
  server.cli('CONFIG', 'SET', 'appendfsync', 'always');
  await run('ipam', 'check');
  server.cli('CONFIG', 'SET', 'appendfsync', 'everysec');
  const everysec = await berth(['--store', url, 'ipam', 'check', 'web']);
  t.equal(everysec.code, 1);
  t.match(everysec.stdout, /^warning: redis [^:]+:\d+: appendfsync everysec: a crash of the host loses the acknowledged changes of up to the last second; set appendfsync always\n/);
  server.cli('CONFIG', 'SET', 'appendfsync', 'always');

  // the pool's keys are the truth: a registry entry lost (here deleted) is found on the servers and made again from the pool's own config
  server.cli('HDEL', `${prefix}:pools`, 'web');
  t.same(await cliJson(t, url)('pool', 'ls'), [], 'not listed');
  const found = await berth(['--store', url, 'ipam', 'check']);
  t.equal(found.code, 1);
  t.match(found.stdout, /^pool "web": 1 problem\n\s+KIND\s+IP\s+REPAIRABLE\s+PROBLEM\n\s+unregistered\s+yes\s+pool "web" has keys but no registry entry/);
  const repaired = await berth(['--store', url, 'ipam', 'check', '--repair']);
  t.equal(repaired.code, 0, repaired.stderr);
  t.match(repaired.stdout, /^pool "web": repaired 1 of 1 problems\npool "web": ok\n$/);
  t.match(await cliJson(t, url)('pool', 'ls'), [{ name: 'web', subnet: '10.21.0.0/24' }], 'listed again, with its own config');
});

/** A fresh store of the kind, or null when Redis is missing and the test was skipped. */
async function storeUrl(t: Test, kind: StoreKind): Promise<string | null> {
  if (kind === 'file') return `file://${t.testdir()}`;
  if (skipWithoutRedis(t)) return null;
  // One redis-server per test process, killed when the process exits.
  return (await sharedRedis()).freshUrl();
}

/** Damages the Redis indexes behind the store's back; check must report it and --repair must mend it. */
async function repairScenario(t: Test, server: RedisServer): Promise<void> {
  const url = server.freshUrl();
  const prefix = new URL(url.replace(/^redis:/, 'http:')).searchParams.get('prefix')!;
  const run = cli(t, url);
  await run('pool', 'create', 'web', '--subnet', '10.20.0.0/24');
  await withStore(url, (store) => store.allocate('web', { containerId: 'c1', ifname: 'eth0', owner: 'app1', ip: hex('10.20.0.10') }));
  server.cli('HDEL', `${prefix}:{web}:att`, 'c1/eth0');
  // the packed counters "CURSOR GEN NA NR XMIN" (ipam/lua/lib.lua): claim 7 allocated
  const meta = server.cli('HGET', `${prefix}:{web}:pool`, 'm').split(' ');
  meta[2] = '7';
  server.cli('HSET', `${prefix}:{web}:pool`, 'm', meta.join(' '));

  const found = await berth(['--store', url, 'ipam', 'check']);
  t.equal(found.code, 1, 'problems: exit 1');
  t.match(found.stdout, /^pool "web": 2 problems\n/);
  t.match(found.stdout, /attachment-missing\s+10\.20\.0\.10\s+yes\s+attachment c1\/eth0/);
  t.match(found.stdout, /counter\s+-?\s*yes\s+counters say 7 allocated/);
  t.equal(found.stderr, 'berth: 2 problems remain in pool "web"; run "berth ipam check --repair"\n');

  const asJson = await berth(['--store', url, 'ipam', 'check', 'web', '--json']);
  t.equal(asJson.code, 1);
  const [result] = JSON.parse(asJson.stdout);
  t.same(result.findings.map((f: any) => f.kind).sort(), ['attachment-missing', 'counter']);
  t.same(result.remaining, result.findings);

  const repaired = await berth(['--store', url, 'ipam', 'check', '--repair']);
  t.equal(repaired.code, 0, 'all repaired: exit 0');
  t.equal(repaired.stderr, '');
  t.match(repaired.stdout, /^pool "web": repaired 2 of 2 problems\npool "web": ok\n$/);
  t.equal((await berth(['--store', url, 'ipam', 'check'])).code, 0, 'clean afterwards');
  t.match((await cliJson(t, url)('pool', 'ls'))[0], { allocated: 1 });
}

t.test('store selection: --store, else BERTH_STORE', async (t) => {
  const dir = t.testdir({ a: {}, b: {} });
  const a = `file://${dir}/a`;
  const b = `file://${dir}/b`;
  t.equal((await berth(['pool', 'create', 'p', '--subnet', '10.0.0.0/24'], { BERTH_STORE: a })).code, 0);
  t.match((await berth(['pool', 'ls'], { BERTH_STORE: a })).stdout, /^NAME.*\np\s/);
  const flagWins = await berth(['pool', 'ls', '--store', b], { BERTH_STORE: a });
  t.match(flagWins.stdout, /^no pools in file:\/\/.*\/b\n$/, '--store wins over BERTH_STORE');
  assertFails(t, await berth(['pool', 'ls', '--store', 'ftp://example.com/x']), 1, /^berth: failed to list pools: store: "ftp:\/\/example\.com\/x" is not a store URL/, 'bad store URL');
  assertFails(t, await berth(['pool', 'ls'], { BERTH_STORE: 'redis://u:s3cret@127.0.0.1:6379/99' }), 1, /^berth: failed to list pools: store\.db: /, 'bad BERTH_STORE');
  // Port 1 refuses at once; the message names the store without its password.
  const secret = await berth(['pool', 'ls', '--store', 'redis://u:s3cret@127.0.0.1:1/0']);
  assertFails(t, secret, 1, /^berth: failed to list pools: .*redis:\/\/u:\*\*\*@127\.0\.0\.1:1\/0/, 'unreachable store');
  t.notMatch(secret.stderr, /s3cret/, 'passwords never reach messages');
  const malformed = await berth(['pool', 'ls', '--store', 'redis://u:s3cret@/x']);
  assertFails(t, malformed, 1, /^berth: failed to list pools: store: "redis:\/\/u:\*\*\*@\/x" is not a store URL/, 'malformed store URL');
  t.notMatch(malformed.stderr, /s3cret/, 'not even from a malformed URL');
});

t.test('help', async (t) => {
  const top = await berth(['--help']);
  t.equal(top.code, 0);
  t.equal(top.stderr, '');
  for (const verb of ['pool', 'ip', 'ipam', 'agent', 'status', 'attachments', 'lb', 'install']) t.match(top.stdout, new RegExp(`^\\s+berth ${verb}\\s`, 'm'), `lists ${verb}`);
  t.match(top.stdout, /--store/);
  t.match(top.stdout, /--json/);

  const cases: Array<[string[], RegExp[]]> = [
    [['pool', '--help'], [/berth pool create <name>/, /berth pool ls/, /berth pool show <name>/, /berth pool rm <name>/]],
    [['pool', 'create', '--help'], [/--subnet/, /--range/, /--gateway/, /--vlan/, /--route/, /--hold/, /--dns-server/, /--dns-domain/, /--dns-search/]],
    [['pool', 'ls', '--help'], [/berth pool ls/]],
    [['pool', 'show', '--help'], [/berth pool show <name>/]],
    [['pool', 'rm', '--help'], [/--force/]],
    [['ip', '--help'], [/ip ls <pool>/, /ip show <pool> <ip>/, /ip reserve <pool> <ip>/, /ip unreserve <pool> <ip>/, /ip release <pool> <ip>/, /ip history <pool> \[ip\]/]],
    [['ip', 'ls', '--help'], [/--state/, /--limit/]],
    [['ip', 'show', '--help'], [/berth ip show <pool> <ip>/]],
    [['ip', 'reserve', '--help'], [/--owner/, /--note/]],
    [['ip', 'unreserve', '--help'], [/berth ip unreserve <pool> <ip>/]],
    [['ip', 'release', '--help'], [/berth ip release <pool> <ip>/]],
    [['ip', 'history', '--help'], [/--limit/]],
    [['ipam', '--help'], [/ipam check \[pool\]/]],
    [['ipam', 'check', '--help'], [/--repair/]],
  ];
  for (const [args, patterns] of cases) {
    const r = await berth(args);
    t.equal(r.code, 0, `${args.join(' ')} exits 0`);
    t.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`);
    for (const p of patterns) t.match(r.stdout, p, `${args.join(' ')} shows ${p}`);
  }
});

t.test('bad input', async (t) => {
  const url = `file://${t.testdir()}`;
  t.equal((await berth(['--store', url, 'pool', 'create', 'web', '--subnet', '10.0.0.0/24'])).code, 0);
  const fails = async (code: number, message: string | RegExp, ...args: string[]) =>
    assertFails(t, await berth(['--store', url, ...args]), code, message, `berth ${args.join(' ')}`);
  const create = (...flags: string[]) => ['pool', 'create', 'x', '--subnet', '10.1.0.0/24', ...flags];

  // Usage errors from yargs: exit 2.
  await fails(2, 'a command is required: pool, ip, ipam, agent, status, attachments, lb, install, sd, console, dns (see "berth --help")');
  await fails(2, /^berth: Unknown argument: frobnicate/, 'frobnicate');
  await fails(1, /^berth: stateDir must be an absolute path, got "relative"/, 'agent', '--state-dir', 'relative');
  await fails(2, 'pool needs a subcommand: create, ls, show, rm or export (see "berth pool --help")', 'pool');
  await fails(2, /^berth: ip needs a subcommand/, 'ip');
  await fails(2, /^berth: ipam needs a subcommand: check/, 'ipam');
  await fails(2, /^berth: Unknown arguments?: .*bogus/, 'pool', 'ls', '--bogus');
  await fails(2, /^berth: Unknown arguments?: .*force/, 'pool', 'show', 'web', '--force');
  await fails(2, /^berth: Missing required argument: subnet/, 'pool', 'create', 'x');
  await fails(2, /^berth: Not enough non-option arguments/, 'ip', 'show', 'web');
  await fails(2, /^berth: Not enough non-option arguments/, 'pool', 'show');
  await fails(2, /^berth: Unknown argument/, 'ip', 'show', 'web', '10.0.0.5', 'extra');

  // Flag values the pool layer cannot see: exit 2, naming the flag.
  await fails(2, 'a command is required: pool, ip, ipam, agent, status, attachments, lb, install, sd, console, dns (see "berth --help")', '--json');
  await fails(2, /^berth: --vlan must be an integer from 1 to 4094, got "abc"/, ...create('--vlan', 'abc'));
  await fails(2, /^berth: --vlan must be an integer from 1 to 4094, got "5000"/, ...create('--vlan', '5000'));
  await fails(2, /^berth: --vlan must be an integer from 1 to 4094, got "0"/, ...create('--vlan', '0'));
  await fails(2, /^berth: --vlan must be an integer from 1 to 4094, got "1\.5"/, ...create('--vlan', '1.5'));
  await fails(2, /^berth: --vlan needs a value/, ...create('--vlan'));
  await fails(2, /^berth: --hold must be whole seconds from 0 to \d+, got "1\.5"/, ...create('--hold', '1.5'));
  await fails(2, /^berth: --hold must be whole seconds from 0 to \d+, got "-1"/, ...create('--hold', '-1'));
  await fails(2, /^berth: --hold must be whole seconds from 0 to \d+, got "1h"/, ...create('--hold', '1h'));
  await fails(2, /^berth: --subnet may be given only once/, ...create('--subnet', '10.2.0.0/24'));
  await fails(2, /^berth: --gateway may be given only once/, ...create('--gateway', '10.1.0.1', '--gateway', '10.1.0.2'));
  await fails(2, /^berth: --limit must be a positive integer, got "0"/, 'ip', 'ls', 'web', '--limit', '0');
  await fails(2, /^berth: --limit must be a positive integer, got "ten"/, 'ip', 'ls', 'web', '--state', 'free', '--limit', 'ten');
  await fails(2, /^berth: --limit must be a positive integer, got "-3"/, 'ip', 'history', 'web', '--limit', '-3');
  await fails(2, /^berth: --state must be one of free, allocated, reserved, got "held"/, 'ip', 'ls', 'web', '--state', 'held');
  await fails(2, /^berth: --owner needs a value/, 'ip', 'reserve', 'web', '10.0.0.5', '--owner', '');
  await fails(2, /^berth: --store may be given only once/, '--store', url, 'pool', 'ls');

  // What the pool layer rejects: exit 1, "failed to <verb> <object> "<name>": <cause>".
  await fails(1, 'failed to create pool "x": subnet: "10.1.0.5/24" has host bits set; the network is 10.1.0.0/24', 'pool', 'create', 'x', '--subnet', '10.1.0.5/24');
  await fails(1, 'failed to create pool "x": subnet: must be a CIDR like 10.0.0.0/24, got "banana"', 'pool', 'create', 'x', '--subnet', 'banana');
  await fails(1, /^berth: failed to create pool "x": subnet: "10\.1\.0\.0\/33" has an invalid prefix length/, 'pool', 'create', 'x', '--subnet', '10.1.0.0/33');
  await fails(1, /^berth: failed to create pool "x": subnet: "10\.1\.0\.256" is not a valid IPv4 address/, 'pool', 'create', 'x', '--subnet', '10.1.0.256/24');
  await fails(1, /^berth: failed to create pool "x": gateway: 10\.2\.0\.1 is outside subnet 10\.1\.0\.0\/24/, ...create('--gateway', '10.2.0.1'));
  await fails(1, /^berth: failed to create pool "x": gateway: "nope" is not a valid IP address/, ...create('--gateway', 'nope'));
  await fails(1, /^berth: failed to create pool "x": ranges\[0\]: 10\.2\.0\.5-10\.2\.0\.9 is outside subnet/, ...create('--range', '10.2.0.5-10.2.0.9'));
  await fails(1, /^berth: failed to create pool "x": ranges\[0\]: "10\.1\.0\.9-10\.1\.0\.5" starts after it ends/, ...create('--range', '10.1.0.9-10.1.0.5'));
  await fails(1, /^berth: failed to create pool "x": ranges: .* overlaps /, ...create('--range', '10.1.0.5-10.1.0.9', '--range', '10.1.0.8-10.1.0.20'));
  await fails(1, /^berth: failed to create pool "x": routes\[0\]\.dst: /, ...create('--route', 'default'));
  await fails(1, /^berth: failed to create pool "x": routes\[0\]\.gw: "x" is not a valid IP address/, ...create('--route', '10.9.0.0/16,x'));
  await fails(1, /^berth: failed to create pool "x": dns\.nameservers\[0\]: /, ...create('--dns-server', 'one.one'));
  await fails(1, /^berth: failed to create pool "x": dns\.domain: /, ...create('--dns-domain', 'bad domain!'));
  await fails(1, /^berth: failed to create pool "bad\/name": name: pool name must be/, 'pool', 'create', 'bad/name', '--subnet', '10.1.0.0/24');
  await fails(1, /^berth: failed to show pool "\.\.\/x": NAME: pool name must be/, 'pool', 'show', '../x');
  await fails(1, /^berth: failed to remove pool "\.x": NAME: pool name must be/, 'pool', 'rm', '.x');
  await fails(1, /^berth: failed to list addresses of pool "a b": POOL: pool name must be/, 'ip', 'ls', 'a b');
  await fails(1, 'failed to show address "10.0.0.300" in pool "web": IP: "10.0.0.300" is not a valid IPv4 address', 'ip', 'show', 'web', '10.0.0.300');
  await fails(1, 'failed to reserve address "web-1" in pool "web": IP: "web-1" is not a valid IP address', 'ip', 'reserve', 'web', 'web-1');
  await fails(1, /^berth: failed to unreserve address "10\.0\.0\.0\/24" in pool "web": IP: /, 'ip', 'unreserve', 'web', '10.0.0.0/24');
  await fails(1, /^berth: failed to release address "::g" in pool "web": IP: /, 'ip', 'release', 'web', '::g');
  await fails(1, /^berth: failed to read the history of address "x" in pool "web": IP: /, 'ip', 'history', 'web', 'x');
  await fails(1, 'failed to release address "10.0.0.9" in pool "web": 10.0.0.9 is free, not allocated', 'ip', 'release', 'web', '10.0.0.9');
  await fails(1, 'failed to reserve address "10.0.0.1" in pool "web": 10.0.0.1 is not an assignable address of pool "web"', 'ip', 'reserve', 'web', '10.0.0.1');

  // None of the rejected creates left a pool behind.
  const pools = await berth(['--store', url, 'pool', 'ls', '--json']);
  t.same(JSON.parse(pools.stdout).map((p: any) => p.name), ['web']);
});
