// Redis Cluster routing as data: key slots checked against a real
// cluster-enabled redis-server (CLUSTER KEYSLOT), the key each of berth's
// commands is routed by, and the slot map read from CLUSTER NODES.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { commandKey, keySlot, parseClusterNodes, parseRedirect, routingIndex, SlotMap, splitNode } from '../../ipam/cluster-map.js';
import { RespClient } from '../../ipam/resp-client.js';
import { parseStoreUrl } from '../../ipam/store-url.js';
import type { RedisLocation } from '../../ipam/redis-conn.js';
import { skipWithoutRedis, startRedis } from '../helpers/redis.js';

t.test('key slots: the examples of the Redis Cluster specification', async (t) => {
  t.equal(keySlot('foo'), 12182);
  t.equal(keySlot('123456789'), 0x31c3 % 16384, 'CRC16/XMODEM check value 0x31C3');
  t.equal(keySlot('{user1000}.following'), keySlot('{user1000}.followers'), 'a hash tag decides');
  t.equal(keySlot('{user1000}.following'), keySlot('user1000'));
  t.equal(keySlot('foo{}{bar}'), keySlot('foo{}{bar}'.slice()), 'stable');
  t.not(keySlot('foo{}{bar}'), keySlot('bar'), 'an empty first tag: the whole key is hashed');
  t.equal(keySlot('foo{{bar}}zap'), keySlot('{bar'), 'the tag runs from the first { to the first } after it');
  t.equal(keySlot('berth:{web}:pool'), keySlot('berth:{web}:hist'), "a pool's keys share a slot");
});

t.test('key slots: the same as CLUSTER KEYSLOT for random keys, unicode and hash tags among them', async (t) => {
  if (skipWithoutRedis(t)) return;
  const server = await startRedis({ config: ['cluster-enabled yes', 'cluster-config-file nodes.conf'] });
  t.teardown(() => server.stop());
  const loc = parseStoreUrl(server.url) as RedisLocation;
  const c = new RespClient(loc);
  t.teardown(() => c.close());
  const keys = ['', 'a', 'é', '日本語🙂', '{}', '{a}', 'x{}y', 'x{ü}y', '{{}}', 'berth:{vlan100}:addr'];
  for (let i = 0; i < 300; i++) keys.push(randomBytes(1 + (i % 24)).toString(i % 3 === 0 ? 'hex' : 'latin1').replace(/\r|\n/g, ''));
  const replies = await c.pipeline(keys.map((k) => ['CLUSTER', 'KEYSLOT', k]));
  const wrong = keys.filter((k, i) => replies[i] !== keySlot(k));
  t.same(wrong, [], `${keys.length} keys hashed as the server does`);
});

t.test('the key each command berth sends is routed by', async (t) => {
  t.equal(commandKey(['EVALSHA', 'abc', 7, 'berth:{p}:pool', 'k2', 'arg']), 'berth:{p}:pool');
  t.equal(commandKey(['EVAL', 'return 1', 0]), undefined, 'a script with no keys');
  t.equal(commandKey(['HGETALL', 'berth:pools']), 'berth:pools');
  t.equal(commandKey(['XREVRANGE', 'berth:{p}:hist', '+', '-']), 'berth:{p}:hist');
  t.equal(commandKey(['MEMORY', 'USAGE', 'k']), 'k');
  t.equal(commandKey(['XREAD', 'BLOCK', 1000, 'COUNT', 10, 'STREAMS', 'berth:{p}:hist', '0-0']), 'berth:{p}:hist', 'XREAD: the first stream, after its options');
  t.equal(commandKey(['XREAD', 'STREAMS', 'berth:{p}:hist', '0-0']), 'berth:{p}:hist');
  t.equal(commandKey(['XREADGROUP', 'GROUP', 'g', 'c', 'streams', 'k', '>']), 'k');
  for (const keyless of [['TIME'], ['MULTI'], ['EXEC'], ['WAIT', 1, 100], ['ROLE'], ['CONFIG', 'GET', 'x'], ['SCAN', '0'], ['PING'], ['CLUSTER', 'NODES'], ['ASKING'], ['SENTINEL', 'REPLICAS', 'm']]) {
    t.equal(commandKey(keyless), undefined, `${keyless[0]} names no key`);
  }
  t.equal(routingIndex([['MULTI'], ['HGETALL', 'berth:{p}:pool'], ['TIME'], ['EXEC']]), 1, 'a transaction goes where its first key does');
  t.equal(routingIndex([['TIME']]), 0);
});

