// Pool definitions: validation of what an operator asks for, and the stored,
// normalised form both stores and the Lua scripts read.
import { formatIp, hexInc, parseCidr, parseIp, spanSize, within, type Family } from '../core/address.js';
import { BerthError, ValidationError } from '../core/errors.js';
import { fail } from './failures.js';

/** What an operator asks for (CLI flags or API). */
export interface PoolSpec {
  name: string;
  subnet: string;
  /** "FIRST-LAST", a single address, or a CIDR inside the subnet */
  ranges?: string[];
  gateway?: string;
  vlan?: number;
  /** "CIDR" or "CIDR,GW", or objects */
  routes?: Array<string | { dst: string; gw?: string }>;
  dns?: DnsConfig;
  /** seconds a released address stays reserved for its last owner */
  hold?: number;
}

export interface DnsConfig {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Route {
  dst: string;
  gw?: string;
}

/** The stored pool. Addresses in `ranges` and `exclude` are hex (see address.ts). */
export interface PoolConfig {
  v: 1;
  name: string;
  family: Family;
  subnet: string;
  ranges: Array<[string, string]>;
  /** network, IPv4 broadcast and gateway: never handed out */
  exclude: string[];
  gateway: string | null;
  vlan: number | null;
  routes: Route[];
  dns: DnsConfig;
  hold: number;
  created: string;
}

export const DEFAULT_HOLD_SECONDS = 3600;
export const MAX_HOLD_SECONDS = 366 * 24 * 3600;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** Validates a pool name: it becomes part of store keys and file names. */
export function validatePoolName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ValidationError(
      field,
      `pool name must be 1-63 characters of letters, digits, "_", "." or "-", starting with a letter or digit; got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** Validates a spec and returns the stored form. */
export function buildPoolConfig(spec: PoolSpec, now: Date = new Date()): PoolConfig {
  const name = validatePoolName(spec.name);
  const subnet = parseCidr(spec.subnet, 'subnet');
  const { family } = subnet;
  const bits = family === 4 ? 32 : 128;
  const hostBits = bits - subnet.prefix;

  const exclude = new Set<string>();
  // A /31 or /32 (IPv4) and /127 or /128 (IPv6) have no network or broadcast to spare.
  if (hostBits >= 2) {
    exclude.add(subnet.first);
    if (family === 4) exclude.add(subnet.last);
  }

  let gateway: string | null = null;
  if (spec.gateway !== undefined) {
    const gw = parseIp(spec.gateway, 'gateway');
    if (gw.family !== family || !within(gw.hex, subnet.first, subnet.last)) {
      throw new ValidationError('gateway', `${spec.gateway} is outside subnet ${subnet.text}`);
    }
    if (exclude.has(gw.hex)) {
      throw new ValidationError('gateway', `${spec.gateway} is the network or broadcast address of ${subnet.text}`);
    }
    gateway = gw.hex;
  } else if (hostBits >= 2) {
    gateway = hexInc(subnet.first);
  }
  if (gateway) exclude.add(gateway);

  const ranges = (spec.ranges && spec.ranges.length > 0 ? spec.ranges : [subnet.text]).map((r, i) =>
    parseRange(r, `ranges[${i}]`, family, subnet.first, subnet.last, subnet.text),
  );
  ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![0] <= ranges[i - 1]![1]) {
      throw new ValidationError('ranges', `${formatRange(ranges[i - 1]!)} overlaps ${formatRange(ranges[i]!)}`);
    }
  }

  const conf: PoolConfig = {
    v: 1,
    name,
    family,
    subnet: subnet.text,
    ranges,
    exclude: [...exclude].sort(),
    gateway: gateway,
    vlan: parseVlan(spec.vlan),
    routes: (spec.routes ?? []).map((r, i) => parseRoute(r, `routes[${i}]`)),
    dns: parseDns(spec.dns),
    hold: parseHold(spec.hold),
    created: now.toISOString(),
  };
  if (capacity(conf) === 0n) {
    throw new ValidationError('ranges', `no assignable address: the ranges hold only the network, broadcast or gateway`);
  }
  return conf;
}

/** Number of assignable addresses: the ranges less the excluded ones. */
export function capacity(conf: Pick<PoolConfig, 'ranges' | 'exclude'>): bigint {
  let n = 0n;
  for (const [first, last] of conf.ranges) n += spanSize(first, last);
  for (const x of conf.exclude) if (inRanges(conf, x)) n -= 1n;
  return n;
}

/** True when hex is an assignable address of the pool. */
export function isAssignable(conf: Pick<PoolConfig, 'ranges' | 'exclude'>, hex: string): boolean {
  return inRanges(conf, hex) && !conf.exclude.includes(hex);
}

function inRanges(conf: Pick<PoolConfig, 'ranges'>, hex: string): boolean {
  return conf.ranges.some(([first, last]) => within(hex, first, last));
}

/** The first pool whose subnet overlaps conf's, if any. */
export function findOverlap(conf: PoolConfig, others: Iterable<PoolConfig>): PoolConfig | undefined {
  const mine = parseCidr(conf.subnet, 'subnet');
  for (const other of others) {
    if (other.name === conf.name || other.family !== conf.family) continue;
    const theirs = parseCidr(other.subnet, 'subnet');
    if (mine.first <= theirs.last && theirs.first <= mine.last) return other;
  }
  return undefined;
}

/** Throws POOL_OVERLAP when conf overlaps one of others. */
export function assertNoOverlap(conf: PoolConfig, others: Iterable<PoolConfig>): void {
  const other = findOverlap(conf, others);
  if (other) throw fail.poolOverlap(conf.subnet, other.name, other.subnet);
}

/** Renders a stored range for people. */
export function formatRange([first, last]: [string, string]): string {
  return first === last ? formatIp(first) : `${formatIp(first)}-${formatIp(last)}`;
}

/** Reads a pool config from store contents, refusing what this version cannot use. */
export function readPoolConfig(raw: string, where: string): PoolConfig {
  let conf: PoolConfig;
  try {
    conf = JSON.parse(raw) as PoolConfig;
  } catch (err) {
    throw new BerthError('STORE_CORRUPT', `failed to read pool config at ${where}: ${(err as Error).message}`);
  }
  if (!conf || conf.v !== 1 || !Array.isArray(conf.ranges) || !Array.isArray(conf.exclude)) {
    throw new BerthError('STORE_CORRUPT', `failed to read pool config at ${where}: unknown format`);
  }
  return conf;
}

function parseRange(
  text: string,
  field: string,
  family: Family,
  first: string,
  last: string,
  subnetText: string,
): [string, string] {
  if (typeof text !== 'string') throw new ValidationError(field, `must be FIRST-LAST, an address or a CIDR`);
  let lo: string;
  let hi: string;
  if (text.includes('/')) {
    const c = parseCidr(text, field);
    lo = c.first;
    hi = c.last;
    if (c.family !== family) throw new ValidationError(field, `${text} is not IPv${family} like the subnet`);
  } else {
    const parts = text.split('-');
    if (parts.length > 2) throw new ValidationError(field, `"${text}" must be FIRST-LAST`);
    const a = parseIp(parts[0]!.trim(), field);
    const b = parts.length === 2 ? parseIp(parts[1]!.trim(), field) : a;
    if (a.family !== family || b.family !== family) {
      throw new ValidationError(field, `${text} is not IPv${family} like the subnet`);
    }
    lo = a.hex;
    hi = b.hex;
  }
  if (lo > hi) throw new ValidationError(field, `"${text}" starts after it ends`);
  if (!within(lo, first, last) || !within(hi, first, last)) {
    throw new ValidationError(field, `${text} is outside subnet ${subnetText}`);
  }
  return [lo, hi];
}

function parseVlan(vlan: unknown): number | null {
  if (vlan === undefined || vlan === null) return null;
  if (typeof vlan !== 'number' || !Number.isInteger(vlan) || vlan < 1 || vlan > 4094) {
    throw new ValidationError('vlan', `must be an integer from 1 to 4094, got ${JSON.stringify(vlan)}`);
  }
  return vlan;
}

function parseHold(hold: unknown): number {
  if (hold === undefined) return DEFAULT_HOLD_SECONDS;
  if (typeof hold !== 'number' || !Number.isInteger(hold) || hold < 0 || hold > MAX_HOLD_SECONDS) {
    throw new ValidationError('hold', `must be whole seconds from 0 to ${MAX_HOLD_SECONDS}, got ${JSON.stringify(hold)}`);
  }
  return hold;
}

function parseRoute(route: string | { dst: string; gw?: string }, field: string): Route {
  let dst: unknown;
  let gw: unknown;
  if (typeof route === 'string') {
    [dst, gw] = route.split(',').map((s) => s.trim());
    if (gw === '') gw = undefined;
  } else if (route && typeof route === 'object') {
    ({ dst, gw } = route);
  } else {
    throw new ValidationError(field, 'must be "CIDR" or "CIDR,GATEWAY"');
  }
  const c = parseCidr(dst, `${field}.dst`);
  const out: Route = { dst: c.text };
  if (gw !== undefined) {
    const g = parseIp(gw, `${field}.gw`);
    if (g.family !== c.family) throw new ValidationError(`${field}.gw`, `${String(gw)} is not IPv${c.family} like ${c.text}`);
    out.gw = formatIp(g.hex);
  }
  return out;
}

function parseDns(dns: unknown): DnsConfig {
  if (dns === undefined || dns === null) return {};
  if (typeof dns !== 'object' || Array.isArray(dns)) throw new ValidationError('dns', 'must be an object');
  const d = dns as Record<string, unknown>;
  const out: DnsConfig = {};
  for (const key of Object.keys(d)) {
    if (!['nameservers', 'domain', 'search', 'options'].includes(key)) {
      throw new ValidationError(`dns.${key}`, 'unknown field (nameservers, domain, search, options)');
    }
  }
  if (d.nameservers !== undefined) {
    out.nameservers = stringList(d.nameservers, 'dns.nameservers').map((s, i) =>
      formatIp(parseIp(s, `dns.nameservers[${i}]`).hex),
    );
  }
  if (d.domain !== undefined) {
    if (typeof d.domain !== 'string' || !/^[A-Za-z0-9.-]{1,253}$/.test(d.domain)) {
      throw new ValidationError('dns.domain', `must be a domain name, got ${JSON.stringify(d.domain)}`);
    }
    out.domain = d.domain;
  }
  if (d.search !== undefined) out.search = stringList(d.search, 'dns.search');
  if (d.options !== undefined) out.options = stringList(d.options, 'dns.options');
  return out;
}

function stringList(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) {
    throw new ValidationError(field, 'must be a list of non-empty strings');
  }
  return value as string[];
}
