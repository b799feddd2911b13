// Redis passwords kept in files (`passwordFile`, `sentinelPasswordFile` on a
// store URL), so that none sits in a world-readable CNI config or on a
// command line. Each client reads them when it is made, so a changed file
// takes effect at the next plugin call, CLI run or agent start.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { ValidationError } from '../core/errors.js';
import type { RedisLocation } from './redis-conn.js';

/** Receives a warning about the set-up (a password file others can read). */
export type Warn = (message: string) => void;

/** Longer than any password or token: a bigger file is the wrong file. */
const MAX_BYTES = 4096;

/** The location with the passwords its files name read in. */
export function readPasswordFiles(loc: RedisLocation, warn: Warn = (m) => process.emitWarning(m)): RedisLocation {
  if (loc.passwordFile === undefined && loc.sentinelPasswordFile === undefined) return loc;
  const out = { ...loc };
  if (loc.passwordFile !== undefined) out.password = readSecretFile(loc.passwordFile, 'store.passwordFile', 'password file', warn);
  if (loc.sentinelPasswordFile !== undefined) out.sentinelPassword = readSecretFile(loc.sentinelPasswordFile, 'store.sentinelPasswordFile', 'password file', warn);
  return out;
}

/**
 * Reads a secret kept in a file (a password, the console's admin token):
 * `field` names the input in errors, `what` the file ("password file",
 * "token file").
 */
export function readSecretFile(path: string, field: string, what: string, warn: Warn): string {
  const fail = (cause: string) => new ValidationError(field, `failed to read ${what} "${path}": ${cause}`);
  const secret = what.replace(/ file$/, '');
  let fd: number;
  try {
    // non-blocking: a FIFO in its place must fail, not hang the caller
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw fail(causeOf(err));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail('not a regular file');
    if (st.size > MAX_BYTES) throw fail(`${st.size} bytes, more than a ${secret} (${MAX_BYTES} at most)`);
    // group or others reading it defeats keeping the password out of world-readable configs
    if ((st.mode & 0o044) !== 0) {
      warn(`${what} "${path}" can be read by users other than its owner (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); chmod 0600 it`);
    }
    const buf = Buffer.alloc(MAX_BYTES + 1);
    let len = 0;
    for (let n; len < buf.length && (n = readSync(fd, buf, len, buf.length - len, null)) > 0; ) len += n;
    if (len > MAX_BYTES) throw fail(`more than a ${secret} (${MAX_BYTES} bytes at most)`);
    // one trailing newline is the editor's, not the secret's
    const text = buf.toString('utf8', 0, len).replace(/\r?\n$/, '');
    if (text === '') throw fail('the file is empty');
    return text;
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw fail(causeOf(err));
  } finally {
    closeSync(fd);
  }
}

/** A file error's cause without the path Node appends (the message names it once). */
function causeOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.syscall ? e.message.replace(/, \w+ '.*'$/s, '') : String(e?.message ?? err);
}
