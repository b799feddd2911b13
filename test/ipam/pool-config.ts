import t from 'tap';
import { parseIp } from '../../core/address.js';
import { BerthError } from '../../core/errors.js';
import {
  assertNoOverlap,
  buildPoolConfig,
  capacity,
  DEFAULT_HOLD_SECONDS,
  findOverlap,
  formatRange,
  isAssignable,
  MAX_HOLD_SECONDS,
  readPoolConfig,
  validatePoolName,
  type PoolSpec,
} from '../../ipam/pool-config.js';
import { invalid } from '../helpers/invalid.js';

const hex = (ip: string): string => parseIp(ip, 'ip').hex;
const pool = (spec: Omit<PoolSpec, 'name'> & { name?: string }) => buildPoolConfig({ name: 'p', ...spec }, new Date(0));

t.test('defaults: an IPv4 /24', async (t) => {
  const conf = buildPoolConfig({ name: 'vlan100', subnet: '10.0.0.0/24' }, new Date('2024-05-06T07:08:09.000Z'));
  t.strictSame(conf, {
    v: 1,
    name: 'vlan100',
    family: 4,
    subnet: '10.0.0.0/24',
    ranges: [['0a000000', '0a0000ff']],
    exclude: ['0a000000', '0a000001', '0a0000ff'],
    gateway: '0a000001',
    vlan: null,
    routes: [],
    dns: {},
    hold: DEFAULT_HOLD_SECONDS,
    created: '2024-05-06T07:08:09.000Z',
  });
  t.equal(DEFAULT_HOLD_SECONDS, 3600);
  t.equal(capacity(conf), 253n);
});

t.test('defaults: an explicit gateway replaces .1 in the exclusions', async (t) => {
  const conf = pool({ subnet: '10.0.0.0/24', gateway: '10.0.0.254' });
  t.equal(conf.gateway, '0a0000fe');
  t.strictSame(conf.exclude, ['0a000000', '0a0000fe', '0a0000ff']);
  t.equal(isAssignable(conf, hex('10.0.0.1')), true, '.1 is an ordinary address now');
  t.equal(capacity(conf), 253n);
});

t.test('defaults: IPv6 excludes only the network and the gateway', async (t) => {
  const conf = pool({ subnet: 'fd00:1::/64' });
  t.equal(conf.family, 6);
  t.strictSame(conf.ranges, [['fd000001000000000000000000000000', 'fd00000100000000ffffffffffffffff']]);
  t.strictSame(conf.exclude, ['fd000001000000000000000000000000', 'fd000001000000000000000000000001']);
  t.equal(conf.gateway, 'fd000001000000000000000000000001');
  t.equal(isAssignable(conf, 'fd00000100000000ffffffffffffffff'), true, 'the last address is no broadcast');
  t.equal(capacity(conf), 2n ** 64n - 2n);
  t.equal(typeof capacity(conf), 'bigint');
});

t.test('IPv6: the last address may be the gateway', async (t) => {
  const conf = pool({ subnet: 'fd00::/64', gateway: 'fd00::ffff:ffff:ffff:ffff' });
  t.strictSame(conf.exclude, ['fd000000000000000000000000000000', 'fd00000000000000ffffffffffffffff']);
  t.equal(isAssignable(conf, 'fd000000000000000000000000000001'), true);
});

t.test('capacity of a /12', async (t) => {
  const conf = pool({ subnet: '10.16.0.0/12' });
  t.equal(capacity(conf), 1048573n, '2^20 less network, gateway and broadcast');
});

