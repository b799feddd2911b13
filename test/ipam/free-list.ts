import t from 'tap';
import { formatIp, parseIp } from '../../core/address.js';
import { freeAddresses } from '../../ipam/free-list.js';
import { buildPoolConfig, type PoolConfig } from '../../ipam/pool-config.js';

const hex = (ip: string): string => parseIp(ip, 'ip').hex;
const text = (list: Iterable<string>): string[] => [...list].map(formatIp);

function take(gen: Iterator<string>, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = gen.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

t.test('a whole /29 less network, gateway and broadcast', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/29' });
  t.same(text(freeAddresses(conf, new Set())), ['10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6']);
});

t.test('several ranges, in address order, with a gateway inside one', async (t) => {
  const conf = buildPoolConfig({
    name: 'p',
    subnet: '10.0.0.0/24',
    gateway: '10.0.0.21',
    ranges: ['10.0.0.200-10.0.0.201', '10.0.0.20-10.0.0.22', '10.0.0.100'],
  });
  t.same(text(freeAddresses(conf, new Set())), ['10.0.0.20', '10.0.0.22', '10.0.0.100', '10.0.0.200', '10.0.0.201']);
});

t.test('taken addresses are skipped', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/24', ranges: ['10.0.0.10-10.0.0.15'] });
  const taken = new Set([hex('10.0.0.10'), hex('10.0.0.12'), hex('10.0.0.15'), hex('10.9.9.9')]);
  t.same(text(freeAddresses(conf, taken)), ['10.0.0.11', '10.0.0.13', '10.0.0.14']);
});

t.test('nothing when every address is taken', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/24', ranges: ['10.0.0.10-10.0.0.11'] });
  t.same([...freeAddresses(conf, new Set([hex('10.0.0.10'), hex('10.0.0.11')]))], []);
});

t.test('a /32 and a /31 have no network or gateway to skip', async (t) => {
  t.same(text(freeAddresses(buildPoolConfig({ name: 'p', subnet: '10.0.0.5/32' }), new Set())), ['10.0.0.5']);
  t.same(text(freeAddresses(buildPoolConfig({ name: 'p', subnet: '10.0.0.4/31' }), new Set())), ['10.0.0.4', '10.0.0.5']);
});

t.test('yields hex of the pool family', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/30' });
  t.same([...freeAddresses(conf, new Set())], ['0a000002']);
});

t.test('IPv6: a /64 is walked lazily from its first host', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: 'fd00:1::/64' });
  const gen = freeAddresses(conf, new Set([hex('fd00:1::3')]));
  t.same(text(take(gen, 3)), ['fd00:1::2', 'fd00:1::4', 'fd00:1::5']);
  const top = buildPoolConfig({ name: 'q', subnet: 'fd00:2::/64', ranges: ['fd00:2::ffff:ffff:ffff:fffe-fd00:2::ffff:ffff:ffff:ffff'] });
  t.same(text(freeAddresses(top, new Set())), ['fd00:2::ffff:ffff:ffff:fffe', 'fd00:2::ffff:ffff:ffff:ffff']);
});

t.test('lazy on a /8: only what is asked for is looked at', async (t) => {
  const conf = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/8' });
  let lookups = 0;
  // Counting membership tests shows how far the generator walked.
  class CountingSet extends Set<string> {
    override has(value: string): boolean {
      lookups++;
      return super.has(value);
    }
  }
  const gen = freeAddresses(conf, new CountingSet([hex('10.0.0.3')]));
  t.same(text(take(gen, 3)), ['10.0.0.2', '10.0.0.4', '10.0.0.5']);
  t.ok(lookups <= 4, `walked ${lookups} addresses for 3 free ones`);
  gen.return(undefined);
});

t.test('hand-made overlapping or unsorted ranges give each address once, in order', async (t) => {
  const conf: Pick<PoolConfig, 'family' | 'ranges' | 'exclude'> = {
    family: 4,
    ranges: [
      [hex('10.0.0.8'), hex('10.0.0.10')],
      [hex('10.0.0.5'), hex('10.0.0.9')],
      [hex('10.0.0.6'), hex('10.0.0.7')],
    ],
    exclude: [hex('10.0.0.6')],
  };
  t.same(text(freeAddresses(conf, new Set())), ['10.0.0.5', '10.0.0.7', '10.0.0.8', '10.0.0.9', '10.0.0.10']);
});
