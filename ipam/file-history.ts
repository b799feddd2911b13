// The file store's history files (history/POOL.jsonl, rotated to .1): where
// a reader has read to, and the complete lines written since. Readers never
// take the store's lock: a line is appended whole, and one cut by a crash
// was never acknowledged.
import fs from 'node:fs';
import { ValidationError } from '../core/errors.js';
import type { HistoryCursor, HistoryEntry, HistoryTail } from './model.js';

/**
 * Where historyAfter has read a history file to: its inode (0: not there
 * yet), a byte offset, and the time of its first entry, since a file made
 * after another was removed can get the same inode number.
 */
export interface FilePosition {
  ino: number;
  offset: number;
  head: number;
}

/** Bytes of one history file read per historyAfter call; the rest comes with the next. */
const HISTORY_READ_BYTES = 1024 * 1024;
const NO_FILE: FilePosition = { ino: 0, offset: 0, head: 0 };

export function readPosition(text: string): FilePosition {
  const m = /^(\d+):(\d+):(\d+)$/.exec(text);
  if (!m) throw new ValidationError('cursor', `${JSON.stringify(text)} is not a history file position`);
  return { ino: Number(m[1]), offset: Number(m[2]), head: Number(m[3]) };
}

function formatPosition(p: FilePosition): string {
  return `${p.ino}:${p.offset}:${p.head}`;
}

export function endPosition(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return formatPosition(NO_FILE);
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    return formatPosition({ ino: st.ino, offset: st.size, head: headOf(fd) });
  } finally {
    fs.closeSync(fd);
  }
}

/** The time of a history file's first entry, 0 when it has none yet. */
function headOf(fd: number): number {
  const buf = Buffer.alloc(32);
  const n = fs.readSync(fd, buf, 0, buf.length, 0);
  const m = /^\{"at":(\d+)/.exec(buf.subarray(0, n).toString('latin1'));
  return m ? Number(m[1]) : 0;
}

/** The complete lines of each pool's history file after its position, as entries oldest first. */
export function readTails(files: Array<[string, string, FilePosition]>): HistoryTail {
  const cursor: HistoryCursor = {};
  const entries: HistoryTail['entries'] = [];
  for (const [pool, file, pos] of files) {
    const lines: string[] = [];
    const at = readTail(file, pos, lines);
    cursor[pool] = formatPosition(at);
    for (const line of lines) {
      try {
        entries.push({ ...(JSON.parse(line) as HistoryEntry), pool });
      } catch {
        // a line cut by a crash was never acknowledged
      }
    }
  }
  entries.sort((a, b) => a.at - b.at);
  return { cursor, entries };
}

/**
 * Reads on from a position. When FILE is no longer the inode the position
 * names, that file was rotated to FILE.1, whose rest comes first; or it was
 * removed with its pool. Either way FILE is then new, and read from its start.
 */
function readTail(file: string, pos: FilePosition, out: string[]): FilePosition {
  if (pos.ino !== 0) {
    const same = readLines(file, pos, out);
    if (same) return same.pos;
    const rotated = readLines(`${file}.1`, pos, out);
    if (rotated && !rotated.atEnd) return rotated.pos;
  }
  return readLines(file, null, out)?.pos ?? NO_FILE;
}

/**
 * Appends to `out` the complete lines of `file` after `from` (from its start
 * when null), at most HISTORY_READ_BYTES. Null when the file is absent or is
 * not the file `from` names.
 */
function readLines(file: string, from: FilePosition | null, out: string[]): { pos: FilePosition; atEnd: boolean } | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const st = fs.fstatSync(fd);
    const head = headOf(fd);
    if (from && from.offset > 0 && (st.ino !== from.ino || head !== from.head || st.size < from.offset)) return null;
    if (from && from.offset === 0 && st.ino !== from.ino) return null;
    const start = from?.offset ?? 0;
    const len = Math.max(0, Math.min(st.size - start, HISTORY_READ_BYTES));
    const buf = Buffer.alloc(len);
    const n = len > 0 ? fs.readSync(fd, buf, 0, len, start) : 0;
    const end = buf.subarray(0, n).lastIndexOf(10) + 1;
    for (const line of buf.subarray(0, end).toString('utf8').split('\n')) if (line) out.push(line);
    return { pos: { ino: st.ino, offset: start + end, head }, atEnd: start + n >= st.size };
  } finally {
    fs.closeSync(fd);
  }
}

/** A file's text, empty when it does not exist. */
export function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}