t.test('/31 and /32 pools have no network or broadcast to exclude', async (t) => {
  const p31 = pool({ subnet: '10.0.0.4/31' });
  t.strictSame(p31.exclude, []);
  t.equal(p31.gateway, null, 'no default gateway');
  t.equal(capacity(p31), 2n);
  t.equal(isAssignable(p31, hex('10.0.0.4')), true);
  t.equal(isAssignable(p31, hex('10.0.0.5')), true);

  const p32 = pool({ subnet: '10.0.0.9/32' });
  t.strictSame(p32.ranges, [['0a000009', '0a000009']]);
  t.strictSame(p32.exclude, []);
  t.equal(p32.gateway, null);
  t.equal(capacity(p32), 1n);
  t.equal(isAssignable(p32, hex('10.0.0.9')), true);

  // a /31 may name one of its two addresses as the gateway
  const gw31 = pool({ subnet: '10.0.0.4/31', gateway: '10.0.0.5' });
  t.strictSame(gw31.exclude, ['0a000005']);
  t.equal(capacity(gw31), 1n);

  t.equal(capacity(pool({ subnet: 'fd00::/127' })), 2n);
  t.equal(capacity(pool({ subnet: 'fd00::8/128' })), 1n);
});

t.test('a pool with nothing left to assign is refused', async (t) => {
  invalid(t, () => pool({ subnet: '10.0.0.9/32', gateway: '10.0.0.9' }), 'ranges', /no assignable address/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.1'] }), 'ranges', /no assignable address/);
});

t.test('name and subnet', async (t) => {
  invalid(t, () => buildPoolConfig({ name: 'a b', subnet: '10.0.0.0/24' }), 'name');
  invalid(t, () => pool({ subnet: '10.0.0.5/24' }), 'subnet', /the network is 10\.0\.0\.0\/24/);
  invalid(t, () => pool({ subnet: '10.0.0.0' }), 'subnet');
  invalid(t, () => pool({ subnet: undefined as unknown as string }), 'subnet');
});

t.test('ranges: the three forms', async (t) => {
  const conf = pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.10-10.0.0.20', '10.0.0.7', '10.0.0.64/26'] });
  t.strictSame(
    conf.ranges,
    [
      ['0a000007', '0a000007'],
      ['0a00000a', '0a000014'],
      ['0a000040', '0a00007f'],
    ],
    'parsed and sorted by address',
  );
  t.equal(capacity(conf), 1n + 11n + 64n);
  t.strictSame(conf.ranges.map(formatRange), ['10.0.0.7', '10.0.0.10-10.0.0.20', '10.0.0.64-10.0.0.127']);
  // the network, broadcast and gateway stay excluded even though outside every range
  t.strictSame(conf.exclude, ['0a000000', '0a000001', '0a0000ff']);
});

t.test('ranges: spaces around the dash, IPv6 ranges', async (t) => {
  t.strictSame(pool({ subnet: '10.0.0.0/24', ranges: [' 10.0.0.5 - 10.0.0.6 '] }).ranges, [['0a000005', '0a000006']]);
  const v6 = pool({ subnet: 'fd00::/64', ranges: ['fd00::10-fd00::1f', 'fd00::100/120'] });
  t.strictSame(v6.ranges, [
    ['fd000000000000000000000000000010', 'fd00000000000000000000000000001f'],
    ['fd000000000000000000000000000100', 'fd0000000000000000000000000001ff'],
  ]);
  t.equal(capacity(v6), 16n + 256n);
});

t.test('ranges: a range holding the gateway loses it', async (t) => {
  const conf = pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.0-10.0.0.3'] });
  t.equal(capacity(conf), 2n);
  t.equal(isAssignable(conf, hex('10.0.0.0')), false);
  t.equal(isAssignable(conf, hex('10.0.0.1')), false);
  t.equal(isAssignable(conf, hex('10.0.0.2')), true);
  t.equal(isAssignable(conf, hex('10.0.0.3')), true);
});

t.test('ranges: an empty list means the whole subnet', async (t) => {
  t.strictSame(pool({ subnet: '10.0.0.0/24', ranges: [] }).ranges, [['0a000000', '0a0000ff']]);
});

t.test('ranges: rejected, naming the range', async (t) => {
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.10', '10.0.1.20'] }), 'ranges[1]', /outside subnet 10\.0\.0\.0\/24/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.250-10.0.1.5'] }), 'ranges[0]', /outside subnet/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.10', '10.0.0.0/23'] }), 'ranges[1]', /outside subnet/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.10', '10.0.0.20-10.0.0.19'] }), 'ranges[1]', /starts after it ends/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.10', 'fd00::1'] }), 'ranges[1]', /not IPv4 like the subnet/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.10', 'fd00::/64'] }), 'ranges[1]', /not IPv4 like the subnet/);
  invalid(t, () => pool({ subnet: 'fd00::/64', ranges: ['10.0.0.1-10.0.0.2'] }), 'ranges[0]', /not IPv6 like the subnet/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.5-10.0.0.6-10.0.0.7'] }), 'ranges[0]', /FIRST-LAST/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.65/26'] }), 'ranges[0]', /host bits/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.5', 'nonsense'] }), 'ranges[1]');
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: [5 as unknown as string] }), 'ranges[0]');
});

