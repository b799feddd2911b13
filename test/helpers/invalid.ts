// The one assertion for validation failures: a ValidationError (code INVALID)
// about the named field, whose message starts with that field.
import type { Test } from 'tap';
import { ValidationError } from '../../core/errors.js';

/** Asserts fn throws a ValidationError about `field` whose message matches `rest`; returns it. */
export function invalid(t: Test, fn: () => unknown, field: string, rest?: RegExp): ValidationError | undefined {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ValidationError)) {
      t.fail(`expected a ValidationError about ${field}, got ${String(err)}`);
      return undefined;
    }
    t.equal(err.code, 'INVALID');
    t.equal(err.field, field);
    t.ok(err.message.startsWith(`${field}: `), `message starts with "${field}: ": ${err.message}`);
    if (rest) t.match(err.message, rest);
    return err;
  }
  t.fail(`expected a ValidationError about ${field}`);
  return undefined;
}
