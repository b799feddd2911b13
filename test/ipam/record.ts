import t, { type Test } from 'tap';
import { BerthError } from '../../core/errors.js';
import { checkRecordShape, parseRecord } from '../../ipam/record.js';

const HEX = '0a000005';

/** Asserts fn throws STORE_CORRUPT about `field` of address HEX, with a message matching `why`. */
function corrupt(t: Test, fn: () => unknown, field: string, why?: RegExp): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof BerthError)) {
      t.fail(`expected STORE_CORRUPT about ${field}, got ${String(err)}`);
      return;
    }
    t.equal(err.code, 'STORE_CORRUPT', field);
    t.strictSame(err.details, { ip: HEX, field }, `details name ${field}`);
    t.ok(
      err.message.startsWith(`failed to read the record of address ${HEX}: field "${field}" `),
      `message names the address and "${field}": ${err.message}`,
    );
    if (why) t.match(err.message, why);
    return;
  }
  t.fail(`expected STORE_CORRUPT about ${field}`);
}

const allocated = { s: 'a', o: 'own', c: 'cid', i: 'eth0', g: 7, t: 1_700_000_000_000 };
const held = { s: 'r', o: 'own', c: 'cid', t: 1_700_000_000_000, u: 1_700_000_060_000 };

t.test('valid records are returned as they are', async (t) => {
  const records: object[] = [
    allocated,
    { ...allocated, p: 1 },
    { s: 'a', c: 'cid', i: 'eth0', g: 0, t: 0 },
    held,
    { s: 'r', t: 5 },
    { s: 'r', o: 'own', t: 5, n: 'printer', p: 1 },
  ];
  for (const rec of records) {
    t.equal(checkRecordShape(rec, HEX), rec, JSON.stringify(rec));
    t.strictSame(parseRecord(JSON.stringify(rec), HEX), rec, `parsed ${JSON.stringify(rec)}`);
  }
});

t.test('not an object', async (t) => {
  for (const rec of [null, undefined, 5, 'a', [], [allocated], true]) {
    corrupt(t, () => checkRecordShape(rec, HEX), '(record)', /is not an object/);
  }
  corrupt(t, () => parseRecord('[]', HEX), '(record)');
  corrupt(t, () => parseRecord('null', HEX), '(record)');
  corrupt(t, () => parseRecord('"a"', HEX), '(record)');
});

t.test('state', async (t) => {
  corrupt(t, () => checkRecordShape({ t: 1 }, HEX), 's', /must be "a" or "r", got undefined/);
  corrupt(t, () => checkRecordShape({ s: 'x', t: 1 }, HEX), 's', /got "x"/);
  corrupt(t, () => checkRecordShape({ s: 'A', t: 1 }, HEX), 's');
  corrupt(t, () => checkRecordShape({ ...allocated, s: 1 }, HEX), 's');
  corrupt(t, () => checkRecordShape({ ...allocated, s: null }, HEX), 's');
});

t.test('since', async (t) => {
  corrupt(t, () => checkRecordShape({ s: 'r' }, HEX), 't', /must be a number/);
  corrupt(t, () => checkRecordShape({ ...held, t: '1700000000000' }, HEX), 't');
  corrupt(t, () => checkRecordShape({ ...held, t: null }, HEX), 't');
});

t.test('field types', async (t) => {
  corrupt(t, () => checkRecordShape({ ...allocated, o: 5 }, HEX), 'o', /must be a string/);
  corrupt(t, () => checkRecordShape({ ...allocated, c: 5 }, HEX), 'c', /must be a string/);
  corrupt(t, () => checkRecordShape({ ...allocated, i: null }, HEX), 'i', /must be a string/);
  corrupt(t, () => checkRecordShape({ ...allocated, g: '7' }, HEX), 'g', /must be a number/);
  corrupt(t, () => checkRecordShape({ ...held, u: '1700000060000' }, HEX), 'u', /must be a number/);
  corrupt(t, () => checkRecordShape({ ...held, n: ['note'] }, HEX), 'n', /must be a string/);
  corrupt(t, () => checkRecordShape({ ...held, o: {} }, HEX), 'o');
});

t.test('pinned flag', async (t) => {
  for (const p of [0, 2, true, '1', null]) {
    corrupt(t, () => checkRecordShape({ ...allocated, p }, HEX), 'p', /must be 1/);
  }
});

t.test('unknown fields', async (t) => {
  corrupt(t, () => checkRecordShape({ ...allocated, x: 1 }, HEX), 'x', /is unknown/);
  corrupt(t, () => checkRecordShape({ ...held, owner: 'own' }, HEX), 'owner', /is unknown/);
});

t.test('unknown fields named like Object.prototype members', async (t) => {
  // Regression guard (was a bug): ipam/record.ts looks field types up in a plain object literal
  // (FIELDS[key]), so keys inherited from Object.prototype are found: a record
  // with "constructor" is rejected as 'field "constructor" must be a function
  // Object() { [native code] }' and one with "__proto__" (own key from
  // JSON.parse) as 'must be a [object Object]', instead of "is unknown".
  corrupt(t, () => parseRecord('{"s":"r","t":1,"constructor":"x"}', HEX), 'constructor', /is unknown$/);
  corrupt(t, () => parseRecord('{"s":"r","t":1,"__proto__":{}}', HEX), '__proto__', /is unknown$/);
  corrupt(t, () => parseRecord('{"s":"r","t":1,"toString":"x"}', HEX), 'toString', /is unknown$/);
});

t.test('an allocation needs container, interface and generation', async (t) => {
  for (const missing of ['c', 'i', 'g']) {
    const rec: Record<string, unknown> = { ...allocated };
    delete rec[missing];
    corrupt(t, () => checkRecordShape(rec, HEX), 'c/i/g', /must be set on an allocated address/);
  }
  // a reservation does not
  t.doesNotThrow(() => checkRecordShape({ s: 'r', t: 1, o: 'own' }, HEX));
});

t.test('parseRecord: text that is not JSON', async (t) => {
  for (const text of ['', '{', '{"s":"a",}', 'not json']) {
    try {
      parseRecord(text, HEX);
      t.fail(`accepted ${JSON.stringify(text)}`);
    } catch (err) {
      t.ok(err instanceof BerthError, JSON.stringify(text));
      t.equal((err as BerthError).code, 'STORE_CORRUPT');
      t.strictSame((err as BerthError).details, { ip: HEX });
      t.match((err as BerthError).message, new RegExp(`^failed to read the record of address ${HEX}: `));
    }
  }
});

t.test('parseRecord: JSON of the wrong shape goes through the shape check', async (t) => {
  corrupt(t, () => parseRecord('{"s":"a","t":1,"c":"cid","i":"eth0"}', HEX), 'c/i/g');
  corrupt(t, () => parseRecord('{"s":"r","t":1,"g":"7"}', HEX), 'g');
});