t.test('MOVED and ASK', async (t) => {
  t.same(parseRedirect('MOVED 3999 127.0.0.1:6381'), { kind: 'MOVED', slot: 3999, node: '127.0.0.1:6381' });
  t.same(parseRedirect('ASK 12 fd00::1:7000'), { kind: 'ASK', slot: 12, node: '[fd00::1]:7000' }, 'a bare IPv6 host');
  t.equal(parseRedirect('MOVED x y'), undefined);
  t.equal(parseRedirect('ERR MOVED 1 a:1'), undefined);
  t.same(splitNode('[::1]:7000'), { host: '::1', port: 7000 });
  t.equal(splitNode('host'), undefined);
  t.equal(splitNode('h:70000'), undefined);
});

const NODES = [
  'aaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-bbb]',
  'bbb 127.0.0.1:7001@17001,host-b master - 0 0 2 connected 5461-10922',
  'ccc 127.0.0.1:7002@17002 master,fail - 0 0 3 connected 10923-16383',
  'ddd 127.0.0.1:7003@17003 slave aaa 0 0 1 connected',
  'eee 127.0.0.1:7004@17004 slave,fail bbb 0 0 2 connected',
  'fff 127.0.0.1:7005@17005 slave bbb 0 0 2 connected',
  'ggg :0@0 noaddr,slave ccc 0 0 3 disconnected',
  'hhh fd00::5:7006@17006 master - 0 0 4 connected',
  '',
].join('\n');

t.test('CLUSTER NODES: masters, their slots and their replicas', async (t) => {
  const nodes = parseClusterNodes(NODES, '127.0.0.1');
  t.same(
    nodes.map((n) => [n.name, n.master, n.failed, n.masterId ?? '-', n.slots]),
    [
      ['127.0.0.1:7000', true, false, '-', [[0, 5460]]],
      ['127.0.0.1:7001', true, false, '-', [[5461, 10922]]],
      ['127.0.0.1:7002', true, true, '-', [[10923, 16383]]],
      ['127.0.0.1:7003', false, false, 'aaa', []],
      ['127.0.0.1:7004', false, true, 'bbb', []],
      ['127.0.0.1:7005', false, false, 'bbb', []],
      ['[fd00::5]:7006', true, false, '-', []],
    ],
    'a migrating slot stays with its owner; a node with no address is left out',
  );
  t.same(parseClusterNodes('aaa :7000@17000 myself,master - 0 0 1 connected 0-16383', '10.0.0.9')[0]!.name, '10.0.0.9:7000', 'a node that does not know its own address');

  const map = new SlotMap(nodes);
  t.equal(map.masterOf(0), '127.0.0.1:7000');
  t.equal(map.masterOf(5461), '127.0.0.1:7001');
  t.equal(map.masterOf(16383), '127.0.0.1:7002', 'a failed master serves its slots until a replica takes over');
  t.equal(map.replicasOf('127.0.0.1:7001'), 2, 'a failed replica still counts: a failover may promote it once back');
  t.equal(map.replicasOf('127.0.0.1:7000'), 1);
  t.equal(map.replicasOf('127.0.0.1:7002'), 0, 'a replica with no address is not known');
  t.same(map.masters(), ['127.0.0.1:7000', '127.0.0.1:7001', '127.0.0.1:7002'], 'a master without slots holds nothing');
  t.ok(map.complete());
  map.moved(5461, '127.0.0.1:7000');
  t.equal(map.masterOf(5461), '127.0.0.1:7000', 'MOVED updates the slot');
  t.notOk(new SlotMap(parseClusterNodes(NODES.split('\n').slice(1).join('\n'), 'h')).complete(), 'slots with no master');
});
