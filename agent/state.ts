// The agent's durable state: one JSON file per attachment under
// STATE_DIR/attachments, written before and after every change. It is the
// write-ahead log that lets an agent killed at any point converge on restart:
//
//   adding    ADD may have been half done: undo it (DEL), then ADD again
//             if the container still runs;
//   attached  the cached result is what DEL needs;
//   deleting  a DEL that has not succeeded yet (the store was down, say):
//             retried until it does, never dropped.
//
// Each write makes a new file, ID.GEN.json (GEN counts up), and only then
// unlinks the one before: nothing is ever overwritten or renamed over. On
// ext4, renaming over a file (or truncating one) makes the kernel start
// writing the new data out first (auto_da_alloc), which queues the write
// behind dockerd's container layers; a new file does not wait for them
// (170 ms at p99 against 15 ms for a 2 KB record). On load the highest GEN
// that reads back whole wins: a newer
// one torn by a crash mid-write is dropped and the one before it stands.
// Writes of one record run in order. fsync is a setting (syncState): it adds
// durability across a power loss, after which the periodic GC repairs the
// pool anyway; when on, the directory fsync is shared by every write waiting
// for one.
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { RawResult } from './cni-runtime.js';
import type { AttachIntent } from './labels.js';
import type { NetworkList } from './netconf.js';
import { parseJson } from './parse-json.js';

export type Phase = 'adding' | 'attached' | 'deleting';

export interface AttachmentRecord {
  containerId: string;
  /** Docker's name, without "/" */
  name: string;
  ifname: string;
  intent: AttachIntent;
  /** the network list used for ADD, so DEL runs the same chain */
  network: NetworkList;
  phase: Phase;
  /** the container's init pid and its netns inode when attached: a reused pid is never mistaken for it */
  pid: number;
  nsInode: number;
  result?: RawResult;
  /** the container's first address, "10.0.0.5" */
  ip?: string;
  createdAt: string;
  updatedAt: string;
  attempts: number;
  lastError?: string;
  /** not before this time (ms) is a failed DEL tried again */
  retryAt?: number;
}

