// Writes that land whole and durable, or fail and leave the file as it was.
//
// write(2) may take fewer bytes than it was given (a full disk, a file-size
// limit): a write counts only once every byte is in and the file is synced.
// An append that fails is cut back to where it began, so no torn bytes are
// left for the next append to follow. A file replaced by rename is written
// to FILE.tmp, synced, read back and compared first, so a short file is never
// renamed over a good one; a rename (or a new name) is durable only once its
// directory is synced.
import fs from 'node:fs';
import { dirname } from 'node:path';

/** Causes in words, for the errors a full or limited disk gives. */
const CAUSES: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large (the file size limit, ulimit -f)',
  EIO: 'input/output error',
  EROFS: 'read-only file system',
};

/** A file operation that failed; the message names the file and the cause. */
export class FileWriteError extends Error {
  readonly code: string;
  readonly path: string;

  constructor(verb: string, path: string, err: unknown) {
    const e = err as NodeJS.ErrnoException;
    const code = typeof e?.code === 'string' ? e.code : 'EIO';
    // Node's own message is "ENOSPC: no space left on device, write": the words only
    const cause = CAUSES[code] ?? String(e?.message ?? err).replace(/^[A-Z]+: /, '').replace(/, \w+$/, '');
    super(`failed to ${verb} "${path}": ${cause}`, { cause: err });
    this.name = 'FileWriteError';
    this.code = code;
    this.path = path;
  }
}

/** Writes all of buf at the fd's position (at its end under O_APPEND), continuing after short writes; the error that stops it is thrown. */
export function writeWhole(fd: number, buf: Buffer, path: string): void {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = fs.writeSync(fd, buf, done, buf.length - done);
    } catch (err) {
      throw new FileWriteError('write', path, err);
    }
    if (n <= 0) throw new FileWriteError('write', path, new Error(`write took ${n} of ${buf.length - done} bytes`));
    done += n;
  }
}

/**
 * Appends buf to the file open at fd (O_APPEND) whose good content ends at
 * byte `end`, and fdatasyncs it. Bytes past `end` (a torn earlier append)
 * are cut off first. On failure the file is cut back to `end`.
 */
export function appendWhole(fd: number, buf: Buffer, end: number, path: string): void {
  try {
    if (fs.fstatSync(fd).size !== end) fs.ftruncateSync(fd, end);
    writeWhole(fd, buf, path);
    fs.fdatasyncSync(fd);
  } catch (err) {
    try {
      fs.ftruncateSync(fd, end);
    } catch {
      // left torn: the next append cuts it (above), a reader stops before it
    }
    throw err instanceof FileWriteError ? err : new FileWriteError('append to', path, err);
  }
}

/**
 * Replaces file with data so that a crash leaves the old or the new content:
 * FILE.tmp is written whole, fsync'd, read back and compared, renamed over
 * FILE, and the directory fsync'd. When any step before the rename fails,
 * FILE is untouched and FILE.tmp removed.
 */
export function replaceFile(file: string, data: string | Buffer, mode = 0o640): void {
  const tmp = `${file}.tmp`;
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  try {
    let fd: number;
    try {
      fd = fs.openSync(tmp, 'w', mode);
    } catch (err) {
      throw new FileWriteError('create', tmp, err);
    }
    try {
      writeWhole(fd, buf, tmp);
      try {
        fs.fsyncSync(fd);
      } catch (err) {
        throw new FileWriteError('sync', tmp, err);
      }
    } finally {
      fs.closeSync(fd);
    }
    const back = fs.readFileSync(tmp);
    if (!back.equals(buf)) throw new FileWriteError('write', tmp, new Error(`read back ${back.length} bytes that differ from the ${buf.length} written`));
    try {
      fs.renameSync(tmp, file);
    } catch (err) {
      throw new FileWriteError('rename', tmp, err);
    }
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // the next replace truncates it
    }
    throw err instanceof FileWriteError ? err : new FileWriteError('write', tmp, err);
  }
  syncDir(dirname(file));
}

/** fsyncs a directory: the names made, renamed or removed in it become durable. */
export function syncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (err) {
    throw new FileWriteError('open', dir, err);
  }
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    throw new FileWriteError('sync', dir, err);
  } finally {
    fs.closeSync(fd);
  }
}

/** mkdir -p; each directory it makes is made durable (it and its parent synced). */
export function makeDirs(dir: string, mode: number): void {
  const first = fs.mkdirSync(dir, { recursive: true, mode });
  if (first === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    syncDir(d);
    if (d === first) {
      syncDir(dirname(d));
      return;
    }
  }
}