t.test('ranges: overlaps are rejected, naming both ranges', async (t) => {
  // The ranges are sorted before the overlap check, so the message names the
  // ranges themselves rather than their positions.
  invalid(
    t,
    () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.50-10.0.0.60', '10.0.0.15-10.0.0.30', '10.0.0.10-10.0.0.20'] }),
    'ranges',
    /10\.0\.0\.10-10\.0\.0\.20 overlaps 10\.0\.0\.15-10\.0\.0\.30/,
  );
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.10-10.0.0.20', '10.0.0.20'] }), 'ranges', /overlaps 10\.0\.0\.20$/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.7', '10.0.0.7'] }), 'ranges', /overlaps/);
  // adjacent ranges do not overlap
  t.equal(capacity(pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.10-10.0.0.20', '10.0.0.21-10.0.0.22'] })), 13n);
});

t.test('gateway', async (t) => {
  invalid(t, () => pool({ subnet: '10.0.0.0/24', gateway: '10.0.1.1' }), 'gateway', /outside subnet 10\.0\.0\.0\/24/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', gateway: 'fd00::1' }), 'gateway', /outside subnet/);
  invalid(t, () => pool({ subnet: 'fd00::/64', gateway: '10.0.0.1' }), 'gateway', /outside subnet/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', gateway: '10.0.0.0' }), 'gateway', /network or broadcast/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', gateway: '10.0.0.255' }), 'gateway', /network or broadcast/);
  invalid(t, () => pool({ subnet: 'fd00::/64', gateway: 'fd00::' }), 'gateway', /network or broadcast/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', gateway: '10.0.0.01' }), 'gateway', /not a valid IPv4/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', gateway: '' }), 'gateway');
});

t.test('vlan', async (t) => {
  t.equal(pool({ subnet: '10.0.0.0/24' }).vlan, null);
  t.equal(pool({ subnet: '10.0.0.0/24', vlan: 1 }).vlan, 1);
  t.equal(pool({ subnet: '10.0.0.0/24', vlan: 4094 }).vlan, 4094);
  for (const bad of [0, 4095, 1.5, -1, Number.NaN, '5' as unknown as number]) {
    invalid(t, () => pool({ subnet: '10.0.0.0/24', vlan: bad }), 'vlan', /1 to 4094/);
  }
});

t.test('hold', async (t) => {
  t.equal(pool({ subnet: '10.0.0.0/24', hold: 0 }).hold, 0);
  t.equal(pool({ subnet: '10.0.0.0/24', hold: 60 }).hold, 60);
  t.equal(pool({ subnet: '10.0.0.0/24', hold: MAX_HOLD_SECONDS }).hold, MAX_HOLD_SECONDS);
  t.equal(MAX_HOLD_SECONDS, 366 * 24 * 3600);
  for (const bad of [-1, 1.5, MAX_HOLD_SECONDS + 1, null as unknown as number, '60' as unknown as number]) {
    invalid(t, () => pool({ subnet: '10.0.0.0/24', hold: bad }), 'hold', /whole seconds/);
  }
});

