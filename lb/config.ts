// Load-balancer settings from the agent config: where HAProxy and keepalived
// are, and the services (an HAProxy frontend and/or an LVS virtual server
// each). Everything here ends up in a config file or a socket command, so
// every field is checked against a strict shape and named in errors. Pure.
import { formatIp, parseIp } from '../core/address.js';

/** Service names end up in HAProxy and keepalived configs: a plain identifier only. */
export const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export interface HaproxyService {
  /** "ADDR:PORT" or ":PORT" */
  bind: string;
  mode: 'http' | 'tcp';
  balance: 'roundrobin' | 'leastconn' | 'first' | 'random';
  /** health check: an HTTP GET of `path` (http mode) or a TCP connect */
  check: { path?: string; interval: number; rise: number; fall: number };
}

export interface LvsService {
  vip: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  scheduler: 'rr' | 'wrr' | 'lc' | 'wlc' | 'sh' | 'dh' | 'mh';
  kind: 'NAT' | 'DR' | 'TUN';
}

export interface Service {
  name: string;
  haproxy?: HaproxyService;
  lvs?: LvsService;
}

export interface LbConfig {
  haproxy?: {
    /** the config file berth owns and HAProxy runs from */
    config: string;
    /** the stats socket (level admin) for the Runtime API */
    socket: string;
    /** the master CLI socket (haproxy -W -S PATH), for reloads */
    masterSocket: string;
    binary: string;
    /** seconds a drained server may keep its sessions before they are shut */
    drainTimeout: number;
  };
  keepalived?: {
    /** the file berth renders virtual_server blocks into (include it from keepalived.conf) */
    config: string;
    binary: string;
    /** keepalived's pid file: it gets SIGHUP after a change, when present */
    pidFile?: string;
  };
  services: Service[];
}

export class LbConfigError extends Error {}

const PATH = /^\/[A-Za-z0-9_./-]*$/;
/** An HTTP path for a health check: no spaces, quotes or control characters that could end the config line. */
const HTTP_PATH = /^\/[A-Za-z0-9_.~!$&'()*+,;=:@%/?-]{0,200}$/;

function obj(raw: unknown, field: string, keys: string[]): Record<string, unknown> {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new LbConfigError(`${field} must be an object`);
  for (const k of Object.keys(raw)) if (!keys.includes(k)) throw new LbConfigError(`${field}.${k}: unknown field (${keys.join(', ')})`);
  return raw as Record<string, unknown>;
}

function path(raw: unknown, field: string, dflt?: string): string {
  const v = raw ?? dflt;
  if (typeof v !== 'string' || !PATH.test(v) || v.includes('..')) throw new LbConfigError(`${field} must be an absolute path of letters, digits and "_./-", got ${JSON.stringify(v)}`);
  return v;
}

function int(raw: unknown, field: string, dflt: number, min: number, max: number): number {
  const v = raw ?? dflt;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw new LbConfigError(`${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  return v as number;
}

function oneOf<T extends string>(raw: unknown, field: string, dflt: T, allowed: readonly T[]): T {
  const v = raw ?? dflt;
  if (!allowed.includes(v as T)) throw new LbConfigError(`${field} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/** "ADDR:PORT", "[V6]:PORT" or ":PORT", normalized. */
export function parseBind(raw: unknown, field: string): string {
  if (typeof raw !== 'string') throw new LbConfigError(`${field} must be "ADDRESS:PORT" or ":PORT"`);
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]*)):([0-9]{1,5})$/.exec(raw);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new LbConfigError(`${field} must be "ADDRESS:PORT" or ":PORT", got ${JSON.stringify(raw)}`);
  const host = m[1] ?? m[2] ?? '';
  if (host === '') return `:${port}`;
  try {
    const ip = formatIp(parseIp(host, field).hex);
    return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
  } catch {
    throw new LbConfigError(`${field}: ${JSON.stringify(host)} is not an IP address`);
  }
}

