// The history CSV: RFC 4180 quoting, and no field a spreadsheet would run.
import t from 'tap';
import { csvField, historyCsv } from '../../console/csv.js';

t.test('fields are quoted when they must be, formulas are defused', async (t) => {
  t.equal(csvField('plain'), 'plain');
  t.equal(csvField('a,b'), '"a,b"');
  t.equal(csvField('say "hi"'), '"say ""hi"""');
  t.equal(csvField('two\nlines'), '"two\nlines"');
  t.equal(csvField('=HYPERLINK("x")'), `"'=HYPERLINK(""x"")"`);
  t.equal(csvField('+1'), "'+1");
  t.equal(csvField('@sum'), "'@sum");
});

t.test('a history as CSV: a header, one line per entry, CRLF', async (t) => {
  const csv = historyCsv('web', [
    { at: Date.UTC(2026, 0, 2), event: 'reserve', ip: '0a000009', owner: 'db', note: 'FW-1, "prod"', actor: 'console@h' },
    { at: Date.UTC(2026, 0, 1), event: 'allocate', ip: '0a000009', owner: 'db', containerId: 'c1', ifname: 'eth0', gen: 3, actor: 'cni@n1' },
  ]);
  t.equal(
    csv,
    'time,event,pool,ip,owner,container,ifname,generation,actor,note\r\n' +
      '2026-01-02T00:00:00.000Z,reserve,web,10.0.0.9,db,,,,console@h,"FW-1, ""prod"""\r\n' +
      '2026-01-01T00:00:00.000Z,allocate,web,10.0.0.9,db,c1,eth0,3,cni@n1,\r\n',
  );
});