t.test('routes', async (t) => {
  const conf = pool({
    subnet: '10.0.0.0/24',
    routes: ['0.0.0.0/0,10.0.0.254', '10.1.0.0/16', ' 10.2.0.0/16 , 10.0.0.253 ', '10.3.0.0/16,', { dst: '10.4.0.0/16', gw: '10.0.0.1' }, { dst: '10.5.0.0/16' }],
  });
  t.strictSame(conf.routes, [
    { dst: '0.0.0.0/0', gw: '10.0.0.254' },
    { dst: '10.1.0.0/16' },
    { dst: '10.2.0.0/16', gw: '10.0.0.253' },
    { dst: '10.3.0.0/16' },
    { dst: '10.4.0.0/16', gw: '10.0.0.1' },
    { dst: '10.5.0.0/16' },
  ]);
  t.notOk('gw' in conf.routes[1]!, 'a route without gateway has no gw key');
  const v6 = pool({ subnet: 'fd00::/64', routes: ['::/0,FD00:0::1', { dst: 'fd01:0::/48' }] });
  t.strictSame(v6.routes, [{ dst: '::/0', gw: 'fd00::1' }, { dst: 'fd01::/48' }], 'normalised');
});

t.test('routes: rejected, naming the route', async (t) => {
  invalid(t, () => pool({ subnet: '10.0.0.0/24', routes: ['10.1.0.0/16', 'fd00::/64,10.0.0.1'] }), 'routes[1].gw', /not IPv6 like fd00::\/64/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', routes: ['10.1.0.0/16,fd00::1'] }), 'routes[0].gw', /not IPv4/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', routes: ['10.1.0.0/16', '10.2.0.1/16'] }), 'routes[1].dst', /host bits/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', routes: ['10.1.0.0'] }), 'routes[0].dst', /must be a CIDR/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', routes: ['10.1.0.0/16,bogus'] }), 'routes[0].gw');
  invalid(t, () => pool({ subnet: '10.0.0.0/24', routes: [{ dst: '10.1.0.0/16', gw: 'x' }] }), 'routes[0].gw');
  invalid(t, () => pool({ subnet: '10.0.0.0/24', routes: [5 as unknown as string] }), 'routes[0]', /CIDR,GATEWAY/);
});

t.test('dns', async (t) => {
  const conf = pool({
    subnet: '10.0.0.0/24',
    dns: { nameservers: ['10.0.0.2', 'FD00:0::53'], domain: 'example.org', search: ['a.example.org', 'b.example.org'], options: ['ndots:2'] },
  });
  t.strictSame(conf.dns, {
    nameservers: ['10.0.0.2', 'fd00::53'],
    domain: 'example.org',
    search: ['a.example.org', 'b.example.org'],
    options: ['ndots:2'],
  });
  t.strictSame(pool({ subnet: '10.0.0.0/24', dns: {} }).dns, {});
  t.strictSame(pool({ subnet: '10.0.0.0/24', dns: { domain: 'x' } }).dns, { domain: 'x' }, 'absent fields stay absent');
});

t.test('dns: rejected, naming the field', async (t) => {
  const bad = (dns: unknown) => () => pool({ subnet: '10.0.0.0/24', dns: dns as PoolSpec['dns'] });
  invalid(t, bad({ nameserver: ['10.0.0.2'] }), 'dns.nameserver', /unknown field/);
  invalid(t, bad({ domain: 'x', searches: [] }), 'dns.searches', /unknown field/);
  invalid(t, bad({ nameservers: ['10.0.0.2', '10.0.0.256'] }), 'dns.nameservers[1]');
  invalid(t, bad({ nameservers: '10.0.0.2' }), 'dns.nameservers', /list of non-empty strings/);
  invalid(t, bad({ search: ['a', ''] }), 'dns.search', /list of non-empty strings/);
  invalid(t, bad({ options: [1] }), 'dns.options', /list of non-empty strings/);
  invalid(t, bad({ domain: 'a b' }), 'dns.domain', /domain name/);
  invalid(t, bad({ domain: '' }), 'dns.domain');
  invalid(t, bad({ domain: 7 }), 'dns.domain');
  invalid(t, bad([]), 'dns', /must be an object/);
  invalid(t, bad('example.org'), 'dns', /must be an object/);
});

