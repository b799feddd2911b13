// What the CLI shows of pools, addresses and history entries: the stored
// forms with addresses as text and timestamps as ISO strings, shared by the
// human and the --json output so both always say the same thing.
import { formatIp } from '../core/address.js';
import type { AddressInfo, AddressState, HistoryEntry, PoolUsage } from './model.js';
import { capacity, type DnsConfig, type PoolConfig, type Route } from './pool-config.js';

export interface PoolView {
  name: string;
  family: 4 | 6;
  subnet: string;
  ranges: Array<{ first: string; last: string }>;
  /** network, broadcast and gateway: never handed out */
  excluded: string[];
  gateway: string | null;
  vlan: number | null;
  routes: Route[];
  dns: DnsConfig;
  /** seconds */
  hold: number;
  created: string;
  allocated: number;
  reserved: number;
  /** decimal string: an IPv6 pool may exceed what a JSON number holds exactly */
  capacity: string;
  free: string;
}

export interface AddressView {
  pool: string;
  ip: string;
  state: AddressState;
  owner?: string;
  containerId?: string;
  ifname?: string;
  gen?: number;
  since?: string;
  until?: string;
  note?: string;
  pinned?: boolean;
}

/** A history entry for display: its time as ISO 8601, its address written out. */
export type HistoryView = Omit<HistoryEntry, 'at'> & { at: string };

/** A pool with its usage, for display. */
export function poolView(conf: PoolConfig, usage?: Pick<PoolUsage, 'allocated' | 'reserved' | 'capacity'>): PoolView {
  const allocated = usage?.allocated ?? 0;
  const reserved = usage?.reserved ?? 0;
  const cap = usage ? BigInt(usage.capacity) : capacity(conf);
  const free = cap - BigInt(allocated) - BigInt(reserved);
  return {
    name: conf.name,
    family: conf.family,
    subnet: conf.subnet,
    ranges: conf.ranges.map(([first, last]) => ({ first: formatIp(first), last: formatIp(last) })),
    excluded: conf.exclude.map(formatIp),
    gateway: conf.gateway === null ? null : formatIp(conf.gateway),
    vlan: conf.vlan,
    routes: conf.routes,
    dns: conf.dns,
    hold: conf.hold,
    created: conf.created,
    allocated,
    reserved,
    capacity: cap.toString(),
    free: (free < 0n ? 0n : free).toString(),
  };
}

/** An address, for display. */
export function addressView(info: AddressInfo): AddressView {
  const view: AddressView = { pool: info.pool, ip: formatIp(info.ip), state: info.state };
  if (info.owner !== undefined) view.owner = info.owner;
  if (info.containerId !== undefined) view.containerId = info.containerId;
  if (info.ifname !== undefined) view.ifname = info.ifname;
  if (info.gen !== undefined) view.gen = info.gen;
  if (info.since !== undefined) view.since = iso(info.since)!;
  if (info.until !== undefined) view.until = iso(info.until)!;
  if (info.note !== undefined) view.note = info.note;
  if (info.pinned) view.pinned = true;
  return view;
}

/** A history entry, for display. */
export function historyView(entry: HistoryEntry): HistoryView {
  const view: HistoryView = { at: iso(entry.at)!, event: entry.event, ip: formatIp(entry.ip) };
  if (entry.owner !== undefined) view.owner = entry.owner;
  if (entry.containerId !== undefined) view.containerId = entry.containerId;
  if (entry.ifname !== undefined) view.ifname = entry.ifname;
  if (entry.gen !== undefined) view.gen = entry.gen;
  if (entry.actor !== undefined) view.actor = entry.actor;
  if (entry.note !== undefined) view.note = entry.note;
  return view;
}

/** A timestamp (ms since the epoch) as ISO 8601, or undefined when there is none. */
export function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** Seconds as a short duration for people, e.g. 90 → "1m30s", 3600 → "1h". */
export function duration(seconds: number): string {
  if (seconds === 0) return '0s';
  const units: Array<[string, number]> = [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  let rest = seconds;
  let out = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
