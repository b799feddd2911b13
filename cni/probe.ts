// Probing a container's addresses on the wire before they go live, from
// inside its namespace: another node that answers for an address, or probes
// for it at the same time, holds it already (a record lost in a store
// failover, an address configured by hand outside berth).
import type { ProbeConfig } from './attach-config.js';
import { probeConflicts, probeFrames, type Conflict } from './frames.js';
import { native } from '../native/index.js';
import { packetSocketIn } from './packet.js';

/**
 * Sends `conf.count` probes for each address from link `ifindex` (up, with
 * MAC `mac`, its addresses not configured yet), `conf.intervalMs` apart, and
 * listens until one interval after the last. Resolves with the addresses
 * another node claims; none when probing is off.
 */
export async function probe(netns: string, ifindex: number, mac: string, addresses: string[], conf: ProbeConfig): Promise<Conflict[]> {
  if (conf.count <= 0 || addresses.length === 0) return [];
  const frames = probeFrames(mac, addresses);
  const fd = packetSocketIn(netns, ifindex);
  try {
    const sends = Array.from({ length: conf.count }, (_, i) => frames.map((f) => [f, i * conf.intervalMs] as const)).flat();
    const heard = await native().packetExchange(
      fd,
      ifindex,
      sends.map(([f]) => f),
      sends.map(([, at]) => at),
      conf.count * conf.intervalMs,
    );
    return probeConflicts(heard, addresses, mac);
  } finally {
    native().closeFd(fd);
  }
}
