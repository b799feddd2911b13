// What /proc says of a process, as the agent's decisions need it: its
// network namespace (a pid and that namespace's inode together name a
// process; a reused pid has another) and whether it is a container's.
import { readFileSync, statSync } from 'node:fs';

/** The inode of a process's network namespace, or 0 when the process is gone. */
export function nsInode(pid: number): number {
  if (!(pid > 0)) return 0;
  return inodeOf(`/proc/${pid}/ns/net`);
}

/** The inode of this process's own network namespace: the host's, to the agent. */
export function ownNsInode(): number {
  return inodeOf('/proc/self/ns/net');
}

/** True when `pid` is a live process of container `id`: its cgroup names the container. */
export function isProcessOf(pid: number, id: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(id);
  } catch {
    return false;
  }
}

function inodeOf(path: string): number {
  try {
    return statSync(path).ino;
  } catch {
    return 0;
  }
}
