// The pool map as data: levels, blocks, fills and capacities from the
// non-free records alone, for IPv4 and IPv6.
import t from 'tap';
import { formatIp, parseCidr, parseIp } from '../../core/address.js';
import type { AddressInfo } from '../../ipam/model.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { blockAt, buildMap, childPrefix, mapLevels, parseBlock, trail } from '../../console/map.js';

const hex = (ip: string) => parseIp(ip, 'ip').hex;
const rec = (ip: string, state: 'allocated' | 'reserved' | 'free', owner = 'o'): AddressInfo => ({ pool: 'p', ip: hex(ip), state, owner });

t.test('levels: a /24 is one address grid; larger subnets open in at most 4096 blocks, each at least a /24', async (t) => {
  const levels = (cidr: string) => mapLevels(parseCidr(cidr, 'c'));
  t.same(levels('10.0.0.0/24'), [24]);
  t.same(levels('10.0.0.0/28'), [28]);
  t.same(levels('10.0.0.0/23'), [23, 24]);
  t.same(levels('10.0.0.0/16'), [16, 24]);
  t.same(levels('10.16.0.0/12'), [12, 24]);
  t.same(levels('10.0.0.0/8'), [8, 20, 24]);
  t.same(levels('fd00::/64'), [64, 76, 88, 100, 112, 120]);
  t.same(levels('fd00::/120'), [120]);
  t.equal(childPrefix(24, 4), null);
  t.equal(childPrefix(12, 4), 24);
});

t.test('an address grid: every address of the block, its state, and those never handed out', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/24', ranges: ['10.0.0.0-10.0.0.200'] });
  const map = buildMap(conf, parseCidr('10.0.0.0/24', 'c'), [rec('10.0.0.5', 'allocated', 'web-1'), rec('10.0.0.9', 'reserved'), rec('10.0.0.7', 'free'), rec('10.1.0.5', 'allocated')]);
  if (map.kind !== 'addresses') throw new Error('expected an address grid');
  t.equal(map.cells.length, 256);
  t.equal(map.columns, 16);
  const at = (last: number) => map.cells[last]!;
  t.same([at(0).state, at(1).state, at(2).state, at(255).state, at(201).state], ['none', 'none', 'free', 'none', 'none'], 'network, gateway, broadcast and outside the ranges');
  t.equal(at(5).state, 'allocated');
  t.equal(at(5).info?.owner, 'web-1');
  t.equal(at(9).state, 'reserved');
  t.equal(at(7).state, 'free', 'a hold that has ended reads free');
});

t.test('a /12 as 4096 /24 blocks: fills from the records, capacities from the ranges', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.16.0.0/12' });
  const records: AddressInfo[] = [];
  for (let i = 2; i < 10002; i++) records.push({ pool: 'p', ip: (0x0a100000 + i).toString(16).padStart(8, '0'), state: i % 10 === 0 ? 'reserved' : 'allocated' });
  const t0 = process.hrtime.bigint();
  const map = buildMap(conf, parseCidr(conf.subnet, 's'), records);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (map.kind !== 'blocks') throw new Error('expected blocks');
  t.equal(map.cells.length, 4096);
  t.equal(map.columns, 64);
  t.equal(map.childPrefix, 24);
  t.equal(map.cells[0]!.block.text, '10.16.0.0/24');
  t.equal(map.cells[0]!.capacity, 254n, 'the network and gateway are not assignable');
  t.equal(map.cells[1]!.capacity, 256n);
  t.equal(map.cells[4095]!.capacity, 255n, 'nor is the broadcast');
  t.same([map.cells[0]!.allocated, map.cells[0]!.reserved], [229, 25]);
  t.equal(map.cells.reduce((n, c) => n + c.allocated + c.reserved, 0), 10000);
  t.equal(map.cells[40]!.allocated + map.cells[40]!.reserved, 0);
  t.ok(ms < 500, `computed in ${ms.toFixed(1)} ms`);
});

t.test('ranges and blocks: a block outside every range has no capacity', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/16', ranges: ['10.0.1.10-10.0.2.19'] });
  const map = buildMap(conf, parseCidr(conf.subnet, 's'), []);
  if (map.kind !== 'blocks') throw new Error('expected blocks');
  t.same(
    map.cells.slice(0, 4).map((c) => c.capacity),
    [0n, 246n, 20n, 0n],
  );
});

t.test('IPv6: blocks of /76 under a /64, drilling down to /120 address grids', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: 'fd00:1::/64' });
  const top = buildMap(conf, parseCidr(conf.subnet, 's'), [{ pool: 'p', ip: hex('fd00:1::5'), state: 'allocated' }]);
  if (top.kind !== 'blocks') throw new Error('expected blocks');
  t.equal(top.cells.length, 4096);
  t.equal(top.cells[0]!.block.text, 'fd00:1::/76');
  t.equal(top.cells[0]!.allocated, 1);
  const leaf = buildMap(conf, parseCidr('fd00:1::/120', 'b'), [{ pool: 'p', ip: hex('fd00:1::5'), state: 'allocated' }]);
  t.equal(leaf.kind, 'addresses');
  t.equal(leaf.cells.length, 256);
});

t.test('blocks: parsing names the field and the levels; the trail leads down from the subnet', async (t) => {
  const conf = { name: 'big', subnet: '10.0.0.0/8' };
  t.equal(parseBlock(conf, '10.3.16.0/20').text, '10.3.16.0/20');
  t.throws(() => parseBlock(conf, '10.3.16.0/21'), { code: 'INVALID', field: 'block', message: /block: "10.3.16.0\/21" is not a block of the map of pool "big" \(10.0.0.0\/8; its blocks are \/8, \/20, \/24\)/ });
  t.throws(() => parseBlock(conf, '11.0.0.0/24'), { name: 'ValidationError', field: 'block' });
  t.throws(() => parseBlock(conf, '10.0.0.1/24'), { field: 'block', message: /host bits/ });
  t.throws(() => parseBlock(conf, 'x'), { name: 'ValidationError', field: 'block' });
  const subnet = parseCidr(conf.subnet, 's');
  t.same(trail(subnet, parseBlock(conf, '10.3.17.0/24')).map((b) => b.text), ['10.0.0.0/8', '10.3.16.0/20', '10.3.17.0/24']);
  t.equal(formatIp(blockAt(hex('10.3.17.99'), 24, 4).first), '10.3.17.0');
});
