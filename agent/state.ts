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
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
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

  constructor(root: string) {
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
  save(rec: AttachmentRecord): void {
    if (!ID.test(rec.containerId)) throw new Error(`container id ${JSON.stringify(rec.containerId)} is not a file name`);
    rec.updatedAt = new Date().toISOString();
    const file = join(this.dir, `${rec.containerId}.json`);
    const tmp = `${file}.tmp`;
    writeFileSync(tmp, JSON.stringify(rec), { mode: 0o600 });
    const fd = openSync(tmp, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    this.syncDir();
  }

  /** Removes a record durably; absent is fine. */
  remove(containerId: string): void {
    try {
      unlinkSync(join(this.dir, `${containerId}.json`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return;
    }
    this.syncDir();
  }

  private syncDir(): void {
    const fd = openSync(this.dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
