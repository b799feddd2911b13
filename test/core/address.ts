import t from 'tap';
import { familyOfHex, formatIp, fromBig, hexInc, hexWidth, parseCidr, parseIp, spanSize, toBig, within } from '../../core/address.js';
import { invalid } from '../helpers/invalid.js';

t.test('parseIp: IPv4', async (t) => {
  t.strictSame(parseIp('10.0.0.5', 'ip'), { family: 4, hex: '0a000005' });
  t.strictSame(parseIp('0.0.0.0', 'ip'), { family: 4, hex: '00000000' });
  t.strictSame(parseIp('255.255.255.255', 'ip'), { family: 4, hex: 'ffffffff' });
  t.strictSame(parseIp('192.168.100.1', 'ip'), { family: 4, hex: 'c0a86401' });
  // a lone 0 octet is not a leading zero
  t.strictSame(parseIp('10.0.0.0', 'ip'), { family: 4, hex: '0a000000' });
});

t.test('parseIp: IPv6, full and compressed', async (t) => {
  t.strictSame(parseIp('::', 'ip'), { family: 6, hex: '0'.repeat(32) });
  t.strictSame(parseIp('::1', 'ip'), { family: 6, hex: `${'0'.repeat(31)}1` });
  t.strictSame(parseIp('fd00::', 'ip'), { family: 6, hex: `fd00${'0'.repeat(28)}` });
  t.strictSame(parseIp('fd00:1::a', 'ip'), { family: 6, hex: 'fd00000100000000000000000000000a' });
  t.strictSame(parseIp('2001:0db8:0000:0000:0000:0000:0000:0001', 'ip'), {
    family: 6,
    hex: '20010db8000000000000000000000001',
  });
  t.strictSame(parseIp('2001:DB8::A:B', 'ip'), { family: 6, hex: '20010db80000000000000000000a000b' });
  t.strictSame(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ip'), { family: 6, hex: 'f'.repeat(32) });
  // the same address written two ways is one address
  t.equal(parseIp('fd00:0:0:0:0:0:0:1', 'ip').hex, parseIp('fd00::1', 'ip').hex);
});

t.test('parseIp: rejects malformed IPv4', async (t) => {
  for (const bad of ['010.0.0.1', '10.0.0.01', '10.00.0.1', '256.0.0.1', '10.0.0.256', '1.2.3', '1.2.3.4.5', '1.2.3.', '1..2.3', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.-4', '1.2.3.4/24']) {
    invalid(t, () => parseIp(bad, 'gateway'), 'gateway', /not a valid/);
  }
});

t.test('parseIp: rejects malformed IPv6', async (t) => {
  for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', 'fd00::g', 'fe80::1%eth0', 'fd00::/64', ':::', 'fd00::1 ', '12345::1']) {
    invalid(t, () => parseIp(bad, 'gateway'), 'gateway', /not a valid/);
  }
});

t.test('parseIp: rejects garbage, empty and non-strings, naming the field', async (t) => {
  invalid(t, () => parseIp('garbage', 'dns.nameservers[2]'), 'dns.nameservers[2]', /"garbage"/);
  invalid(t, () => parseIp('', 'ip'), 'ip', /must be an IP address/);
  invalid(t, () => parseIp(undefined, 'ip'), 'ip', /got nothing/);
  invalid(t, () => parseIp(null, 'ip'), 'ip', /got object/);
  invalid(t, () => parseIp(167772165, 'ip'), 'ip', /got number/);
  invalid(t, () => parseIp({}, 'ip'), 'ip', /got object/);
});

t.test('formatIp: IPv4 round trips', async (t) => {
  for (const ip of ['0.0.0.0', '10.0.0.5', '172.16.254.1', '255.255.255.255', '1.2.3.4']) {
    t.equal(formatIp(parseIp(ip, 'ip').hex), ip);
  }
  t.equal(formatIp('0a0000ff'), '10.0.0.255');
});

t.test('formatIp: IPv6 in RFC 5952 form', async (t) => {
  const cases: Array<[string, string]> = [
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fd00:0:0:0:0:0:0:0', 'fd00::'],
    // lowercase, no leading zeros
    ['2001:0DB8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    // a single zero field is not compressed
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // the longest run is compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    // of equal runs, the first
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ];
  for (const [input, want] of cases) t.equal(formatIp(parseIp(input, 'ip').hex), want, input);
  for (const ip of ['::', '::1', 'fd00::1', 'fd00:1::a:b', '2001:db8:0:1:1:1:1:1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']) {
    t.equal(formatIp(parseIp(ip, 'ip').hex), ip, `${ip} round trips`);
  }
});

t.test('parseCidr: networks', async (t) => {
  t.strictSame(parseCidr('10.1.0.0/16', 'subnet'), {
    family: 4,
    prefix: 16,
    first: '0a010000',
    last: '0a01ffff',
    text: '10.1.0.0/16',
    hex: '0a010000',
  });
  t.strictSame(parseCidr('fd00:1::/64', 'subnet'), {
    family: 6,
    prefix: 64,
    first: 'fd000001000000000000000000000000',
    last: 'fd00000100000000ffffffffffffffff',
    text: 'fd00:1::/64',
    hex: 'fd000001000000000000000000000000',
  });
  // canonical text for a non-canonical IPv6 spelling
  t.equal(parseCidr('FD00:0001:0:0::/64', 'subnet').text, 'fd00:1::/64');
});

t.test('parseCidr: /0, /32 and /128', async (t) => {
  const all4 = parseCidr('0.0.0.0/0', 'subnet');
  t.equal(all4.first, '00000000');
  t.equal(all4.last, 'ffffffff');
  t.equal(all4.prefix, 0);
  const all6 = parseCidr('::/0', 'subnet');
  t.equal(all6.first, '0'.repeat(32));
  t.equal(all6.last, 'f'.repeat(32));
  t.equal(all6.text, '::/0');
  const host4 = parseCidr('10.0.0.7/32', 'subnet');
  t.equal(host4.first, '0a000007');
  t.equal(host4.last, '0a000007');
  const host6 = parseCidr('fd00::7/128', 'subnet');
  t.equal(host6.first, 'fd000000000000000000000000000007');
  t.equal(host6.last, 'fd000000000000000000000000000007');
  t.equal(host6.text, 'fd00::7/128');
});

t.test('parseCidr: host bits set are rejected, naming the network', async (t) => {
  invalid(t, () => parseCidr('10.0.0.5/24', 'subnet'), 'subnet', /host bits set; the network is 10\.0\.0\.0\/24$/);
  invalid(t, () => parseCidr('10.1.2.3/12', 'subnet'), 'subnet', /the network is 10\.0\.0\.0\/12$/);
  invalid(t, () => parseCidr('fd00::1/64', 'subnet'), 'subnet', /the network is fd00::\/64$/);
  invalid(t, () => parseCidr('0.0.0.1/0', 'subnet'), 'subnet', /the network is 0\.0\.0\.0\/0$/);
});

t.test('parseCidr: allowHost keeps the address and still finds the network', async (t) => {
  const c = parseCidr('10.0.0.5/24', 'address', true);
  t.equal(c.hex, '0a000005');
  t.equal(c.first, '0a000000');
  t.equal(c.last, '0a0000ff');
  t.equal(c.text, '10.0.0.0/24');
  const c6 = parseCidr('fd00::5/120', 'address', true);
  t.equal(c6.hex, 'fd000000000000000000000000000005');
  t.equal(c6.last, 'fd0000000000000000000000000000ff');
});

t.test('parseCidr: prefix range and form', async (t) => {
  invalid(t, () => parseCidr('10.0.0.0/33', 'subnet'), 'subnet', /\(0-32\)/);
  invalid(t, () => parseCidr('fd00::/129', 'subnet'), 'subnet', /\(0-128\)/);
  for (const bad of ['10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/+8', '10.0.0.0/8/8', '10.0.0.0/x', '10.0.0.0/1000']) {
    invalid(t, () => parseCidr(bad, 'subnet'), 'subnet', /invalid prefix length/);
  }
  // /33 is fine for IPv6
  t.equal(parseCidr('fd00::/33', 'subnet').prefix, 33);
});

t.test('parseCidr: not a CIDR', async (t) => {
  invalid(t, () => parseCidr('10.0.0.0', 'subnet'), 'subnet', /^subnet: must be a CIDR like 10\.0\.0\.0\/24, got "10\.0\.0\.0"$/);
  invalid(t, () => parseCidr(undefined, 'subnet'), 'subnet', /got nothing/);
  invalid(t, () => parseCidr(24, 'subnet'), 'subnet', /got number/);
  invalid(t, () => parseCidr('010.0.0.0/8', 'routes[0].dst'), 'routes[0].dst', /not a valid IPv4/);
  invalid(t, () => parseCidr('x/8', 'subnet'), 'subnet', /not a valid IP/);
});

t.test('hexInc', async (t) => {
  t.equal(hexInc('0a000005'), '0a000006');
  t.equal(hexInc('0a00000f'), '0a000010');
  t.equal(hexInc('0a0000ff'), '0a000100');
  t.equal(hexInc('0affffff'), '0b000000');
  t.equal(hexInc('00000000'), '00000001');
  t.equal(hexInc('fffffffe'), 'ffffffff');
  t.equal(hexInc('ffffffff'), null);
  t.equal(hexInc(`fd00${'0'.repeat(24)}ffff`), `fd00${'0'.repeat(23)}10000`);
  t.equal(hexInc(`0${'f'.repeat(31)}`), `1${'0'.repeat(31)}`);
  t.equal(hexInc('f'.repeat(32)), null);
  // keeps the width of its input
  t.equal(hexInc('0'.repeat(32))!.length, 32);
});

t.test('within', async (t) => {
  t.equal(within('0a000005', '0a000005', '0a00000a'), true, 'first is inside');
  t.equal(within('0a00000a', '0a000005', '0a00000a'), true, 'last is inside');
  t.equal(within('0a000007', '0a000005', '0a00000a'), true);
  t.equal(within('0a000004', '0a000005', '0a00000a'), false);
  t.equal(within('0a00000b', '0a000005', '0a00000a'), false);
  // numeric order across a digit boundary, not lexical accident
  t.equal(within('0a0000ff', '0a0000f0', '0a000100'), true);
  // another family never lies inside
  t.equal(within('0a000007', '0'.repeat(32), 'f'.repeat(32)), false);
  t.equal(within('f'.repeat(32), '00000000', 'ffffffff'), false);
});

t.test('spanSize', async (t) => {
  t.equal(spanSize('0a000005', '0a000005'), 1n);
  t.equal(spanSize('0a000000', '0a0000ff'), 256n);
  t.equal(spanSize('00000000', 'ffffffff'), 2n ** 32n);
  t.equal(spanSize('0'.repeat(32), 'f'.repeat(32)), 2n ** 128n);
  t.equal(spanSize(`fd00${'0'.repeat(28)}`, `fd00${'0'.repeat(12)}${'f'.repeat(16)}`), 2n ** 64n);
});

t.test('widths and families of hex addresses', async (t) => {
  t.equal(hexWidth(4), 8);
  t.equal(hexWidth(6), 32);
  t.equal(familyOfHex('0a000001'), 4);
  t.equal(familyOfHex(`fd00${'0'.repeat(28)}`), 6);
  t.equal(toBig('0a000001'), 0x0a000001n);
  t.equal(fromBig(0x0a000001n, 4), '0a000001', 'padded to 8 digits');
  t.equal(fromBig(1n, 6), `${'0'.repeat(31)}1`, 'padded to 32 digits');
});

t.test('what was given is quoted in the message when it is a string', async (t) => {
  invalid(t, () => parseIp('', 'ip'), 'ip', /^ip: must be an IP address, got ""$/);
  invalid(t, () => parseCidr('garbage', 'subnet'), 'subnet', /^subnet: must be a CIDR like 10\.0\.0\.0\/24, got "garbage"$/);
});
