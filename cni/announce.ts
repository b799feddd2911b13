// Announcing a container's addresses on the wire once they are up: from
// inside its namespace, on a packet socket made there, the frames of
// frames.ts, a few times at a short interval (a first frame can be lost, or
// reach a switch before the port is forwarding).
import { native } from '../native/index.js';
import type { AnnounceConfig } from './attach-config.js';
import { announcementFrames } from './frames.js';
import { packetSocketIn } from './packet.js';

/**
 * Sends the announcements of `addresses` at `mac` out of link `ifindex` in
 * the namespace at `netns`: the first at once, before this returns; the
 * rest every intervalMs, on timers when the process lives on (`longLived`),
 * else from a detached process, so a one-shot plugin answers at once.
 */
export function announce(netns: string, ifindex: number, mac: string, addresses: string[], conf: AnnounceConfig, longLived: boolean): void {
  if (conf.count <= 0 || addresses.length === 0) return;
  const frames = announcementFrames(mac, addresses);
  const n = native();
  const fd = packetSocketIn(netns);
  let handedOver = false;
  try {
    for (const f of frames) n.packetSend(fd, ifindex, f);
    const later = Array.from({ length: conf.count - 1 }, (_, i) => (i + 1) * conf.intervalMs);
    if (later.length === 0) return;
    if (!longLived) {
      n.packetSendLater(fd, ifindex, later.flatMap(() => frames), later.flatMap((ms) => frames.map(() => ms)));
      return;
    }
    handedOver = true;
    let sent = 0;
    const timer = setInterval(() => {
      try {
        for (const f of frames) n.packetSend(fd, ifindex, f);
      } catch {
        sent = later.length; // the interface went away: nothing more to announce
      }
      if (++sent >= later.length) {
        clearInterval(timer);
        n.closeFd(fd);
      }
    }, conf.intervalMs);
    timer.unref();
  } finally {
    if (!handedOver) n.closeFd(fd);
  }
}
