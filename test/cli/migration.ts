// Bulk import and export: the file formats and the plan as data, then
// `berth ip import` and `berth pool export` in-process on both stores:
// a round trip, a file with conflicts refused whole, --skip-conflicts.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../cli/main.js';
import { formatExport, formatOf, parseCsv, parseImport, planImport } from '../../cli/migration.js';
import { parseIp } from '../../core/address.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import type { AddressInfo } from '../../ipam/model.js';
import { openStore } from '../../ipam/open-store.js';
import { freshStoreUrl, PROCESS_STORE_KINDS } from '../helpers/stores.js';

const hex = (ip: string) => parseIp(ip, 'ip').hex;

async function berth(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { USER: 'tester' } });
  return { code, stdout, stderr };
}

t.test('CSV: a header, quoted fields with commas, quotes and line breaks, CRLF and a BOM', async (t) => {
  const csv = '\uFEFFip,owner,note\r\n10.0.0.5,web-1,"FW-1, ""approved"""\r\n\r\n10.0.0.6,web-2,"two\nlines"\n10.0.0.7,,\n';
  t.same(parseCsv(csv), [
    { line: 1, cells: ['ip', 'owner', 'note'] },
    { line: 2, cells: ['10.0.0.5', 'web-1', 'FW-1, "approved"'] },
    { line: 4, cells: ['10.0.0.6', 'web-2', 'two\nlines'] },
    { line: 6, cells: ['10.0.0.7', '', ''] },
  ]);
  t.throws(() => parseImport(csv, 'csv'), /line 4: note must be at most 1024 printable characters/, 'a note may not hold a line break: the store keeps notes on one line');
  t.same(parseImport(csv.replace('two\nlines', 'two lines'), 'csv').map((r) => [r.line, r.ip, r.owner, r.note]), [
    [2, '10.0.0.5', 'web-1', 'FW-1, "approved"'],
    [4, '10.0.0.6', 'web-2', 'two lines'],
    [5, '10.0.0.7', undefined, undefined],
  ]);
});

t.test('bad rows are named by line and field', async (t) => {
  t.throws(() => parseImport('address,owner\n10.0.0.1,a\n', 'csv'), /line 1: the header must name an "ip" column/);
  t.throws(() => parseImport('ip,owner\n10.0.0.300,a\n', 'csv'), /line 2: ip must be an IPv4 or IPv6 address, got "10\.0\.0\.300"/);
  t.throws(() => parseImport('ip,owner\n,a\n', 'csv'), /line 2: ip is missing/);
  t.throws(() => parseImport('{"ip":"10.0.0.1"}\n[1]\n', 'jsonl'), /line 2: not a JSON object/);
  t.throws(() => parseImport('{"ip":"10.0.0.1","owner":7}\n', 'jsonl'), /line 1: owner must be at most 253 printable characters, got 7/);
  t.throws(() => parseImport('ip\n"10.0.0.1\n', 'csv'), /line 2: a quoted field is not closed/);
  t.equal(formatOf('x.CSV', '{'), 'csv');
  t.equal(formatOf('x.jsonl', 'ip'), 'jsonl');
  t.equal(formatOf('-', '  {"ip":1}'), 'jsonl', 'by its first character');
  t.equal(formatOf('-', 'ip,owner'), 'csv');
});

t.test('the plan: outside the pool, held by another owner, listed twice; already in place', async (t) => {
  const pool = buildPoolConfig({ name: 'p', subnet: '10.0.0.0/24' });
  const current: AddressInfo[] = [
    { pool: 'p', ip: hex('10.0.0.5'), state: 'allocated', owner: 'web-9', containerId: 'c9' },
    { pool: 'p', ip: hex('10.0.0.6'), state: 'reserved', owner: 'web-8' },
    { pool: 'p', ip: hex('10.0.0.7'), state: 'reserved', owner: 'web-7', note: 'n' },
    { pool: 'p', ip: hex('10.0.0.8'), state: 'allocated', owner: 'web-1', containerId: 'c1' },
  ];
  const rows = parseImport('ip,owner,note\n10.0.0.5,web-1,\n10.0.0.6,web-1,\n10.0.0.7,web-7,n\n10.0.0.8,web-1,\n10.1.0.1,x,\n10.0.0.1,gw,\n10.0.0.20,a,\n10.0.0.20,b,\n', 'csv');
  const plan = planImport(pool, rows, current);
  t.same(plan.conflicts.map((c) => [c.line, c.why.split(' (')[0]!.split(':')[0]]), [
    [2, 'allocated to web-9'],
    [3, 'reserved for web-8'],
    [6, 'not an assignable address of pool "p"'],
    [7, 'not an assignable address of pool "p"'],
    [9, 'listed twice'],
  ]);
  t.same(plan.unchanged.map((r) => r.ip), ['10.0.0.7'], 'reserved for its owner with its note already');
  t.same(plan.apply.map((r) => r.ip), ['10.0.0.8', '10.0.0.20'], 'its own allocated address is pinned; a free one reserved');
});

t.test('export: the import columns, then state, container and host', async (t) => {
  const rows: AddressInfo[] = [
    { pool: 'p', ip: hex('10.0.0.5'), state: 'allocated', owner: 'web-1', containerId: 'c1', host: 'h1', note: 'a, "b"' },
    { pool: 'p', ip: hex('10.0.0.6'), state: 'reserved', owner: 'web-2' },
    { pool: 'p', ip: hex('10.0.0.7'), state: 'free' },
  ];
  t.equal(formatExport(rows, 'csv'), 'ip,owner,note,state,container,host\n10.0.0.5,web-1,"a, ""b""",allocated,c1,h1\n10.0.0.6,web-2,,reserved,,\n');
  t.equal(formatExport(rows, 'jsonl'), '{"ip":"10.0.0.5","owner":"web-1","note":"a, \\"b\\"","state":"allocated","container":"c1","host":"h1"}\n{"ip":"10.0.0.6","owner":"web-2","state":"reserved"}\n');
});