function isEmpty(file: string): boolean {
  try {
    return statSync(file).size === 0;
  } catch {
    return false;
  }
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export class StateDir {
  private readonly dir: string;
  /** the last GEN handed out, over all records */
  private gen = 0;
  /** the GEN of each record's file on disk */
  private readonly current = new Map<string, number>();
  /** per record, the write or removal in progress: they run in order */
  private readonly queues = new Map<string, Promise<void>>();
  /** the directory fsync in progress, and the one queued behind it */
  private dirRunning: Promise<void> | undefined;
  private dirNext: Promise<void> | undefined;

  /**
   * @param fsync whether each write is fsync'd (file and directory). Without
   *   it a write still survives the agent's own death (it is in the page
   *   cache); fsync adds durability across a power loss, at a price: in a
   *   start storm the disk is busy with container layers and an fsync can
   *   take most of a second.
   */
  constructor(
    root: string,
    private readonly fsync = false,
  ) {
    this.dir = join(root, 'attachments');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Every record on disk. Older generations of a record, and a newer one
   * torn by a crash, are deleted; an unreadable file with no good record
   * of its id is returned as an error (and left for an operator).
   */
  load(): { records: AttachmentRecord[]; errors: string[] } {
    const good = new Map<string, { rec: AttachmentRecord; gen: number; file: string }>();
    const older: string[] = [];
    const bad: Array<{ file: string; id?: string; gen?: number; err: string }> = [];
    for (const n of readdirSync(this.dir)) {
      const file = join(this.dir, n);
      if (n.endsWith('.tmp')) {
        // written by an older berth (temporary file, then rename) and never renamed: the record before it stands
        older.push(file);
        continue;
      }
      if (!n.endsWith('.json')) continue;
      const named = /^(.+)\.(\d{1,15})\.json$/.exec(n);
      // above every generation seen, kept or not: a new write never meets an old name
      if (named) this.gen = Math.max(this.gen, Number(named[2]));
      try {
        const r = parseJson(readFileSync(file, 'utf8')) as AttachmentRecord;
        if (!r || typeof r.containerId !== 'string' || !['adding', 'attached', 'deleting'].includes(r.phase) || !r.network?.plugins) {
          throw new Error('not an attachment record');
        }
        // ID.GEN.json, or ID.json as older berth wrote it (generation 0)
        const gen = named && named[1] === r.containerId ? Number(named[2]) : n === `${r.containerId}.json` ? 0 : -1;
        if (gen < 0) throw new Error(`not the record of ${r.containerId} its name says`);
        const seen = good.get(r.containerId);
        if (seen && seen.gen > gen) older.push(file);
        else {
          if (seen) older.push(seen.file);
          good.set(r.containerId, { rec: r, gen, file });
        }
      } catch (err) {
        bad.push({ file, ...(named ? { id: named[1], gen: Number(named[2]) } : {}), err: (err as Error).message });
      }
    }
    const errors: string[] = [];
    for (const b of bad) {
      const g = b.id !== undefined ? good.get(b.id) : undefined;
      // a newer write torn by a crash, or a first one killed before its content: the agent acts only after a write is whole
      if ((g && b.gen! > g.gen) || (b.id !== undefined && isEmpty(b.file))) older.push(b.file);
      else errors.push(`${b.file}: ${b.err}`);
    }
    for (const file of older) {
      try {
        unlinkSync(file);
      } catch {
        // gone already
      }
    }
    for (const [id, g] of good) this.current.set(id, g.gen);
    return { records: [...good.values()].map((g) => g.rec), errors };
  }

  /** Writes a record (as it is now: later changes to rec are not part of this write). */
  save(rec: AttachmentRecord): Promise<void> {
    if (!ID.test(rec.containerId)) return Promise.reject(new Error(`container id ${JSON.stringify(rec.containerId)} is not a file name`));
    rec.updatedAt = new Date().toISOString();
    const id = rec.containerId;
    const body = JSON.stringify(rec);
    return this.inOrder(id, async () => {
      const gen = ++this.gen;
      const file = this.file(id, gen);
      const fh = await open(file, 'wx', 0o600);
      try {
        try {
          await fh.writeFile(body);
          if (this.fsync) await fh.sync();
        } finally {
          await fh.close();
        }
        if (this.fsync) await this.syncDir();
      } catch (err) {
        // not a record: a whole one left here would outlive a remove() that never knew it
        await unlink(file).catch(() => {});
        throw err;
      }
      const before = this.current.get(id);
      this.current.set(id, gen);
      if (before !== undefined) await this.unlinkQuietly(this.file(id, before));
    });
  }

  /** Removes a record; absent is fine. */
  remove(containerId: string): Promise<void> {
    return this.inOrder(containerId, async () => {
      const gen = this.current.get(containerId);
      if (gen === undefined) return;
      this.current.delete(containerId);
      await this.unlinkQuietly(this.file(containerId, gen));
      if (this.fsync) await this.syncDir();
    });
  }

  private file(id: string, gen: number): string {
    return join(this.dir, gen === 0 ? `${id}.json` : `${id}.${gen}.json`);
  }

  private async unlinkQuietly(file: string): Promise<void> {
    try {
      await unlink(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private inOrder(id: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.queues.get(id) ?? Promise.resolve()).catch(() => {}).then(fn);
    this.queues.set(id, next);
    void next
      .catch(() => {})
      .then(() => {
        if (this.queues.get(id) === next) this.queues.delete(id);
      });
    return next;
  }

  /** fsyncs the directory; callers that arrive before the next one starts share it. */
  private syncDir(): Promise<void> {
    if (this.dirNext) return this.dirNext;
    const prev = this.dirRunning ?? Promise.resolve();
    const p: Promise<void> = prev
      .catch(() => {})
      .then(async () => {
        // from here on, a rename needs a later fsync than this one
        this.dirNext = undefined;
        this.dirRunning = p;
        try {
          const fh = await open(this.dir, 'r');
          try {
            await fh.sync();
          } finally {
            await fh.close();
          }
        } finally {
          if (this.dirRunning === p) this.dirRunning = undefined;
        }
      });
    this.dirNext = p;
    return p;
  }
}
