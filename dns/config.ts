// berth dns's settings: defaults, then what was given, each checked with a
// message naming its flag. Light: loads before the server and the store code.
import { isIP } from 'node:net';
import { ValidationError } from '../core/errors.js';
import { parseDomain } from './names.js';

export const DNS_DEFAULTS = {
  listen: '127.0.0.1:53',
  zone: 'berth.',
  /**
   * Seconds. An owner keeps its address across restarts, but a name can
   * move: a container re-created with another address, an owner removed
   * and its address handed to another after its hold. 5 s bounds how long a
   * resolver answers from the old record, at a query per name per 5 s.
   */
  ttl: 5,
} as const;
/** The longest TTL accepted: a day. */
export const TTL_MAX = 86400;

export interface DnsSettings {
  /** an IP address: UDP and TCP sockets are bound to it */
  host: string;
  port: number;
  /** lower case, without the final dot */
  zone: string;
  ttl: number;
}

/** What the command line gave, before checking (undefined: the default). */
export interface DnsFlags {
  listen?: string | undefined;
  zone?: string | undefined;
  ttl?: number | string | undefined;
}

/** The settings from the flags, or a ValidationError naming the flag. */
export function dnsSettings(flags: DnsFlags): DnsSettings {
  const { host, port } = parseDnsListen(flags.listen ?? DNS_DEFAULTS.listen);
  let zone: string;
  try {
    zone = parseDomain(flags.zone ?? DNS_DEFAULTS.zone);
  } catch (err) {
    throw new ValidationError('--zone', `${(err as Error).message}`);
  }
  if (zone.endsWith('in-addr.arpa') || zone.endsWith('ip6.arpa')) {
    throw new ValidationError('--zone', `must be a forward zone; the reverse zones come from the pools' subnets, got ${JSON.stringify(flags.zone)}`);
  }
  const ttlText = String(flags.ttl ?? DNS_DEFAULTS.ttl).trim();
  const ttl = Number(ttlText);
  if (!/^\d+$/.test(ttlText) || ttl > TTL_MAX) throw new ValidationError('--ttl', `must be whole seconds from 0 to ${TTL_MAX}, got ${JSON.stringify(String(flags.ttl))}`);
  return { host, port, zone, ttl };
}

/** --listen: IPv4:PORT or [IPv6]:PORT; an address, not a host name, since the sockets bind to one. Port 0 takes a free one. */
export function parseDnsListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const host = m ? (m[1] ?? m[2]!) : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535 || isIP(host) === 0 || (m[1] !== undefined && isIP(host) !== 6)) {
    throw new ValidationError('--listen', `must be IPV4:PORT or [IPV6]:PORT, e.g. ${DNS_DEFAULTS.listen} or [::1]:5353, got ${JSON.stringify(text)}`);
  }
  return { host, port };
}
