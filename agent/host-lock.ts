// One agent per host: two agents on one state dir would each take the other's
// attachments for their own (a second one retried ADDs already attached, and
// its undo DEL released the first one's address and removed the container's
// interface). The lock is flock(2) on STATE_DIR/agent.lock, held for the
// agent's life and dropped by the kernel when it dies, so a killed agent never
// leaves a stale lock; the file names the holder's pid for the message.
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/index.js';

/** The lock held: release() lets it go (exit does too). */
export interface HostLock {
  release(): void;
}

/** Takes the state dir's lock, or throws naming the agent that holds it. */
export function lockStateDir(stateDir: string): HostLock {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, 'agent.lock');
  const fd = openSync(file, 'a+', 0o600);
  const n = native();
  if (!n.flock(fd, n.LOCK_EX | n.LOCK_NB)) {
    let holder = '';
    try {
      holder = readFileSync(file, 'utf8').trim();
    } catch {
      // named by its path alone
    }
    closeSync(fd);
    throw new Error(`another berth agent${/^\d+$/.test(holder) ? ` (pid ${holder})` : ''} holds ${file}: one agent runs per host (stop the other, e.g. systemctl stop berth-agent, before starting this one)`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  return {
    release: () => closeSync(fd),
  };
}
