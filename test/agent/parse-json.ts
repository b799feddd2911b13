import t from 'tap';
import { parseJson } from '../../agent/parse-json.js';

const errorOf = (text: string): string => {
  try {
    parseJson(text);
  } catch (err) {
    t.type(err, SyntaxError);
    return (err as Error).message;
  }
  throw new Error('parsed');
};

t.test('parses JSON', async (t) => {
  t.strictSame(parseJson('{"store":"redis://:p@h"}'), { store: 'redis://:p@h' });
});

t.test('a syntax error never quotes the text around it', async (t) => {
  // each breaks next to the password, where V8 would quote it
  const broken = [
    '{"store": redis://:Mk9secret@h/0}',
    '{"store": "redis://:Mk9"secret@h/0"}',
    '{"store": "redis://:Mk9secret@h/0",}',
    '{"store": "redis://:Mk9secret@h/0"]',
    '{"store": "redis://:Mk9secret@h/0',
    '{"a": [1,], "store": "redis://:Mk9secret@h/0"}',
  ];
  for (const text of broken) {
    const msg = errorOf(text);
    t.notMatch(msg, /Mk9|secret|redis/, `${text}: ${msg}`);
  }
  t.equal(errorOf('{"store": redis://:Mk9secret@h/0}'), 'Unexpected token: not valid JSON');
  t.match(errorOf('{"store": "x"'), /in JSON at position \d+|Unexpected end of JSON input/, 'a position is kept');
});
