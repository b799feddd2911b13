// Address math for pools.
//
// Inside the pool an address is a fixed-width lowercase hex string: 8 digits
// for IPv4, 32 for IPv6. Fixed width makes string order equal numeric order,
// so the Redis Lua scripts and the file store compare and step through IPv6
// ranges exactly, where Lua's doubles would lose precision past 2^53.
import { createRequire } from 'node:module';
import type { Address6 as Address6Type } from 'ip-address';
import { ValidationError } from './errors.js';

export type Family = 4 | 6;

let address6: typeof Address6Type | undefined;

/** ip-address's Address6, loaded on first IPv6 use: an IPv4-only CNI plugin never pays its ~12 ms. */
function Address6(): typeof Address6Type {
  address6 ??= (createRequire(import.meta.url)('ip-address') as typeof import('ip-address')).Address6;
  return address6;
}

/** A parsed CIDR: the network's first and last address as hex. */
export interface Cidr {
  family: Family;
  prefix: number;
  first: string;
  last: string;
  /** canonical text, e.g. "10.1.0.0/16" */
  text: string;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Width in hex digits of an address of this family. */
export function hexWidth(family: Family): number {
  return family === 4 ? 8 : 32;
}

/** Family of a hex address by its width. */
export function familyOfHex(hex: string): Family {
  return hex.length === 8 ? 4 : 6;
}

/** Parses an IPv4 or IPv6 address; `field` names the input in the error. */
export function parseIp(text: unknown, field: string): { family: Family; hex: string } {
  if (typeof text !== 'string' || text === '') {
    throw new ValidationError(field, `must be an IP address, got ${describe(text)}`);
  }
  const m = V4.exec(text);
  if (m) {
    let hex = '';
    for (let i = 1; i <= 4; i++) {
      const octet = Number(m[i]);
      if (octet > 255 || (m[i]!.length > 1 && m[i]![0] === '0')) {
        throw new ValidationError(field, `"${text}" is not a valid IPv4 address`);
      }
      hex += octet.toString(16).padStart(2, '0');
    }
    return { family: 4, hex };
  }
  if (text.includes(':') && !text.includes('/') && !text.includes('%') && Address6().isValid(text)) {
    const a = new (Address6())(text);
    return { family: 6, hex: a.bigInt().toString(16).padStart(32, '0') };
  }
  throw new ValidationError(field, `"${text}" is not a valid IP address`);
}

/** Formats a hex address as text: dotted quad, or RFC 5952 IPv6. */
export function formatIp(hex: string): string {
  if (hex.length === 8) {
    return `${parseInt(hex.slice(0, 2), 16)}.${parseInt(hex.slice(2, 4), 16)}.${parseInt(hex.slice(4, 6), 16)}.${parseInt(hex.slice(6, 8), 16)}`;
  }
  return Address6().fromBigInt(BigInt(`0x${hex}`)).correctForm();
}

/** Parses "ADDR/PREFIX"; host bits must be zero unless `allowHost`. */
export function parseCidr(text: unknown, field: string, allowHost = false): Cidr & { hex: string } {
  if (typeof text !== 'string' || !text.includes('/')) {
    throw new ValidationError(field, `must be a CIDR like 10.0.0.0/24, got ${describe(text)}`);
  }
  const slash = text.indexOf('/');
  const addrText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const { family, hex } = parseIp(addrText, field);
  const bits = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
    throw new ValidationError(field, `"${text}" has an invalid prefix length (0-${bits})`);
  }
  const prefix = Number(prefixText);
  const value = toBig(hex);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  const firstBig = value & ~hostMask & ((1n << BigInt(bits)) - 1n);
  const first = fromBig(firstBig, family);
  if (!allowHost && first !== hex) {
    throw new ValidationError(field, `"${text}" has host bits set; the network is ${formatIp(first)}/${prefix}`);
  }
  return {
    family,
    prefix,
    first,
    last: fromBig(firstBig | hostMask, family),
    text: `${formatIp(first)}/${prefix}`,
    hex,
  };
}

/** The hex address as a bigint. */
export function toBig(hex: string): bigint {
  return BigInt(`0x${hex}`);
}

/** A bigint as a hex address of the family. */
export function fromBig(value: bigint, family: Family): string {
  return value.toString(16).padStart(hexWidth(family), '0');
}

/** The next address, or null past the top of the address space. */
export function hexInc(hex: string): string | null {
  const next = toBig(hex) + 1n;
  const out = next.toString(16).padStart(hex.length, '0');
  return out.length > hex.length ? null : out;
}

/** Number of addresses from first to last inclusive. */
export function spanSize(first: string, last: string): bigint {
  return toBig(last) - toBig(first) + 1n;
}

/** True when hex lies in [first, last]; all three of one family. */
export function within(hex: string, first: string, last: string): boolean {
  return hex.length === first.length && hex >= first && hex <= last;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value;
}
