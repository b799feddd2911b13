// MAC addresses of container interfaces. By default a container's MAC is
// derived from its address, so that an instance restarted with its IP also
// has its MAC back: neighbours' ARP and NDP caches, switches' tables and
// appliances that pin ARP entries stay right across the restart.
import { parseIp } from '../core/address.js';

/**
 * The MAC a container with this address gets: locally administered and
 * unicast, in two documented forms.
 * - IPv4 a.b.c.d: 02:be:a:b:c:d (in hex), one MAC per IPv4 address.
 * - IPv6: 06: and the address's last five bytes, distinct for addresses
 *   that differ in their last 40 bits (every address of a pool up to a /88,
 *   and the first 2^40 a larger pool hands out in order).
 * The two forms never meet: they differ in the first byte.
 */
export function stableMac(ip: string): string {
  const hex = parseIp(ip.split('/')[0], 'ip').hex;
  return formatMac(Buffer.from(hex.length === 8 ? `02be${hex}` : `06${hex.slice(-10)}`, 'hex'));
}

/** The address a container's MAC is derived from: its first IPv4 address, else its first. */
export function macSource(addresses: string[]): string | undefined {
  return addresses.find((a) => !a.includes(':')) ?? addresses[0];
}

/** A random, locally administered unicast MAC, as the kernel gives a new device. */
export function randomMac(): string {
  const b = Buffer.alloc(6);
  for (let i = 0; i < 6; i++) b[i] = Math.floor(Math.random() * 256);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return formatMac(b);
}

/** "aa:bb:cc:dd:ee:ff" from 6 bytes. */
export function formatMac(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** 6 bytes from "aa:bb:cc:dd:ee:ff"; throws naming the value otherwise. */
export function parseMac(text: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) throw new Error(`"${text}" is not a MAC address like 02:42:ac:11:00:02`);
  return Buffer.from(text.replace(/:/g, ''), 'hex');
}
