// The Ethernet frames a container sends to announce its addresses: a
// gratuitous ARP request for IPv4 (RFC 5227's announcement: sender and target
// address both the container's, target MAC zero, to broadcast) and an
// unsolicited neighbour advertisement for IPv6 (RFC 4861 7.2.6: to all
// nodes, Override set, Solicited clear, with the target's link-layer address).
// A neighbour that holds an entry for the address takes the MAC from either
// (Linux: arp_process's is_garp, ndisc_recv_na's override), and a switch
// learns the port the MAC is behind. Pure functions over Buffers; the sending
// is in announce.ts.
import { parseIp } from '../ipam/address.js';
import { parseMac } from './mac.js';

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
  const addr = Buffer.from(parseIp(ip, 'ip').hex, 'hex');
  if (addr.length !== 4) throw new Error(`gratuitous ARP is for IPv4 addresses, not ${ip}`);
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
  const addr = Buffer.from(parseIp(ip, 'ip').hex, 'hex');
  if (addr.length !== 16) throw new Error(`a neighbour advertisement is for IPv6 addresses, not ${ip}`);
  const icmp = Buffer.alloc(32);
  icmp[0] = 136; // neighbour advertisement
  icmp.writeUInt32BE(0x20000000, 4); // Override
  addr.copy(icmp, 8);
  icmp[24] = 2; // option: target link-layer address
  icmp[25] = 1; // its length in units of 8 bytes
  src.copy(icmp, 26);
  icmp.writeUInt16BE(icmpv6Checksum(addr, ALL_NODES, icmp), 2);
  const ip6 = Buffer.alloc(40);
  ip6.writeUInt32BE(0x60000000, 0);
  ip6.writeUInt16BE(icmp.length, 4);
  ip6[6] = 58; // ICMPv6
  ip6[7] = 255; // hop limit: receivers drop neighbour discovery with any other
  addr.copy(ip6, 8);
  ALL_NODES.copy(ip6, 24);
  return ethernet(ALL_NODES_MAC, src, ETH_P_IPV6, Buffer.concat([ip6, icmp]));
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

/** The announcement of each address ("ADDR" or "ADDR/PREFIX") at `mac`: a gratuitous ARP or an unsolicited NA. */
export function announcementFrames(mac: string, addresses: string[]): Buffer[] {
  return addresses.map((a) => {
    const ip = a.split('/')[0]!;
    return ip.includes(':') ? unsolicitedNaFrame(mac, ip) : garpFrame(mac, ip);
  });
}
