// The MAC rule: derived from the address, locally administered unicast, one
// per IPv4 address, distinct in the last 40 bits of an IPv6 address.
import t from 'tap';
import { formatMac, macSource, parseMac, randomMac, stableMac } from '../../cni/mac.js';

t.test('IPv4: 02:be and the four address bytes', async (t) => {
  t.equal(stableMac('10.240.7.5'), '02:be:0a:f0:07:05');
  t.equal(stableMac('10.240.7.5/24'), '02:be:0a:f0:07:05', 'a prefix is ignored');
  t.equal(stableMac('255.0.0.1'), '02:be:ff:00:00:01');
  t.not(stableMac('10.0.0.1'), stableMac('10.0.0.2'));
});

t.test('IPv6: 06 and the last five bytes', async (t) => {
  t.equal(stableMac('fd00:77::2'), '06:00:00:00:00:02');
  t.equal(stableMac('fd00:77::ab:cdef:1234/64'), '06:ab:cd:ef:12:34', 'a prefix is ignored');
  t.equal(stableMac('2001:db8::1:0:5'), '06:01:00:00:00:05');
  t.not(stableMac('fd00::1:0:0'), stableMac('fd00::2:0:0'), 'distinct within the last 40 bits');
  t.equal(stableMac('fd00::1:0:0:0'), stableMac('fd00::2:0:0:0'), 'the documented limit: addresses that differ only above them meet');
});

t.test('every derived MAC is unicast and locally administered, and the two forms never meet', async (t) => {
  for (const ip of ['0.0.0.0', '10.1.2.3', '255.255.255.255', '::', 'fd00::ffff:ffff:ffff', 'ffff::ff:ffff:ffff']) {
    const first = parseMac(stableMac(ip))[0]!;
    t.equal(first & 0x01, 0, `${ip}: unicast`);
    t.equal(first & 0x02, 0x02, `${ip}: locally administered`);
  }
  t.not(stableMac('10.1.2.3').slice(0, 2), stableMac('::a01:203').slice(0, 2));
});

t.test('the address the MAC comes from: the first IPv4, else the first', async (t) => {
  t.equal(macSource(['fd00::5/64', '10.0.0.5/24', '10.0.0.6/24']), '10.0.0.5/24');
  t.equal(macSource(['fd00::5/64', 'fd00::6/64']), 'fd00::5/64');
  t.equal(macSource([]), undefined);
});

t.test('random MACs, and the text form both ways', async (t) => {
  for (let i = 0; i < 50; i++) t.equal(parseMac(randomMac())[0]! & 0x03, 0x02);
  t.equal(formatMac(Buffer.from('02aabbccddee', 'hex')), '02:aa:bb:cc:dd:ee');
  t.same(parseMac('02:AA:bb:cc:dd:ee'), Buffer.from('02aabbccddee', 'hex'));
  t.throws(() => parseMac('02:aa:bb'), /not a MAC address/);
});
