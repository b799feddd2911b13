// The config and spec every berth main plugin (berth-bridge, berth-ovs)
// shares. Light on purpose: it runs before any link code is loaded, so
// VERSION and bad input never pay for netlink (see attach.ts for the rest).
import { KNOWN_ARGS } from './berth-ipam/config.js';
import { CNI_CODES, CniError } from './errors.js';
import { parseLogConfig, type LogConfig } from './log.js';
import type { Plugin, PluginSpec, Request } from './skel.js';

/** Fields every berth main plugin accepts, beside its own. */
const COMMON_FIELDS = [
  'cniVersion',
  'cniVersions',
  'name',
  'type',
  'mtu',
  'ipam',
  'dns',
  'args',
  'runtimeConfig',
  'capabilities',
  'prevResult',
  'log',
  'stableMac',
  'announce',
  'probe',
  'cni.dev/valid-attachments',
  'cni.dev/attachments',
];

/** How often and how far apart a container's addresses are announced (announce.ts); count 0: never. */
export interface AnnounceConfig {
  count: number;
  intervalMs: number;
}

export const DEFAULT_ANNOUNCE: AnnounceConfig = { count: 3, intervalMs: 250 };

/** How many probes per address before it goes live, and how far apart (probe.ts); count 0: none. */
export type ProbeConfig = AnnounceConfig;

/**
 * On by default: an address another node holds would otherwise go on the
 * wire twice. Two probes 15 ms apart, listened to for 30 ms: an answer on a
 * LAN takes well under a millisecond, and a first probe may be lost.
 */
export const DEFAULT_PROBE: ProbeConfig = { count: 2, intervalMs: 15 };

/** The part of a main plugin's config that is common to all of them. */
export interface AttachConfig {
  mtu?: number;
  /** MAC for the container interface: the `mac` capability or MAC= in CNI_ARGS */
  mac?: string;
  /** without `mac`: the container's MAC derived from its address (mac.ts), not the kernel's random one */
  stableMac: boolean;
  /** gratuitous ARP / unsolicited NA once the addresses are up */
  announce: AnnounceConfig;
  /** ARP probes / duplicate address detection before they go live */
  probe: ProbeConfig;
  ipamType: string;
  log: LogConfig;
}

/**
 * Checks the config's keys (unsupported ones: code 2 naming key and value;
 * unknown ones: code 7) and parses the common fields.
 */
export function parseAttachConfig(req: Request, own: readonly string[], unsupported: readonly string[] = []): AttachConfig {
  const c = req.config;
  const fields = new Set([...COMMON_FIELDS, ...own]);
  for (const key of Object.keys(c)) {
    if (unsupported.includes(key)) throw new CniError(CNI_CODES.UNSUPPORTED_FIELD, `${key}: unsupported field ${JSON.stringify(key)}=${JSON.stringify(c[key])}`);
    if (!fields.has(key)) throw new CniError(CNI_CODES.INVALID_CONFIG, `${key}: unknown field`);
  }
  const conf: AttachConfig = { ipamType: '', log: parseLogConfig(c.log, 'log'), stableMac: true, announce: { ...DEFAULT_ANNOUNCE }, probe: { ...DEFAULT_PROBE } };
  if (c.stableMac !== undefined) {
    if (typeof c.stableMac !== 'boolean') throw new CniError(CNI_CODES.INVALID_CONFIG, `stableMac must be true or false, got ${JSON.stringify(c.stableMac)}`);
    conf.stableMac = c.stableMac;
  }
  if (c.announce !== undefined) conf.announce = parseRepeat('announce', c.announce, DEFAULT_ANNOUNCE, 10);
  if (c.probe !== undefined) conf.probe = parseRepeat('probe', c.probe, DEFAULT_PROBE, 1);
  if (c.mtu !== undefined) {
    if (typeof c.mtu !== 'number' || !Number.isInteger(c.mtu) || c.mtu < 68 || c.mtu > 65535) {
      throw new CniError(CNI_CODES.INVALID_CONFIG, `mtu must be an integer from 68 to 65535, got ${JSON.stringify(c.mtu)}`);
    }
    conf.mtu = c.mtu;
  }
  const ipam = c.ipam as { type?: unknown } | undefined;
  if (req.command !== 'STATUS' || ipam !== undefined) {
    if (!ipam || typeof ipam !== 'object' || typeof ipam.type !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(ipam.type)) {
      throw new CniError(CNI_CODES.INVALID_CONFIG, 'ipam.type must name an IPAM plugin, like {"type": "berth-ipam", "pool": "NAME"}');
    }
    conf.ipamType = ipam.type;
  }
  const mac = (c.runtimeConfig as { mac?: unknown } | undefined)?.mac ?? req.args.get('MAC');
  if (mac !== undefined) {
    if (typeof mac !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) {
      throw new CniError(CNI_CODES.INVALID_CONFIG, `mac must be like 02:42:ac:11:00:02, got ${JSON.stringify(mac)}`);
    }
    conf.mac = mac.toLowerCase();
  }
  return conf;
}

/** The `announce` or `probe` field: {"count": 0-10 (0: off), "intervalMs": min-10000}, each defaulted. */
function parseRepeat(field: string, raw: unknown, defaults: AnnounceConfig, minInterval: number): AnnounceConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, `${field} must be an object like ${JSON.stringify(defaults)}, got ${JSON.stringify(raw)}`);
  }
  const a = raw as Record<string, unknown>;
  for (const key of Object.keys(a)) if (key !== 'count' && key !== 'intervalMs') throw new CniError(CNI_CODES.INVALID_CONFIG, `${field}.${key}: unknown field`);
  const int = (key: 'count' | 'intervalMs', min: number, max: number): number => {
    const v = a[key] ?? defaults[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new CniError(CNI_CODES.INVALID_CONFIG, `${field}.${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  return { count: int('count', 0, 10), intervalMs: int('intervalMs', minInterval, 10000) };
}

/** A main plugin's spec: its own parser, its handlers loaded only for a valid request. */
export function attachSpec<C extends AttachConfig>(name: string, parse: (req: Request) => C, load: () => Promise<Plugin<C>>): PluginSpec<C> {
  return {
    name,
    knownArgs: KNOWN_ARGS,
    logConfig: (config) => {
      try {
        return parseLogConfig(config.log, 'log');
      } catch {
        return {}; // reported by parse
      }
    },
    parse,
    load,
  };
}
