// Search across pools by address, owner, container id or note.
import t from 'tap';
import { parseIp } from '../../core/address.js';
import type { AddressInfo } from '../../ipam/model.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { MAX_HITS, search } from '../../console/search.js';

const hex = (ip: string) => parseIp(ip, 'ip').hex;
const web = buildPoolConfig({ name: 'web', subnet: '10.0.0.0/24' });
const db = buildPoolConfig({ name: 'db', subnet: '10.1.0.0/24' });
const a = (pool: string, ip: string, extra: Partial<AddressInfo>): AddressInfo => ({ pool, ip: hex(ip), state: 'allocated', ...extra });
const pools = [
  { conf: web, records: [a('web', '10.0.0.5', { owner: 'web-1', containerId: 'abc123' }), a('web', '10.0.0.6', { owner: 'api', note: 'Firewall FW-9', state: 'reserved' }), a('web', '10.0.0.7', { owner: 'old', state: 'free' })] },
  { conf: db, records: [a('db', '10.1.0.5', { owner: 'db-primary', containerId: 'fff000' })] },
];
const found = (q: string) => search(q, pools).hits.map((h) => `${h.pool} ${h.ip} ${h.matched.join('+')}`);

t.test('by owner, container id, note and address text, across pools, case-insensitive', async (t) => {
  t.same(found('WEB-1'), [`web ${hex('10.0.0.5')} owner`]);
  t.same(found('abc1'), [`web ${hex('10.0.0.5')} container`]);
  t.same(found('fw-9'), [`web ${hex('10.0.0.6')} note`]);
  t.same(found('.0.5'), [`web ${hex('10.0.0.5')} ip`, `db ${hex('10.1.0.5')} ip`]);
  t.same(found('old'), [], 'an ended hold is free: not found by its old owner');
  t.same(found('nothing'), []);
});

t.test('a whole address is found in its pool even when free', async (t) => {
  t.same(found('10.0.0.99'), [`web ${hex('10.0.0.99')} ip`]);
  t.equal(search('10.0.0.99', pools).hits[0]!.info, undefined);
  t.same(found('10.0.0.5'), [`web ${hex('10.0.0.5')} ip`]);
  t.same(found('192.168.0.1'), []);
});

t.test('whole-field matches come first', async (t) => {
  const more = [{ conf: web, records: [a('web', '10.0.0.10', { owner: 'web-10' }), a('web', '10.0.0.11', { owner: 'web-1' })] }];
  t.same(search('web-1', more).hits.map((h) => h.info?.owner), ['web-1', 'web-10']);
});

t.test('hits are capped', async (t) => {
  const many = [{ conf: buildPoolConfig({ name: 'big', subnet: '10.16.0.0/16' }), records: Array.from({ length: MAX_HITS + 5 }, (_, i) => a('big', `10.16.${i >> 8}.${i & 255}`, { owner: 'same' })) }];
  const r = search('same', many);
  t.equal(r.hits.length, MAX_HITS);
  t.equal(r.cut, true);
});