/** Validates the `lb` and `services` sections of the agent config. */
export function parseLbConfig(lbRaw: unknown, servicesRaw: unknown): LbConfig {
  const out: LbConfig = { services: [] };
  if (lbRaw !== undefined) {
    const lb = obj(lbRaw, 'lb', ['haproxy', 'keepalived']);
    if (lb.haproxy !== undefined) {
      const h = obj(lb.haproxy, 'lb.haproxy', ['config', 'socket', 'masterSocket', 'binary', 'drainTimeout']);
      out.haproxy = {
        config: path(h.config, 'lb.haproxy.config', '/etc/haproxy/haproxy.cfg'),
        socket: path(h.socket, 'lb.haproxy.socket', '/run/haproxy/admin.sock'),
        masterSocket: path(h.masterSocket, 'lb.haproxy.masterSocket', '/run/haproxy/master.sock'),
        binary: path(h.binary, 'lb.haproxy.binary', '/usr/sbin/haproxy'),
        drainTimeout: int(h.drainTimeout, 'lb.haproxy.drainTimeout', 30, 0, 3600),
      };
    }
    if (lb.keepalived !== undefined) {
      const k = obj(lb.keepalived, 'lb.keepalived', ['config', 'binary', 'pidFile']);
      out.keepalived = {
        config: path(k.config, 'lb.keepalived.config', '/etc/keepalived/berth.conf'),
        binary: path(k.binary, 'lb.keepalived.binary', '/usr/sbin/keepalived'),
        ...(k.pidFile !== undefined ? { pidFile: path(k.pidFile, 'lb.keepalived.pidFile') } : {}),
      };
    }
  }
  if (servicesRaw === undefined) return out;
  if (!Array.isArray(servicesRaw)) throw new LbConfigError('services must be a list');
  const names = new Set<string>();
  const binds = new Set<string>();
  servicesRaw.forEach((raw, i) => {
    const f = `services[${i}]`;
    const s = obj(raw, f, ['name', 'haproxy', 'lvs']);
    if (typeof s.name !== 'string' || !SERVICE_NAME.test(s.name)) throw new LbConfigError(`${f}.name must be 1-63 letters, digits, "_" or "-", starting with a letter or digit`);
    if (names.has(s.name)) throw new LbConfigError(`${f}.name: service "${s.name}" is declared twice`);
    names.add(s.name);
    const svc: Service = { name: s.name };
    if (s.haproxy !== undefined) {
      if (!out.haproxy) throw new LbConfigError(`${f}.haproxy needs lb.haproxy (where HAProxy's config and sockets are)`);
      const h = obj(s.haproxy, `${f}.haproxy`, ['bind', 'mode', 'balance', 'check']);
      const bind = parseBind(h.bind, `${f}.haproxy.bind`);
      if (binds.has(bind)) throw new LbConfigError(`${f}.haproxy.bind: ${bind} is used by another service`);
      binds.add(bind);
      const mode = oneOf(h.mode, `${f}.haproxy.mode`, 'http', ['http', 'tcp'] as const);
      const c = h.check === undefined ? {} : obj(h.check, `${f}.haproxy.check`, ['path', 'interval', 'rise', 'fall']);
      if (c.path !== undefined && (typeof c.path !== 'string' || !HTTP_PATH.test(c.path))) throw new LbConfigError(`${f}.haproxy.check.path must be an HTTP path starting with "/", without spaces or quotes`);
      if (c.path !== undefined && mode !== 'http') throw new LbConfigError(`${f}.haproxy.check.path needs mode http`);
      svc.haproxy = {
        bind,
        mode,
        // dynamic servers need a balance algorithm HAProxy can change at run time
        balance: oneOf(h.balance, `${f}.haproxy.balance`, 'roundrobin', ['roundrobin', 'leastconn', 'first', 'random'] as const),
        check: {
          ...(c.path !== undefined ? { path: c.path as string } : {}),
          interval: int(c.interval, `${f}.haproxy.check.interval`, 2000, 100, 3600000),
          rise: int(c.rise, `${f}.haproxy.check.rise`, 2, 1, 100),
          fall: int(c.fall, `${f}.haproxy.check.fall`, 3, 1, 100),
        },
      };
    }
    if (s.lvs !== undefined) {
      const l = obj(s.lvs, `${f}.lvs`, ['vip', 'port', 'protocol', 'scheduler', 'kind']);
      let vip: string;
      try {
        vip = formatIp(parseIp(l.vip, `${f}.lvs.vip`).hex);
      } catch {
        throw new LbConfigError(`${f}.lvs.vip must be an IP address, got ${JSON.stringify(l.vip)}`);
      }
      svc.lvs = {
        vip,
        port: int(l.port, `${f}.lvs.port`, 0, 1, 65535),
        protocol: oneOf(l.protocol, `${f}.lvs.protocol`, 'TCP', ['TCP', 'UDP'] as const),
        scheduler: oneOf(l.scheduler, `${f}.lvs.scheduler`, 'wrr', ['rr', 'wrr', 'lc', 'wlc', 'sh', 'dh', 'mh'] as const),
        kind: oneOf(l.kind, `${f}.lvs.kind`, 'NAT', ['NAT', 'DR', 'TUN'] as const),
      };
    }
    if (!svc.haproxy && !svc.lvs) throw new LbConfigError(`${f} needs haproxy and/or lvs`);
    out.services.push(svc);
  });
  if (out.services.some((s) => s.lvs) && !out.keepalived) throw new LbConfigError('services with lvs need lb.keepalived (where the rendered virtual servers go)');
  return out;
}
