// Whole writes on a disk that fills up (a real tmpfs): a replace that does
// not fit leaves the old file, an append that does not fit leaves the file
// as it was, and the error names the file and the cause.
import t from 'tap';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { appendWhole, FileWriteError, replaceFile } from '../../ipam/durable-file.js';
import { mountTmpfs, skipWithoutTmpfs } from '../helpers/tmpfs.js';

/** Fills the disk under dir, leaving about `room` bytes. */
function fill(dir: string, room: number): void {
  const fd = openSync(join(dir, 'ballast'), 'a');
  try {
    for (;;) writeSync(fd, Buffer.alloc(4096));
  } catch {
    // full
  } finally {
    closeSync(fd);
  }
  const size = statSync(join(dir, 'ballast')).size;
  writeFileSync(join(dir, 'ballast'), Buffer.alloc(Math.max(0, size - room)));
}

t.test('a replace that does not fit leaves the old file whole and no temporary file', async (t) => {
  if (skipWithoutTmpfs(t)) return;
  const dir = mountTmpfs(t, '128k');
  const file = join(dir, 'snapshot.json');
  replaceFile(file, 'old');
  fill(dir, 8192);
  const err = (() => {
    try {
      replaceFile(file, Buffer.alloc(64 * 1024, 0x61));
    } catch (e) {
      return e as FileWriteError;
    }
  })();
  t.match(err, { code: 'ENOSPC', message: `failed to write "${file}.tmp": no space left on device` });
  t.equal(readFileSync(file, 'utf8'), 'old', 'the old content stands');
  t.same(readdirSync(dir).sort(), ['ballast', 'snapshot.json'], 'the temporary file is gone');
  replaceFile(file, 'new');
  t.equal(readFileSync(file, 'utf8'), 'new', 'a replace that fits is made');
});

t.test('an append that does not fit leaves the file as it was; a torn tail is cut before the next append', async (t) => {
  if (skipWithoutTmpfs(t)) return;
  const dir = mountTmpfs(t, '128k');
  const file = join(dir, 'journal.log');
  writeFileSync(file, 'line 1\n');
  const fd = openSync(file, 'a+');
  t.teardown(() => closeSync(fd));
  fill(dir, 4096);
  t.throws(() => appendWhole(fd, Buffer.alloc(32 * 1024, 0x62), 7, file), { code: 'ENOSPC', message: `failed to write "${file}": no space left on device` });
  t.equal(readFileSync(file, 'utf8'), 'line 1\n', 'nothing of the failed append is left');
  writeSync(fd, 'torn li'); // as a crash mid-append leaves it
  appendWhole(fd, Buffer.from('line 2\n'), 7, file);
  t.equal(readFileSync(file, 'utf8'), 'line 1\nline 2\n', 'the torn bytes were cut before appending');
  t.notOk(existsSync(`${file}.tmp`));
});
