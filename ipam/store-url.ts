// Store URLs (CONTRACT.md): file:///dir, redis://, rediss://, redis+sentinel://,
// redis+cluster://.
import { ValidationError } from '../core/errors.js';

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
      /** absolute path of a file holding the password, read when a client opens */
      passwordFile?: string;
      /** absolute path of a file holding the Sentinel password, read when a client opens */
      sentinelPasswordFile?: string;
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
  'passwordFile',
  'sentinelPasswordFile',
  'replicas',
]);
/** Options whose value is a secret (sentinelPassword): hidden by redact(). */
const SECRET_KEY = /password$/i;
// A secret's value runs to the next known option, so an unescaped "&", "#" or "@" in it stays hidden.
const SECRET_OPTION = new RegExp(`([?&][^=&]*password=)(?:(?!&(?:${[...QUERY_KEYS].join('|')})=)[^])*`, 'gi');
const ESCAPE_HINT = 'percent-encode "/", "?", "#", "@" and "&" in a password, and "@" in an option (%2F, %3F, %23, %40, %26)';
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
      throw new ValidationError(field, `"${redact(url)}" is not a valid file URL`);
    }
    if (!url.startsWith('file:///') || dir === '' || dir.startsWith('//')) {
      throw new ValidationError(field, `"${redact(url)}" must name an absolute directory, like file:///var/lib/berth`);
    }
    return { kind: 'file', dir };
  }
  const m = URL_RE.exec(url);
  if (!m) {
    throw new ValidationError(
      field,
      `"${redact(url)}" is not a store URL (file:///DIR, redis://[user:pass@]host:port[/db], rediss://…, redis+sentinel://host:port[,host:port]/master[/db], redis+cluster://host:port[,host:port])${/[@#]/.test(url) ? `; ${ESCAPE_HINT}` : ''}`,
    );
  }
  const [, scheme, userinfo, hostList, path = '', query = ''] = m;
  // Past this check the only "@" ends the userinfo, so no other part of the URL can hold a password to quote.
  if (path.includes('@') || query.includes('@')) throw new ValidationError(field, `"${redact(url)}" has an "@" after its host; ${ESCAPE_HINT}`);
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
  let prev = '';
  for (const [k, v] of new URLSearchParams(query)) {
    if (!QUERY_KEYS.has(k)) {
      // An unknown option right after a secret may be the rest of it, cut at an unescaped "&": not quoted.
      if (SECRET_KEY.test(prev)) throw new ValidationError(field, `an unknown option follows ${prev}; ${ESCAPE_HINT}`);
      throw new ValidationError(`${field}.${k}`, `unknown option (${[...QUERY_KEYS].join(', ')})`);
    }
    prev = k;
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
      case 'passwordFile':
      case 'sentinelPasswordFile':
        if (!v.startsWith('/') || v.includes('\0')) throw new ValidationError(`${field}.${k}`, `must be an absolute path, got ${JSON.stringify(v)}`);
        loc[k] = v;
        break;
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
  if (userinfo) {
    const colon = userinfo.indexOf(':');
    const decode = (text: string, what: string): string => {
      try {
        return decodeURIComponent(text);
      } catch {
        throw new ValidationError(field, `the ${what} in "${redact(url)}" has a malformed %-escape`);
      }
    };
    // userinfo without a colon is a password, or the user when a password file gives the password
    const userOnly = colon < 0 && loc.passwordFile !== undefined;
    const user = decode(colon >= 0 ? userinfo.slice(0, colon) : userOnly ? userinfo : '', 'user name');
    const pass = decode(colon >= 0 ? userinfo.slice(colon + 1) : userOnly ? '' : userinfo, 'password');
    if (user) loc.username = user;
    if (pass) loc.password = pass;
  }
  if (loc.password !== undefined && loc.passwordFile !== undefined) {
    throw new ValidationError(`${field}.passwordFile`, 'the URL holds a password too; give one of them');
  }
  if (loc.sentinelPassword !== undefined && loc.sentinelPasswordFile !== undefined) {
    throw new ValidationError(`${field}.sentinelPasswordFile`, 'sentinelPassword is given too; give one of them');
  }
  return loc;
}

/**
 * The URL with its secrets hidden: the one way a store URL, well-formed or
 * not, reaches a message, a log line or an API answer.
 */
export function redact(url: string): string {
  const start = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url)?.[0].length ?? 0;
  const hidden: Array<[number, number]> = [];
  // Everything up to the last "@" may be credentials: a malformed URL can hold a password with an unescaped "/", "?", "#" or "@".
  const at = url.lastIndexOf('@');
  if (at >= start) {
    const info = url.slice(start, at);
    const colon = info.indexOf(':');
    // the user name as parseStoreUrl reads it: before a colon, or all of it when a password file gives the password
    const user = colon >= 0 ? info.slice(0, colon) : /[?&]passwordFile=/.test(url.slice(at)) ? info : undefined;
    // a "user name" holding URL delimiters may be part of a password: hidden too
    if (user === undefined || /[/?#@&:]/.test(user)) hidden.push([start, at]);
    else if (colon >= 0) hidden.push([start + colon + 1, at]);
  }
  for (const m of url.matchAll(SECRET_OPTION)) hidden.push([m.index + m[1]!.length, m.index + m[0].length]);
  hidden.sort((x, y) => x[0] - y[0]);
  let out = '';
  let shown = 0;
  for (const [from, to] of hidden) {
    if (from < shown) {
      shown = Math.max(shown, to);
      continue;
    }
    out += `${url.slice(shown, from)}***`;
    shown = to;
  }
  return out + url.slice(shown);
}

function parseHostPort(text: string, defaultPort: number, field: string, url: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/.exec(text);
  // Quote the redacted URL, not the text: any quoting of a store URL goes through redact().
  if (!m) throw new ValidationError(field, `the host of "${redact(url)}" is not HOST[:PORT] (percent-encode "/" and ":" in a password)`);
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (port < 1 || port > 65535) throw new ValidationError(field, `port ${port} is out of range 1-65535`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}
