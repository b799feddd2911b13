import t from 'tap';
import { fields, table, writeJson } from '../../cli/output.js';
import { duration, iso } from '../../ipam/views.js';

t.test('table pads every column but the last to its widest cell', async (t) => {
  t.equal(
    table(['NAME', 'SUBNET', 'NOTE'], [
      ['web', '10.0.0.0/24', ''],
      ['database', '10.1.0.0/16', 'primary'],
    ]),
    'NAME      SUBNET       NOTE\nweb       10.0.0.0/24\ndatabase  10.1.0.0/16  primary\n',
  );
  t.equal(table(['A'], []), 'A\n', 'a header alone');
  t.equal(table(null, []), '', 'nothing at all');
});

t.test('fields aligns labels and leaves out empty values', async (t) => {
  t.equal(fields([['name', 'web'], ['vlan', undefined], ['note', ''], ['capacity', '253']]), 'name:      web\ncapacity:  253\n');
});

t.test('duration', async (t) => {
  t.equal(duration(0), '0s');
  t.equal(duration(45), '45s');
  t.equal(duration(90), '1m30s');
  t.equal(duration(3600), '1h');
  t.equal(duration(90061), '1d1h1m1s');
});

t.test('iso and writeJson', async (t) => {
  t.equal(iso(0), '1970-01-01T00:00:00.000Z');
  t.equal(iso(undefined), undefined);
  let out = '';
  writeJson({ write: (s: string) => (out += s) }, [{ ip: '10.0.0.1' }]);
  t.same(JSON.parse(out), [{ ip: '10.0.0.1' }]);
  t.ok(out.endsWith('\n'));
});
