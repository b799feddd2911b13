// The agent's durable state: one JSON file per attachment under
// STATE_DIR/attachments, written before and after every change (write to a
// temporary file, fsync, rename, fsync the directory). It is the write-ahead
// log that lets an agent killed at any point converge on restart:
//
//   adding    ADD may have been half done: undo it (DEL), then ADD again
//             if the container still runs;
//   attached  the cached result is what DEL needs;
//   deleting  a DEL that has not succeeded yet (the store was down, say):
//             retried until it does, never dropped.
//
// Writes are asynchronous and atomic (a temporary file renamed over the
// record), so they survive the agent being killed at any point. fsync is a
// setting (syncState): it adds durability across a power loss, after which
// the periodic GC repairs the pool anyway; when on, the directory fsync that
// makes a rename durable is shared by every write waiting for one.
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { RawResult } from './cni-runtime.js';
import type { AttachIntent } from './labels.js';
import type { NetworkList } from './netconf.js';

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

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export class StateDir {
  private readonly dir: string;
  private seq = 0;
  /** the directory fsync in progress, and the one queued behind it */
  private dirRunning: Promise<void> | undefined;
  private dirNext: Promise<void> | undefined;

  /**
   * @param fsync whether each write is fsync'd (file and directory). Without
   *   it a write still survives the agent's own death (it is in the page
   *   cache, and the rename is atomic); fsync adds durability across a power
   *   loss, at a price: in a start storm the disk is busy with container
   *   layers and an fsync can take most of a second.
   */
  constructor(
    root: string,
    private readonly fsync = false,
  ) {
    this.dir = join(root, 'attachments');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Every record on disk; unreadable files are returned as errors (and left for an operator). */
  load(): { records: AttachmentRecord[]; errors: string[] } {
    const records: AttachmentRecord[] = [];
    const errors: string[] = [];
    for (const n of readdirSync(this.dir)) {
      if (n.endsWith('.tmp')) {
        // a write that never got renamed: the previous version (if any) stands
        try {
          unlinkSync(join(this.dir, n));
        } catch {
          // gone already
        }
        continue;
      }
      if (!n.endsWith('.json')) continue;
      try {
        const r = JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as AttachmentRecord;
        if (!r || typeof r.containerId !== 'string' || `${r.containerId}.json` !== n || !['adding', 'attached', 'deleting'].includes(r.phase) || !r.network?.plugins) {
          throw new Error('not an attachment record');
        }
        records.push(r);
      } catch (err) {
        errors.push(`${join(this.dir, n)}: ${(err as Error).message}`);
      }
    }
    return { records, errors };
  }

  /** Writes a record durably. */
  async save(rec: AttachmentRecord): Promise<void> {
    if (!ID.test(rec.containerId)) throw new Error(`container id ${JSON.stringify(rec.containerId)} is not a file name`);
    rec.updatedAt = new Date().toISOString();
    const file = join(this.dir, `${rec.containerId}.json`);
    // one temporary name per write: two writes of one record may overlap
    const tmp = `${file}.${++this.seq}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(rec));
      if (this.fsync) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    if (this.fsync) await this.syncDir();
  }

  /** Removes a record durably; absent is fine. */
  async remove(containerId: string): Promise<void> {
    try {
      await unlink(join(this.dir, `${containerId}.json`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return;
    }
    if (this.fsync) await this.syncDir();
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
