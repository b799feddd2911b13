// The pages as data → HTML: values from the store are text, sorting and
// filtering the pools, the parts a page fetches again live.
import t from 'tap';
import { parseCidr, parseIp } from '../../core/address.js';
import type { AddressInfo, HistoryEntry, PoolUsage } from '../../ipam/model.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { buildMap } from '../../console/map.js';
import { addressLive, orderPools, poolLive, poolsTable, renderAddress, renderLogin, renderPool, renderPools, usageBar, type PageContext } from '../../console/render.js';

const hex = (ip: string) => parseIp(ip, 'ip').hex;
const ctx: PageContext = { auth: 'out', store: 'file:///var/lib/berth', here: '/' };
const EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>';

function usage(name: string, subnet: string, allocated: number, reserved: number, vlan?: number): PoolUsage {
  const conf = buildPoolConfig({ name, subnet, ...(vlan === undefined ? {} : { vlan }) });
  return { conf, allocated, reserved, capacity: String(2 ** (32 - Number(subnet.split('/')[1])) - 3) };
}

t.test('pools: sorted by name, subnet, VLAN, use or free space, either way; filtered by name', async (t) => {
  const pools = [usage('web', '10.2.0.0/24', 200, 10, 120), usage('db', '10.1.0.0/24', 10, 0, 300), usage('big', '10.16.0.0/12', 10000, 0)];
  const names = (q: Partial<Parameters<typeof orderPools>[1]>) => orderPools(pools, { sort: 'name', order: 'asc', q: '', ...q }).map((p) => p.conf.name);
  t.same(names({}), ['big', 'db', 'web']);
  t.same(names({ order: 'desc' }), ['web', 'db', 'big']);
  t.same(names({ sort: 'subnet' }), ['db', 'web', 'big']);
  t.same(names({ sort: 'vlan' }), ['big', 'web', 'db'], 'no VLAN first');
  t.same(names({ sort: 'used', order: 'desc' }), ['web', 'db', 'big']);
  t.same(names({ sort: 'free' }), ['web', 'db', 'big']);
  t.same(names({ q: 'B' }), ['big', 'db', 'web'], 'a substring of the name, either case');
  t.same(names({ q: 'IG' }), ['big']);
  const page = renderPools(pools, { sort: 'used', order: 'desc', q: 'b' }, ctx).text;
  t.match(page, /<div id="pools" data-live="\/\?sort=used&amp;order=desc&amp;q=b&amp;part=pools">/, 'the live part keeps the sort and filter');
  t.match(page, /aria-sort="descending"><a href="\/\?sort=used&amp;q=b">Usage ▼<\/a>/, 'the active column links to the other order');
  t.match(poolsTable(pools, { sort: 'name', order: 'asc', q: 'zzz' }).text, /No pool name contains “zzz”/);
});

t.test('usage bars: shares of the capacity, a small one still visible', async (t) => {
  const bar = usageBar({ allocated: 1, reserved: 0, capacity: '1048573' }).text;
  t.match(bar, /class="a" style="width:0\.50%"/);
  t.match(bar, /title="1 allocated, 0 reserved, 1048572 free of 1048573"/);
  t.match(usageBar({ allocated: 127, reserved: 0, capacity: '254' }).text, /width:50\.00%/);
});

