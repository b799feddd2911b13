// Store URLs (CONTRACT.md): file:///dir, redis://, rediss://, redis+sentinel://,
// redis+cluster://.
import { ValidationError } from './errors.js';

export const DEFAULT_STORE = 'file:///var/lib/berth';

export type StoreLocation =
  | { kind: 'file'; dir: string }
  | {
      kind: 'redis';
      tls: boolean;
      hosts: Array<{ host: string; port: number }>;
      /** Sentinel master name; absent for a direct connection */
      sentinelName?: string;
      /** Redis Cluster: `hosts` are seed nodes */
      cluster?: boolean;
      /** replicas that must hold a change before it is acknowledged; absent: the default of requiredReplicas() (redis-conn.ts) */
      replicas?: number;
      username?: string;
      password?: string;
      db: number;
      prefix: string;
      /** ms a command may take before it fails as STORE_UNAVAILABLE */
      timeout: number;
      connectTimeout: number;
      ca?: string;
      cert?: string;
      key?: string;
      servername?: string;
      sentinelUsername?: string;
      sentinelPassword?: string;
    };

const QUERY_KEYS = new Set([
  'prefix',
  'timeout',
  'connectTimeout',
  'ca',
  'cert',
  'key',
  'servername',
  'sentinelUsername',
  'sentinelPassword',
  'replicas',
]);
// userinfo runs to the last "@" of the authority, so a host can never carry credentials into a message
const URL_RE = /^(redis|rediss|redis\+sentinel|rediss\+sentinel|redis\+cluster|rediss\+cluster):\/\/(?:([^/?#]*)@)?([^/?#@]+)(\/[^?#]*)?(?:\?([^#]*))?$/;

/** The store URL to use: a flag, else BERTH_STORE, else the embedded default. */
export function resolveStoreUrl(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag || env.BERTH_STORE || DEFAULT_STORE;
}

/** Parses a store URL; `field` names where it came from in errors. */
export function parseStoreUrl(url: unknown, field = 'store'): StoreLocation {
  if (typeof url !== 'string' || url === '') throw new ValidationError(field, 'must be a store URL');
  if (url.startsWith('file:')) {
    let dir: string;
    try {
      dir = decodeURIComponent(new URL(url).pathname).replace(/\/+$/, '');
    } catch {
      throw new ValidationError(field, `"${url}" is not a valid file URL`);
    }
    if (!url.startsWith('file:///') || dir === '' || dir.startsWith('//')) {
      throw new ValidationError(field, `"${url}" must name an absolute directory, like file:///var/lib/berth`);
    }
    return { kind: 'file', dir };
  }
  const m = URL_RE.exec(url);
  if (!m) {
    throw new ValidationError(
      field,
      `"${redact(url)}" is not a store URL (file:///DIR, redis://[user:pass@]host:port[/db], rediss://…, redis+sentinel://host:port[,host:port]/master[/db], redis+cluster://host:port[,host:port])`,
    );
  }
  const [, scheme, userinfo, hostList, path = '', query = ''] = m;
  const sentinel = scheme!.endsWith('+sentinel');
  const cluster = scheme!.endsWith('+cluster');
  const hosts = hostList!.split(',').map((h) => parseHostPort(h, sentinel ? 26379 : 6379, field, url));
  if (!sentinel && !cluster && hosts.length !== 1) {
    throw new ValidationError(field, 'a redis:// URL names one host; use redis+sentinel:// or redis+cluster:// for several');
  }
  const segments = path.split('/').filter((s) => s !== '');
  // Redis Cluster has database 0 only
  if (cluster && segments.length > 0) throw new ValidationError(field, `redis+cluster:// takes no path (a cluster has database 0 only), got "${path}"`);
  let sentinelName: string | undefined;
  if (sentinel) {
    sentinelName = segments.shift();
    if (!sentinelName) throw new ValidationError(field, 'redis+sentinel:// needs the master name as the path, like /mymaster');
  }
  if (segments.length > 1) throw new ValidationError(field, `unexpected path "${path}"`);
  const db = segments.length ? Number(segments[0]) : 0;
  if (!Number.isInteger(db) || db < 0 || db > 15 || !/^\d+$/.test(segments[0] ?? '0')) {
    throw new ValidationError(`${field}.db`, `must be a database number from 0 to 15, got "${segments[0]}"`);
  }
  const loc: StoreLocation = {
    kind: 'redis',
    tls: scheme!.startsWith('rediss'),
    hosts,
    db,
    prefix: 'berth',
    timeout: 3000,
    connectTimeout: 2000,
  };
  if (sentinelName) loc.sentinelName = sentinelName;
  if (cluster) loc.cluster = true;
  if (userinfo) {
    const colon = userinfo.indexOf(':');
    const decode = (text: string, what: string): string => {
      try {
        return decodeURIComponent(text);
      } catch {
        throw new ValidationError(field, `the ${what} in "${redact(url)}" has a malformed %-escape`);
      }
    };
    const user = decode(colon >= 0 ? userinfo.slice(0, colon) : '', 'user name');
    const pass = decode(colon >= 0 ? userinfo.slice(colon + 1) : userinfo, 'password');
    if (user) loc.username = user;
    if (pass) loc.password = pass;
  }
  for (const [k, v] of new URLSearchParams(query)) {
    if (!QUERY_KEYS.has(k)) throw new ValidationError(`${field}.${k}`, `unknown option (${[...QUERY_KEYS].join(', ')})`);
    switch (k) {
      case 'prefix':
        if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(v)) throw new ValidationError(`${field}.prefix`, 'must be 1-64 of letters, digits, _ . : -');
        loc.prefix = v;
        break;
      case 'timeout':
      case 'connectTimeout': {
        const ms = Number(v);
        if (!Number.isInteger(ms) || ms < 10 || ms > 600000) throw new ValidationError(`${field}.${k}`, 'must be milliseconds from 10 to 600000');
        loc[k] = ms;
        break;
      }
      case 'replicas': {
        const n = Number(v);
        if (!/^\d{1,2}$/.test(v) || n > 16) throw new ValidationError(`${field}.replicas`, 'must be a number of replicas from 0 to 16');
        loc.replicas = n;
        break;
      }
      default:
        loc[k as 'ca' | 'cert' | 'key' | 'servername' | 'sentinelUsername' | 'sentinelPassword'] = v;
    }
  }
  return loc;
}

/** The URL with any password replaced, for messages and logs. */
export function redact(url: string): string {
  // Everything up to the last "@" may be credentials, even a password with an unescaped "/" or "@".
  return url
    .replace(/^([a-z+]+:\/\/)([^?#]*)@/i, (_, scheme: string, info: string) => {
      const colon = info.indexOf(':');
      const user = colon >= 0 ? info.slice(0, colon) : '';
      return `${scheme}${colon >= 0 && !/[/@]/.test(user) ? `${user}:***` : '***'}@`;
    })
    .replace(/(sentinelPassword=)[^&#]*/g, '$1***');
}

function parseHostPort(text: string, defaultPort: number, field: string, url: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(text);
  // Quote the redacted URL, not the text: a password with an unescaped "/" lands here.
  if (!m) throw new ValidationError(field, `the host of "${redact(url)}" is not HOST[:PORT] (percent-encode "/" and ":" in a password)`);
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (port < 1 || port > 65535) throw new ValidationError(field, `port ${port} is out of range 1-65535`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}
