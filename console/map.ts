// The pool map, computed from the pool's config and its non-free records
// only: the work follows the addresses in use, never the size of the subnet.
//
// A map shows one block of the subnet. A block of at most 256 addresses shows
// them all; a larger one shows its child blocks with their fill, at most 4096
// of them, each at least a /24 (IPv4) or /120 (IPv6), so the largest pool
// takes as long to draw as the records it holds. A /16 is 256 /24s, a /12
// 4096 /24s, a /8 4096 /20s that each open into 16 /24s.
import { formatIp, fromBig, parseCidr, toBig, type Cidr, type Family } from '../core/address.js';
import { ValidationError } from '../core/errors.js';
import type { AddressInfo } from '../ipam/model.js';
import { isAssignable, type PoolConfig } from '../ipam/pool-config.js';

/** Host bits of a block whose addresses are shown one by one. */
const ADDRESS_GRID_BITS = 8;
/** Prefix bits one map level adds at most: 2^12 = 4096 child blocks. */
const LEVEL_BITS = 12;

/** An address cell: `none` is an address never handed out (network, broadcast, gateway, outside the ranges). */
export type CellState = 'free' | 'allocated' | 'reserved' | 'none';

export interface AddressCell {
  /** hex */
  ip: string;
  state: CellState;
  /** the record of a non-free address */
  info?: AddressInfo;
}

export interface BlockCell {
  block: Cidr;
  allocated: number;
  reserved: number;
  /** assignable addresses in the block */
  capacity: bigint;
}

export type PoolMap =
  | { kind: 'addresses'; scope: Cidr; cells: AddressCell[]; columns: number }
  | { kind: 'blocks'; scope: Cidr; childPrefix: number; cells: BlockCell[]; columns: number };

function bitsOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** The prefix of the blocks a map of a /prefix shows, or null when it shows addresses. */
export function childPrefix(prefix: number, family: Family): number | null {
  const bits = bitsOf(family);
  if (bits - prefix <= ADDRESS_GRID_BITS) return null;
  return Math.min(bits - ADDRESS_GRID_BITS, prefix + LEVEL_BITS);
}

/** The prefixes at which the pool has maps, from its subnet down to address grids. */
export function mapLevels(subnet: Cidr): number[] {
  const levels = [subnet.prefix];
  for (let p = childPrefix(subnet.prefix, subnet.family); p !== null; p = childPrefix(p, subnet.family)) levels.push(p);
  return levels;
}

/** The block of the given prefix that holds `hex`. */
export function blockAt(hex: string, prefix: number, family: Family): Cidr {
  const bits = BigInt(bitsOf(family));
  const host = (1n << (bits - BigInt(prefix))) - 1n;
  const first = toBig(hex) & ~host & ((1n << bits) - 1n);
  const firstHex = fromBig(first, family);
  return { family, prefix, first: firstHex, last: fromBig(first | host, family), text: `${formatIp(firstHex)}/${prefix}` };
}

/** The blocks from the pool's subnet down to `scope`, for a breadcrumb trail. */
export function trail(subnet: Cidr, scope: Cidr): Cidr[] {
  return mapLevels(subnet)
    .filter((p) => p <= scope.prefix)
    .map((p) => blockAt(scope.first, p, subnet.family));
}

/** Validates a `block` input: a block of the pool's map (inside its subnet, at one of its levels). */
export function parseBlock(conf: Pick<PoolConfig, 'name' | 'subnet'>, text: unknown, field = 'block'): Cidr {
  const subnet = parseCidr(conf.subnet, 'subnet');
  const block = parseCidr(text, field);
  const levels = mapLevels(subnet);
  const inside = block.family === subnet.family && block.first >= subnet.first && block.last <= subnet.last;
  if (!inside || !levels.includes(block.prefix)) {
    throw new ValidationError(
      field,
      `${JSON.stringify(text)} is not a block of the map of pool "${conf.name}" (${subnet.text}; its blocks are /${levels.join(', /')})`,
    );
  }
  return block;
}

/** The map of one block of a pool; `records` are the pool's non-free addresses (others are ignored). */
export function buildMap(conf: Pick<PoolConfig, 'ranges' | 'exclude'>, scope: Cidr, records: readonly AddressInfo[]): PoolMap {
  const inScope = records.filter((r) => r.state !== 'free' && r.ip.length === scope.first.length && r.ip >= scope.first && r.ip <= scope.last);
  const child = childPrefix(scope.prefix, scope.family);
  return child === null ? addressGrid(conf, scope, inScope) : blockGrid(conf, scope, child, inScope);
}

function addressGrid(conf: Pick<PoolConfig, 'ranges' | 'exclude'>, scope: Cidr, records: AddressInfo[]): PoolMap {
  const byIp = new Map(records.map((r) => [r.ip, r]));
  const first = toBig(scope.first);
  const count = Number(toBig(scope.last) - first) + 1;
  const cells: AddressCell[] = [];
  for (let i = 0; i < count; i++) {
    const ip = fromBig(first + BigInt(i), scope.family);
    const info = byIp.get(ip);
    if (info) cells.push({ ip, state: info.state, info });
    else cells.push({ ip, state: isAssignable(conf, ip) ? 'free' : 'none' });
  }
  return { kind: 'addresses', scope, cells, columns: Math.min(16, count) };
}

function blockGrid(conf: Pick<PoolConfig, 'ranges' | 'exclude'>, scope: Cidr, child: number, records: AddressInfo[]): PoolMap {
  const family = scope.family;
  const shift = BigInt(bitsOf(family) - child);
  const count = 1 << (child - scope.prefix);
  const base = toBig(scope.first);
  const scopeLast = toBig(scope.last);
  const size = 1n << shift;
  const cells: BlockCell[] = [];
  for (let i = 0; i < count; i++) {
    const first = base + (BigInt(i) << shift);
    const firstHex = fromBig(first, family);
    cells.push({
      block: { family, prefix: child, first: firstHex, last: fromBig(first + size - 1n, family), text: `${formatIp(firstHex)}/${child}` },
      allocated: 0,
      reserved: 0,
      capacity: 0n,
    });
  }
  const indexOf = (hex: string): number => Number((toBig(hex) - base) >> shift);
  // Capacity: each range's overlap with each child it touches, less the excluded addresses in ranges.
  for (const [rf, rl] of conf.ranges) {
    const lo = maxBig(toBig(rf), base);
    const hi = minBig(toBig(rl), scopeLast);
    if (lo > hi) continue;
    for (let i = Number((lo - base) >> shift); i <= Number((hi - base) >> shift); i++) {
      const cf = base + (BigInt(i) << shift);
      cells[i]!.capacity += minBig(hi, cf + size - 1n) - maxBig(lo, cf) + 1n;
    }
  }
  for (const x of conf.exclude) {
    if (x.length === scope.first.length && x >= scope.first && x <= scope.last && inRanges(conf, x)) cells[indexOf(x)]!.capacity -= 1n;
  }
  for (const r of records) {
    const cell = cells[indexOf(r.ip)]!;
    if (r.state === 'allocated') cell.allocated++;
    else cell.reserved++;
  }
  return { kind: 'blocks', scope, childPrefix: child, cells, columns: 1 << Math.ceil((child - scope.prefix) / 2) };
}

function inRanges(conf: Pick<PoolConfig, 'ranges'>, hex: string): boolean {
  return conf.ranges.some(([f, l]) => hex.length === f.length && hex >= f && hex <= l);
}

function maxBig(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
