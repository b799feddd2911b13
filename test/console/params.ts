// What a browser sends, checked: each error names its field.
import t from 'tap';
import { doneAction, localPath, oneOf, optional, poolsQuery, readParams, segment, text } from '../../console/params.js';

const q = (s: string) => new URLSearchParams(s);

t.test('parameters: only those a page takes, each once', async (t) => {
  t.same([...readParams(q('a=1&b=2'), ['a', 'b'])], [['a', '1'], ['b', '2']]);
  t.throws(() => readParams(q('a=1&c=2'), ['a']), { name: 'ValidationError', field: 'c', message: 'c: is not a parameter of this page (it takes a)' });
  t.throws(() => readParams(q('a=1&a=2'), ['a']), { name: 'ValidationError', field: 'a', message: 'a: may be given only once' });
  t.throws(() => readParams(q('x=1'), []), { message: 'x: is not a parameter of this page (it takes none)' });
});

t.test('the pools query: sort, order and filter, with defaults', async (t) => {
  t.same(poolsQuery(readParams(q(''), ['sort', 'order', 'q'])), { sort: 'name', order: 'asc', q: '' });
  t.same(poolsQuery(readParams(q('sort=free&order=desc&q=we'), ['sort', 'order', 'q'])), { sort: 'free', order: 'desc', q: 'we' });
  t.throws(() => poolsQuery(readParams(q('sort=size'), ['sort'])), { message: 'sort: must be one of name, subnet, vlan, used, free, got "size"' });
  t.throws(() => poolsQuery(readParams(q('order=up'), ['order'])), { message: 'order: must be one of asc, desc, got "up"' });
  t.throws(() => poolsQuery(readParams(q(`q=${'x'.repeat(64)}`), ['q'])), { name: 'ValidationError', field: 'q' });
  t.throws(() => text(readParams(q('q=a%00b'), ['q']), 'q', 10), { name: 'ValidationError', field: 'q' });
});

t.test('where a login goes back to is a path of this console', async (t) => {
  const next = (v: string) => localPath(new Map([['next', v]]), 'next');
  t.equal(next('/pools/web?block=10.0.0.0/24'), '/pools/web?block=10.0.0.0/24');
  t.equal(localPath(new Map(), 'next'), '/');
  for (const bad of ['//evil.example/', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '']) {
    t.throws(() => next(bad), { name: 'ValidationError', field: 'next' }, bad);
  }
});

t.test('form fields and path segments', async (t) => {
  t.equal(optional(new Map([['owner', '  ']]), 'owner'), undefined, 'an empty owner is no owner');
  t.equal(optional(new Map([['owner', 'db-1']]), 'owner'), 'db-1');
  t.equal(doneAction(new Map([['done', 'release']])), 'release');
  t.throws(() => doneAction(new Map([['done', 'delete']])), { name: 'ValidationError', field: 'done' });
  t.equal(oneOf(new Map(), 'part', ['map'], 'map'), 'map');
  t.equal(segment('10.0.0.5'), '10.0.0.5');
  t.equal(segment('fd00%3A%3A1'), 'fd00::1');
  t.equal(segment('%E0%A4%A'), '%E0%A4%A', 'not valid percent-encoding: as sent, for its check to refuse');
});
