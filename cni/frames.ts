// The Ethernet frames a container sends about its addresses. Before they go
// live, probes (RFC 5227's ARP probe: sender address zero; RFC 4862's
// duplicate address detection: a neighbour solicitation from the unspecified
// address to the solicited-node group), and the answers that tell another
// node uses one (probeConflicts). Once they are up, announcements: a
// gratuitous ARP request for IPv4 (RFC 5227's announcement: sender and target
// address both the container's, target MAC zero, to broadcast) and an
// unsolicited neighbour advertisement for IPv6 (RFC 4861 7.2.6: to all
// nodes, Override set, Solicited clear, with the target's link-layer address).
// A neighbour that holds an entry for the address takes the MAC from either
// (Linux: arp_process's is_garp, ndisc_recv_na's override), and a switch
// learns the port the MAC is behind. Pure functions over Buffers; the sending
// is in announce.ts.
import { parseIp } from '../core/address.js';
import { formatMac, parseMac } from './mac.js';

const ETH_P_ARP = 0x0806;
const ETH_P_IPV6 = 0x86dd;
const BROADCAST = Buffer.alloc(6, 0xff);
const ALL_NODES = Buffer.from('ff020000000000000000000000000001', 'hex');
const ALL_NODES_MAC = Buffer.from('333300000001', 'hex');

function ethernet(dst: Buffer, src: Buffer, type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(14);
  dst.copy(head, 0);
  src.copy(head, 6);
  head.writeUInt16BE(type, 12);
  return Buffer.concat([head, payload]);
}

/** A gratuitous ARP request announcing that IPv4 address `ip` is at `mac`. */
export function garpFrame(mac: string, ip: string): Buffer {
  const src = parseMac(mac);
  const addr = ipBytes(ip, 4, 'gratuitous ARP');
  const arp = Buffer.alloc(28);
  arp.writeUInt16BE(1, 0); // Ethernet
  arp.writeUInt16BE(0x0800, 2); // IPv4
  arp[4] = 6;
  arp[5] = 4;
  arp.writeUInt16BE(1, 6); // request
  src.copy(arp, 8);
  addr.copy(arp, 14);
  // target MAC stays zero
  addr.copy(arp, 24);
  return ethernet(BROADCAST, src, ETH_P_ARP, arp);
}

/** An unsolicited neighbour advertisement that IPv6 address `ip` is at `mac`, to all nodes. */
export function unsolicitedNaFrame(mac: string, ip: string): Buffer {
  const src = parseMac(mac);
  const addr = ipBytes(ip, 16, 'a neighbour advertisement');
  const icmp = Buffer.alloc(32);
  icmp[0] = 136; // neighbour advertisement
  icmp.writeUInt32BE(0x20000000, 4); // Override
  addr.copy(icmp, 8);
  icmp[24] = 2; // option: target link-layer address
  icmp[25] = 1; // its length in units of 8 bytes
  src.copy(icmp, 26);
  icmp.writeUInt16BE(icmpv6Checksum(addr, ALL_NODES, icmp), 2);
  return ethernet(ALL_NODES_MAC, src, ETH_P_IPV6, Buffer.concat([ipv6Header(addr, ALL_NODES, icmp.length), icmp]));
}

/** An ARP probe for IPv4 address `ip` from `mac`: sender address 0.0.0.0, so no neighbour learns anything from it. */
export function arpProbeFrame(mac: string, ip: string): Buffer {
  const f = garpFrame(mac, ip);
  f.fill(0, 14 + 14, 14 + 18); // sender protocol address
  return f;
}

/** A duplicate address detection probe for IPv6 address `ip` from `mac`: an NS from :: to its solicited-node group. */
export function dadProbeFrame(mac: string, ip: string): Buffer {
  const src = parseMac(mac);
  const target = ipBytes(ip, 16, 'a duplicate address detection probe');
  const group = Buffer.from(`ff0200000000000000000001ff${target.toString('hex').slice(26)}`, 'hex');
  const icmp = Buffer.alloc(24);
  icmp[0] = 135; // neighbour solicitation
  target.copy(icmp, 8);
  const unspecified = Buffer.alloc(16);
  icmp.writeUInt16BE(icmpv6Checksum(unspecified, group, icmp), 2);
  return ethernet(Buffer.concat([Buffer.from('3333', 'hex'), group.subarray(12)]), src, ETH_P_IPV6, Buffer.concat([ipv6Header(unspecified, group, icmp.length), icmp]));
}

/** Who claims a probed address, from the frames that arrived while probing. */
export interface Conflict {
  /** the address as probed */
  ip: string;
  /** the MAC that claims it */
  mac: string;
}