for (const kind of PROCESS_STORE_KINDS) {
  t.test(`${kind} store: import, export, and a file with conflicts refused whole`, async (t) => {
    const url = await freshStoreUrl(t, kind);
    if (!url) return;
    const store = await openStore(url);
    t.teardown(() => store.close());
    await store.createPool(buildPoolConfig({ name: 'vm', subnet: '10.70.0.0/24' }));
    await store.allocate('vm', { containerId: 'c9', ifname: 'eth0', owner: 'legacy-9', host: 'h9' });
    const dir = t.testdir();
    const file = join(dir, 'approved.csv');
    writeFileSync(file, ['ip,owner,note', ...Array.from({ length: 40 }, (_, i) => `10.70.0.${100 + i},app-${i},"FW-${1000 + i}, approved"`)].join('\n'));
    const ok = await berth(['--store', url, 'ip', 'import', 'vm', file]);
    t.equal(ok.code, 0, ok.stderr);
    t.match(ok.stdout, /reserved 40 of 40 rows in pool "vm"; 0 already so; 0 conflicts/);
    t.match(await store.getAddress('vm', hex('10.70.0.105')), { state: 'reserved', owner: 'app-5', note: 'FW-1005, approved' });
    t.match((await store.history('vm', { ip: hex('10.70.0.105') }))[0], { event: 'reserve', actor: /import approved\.csv$/ }, 'the history names the file');
    const again = await berth(['--store', url, 'ip', 'import', 'vm', file, '--json']);
    t.match(JSON.parse(again.stdout), { reserved: 0, unchanged: 40, conflicts: [] }, 'importing it again changes nothing');

    const exported = await berth(['--store', url, 'pool', 'export', 'vm']);
    t.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout.trim().split('\n');
    t.equal(lines[0], 'ip,owner,note,state,container,host');
    t.equal(lines.length, 1 + 41, 'every reserved and the allocated address');
    t.ok(lines.includes('10.70.0.2,legacy-9,,allocated,c9,h9'), 'the allocated one with its container and host');
    const out = join(dir, 'export.jsonl');
    t.equal((await berth(['--store', url, 'pool', 'export', 'vm', '--format', 'jsonl', '--output', out])).code, 0);
    // the round trip: the export, imported into another store's pool of that subnet, reserves the same addresses for the same owners
    const otherUrl = (await freshStoreUrl(t, kind))!;
    const other = await openStore(otherUrl);
    t.teardown(() => other.close());
    await other.createPool(buildPoolConfig({ name: 'vm', subnet: '10.70.0.0/24' }));
    const rt = await berth(['--store', otherUrl, 'ip', 'import', 'vm', out, '--json']);
    t.equal(rt.code, 0, rt.stderr);
    t.equal(JSON.parse(rt.stdout).reserved, 41);
    const view = async (s: typeof store) => (await s.listAddresses('vm')).map((x) => [x.ip, x.owner, x.note ?? '']);
    t.same(await view(other), await view(store), 'the same addresses, owners and notes (the allocated one now reserved for its owner)');

    // one conflict among good rows: nothing at all is reserved
    const usage = await store.usage('vm');
    const histLen = (await store.history('vm')).length;
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, ['{"ip":"10.70.0.200","owner":"new-1"}', '{"ip":"10.70.0.2","owner":"new-2"}', '{"ip":"10.99.0.1","owner":"new-3"}', '{"ip":"10.70.0.201","owner":"new-4"}', '{"ip":"10.70.0.200","owner":"new-5"}'].join('\n'));
    const refused = await berth(['--store', url, 'ip', 'import', 'vm', bad]);
    t.equal(refused.code, 1);
    t.match(refused.stdout, /^LINE\s+IP\s+CONFLICT\n2\s+10\.70\.0\.2\s+allocated to legacy-9 \(container c9\)\n3\s+10\.99\.0\.1\s+not an assignable address of pool "vm"[^\n]*\n5\s+10\.70\.0\.200\s+listed twice \(first on line 1\)\n/);
    t.match(refused.stderr, /^berth: failed to import ".*bad\.jsonl" into pool "vm": 3 of 5 rows conflict and nothing was reserved/);
    t.same(await store.usage('vm'), usage, 'the pool is as it was');
    t.equal((await store.history('vm')).length, histLen, 'and its history');
    const dry = await berth(['--store', url, 'ip', 'import', 'vm', bad, '--dry-run', '--skip-conflicts']);
    t.match(dry.stdout, /would reserve 2 of 5 rows/);
    t.same(await store.usage('vm'), usage, 'a dry run changes nothing');
    const skip = await berth(['--store', url, 'ip', 'import', 'vm', bad, '--skip-conflicts']);
    t.equal(skip.code, 0, skip.stderr);
    t.match(skip.stdout, /reserved 2 of 5 rows in pool "vm"; 0 already so; 3 conflicts/);
    t.match(await store.getAddress('vm', hex('10.70.0.201')), { state: 'reserved', owner: 'new-4' });
    t.match(await store.getAddress('vm', hex('10.70.0.2')), { state: 'allocated', owner: 'legacy-9' }, 'a conflict is never applied');
  });
}
