// The zone as data: which records the pools and the hosts' members give, and
// the answer (rcode, sections) to each kind of question.
import t from 'tap';
import { parseIp } from '../../core/address.js';
import type { ServiceMember } from '../../ipam/hosts.js';
import type { AddressInfo } from '../../ipam/model.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { keyHash, reverseName } from '../../dns/names.js';
import { buildZone, type ZoneInput } from '../../dns/zone.js';

const hex = (ip: string) => parseIp(ip, 'ip').hex;
const NOW = 1_700_000_000_000;

function rec(pool: string, ip: string, state: AddressInfo['state'], owner?: string, extra: Partial<AddressInfo> = {}): AddressInfo {
  return { pool, ip: hex(ip), state, ...(owner === undefined ? {} : { owner }), ...extra };
}

function input(over: Partial<ZoneInput> = {}): ZoneInput {
  return {
    zone: 'berth',
    ttl: 5,
    serial: 42,
    nsAddresses: ['127.0.0.1'],
    now: NOW,
    pools: [
      {
        conf: buildPoolConfig({ name: 'web', subnet: '10.20.0.0/24' }),
        records: [
          rec('web', '10.20.0.2', 'allocated', 'web-1'),
          rec('web', '10.20.0.3', 'allocated', 'payments/api-0'),
          rec('web', '10.20.0.4', 'reserved', 'db', { note: 'admin reservation' }),
          rec('web', '10.20.0.5', 'reserved', undefined, { note: 'no owner: no name' }),
          rec('web', '10.20.0.6', 'reserved', 'gone', { until: NOW - 1 }),
          rec('web', '10.20.0.7', 'reserved', 'web-1', { until: NOW + 60_000 }),
          rec('web', '10.20.0.8', 'reserved', 'old', { until: NOW + 30_000 }),
          rec('web', '10.20.0.9', 'allocated', 'Web-1'),
        ],
      },
      {
        conf: buildPoolConfig({ name: 'Big_Pool', subnet: '10.30.8.0/22' }),
        records: [rec('Big_Pool', '10.30.9.7', 'allocated', 'web-1'), rec('Big_Pool', '10.30.10.1', 'allocated', 'x')],
      },
      {
        conf: buildPoolConfig({ name: 'v6', subnet: 'fd00:1::/64' }),
        records: [rec('v6', 'fd00:1::10', 'allocated', 'web-1')],
      },
    ],
    members: [
      { service: 'web', ip: '10.20.0.2', port: 8080, owner: 'web-1', pool: 'web', container: 'c1' },
      { service: 'web', ip: '10.20.0.3', port: 8080, owner: 'payments/api-0', pool: 'web', container: 'c2' },
      { service: 'web', ip: '10.20.0.3', port: 8080, owner: 'payments/api-0', pool: 'web', container: 'c2' },
      { service: 'web', ip: '10.99.0.1', port: 8080, owner: 'stray', container: 'c3' },
    ] as ServiceMember[],
    ...over,
  };
}

const data = (answers: Array<{ type: string; data?: unknown }>) => answers.map((a) => `${a.type} ${typeof a.data === 'object' ? JSON.stringify(a.data) : a.data}`);

t.test('forward names: OWNER.POOL.ZONE, A and AAAA', async (t) => {
  const { zone, report } = buildZone(input());
  t.same(data(zone.lookup('web-1.web.berth', 'A').answers), ['A 10.20.0.2'], 'allocated; its hold elsewhere in the pool is not served while it has an allocation');
  t.same(data(zone.lookup('WEB-1.Web.Berth.', 'A').answers), ['A 10.20.0.2'], 'any case, with the final dot');
  t.same(data(zone.lookup('api-0.payments.web.berth', 'A').answers), ['A 10.20.0.3'], 'ns/pod reads pod.ns');
  t.same(data(zone.lookup('db.web.berth', 'A').answers), ['A 10.20.0.4'], 'an admin reservation for an owner');
  t.same(data(zone.lookup('old.web.berth', 'A').answers), ['A 10.20.0.8'], 'a hold for an owner with no allocation');
  t.equal(zone.lookup('gone.web.berth', 'A').rcode, 'NXDOMAIN', 'a hold that has ended is free');
  t.same(data(zone.lookup(`web-1-${keyHash('Web-1')}.web.berth`, 'A').answers), ['A 10.20.0.9'], '"Web-1" lost the name to "web-1" and got the hash');
  t.same(data(zone.lookup('web-1.big-pool.berth', 'A').answers), ['A 10.30.9.7'], 'the pool name through the same rule');
  t.same(data(zone.lookup('web-1.v6.berth', 'AAAA').answers), ['AAAA fd00:1::10']);
  const nodata = zone.lookup('web-1.v6.berth', 'A');
  t.match(nodata, { rcode: 'NOERROR', answers: [], authorities: [{ type: 'SOA', name: 'berth' }] }, 'the name exists without A: NODATA with the SOA');
  t.same(data(zone.lookup('web-1.web.berth', 'ANY').answers), ['A 10.20.0.2']);
  t.equal(report.names, 8);
  t.same(report.clashes.map((c) => [c.kind, c.pool, c.name, c.winner, c.others.map((o) => o.key)]), [['owner', 'web', 'web-1', 'web-1', ['Web-1']]]);
  t.equal(report.nextExpiry, NOW + 30_000, 'the first hold to end: the zone is built again then');
});