t.test('the map of a /24: each address links to its page, its owner and note in its title, escaped', async (t) => {
  const conf = buildPoolConfig({ name: 'web', subnet: '10.0.0.0/24' });
  const rec: AddressInfo = { pool: 'web', ip: hex('10.0.0.5'), state: 'allocated', owner: `o${EVIL}`, containerId: 'c1', since: 0, note: EVIL };
  const map = buildMap(conf, parseCidr(conf.subnet, 's'), [rec]);
  const page = renderPool({ usage: { conf, allocated: 1, reserved: 0, capacity: '253' }, map, trail: [parseCidr(conf.subnet, 's')] }, ctx).text;
  t.notMatch(page, /<script>alert|<img src=x/, 'no markup from the store');
  t.match(page, /<a class="cell s-allocated" href="\/pools\/web\/10\.0\.0\.5" aria-label="10\.0\.0\.5 · allocated · o&lt;script&gt;/);
  t.match(page, /<span class="cell s-none" aria-label="10\.0\.0\.1 · never handed out">1<\/span>/, 'the gateway');
  t.match(page, /data-live="\/pools\/web\?part=map"/);
  t.match(page, /data-events="\/events\?pool=web"/);
  t.match(poolLive({ usage: { conf, allocated: 1, reserved: 0, capacity: '253' }, map, trail: [] }).text, /<td class="note">&lt;script&gt;/, 'the in-use table');
});

t.test('the map of a /12: 4096 blocks, each a link to its /24 with its fill', async (t) => {
  const conf = buildPoolConfig({ name: 'big', subnet: '10.16.0.0/12' });
  const recs: AddressInfo[] = [{ pool: 'big', ip: hex('10.16.3.7'), state: 'allocated' }, { pool: 'big', ip: hex('10.16.3.8'), state: 'reserved' }];
  const scope = parseCidr(conf.subnet, 's');
  const page = renderPool({ usage: { conf, allocated: 1, reserved: 1, capacity: '1048573' }, map: buildMap(conf, scope, recs), trail: [scope] }, ctx).text;
  t.equal(page.match(/<a href="\?block=/g)?.length, 4096);
  t.match(page, /<a href="\?block=10\.16\.3\.0\/24" aria-label="10\.16\.3\.0\/24 · 1 allocated · 1 reserved · 254 free" style="--a:0\.50%;--r:0\.50%">/);
  t.match(page, /<a href="\?block=10\.16\.4\.0\/24" aria-label="10\.16\.4\.0\/24 · 256 free">/);
});

t.test('the address page: record and history escaped, newest first; changes only in a session, with its CSRF token', async (t) => {
  const conf = buildPoolConfig({ name: 'web', subnet: '10.0.0.0/24' });
  const info: AddressInfo = { pool: 'web', ip: hex('10.0.0.9'), state: 'reserved', owner: 'db', note: EVIL, since: Date.UTC(2026, 0, 2) };
  const history: HistoryEntry[] = [
    { at: Date.UTC(2026, 0, 2), event: 'reserve', ip: info.ip, owner: 'db', note: EVIL, actor: 'console@h' },
    { at: Date.UTC(2026, 0, 1), event: 'allocate', ip: info.ip, owner: 'db', containerId: 'c1', actor: 'cni@n1' },
  ];
  const page = { conf, info, history, trail: [parseCidr(conf.subnet, 's')] };
  const out = renderAddress(page, ctx).text;
  t.notMatch(out, /<script>alert|<img src=x/);
  t.match(out, /<dt>Note<\/dt><dd class="note">&lt;script&gt;alert\(&quot;x&quot;\)/);
  t.ok(out.indexOf('2026-01-02T00:00:00.000Z') < out.indexOf('2026-01-01T00:00:00.000Z'), 'newest first');
  t.match(out, /href="\/pools\/web\/10\.0\.0\.9\/history\.csv"/);
  t.match(out, /<a href="\/login\?next=%2F">Log in<\/a> with the admin token/);
  t.notMatch(out, /<form id="reserve"/, 'no change form without a session');
  t.match(renderAddress(page, { ...ctx, auth: 'none' }).text, /Read-only: this console was started without an admin token/);
  const admin = renderAddress({ ...page, error: `failed to reserve: ${EVIL}` }, { ...ctx, auth: 'in', csrf: 'tok"en' }).text;
  t.match(admin, /<form id="reserve" method="post" action="\/pools\/web\/10\.0\.0\.9\/reserve"><input type="hidden" name="csrf" value="tok&quot;en">/);
  t.match(admin, /<form id="unreserve"/);
  t.notMatch(admin, /<form id="release"/, 'release is for allocated addresses');
  t.match(admin, /<p class="error" role="alert">failed to reserve: &lt;script&gt;/);
  t.match(addressLive(page).text, /<h1>10\.0\.0\.9 <span class="state s-reserved">reserved<\/span><\/h1>/);
});

t.test('the login page keeps where to go back to; a read-only console has none', async (t) => {
  t.match(renderLogin('/pools/web?block=x"y', undefined, ctx).text, /<input type="hidden" name="next" value="\/pools\/web\?block=x&quot;y">/);
  t.match(renderLogin('/', undefined, { ...ctx, auth: 'none' }).text, /it is read-only/);
});