t.test('isAssignable', async (t) => {
  const conf = pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.0-10.0.0.9', '10.0.0.250-10.0.0.255'] });
  t.equal(isAssignable(conf, hex('10.0.0.0')), false, 'network');
  t.equal(isAssignable(conf, hex('10.0.0.1')), false, 'gateway');
  t.equal(isAssignable(conf, hex('10.0.0.255')), false, 'broadcast');
  t.equal(isAssignable(conf, hex('10.0.0.2')), true);
  t.equal(isAssignable(conf, hex('10.0.0.9')), true, 'last of a range');
  t.equal(isAssignable(conf, hex('10.0.0.10')), false, 'between ranges');
  t.equal(isAssignable(conf, hex('10.0.0.250')), true, 'first of a range');
  t.equal(isAssignable(conf, hex('10.0.1.5')), false, 'outside the subnet');
  // an IPv6 hex that sorts between the range ends as text
  t.equal(isAssignable(conf, `0a000005${'0'.repeat(24)}`), false, 'another family');
});

t.test('findOverlap and assertNoOverlap', async (t) => {
  const a = pool({ name: 'a', subnet: '10.0.0.0/24' });
  const b = pool({ name: 'b', subnet: '10.0.1.0/24' });
  const c = pool({ name: 'c', subnet: '10.0.0.128/25' });
  const wide = pool({ name: 'wide', subnet: '10.0.0.0/16' });
  const v6 = pool({ name: 'v6', subnet: '::/0' });
  const all4 = pool({ name: 'all4', subnet: '0.0.0.0/0' });

  t.equal(findOverlap(a, [b]), undefined, 'adjacent subnets do not overlap');
  t.equal(findOverlap(a, [b, c])?.name, 'c', 'a subnet inside');
  t.equal(findOverlap(a, [b, wide])?.name, 'wide', 'a subnet around');
  t.equal(findOverlap(c, [a])?.name, 'a');
  t.equal(findOverlap(a, [a, b]), undefined, 'a pool does not overlap itself');
  t.equal(findOverlap(all4, [v6]), undefined, 'IPv4 and IPv6 never overlap');
  t.equal(findOverlap(v6, [all4, a]), undefined, 'IPv6 and IPv4 never overlap');
  t.equal(findOverlap(all4, [v6, b])?.name, 'b');
  t.equal(findOverlap(pool({ name: 'v6b', subnet: 'fd00::/64' }), [v6])?.name, 'v6');

  t.doesNotThrow(() => assertNoOverlap(a, [b, v6]));
  try {
    assertNoOverlap(a, [b, c]);
    t.fail('expected POOL_OVERLAP');
  } catch (err) {
    t.ok(err instanceof BerthError);
    t.equal((err as BerthError).code, 'POOL_OVERLAP');
    t.match((err as BerthError).message, /10\.0\.0\.0\/24 overlaps pool "c" \(10\.0\.0\.128\/25\)/);
    t.strictSame((err as BerthError).details, { pool: 'c' });
  }
});

t.test('validatePoolName', async (t) => {
  for (const good of ['vlan100', 'a.b-c_d', 'A', '0', 'x'.repeat(63)]) t.equal(validatePoolName(good), good, good);
  for (const bad of ['{x}', 'a b', '', 'x'.repeat(64), '-a', '.a', '_a', 'a/b', 'a:b', 'ä', 'a\nb']) {
    invalid(t, () => validatePoolName(bad), 'name', /pool name must be/);
  }
  invalid(t, () => validatePoolName(5), 'name');
  invalid(t, () => validatePoolName(undefined), 'name');
  invalid(t, () => validatePoolName('a b', 'pool'), 'pool', /got "a b"/);
});