/**
 * The probed `addresses` that another node claims in `frames` (frames from
 * `ownMac` are not counted): an ARP packet whose sender is the address (an
 * answer, or its owner speaking), an ARP probe for it from someone else
 * probing at the same time (RFC 5227 2.1.1), a neighbour advertisement for
 * it, or a duplicate address detection probe for it from someone else.
 */
export function probeConflicts(frames: Buffer[], addresses: string[], ownMac: string): Conflict[] {
  const wanted = new Map(addresses.map((a) => [parseIp(a.split('/')[0], 'ip').hex, a.split('/')[0]!]));
  const own = parseMac(ownMac);
  const found = new Map<string, Conflict>();
  const claim = (hex: string, mac: Buffer) => {
    const ip = wanted.get(hex);
    if (ip !== undefined && !mac.equals(own) && !found.has(ip)) found.set(ip, { ip, mac: formatMac(mac) });
  };
  for (const f of frames) {
    if (f.length < 14) continue;
    const from = f.subarray(6, 12);
    const type = f.readUInt16BE(12);
    if (type === ETH_P_ARP && f.length >= 42 && f.readUInt16BE(16) === 0x0800 && f[18] === 6 && f[19] === 4) {
      const sha = f.subarray(22, 28);
      const spa = f.subarray(28, 32).toString('hex');
      const tpa = f.subarray(38, 42).toString('hex');
      if (spa !== '00000000') claim(spa, sha);
      else if (f.readUInt16BE(20) === 1) claim(tpa, sha);
    } else if (type === ETH_P_IPV6 && f.length >= 14 + 40 + 24 && f[14 + 6] === 58) {
      const icmp = f.subarray(54);
      const target = icmp.subarray(8, 24).toString('hex');
      const srcUnspecified = f.subarray(22, 38).every((b) => b === 0);
      if (icmp[0] === 136) claim(target, targetLinkAddress(icmp) ?? from);
      else if (icmp[0] === 135 && srcUnspecified) claim(target, from);
    }
  }
  return [...found.values()];
}

/** The target link-layer address option of a neighbour advertisement, if it has one. */
function targetLinkAddress(icmp: Buffer): Buffer | undefined {
  for (let at = 24; at + 8 <= icmp.length; ) {
    const len = icmp[at + 1]! * 8;
    if (len === 0) return undefined;
    if (icmp[at] === 2 && len >= 8) return icmp.subarray(at + 2, at + 8);
    at += len;
  }
  return undefined;
}

function ipBytes(ip: string, size: 4 | 16, what: string): Buffer {
  const b = Buffer.from(parseIp(ip, 'ip').hex, 'hex');
  if (b.length !== size) throw new Error(`${what} is for ${size === 4 ? 'IPv4' : 'IPv6'} addresses, not ${ip}`);
  return b;
}

function ipv6Header(src: Buffer, dst: Buffer, payload: number): Buffer {
  const ip6 = Buffer.alloc(40);
  ip6.writeUInt32BE(0x60000000, 0);
  ip6.writeUInt16BE(payload, 4);
  ip6[6] = 58; // ICMPv6
  ip6[7] = 255; // hop limit: receivers drop neighbour discovery with any other
  src.copy(ip6, 8);
  dst.copy(ip6, 24);
  return ip6;
}

/** The ICMPv6 checksum of `msg` (its checksum field zero) between `src` and `dst`: RFC 4443 2.3, over the RFC 8200 pseudo-header. */
export function icmpv6Checksum(src: Buffer, dst: Buffer, msg: Buffer): number {
  const pseudo = Buffer.alloc(40);
  src.copy(pseudo, 0);
  dst.copy(pseudo, 16);
  pseudo.writeUInt32BE(msg.length, 32);
  pseudo[39] = 58;
  let sum = 0;
  for (const b of [pseudo, msg]) {
    for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The probe of each address ("ADDR" or "ADDR/PREFIX"): an ARP probe or a DAD neighbour solicitation. */
export function probeFrames(mac: string, addresses: string[]): Buffer[] {
  return addresses.map((a) => {
    const ip = a.split('/')[0]!;
    return ip.includes(':') ? dadProbeFrame(mac, ip) : arpProbeFrame(mac, ip);
  });
}

/** The announcement of each address ("ADDR" or "ADDR/PREFIX") at `mac`: a gratuitous ARP or an unsolicited NA. */
export function announcementFrames(mac: string, addresses: string[]): Buffer[] {
  return addresses.map((a) => {
    const ip = a.split('/')[0]!;
    return ip.includes(':') ? unsolicitedNaFrame(mac, ip) : garpFrame(mac, ip);
  });
}
