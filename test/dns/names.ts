// The name rule as data: owner keys, pool and service names to DNS labels;
// collisions settled the same way whatever the order; reverse names and zones.
import { createHash } from 'node:crypto';
import t from 'tap';
import { parseIp } from '../../core/address.js';
import { assignNames, isPlainLabel, keyHash, labelOf, ownerLabels, parseDomain, reverseName, reverseZones } from '../../dns/names.js';

const h = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 6);

t.test('owner keys to labels', async (t) => {
  const suffix = 'web.berth';
  const cases: Array<[string, string, string]> = [
    ['web-1', 'web-1', 'a plain label stays as it is'],
    ['Web-1', 'web-1', 'lower-cased'],
    ['payments/api-0', 'api-0.payments', 'NS/NAME: the parts reversed, most specific first'],
    ['a/b/c', 'c.b.a', 'every "/" separates'],
    ['team_web.1', 'team-web-1', '"_" and "." become "-"'],
    ['svc@host:8080', 'svc-host-8080', '"@" and ":" too'],
    ['a__b', 'a-b', 'a run of them becomes one "-"'],
    ['-edge-', 'edge', '"-" at either end is dropped'],
    ['_sidecar', 'sidecar', 'so is what became one'],
    ['café', 'caf', 'outside a-z0-9: replaced, then trimmed'],
    ['123', '123', 'digits alone are a label'],
    ['@@@', h('@@@'), 'nothing left: the hash of the key'],
    ['ns/', `${h('ns/')}.ns`, 'an empty part: the hash'],
    ['a'.repeat(64), `${'a'.repeat(56)}-${h('a'.repeat(64))}`, 'over 63: cut to 56, "-" and the hash'],
    ['a'.repeat(63), 'a'.repeat(63), '63 is allowed'],
    [`${'b'.repeat(55)}--x${'y'.repeat(10)}`, `${'b'.repeat(55)}-${h(`${'b'.repeat(55)}--x${'y'.repeat(10)}`)}`, 'a "-" left at the cut is dropped'],
  ];
  for (const [key, name, why] of cases) {
    const labels = ownerLabels(key, suffix);
    t.equal(labels.join('.'), name, `${JSON.stringify(key)} -> ${name}: ${why}`);
    for (const l of labels) t.ok(isPlainLabel(l), `${l} is a valid label`);
  }
  const deep = Array.from({ length: 50 }, (_, i) => `part${i}`).join('/');
  const one = ownerLabels(deep, suffix);
  t.equal(one.length, 1, 'a name over 253 characters: one label instead');
  t.equal(one[0], `part49-part48-part47-part46-part45-part44-part43-part42-${h(deep)}`);
  t.equal(keyHash('x'), h('x'));
});

t.test('pool and service names use the same label rule', async (t) => {
  t.equal(labelOf('vlan100.v4', 'vlan100.v4'), 'vlan100-v4');
  t.equal(labelOf('Vlan_100', 'Vlan_100'), 'vlan-100');
  t.equal(`_${labelOf('web_api', 'web_api', 62)}`, '_web-api');
  t.equal(labelOf('x'.repeat(63), 'k', 62).length, 62, 'a service label leaves room for its "_"');
});

t.test('collisions: the exact key keeps the name, else the least key; the others get the hash; order does not matter', async (t) => {
  const rule = (k: string) => ownerLabels(k, 'p.berth');
  const keys = ['Web', 'web', 'WEB', 'w-e-b', 'w_e_b', 'other'];
  const a = assignNames(keys, rule);
  const b = assignNames([...keys].reverse(), rule);
  t.same([...a.names].sort(), [...b.names].sort(), 'the same names in any order');
  t.same(a.clashes, b.clashes);
  t.equal(a.names.get('web'), 'web', 'the key written as its name keeps it');
  t.equal(a.names.get('WEB'), `web-${h('WEB')}`);
  t.equal(a.names.get('Web'), `web-${h('Web')}`);
  t.equal(a.names.get('w-e-b'), 'w-e-b', 'exact beats the least key');
  t.equal(a.names.get('w_e_b'), `w-e-b-${h('w_e_b')}`);
  t.equal(a.names.get('other'), 'other');
  t.same(
    a.clashes.map((c) => [c.name, c.winner, c.others.map((o) => o.key)]),
    [
      ['w-e-b', 'w-e-b', ['w_e_b']],
      ['web', 'web', ['WEB', 'Web']],
    ],
    'reported: the name, who keeps it, who does not',
  );
  const none = assignNames(['A/x', 'a/X'], rule);
  t.equal(none.names.get('A/x'), 'x.a', 'no exact key: the least key in code unit order ("A" < "a")');
  t.equal(none.names.get('a/X'), `x-${h('a/X')}.a`, 'the hash goes on the first label');
  // a loser's hashed name that is someone's own name: it gets none, and says so
  const taken = `web-${h('WEB')}`;
  const c = assignNames(['web', 'WEB', taken], rule);
  t.equal(c.names.get(taken), taken);
  t.equal(c.names.has('WEB'), false);
  t.same(c.clashes[0]!.others, [{ key: 'WEB', name: null }]);
});

t.test('zone names', async (t) => {
  t.equal(parseDomain('berth.'), 'berth');
  t.equal(parseDomain('Svc.Example.COM'), 'svc.example.com');
  t.equal(parseDomain('_dns.example'), '_dns.example');
  for (const [bad, msg] of [
    ['.', /not the root/],
    ['a..b', /empty label/],
    ['-a.b', /label "-a"/],
    ['a b', /label "a b"/],
    ['x'.repeat(64), /label/],
    [`${'a.'.repeat(127)}ab`, /at most 253/],
  ] as const) {
    t.throws(() => parseDomain(bad), { message: msg }, JSON.stringify(bad));
  }
});

t.test('reverse names and the reverse zones of a subnet', async (t) => {
  const hex = (ip: string) => parseIp(ip, 'ip').hex;
  t.equal(reverseName(hex('10.20.3.4')), '4.3.20.10.in-addr.arpa');
  t.equal(reverseName(hex('fd00::1')), `1.${'0.'.repeat(27)}0.0.d.f.ip6.arpa`);
  t.same(reverseZones(hex('10.20.0.0'), 24), ['0.20.10.in-addr.arpa']);
  t.same(reverseZones(hex('10.20.0.0'), 16), ['20.10.in-addr.arpa']);
  t.same(reverseZones(hex('10.20.8.0'), 22), ['8.20.10.in-addr.arpa', '9.20.10.in-addr.arpa', '10.20.10.in-addr.arpa', '11.20.10.in-addr.arpa'], 'a /22: four /24 zones');
  t.equal(reverseZones(hex('10.20.0.64'), 26).length, 64, 'a /26: one zone per address');
  t.equal(reverseZones(hex('10.20.0.64'), 26)[0], '64.0.20.10.in-addr.arpa');
  t.same(reverseZones(hex('fd00:1:2:3::'), 64), ['3.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa']);
  t.same(reverseZones(hex('fd00:1:2:4::'), 62), ['4.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa', '5.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa', '6.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa', '7.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa']);
});