t.test('readPoolConfig', async (t) => {
  const conf = pool({ subnet: '10.0.0.0/24' });
  t.strictSame(readPoolConfig(JSON.stringify(conf), 'x'), conf);
  for (const raw of ['{', '{"v":2,"ranges":[],"exclude":[]}', '{"v":1,"exclude":[]}', 'null']) {
    try {
      readPoolConfig(raw, 'pools/p.json');
      t.fail(`accepted ${raw}`);
    } catch (err) {
      t.equal((err as BerthError).code, 'STORE_CORRUPT', raw);
      t.match((err as BerthError).message, /^failed to read pool config at pools\/p\.json: /);
    }
  }
});

// Edges the cases above leave open (each one a change to pool-config.ts that
// they let through, found by `npm run mutate`).
t.test('a /30 is the smallest subnet with a network, a broadcast and a default gateway', async (t) => {
  const p30 = pool({ subnet: '10.0.0.4/30' });
  t.strictSame(p30.exclude, ['0a000004', '0a000005', '0a000007']);
  t.equal(p30.gateway, '0a000005');
  t.equal(capacity(p30), 1n, 'one address left: .6');
});

t.test('a gateway of the other family is refused even where its bytes begin like the subnet\'s', async (t) => {
  // a00:1:: begins with the bytes of 10.0.0.1: the family decides, not a prefix of the bytes
  invalid(t, () => pool({ subnet: '10.0.0.0/24', gateway: 'a00:1::' }), 'gateway', /outside subnet 10\.0\.0\.0\/24/);
});

t.test('ranges: two starting at the same address are named in the order given', async (t) => {
  // the sort is stable: equal starts keep their order, so the message reads as written
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.10-10.0.0.20', '10.0.0.10-10.0.0.12'] }), 'ranges', /^ranges: 10\.0\.0\.10-10\.0\.0\.20 overlaps 10\.0\.0\.10-10\.0\.0\.12$/);
});

t.test('ranges: each end of FIRST-LAST must be of the subnet\'s family, and a range must be text', async (t) => {
  // the family is checked before the bounds: the message says which rule broke
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['10.0.0.5-a00:6::'] }), 'ranges[0]', /^ranges\[0\]: 10\.0\.0\.5-a00:6:: is not IPv4 like the subnet$/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: ['a00:1::-10.0.0.6'] }), 'ranges[0]', /is not IPv4 like the subnet$/);
  invalid(t, () => pool({ subnet: '10.0.0.0/24', ranges: [5 as unknown as string] }), 'ranges[0]', /^ranges\[0\]: must be FIRST-LAST, an address or a CIDR$/);
});

t.test('vlan and dns: null is the same as absent', async (t) => {
  t.equal(pool({ subnet: '10.0.0.0/24', vlan: null as unknown as number }).vlan, null);
  t.strictSame(pool({ subnet: '10.0.0.0/24', dns: null as unknown as PoolSpec['dns'] }).dns, {});
});

t.test('findOverlap: one shared address is an overlap, at either end; a pool below is not', async (t) => {
  const a = pool({ name: 'a', subnet: '10.0.0.0/24' });
  const b = pool({ name: 'b', subnet: '10.0.1.0/24' });
  t.equal(findOverlap(b, [a]), undefined, 'adjacent, the other below');
  t.equal(findOverlap(pool({ name: 'lo', subnet: '10.0.0.0/32' }), [a])?.name, 'a', 'the first address');
  t.equal(findOverlap(pool({ name: 'hi', subnet: '10.0.0.255/32' }), [a])?.name, 'a', 'the last address');
});

t.test('readPoolConfig: JSON that does not parse is named with the parser\'s reason', async (t) => {
  t.throws(() => readPoolConfig('{', 'pools/p.json'), { code: 'STORE_CORRUPT', message: /^failed to read pool config at pools\/p\.json: (?!unknown format).*JSON/ });
});
