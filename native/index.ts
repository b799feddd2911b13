// Loads the berth_native addon (native/berth.cc), built by node-gyp on install.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Native {
  /** flock(2); false when LOCK_NB is set and the lock is held elsewhere */
  flock(fd: number, operation: number): boolean;
  /** a blocking flock(2) on the thread pool; one at a time per fd */
  flockWait(fd: number, operation: number): Promise<boolean>;
  /** a blocking NETLINK_ROUTE socket in the namespace open at nsFd (-1: the calling thread's), as an fd */
  netlinkOpen(nsFd: number): number;
  /** sends whole netlink messages in one sendto() on the thread pool; resolves with the kernel's answers, through the ACK, error or DONE of the last */
  netlinkRequest(fd: number, messages: Buffer): Promise<Buffer>;
  /** closes a socket from netlinkOpen or packetOpen (fs.closeSync warns on a worker thread about fds it did not open) */
  closeFd(fd: number): void;
  /** index, MAC and flags (IFF_*) of a link in the namespace of socket fd, read without the kernel's link lock; undefined when there is none */
  linkByName(fd: number, name: string): { index: number; mac?: Buffer; flags?: number } | undefined;
  /** an AF_PACKET raw socket in the namespace open at nsFd (-1: the calling thread's), as an fd: receiving nothing, or, with ifindex, bound to that link */
  packetOpen(nsFd: number, ifindex?: number): number;
  /** on the thread pool: sends frames[i] out of link ifindex delaysMs[i] from now; resolves listenMs from now with the frames that arrived on fd (bound) meanwhile */
  packetExchange(fd: number, ifindex: number, frames: Buffer[], delaysMs: number[], listenMs: number): Promise<Buffer[]>;
  /** sends one whole Ethernet frame out of link ifindex */
  packetSend(fd: number, ifindex: number, frame: Buffer): void;
  /** sends frames[i] out of link ifindex delaysMs[i] from now, from a detached process that holds only fd */
  packetSendLater(fd: number, ifindex: number, frames: Buffer[], delaysMs: number[]): void;
  /** binds a UDP socket to host:port (0: a free one) and answers on a thread of its own: from kept answers, else by calling onQuery(query, peer) */
  udpAnswererOpen(host: string, port: number, onQuery: (query: Buffer, peer: Buffer) => void): { handle: UdpAnswererHandle; port: number };
  /** sends one datagram to a peer given to onQuery, without waiting; false when it was dropped (the socket's buffer is full) */
  udpAnswererSend(handle: UdpAnswererHandle, peer: Buffer, bytes: Buffer): boolean;
  /** answers the same bytes after the id with `answer`, its id replaced, until udpAnswererForget (queries over 322 bytes or answers over 1232 are not kept) */
  udpAnswererKeep(handle: UdpAnswererHandle, query: Buffer, answer: Buffer): void;
  /** no kept answer is given again */
  udpAnswererForget(handle: UdpAnswererHandle): void;
  /** datagrams answered from kept answers, passed to onQuery, and dropped with onQuery's queue full */
  udpAnswererStats(handle: UdpAnswererHandle): { kept: number; passed: number; dropped: number };
  /** stops the thread and closes the socket */
  udpAnswererClose(handle: UdpAnswererHandle): void;
  LOCK_SH: number;
  LOCK_EX: number;
  LOCK_UN: number;
  LOCK_NB: number;
}

/** An open UDP answerer (native/dns-udp.cc). */
export type UdpAnswererHandle = { readonly __udpAnswerer: unique symbol };

let loaded: Native | undefined;

/** The first `rel` found in `from` or a directory above it (the package root, wherever this code was bundled to). */
export function findUp(from: string, rel: string): string | undefined {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, rel);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

/** The addon, loaded on first use, from the package root above the sources, dist/ or a bundle chunk. */
export function native(): Native {
  if (loaded) return loaded;
  const file = findUp(dirname(fileURLToPath(import.meta.url)), join('build', 'Release', 'berth_native.node'));
  if (!file) throw new Error('failed to load berth_native: not built (run "npm ci" or "npx node-gyp rebuild")');
  loaded = createRequire(import.meta.url)(file) as Native;
  return loaded;
}
