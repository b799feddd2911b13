// CNI results. Internally a result has the 1.1.0 shape; it is written out in
// the version the runtime asked for, and a prevResult of any version is read
// back into the internal shape.
import { CNI_CODES, CniError } from './errors.js';
import { atLeast } from './version.js';

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface CniIp {
  /** "10.0.0.5/24" */
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  interfaces?: CniInterface[];
  ips?: CniIp[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** The result as JSON of the given spec version. */
export function formatResult(result: CniResult, version: string): Record<string, unknown> {
  const out: Record<string, unknown> = { cniVersion: version };
  const v11 = atLeast(version, '1.1.0');
  if (result.interfaces) {
    out.interfaces = result.interfaces.map((i) => {
      const x: CniInterface = { name: i.name };
      if (i.mac !== undefined) x.mac = i.mac;
      if (v11 && i.mtu !== undefined) x.mtu = i.mtu;
      if (i.sandbox !== undefined) x.sandbox = i.sandbox;
      if (v11 && i.socketPath !== undefined) x.socketPath = i.socketPath;
      if (v11 && i.pciID !== undefined) x.pciID = i.pciID;
      return x;
    });
  }
  const versioned = !atLeast(version, '1.0.0');
  if (result.ips) out.ips = result.ips.map((ip) => {
    const x: Record<string, unknown> = {};
    if (versioned) x.version = ip.address.includes(':') ? '6' : '4';
    x.address = ip.address;
    if (ip.gateway !== undefined) x.gateway = ip.gateway;
    if (ip.interface !== undefined) x.interface = ip.interface;
    return x;
  });
  if (result.routes && result.routes.length > 0) {
    out.routes = result.routes.map((r) => {
      const x: CniRoute = { dst: r.dst };
      if (r.gw !== undefined) x.gw = r.gw;
      if (v11) {
        for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) if (r[k] !== undefined) x[k] = r[k];
      }
      return x;
    });
  }
  if (result.dns && Object.keys(result.dns).length > 0) out.dns = result.dns;
  return out;
}

/** Reads a prevResult of any supported version into the internal shape. */
export function parsePrevResult(raw: unknown): CniResult {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, 'prevResult must be an object');
  }
  const r = raw as Record<string, unknown>;
  const out: CniResult = {};
  if (r.interfaces !== undefined) {
    if (!Array.isArray(r.interfaces)) throw new CniError(CNI_CODES.INVALID_CONFIG, 'prevResult.interfaces must be a list');
    out.interfaces = r.interfaces.map((i, n) => {
      if (!i || typeof i.name !== 'string') throw new CniError(CNI_CODES.INVALID_CONFIG, `prevResult.interfaces[${n}].name must be a string`);
      return i as CniInterface;
    });
  }
  if (r.ips !== undefined) {
    if (!Array.isArray(r.ips)) throw new CniError(CNI_CODES.INVALID_CONFIG, 'prevResult.ips must be a list');
    out.ips = r.ips.map((ip, n) => {
      if (!ip || typeof ip.address !== 'string') throw new CniError(CNI_CODES.INVALID_CONFIG, `prevResult.ips[${n}].address must be a string`);
      const x: CniIp = { address: ip.address };
      if (typeof ip.gateway === 'string') x.gateway = ip.gateway;
      if (typeof ip.interface === 'number') x.interface = ip.interface;
      return x;
    });
  }
  if (r.routes !== undefined) {
    if (!Array.isArray(r.routes)) throw new CniError(CNI_CODES.INVALID_CONFIG, 'prevResult.routes must be a list');
    out.routes = r.routes as CniRoute[];
  }
  if (r.dns !== undefined) out.dns = r.dns as CniDns;
  return out;
}
