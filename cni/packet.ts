// Packet sockets in a container's namespace, for the frames of frames.ts.
import { closeSync, openSync } from 'node:fs';
import { native } from '../native/index.js';

/**
 * An AF_PACKET socket made inside the namespace at `netns`: send-only, or,
 * with `ifindex`, bound to that link and receiving what arrives there.
 * Closed with native().closeFd.
 */
export function packetSocketIn(netns: string, ifindex?: number): number {
  const nsFd = openSync(netns, 'r');
  try {
    return ifindex === undefined ? native().packetOpen(nsFd) : native().packetOpen(nsFd, ifindex);
  } finally {
    closeSync(nsFd);
  }
}