t.test('reverse names: PTR for every owned address of a pool, REFUSED outside the pools', async (t) => {
  const { zone } = buildZone(input());
  t.same(data(zone.lookup('2.0.20.10.in-addr.arpa', 'PTR').answers), ['PTR web-1.web.berth']);
  t.same(data(zone.lookup('7.0.20.10.in-addr.arpa', 'PTR').answers), ['PTR web-1.web.berth'], 'a held address still names its owner');
  t.same(data(zone.lookup('7.9.30.10.in-addr.arpa', 'PTR').answers), ['PTR web-1.big-pool.berth']);
  const v6 = reverseName(hex('fd00:1::10'));
  t.equal(v6, `0.1.${'0.'.repeat(22)}1.0.0.0.0.0.d.f.ip6.arpa`);
  t.same(data(zone.lookup(v6, 'PTR').answers), ['PTR web-1.v6.berth']);
  const nx = zone.lookup('5.0.20.10.in-addr.arpa', 'PTR');
  t.match(nx, { rcode: 'NXDOMAIN', authoritative: true, authorities: [{ type: 'SOA', name: '0.20.10.in-addr.arpa', data: { mname: 'berth', minimum: 5, serial: 42 } }] }, 'an address of the pool without an owner');
  t.match(zone.lookup('1.8.30.10.in-addr.arpa', 'PTR'), { rcode: 'NXDOMAIN', authorities: [{ name: '8.30.10.in-addr.arpa' }] }, 'each /24 of a /22 is a zone');
  t.match(zone.lookup('9.30.10.in-addr.arpa', 'SOA'), { rcode: 'NOERROR', answers: [{ type: 'SOA' }] });
  t.match(zone.lookup('1.12.30.10.in-addr.arpa', 'PTR'), { rcode: 'REFUSED', authoritative: false }, 'outside every pool');
  t.match(zone.lookup('30.10.in-addr.arpa', 'SOA'), { rcode: 'REFUSED' }, 'above the pools');
  t.match(zone.lookup(v6.split('.').slice(8).join('.'), 'PTR'), { rcode: 'NOERROR', answers: [] }, 'a name between the zone and an owned address exists (no NXDOMAIN above data)');
  t.match(zone.lookup(`f.${v6.split('.').slice(8).join('.')}`, 'PTR'), { rcode: 'NXDOMAIN' }, 'one with nothing below does not');
});

t.test('SRV: _SERVICE._tcp.ZONE, one target and port per member with a name', async (t) => {
  const { zone, report } = buildZone(input());
  const srv = zone.lookup('_web._tcp.berth', 'SRV');
  t.same(data(srv.answers), [
    'SRV {"priority":0,"weight":1,"port":8080,"target":"api-0.payments.web.berth"}',
    'SRV {"priority":0,"weight":1,"port":8080,"target":"web-1.web.berth"}',
  ], 'each member once, ordered, the stray address left out');
  t.same(data(srv.additionals), ['A 10.20.0.3', 'A 10.20.0.2'], "the targets' addresses in the additional section");
  t.same(report.unnamedMembers.map((m) => m.ip), ['10.99.0.1']);
  t.match(zone.lookup('_tcp.berth', 'SRV'), { rcode: 'NOERROR', answers: [] }, '_tcp exists while a service does');
  t.match(zone.lookup('_db._tcp.berth', 'SRV'), { rcode: 'NXDOMAIN' });
  const none = buildZone(input({ members: [] })).zone;
  t.match(none.lookup('_tcp.berth', 'SRV'), { rcode: 'NXDOMAIN' });
});

t.test('the apex: SOA, NS and the server\'s address; NXDOMAIN with the SOA; REFUSED elsewhere', async (t) => {
  const { zone } = buildZone(input());
  t.same(data(zone.lookup('berth', 'SOA').answers), ['SOA {"mname":"berth","rname":"hostmaster.berth","serial":42,"refresh":3600,"retry":600,"expire":86400,"minimum":5}']);
  const ns = zone.lookup('berth', 'NS');
  t.same(data(ns.answers), ['NS berth']);
  t.same(data(ns.additionals), ['A 127.0.0.1']);
  t.same(data(zone.lookup('berth', 'A').answers), ['A 127.0.0.1']);
  t.match(zone.lookup('web.berth', 'A'), { rcode: 'NOERROR', answers: [], authorities: [{ type: 'SOA' }] }, 'a pool exists, with nothing of its own');
  const empty = buildZone(input({ pools: [{ conf: buildPoolConfig({ name: 'empty', subnet: '10.40.0.0/24' }), records: [] }] })).zone;
  t.match(empty.lookup('empty.berth', 'A'), { rcode: 'NOERROR' }, 'even an empty one');
  t.match(zone.lookup('nobody.web.berth', 'A'), { rcode: 'NXDOMAIN', authoritative: true, authorities: [{ type: 'SOA', name: 'berth', ttl: 5 }] });
  t.match(zone.lookup('nopool.berth', 'TXT'), { rcode: 'NXDOMAIN' });
  t.match(zone.lookup('web-1.web.berth', 'TXT'), { rcode: 'NOERROR', answers: [] }, 'a type berth has none of: NODATA');
  t.match(zone.lookup('example.com', 'A'), { rcode: 'REFUSED', authoritative: false, answers: [], authorities: [] });
  t.match(zone.lookup('berth.example.com', 'A'), { rcode: 'REFUSED' });
  t.match(zone.lookup('xberth', 'A'), { rcode: 'REFUSED' }, 'a suffix is not a parent');
  t.match(zone.lookup('', 'NS'), { rcode: 'REFUSED' }, 'the root');
  const other = buildZone(input({ zone: 'svc.example', ttl: 30, nsAddresses: [] })).zone;
  t.match(other.lookup('web-1.web.svc.example', 'A'), { answers: [{ ttl: 30, data: '10.20.0.2' }] }, 'another zone and TTL');
  t.same(other.lookup('svc.example', 'A').answers, [], 'no address of its own when it listens on every address');
});
