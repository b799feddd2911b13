// berth-ovs's config: defaults first, then parse, then validate with messages
// that name the field. Light: runs before any OVSDB or link code is loaded.
import { parseAttachConfig, type AttachConfig } from '../attach-config.js';
import { CNI_CODES, CniError } from '../errors.js';
import { validateIfname, type Request } from '../skel.js';

export const DEFAULT_OVSDB_SOCKET = '/var/run/openvswitch/db.sock';

export interface OvsConfig extends AttachConfig {
  bridge: string;
  /** access port: frames leave untagged into the container, tagged with this VLAN on the bridge */
  vlan?: number;
  /** trunk port: these VLANs pass tagged */
  trunk?: number[];
  ovsdbSocket: string;
}

/** Validates berth-ovs's config. */
export function parseOvsConfig(req: Request): OvsConfig {
  const c = req.config;
  const common = parseAttachConfig(req, ['bridge', 'vlan', 'trunk', 'ovsdbSocket']);
  if (typeof c.bridge !== 'string') throw new CniError(CNI_CODES.INVALID_CONFIG, 'bridge must name an existing Open vSwitch bridge');
  validateIfname(c.bridge, 'bridge', CNI_CODES.INVALID_CONFIG);
  const conf: OvsConfig = { ...common, bridge: c.bridge, ovsdbSocket: DEFAULT_OVSDB_SOCKET };
  if (c.vlan !== undefined && c.trunk !== undefined) throw new CniError(CNI_CODES.INVALID_CONFIG, 'vlan (an access port) and trunk (a trunk port) exclude each other');
  if (c.vlan !== undefined) conf.vlan = vlanId(c.vlan, 'vlan');
  if (c.trunk !== undefined) conf.trunk = parseTrunk(c.trunk);
  if (c.ovsdbSocket !== undefined) {
    if (typeof c.ovsdbSocket !== 'string' || !c.ovsdbSocket.startsWith('/')) throw new CniError(CNI_CODES.INVALID_CONFIG, 'ovsdbSocket must be an absolute path');
    conf.ovsdbSocket = c.ovsdbSocket;
  }
  return conf;
}

function vlanId(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 4094) throw new CniError(CNI_CODES.INVALID_CONFIG, `${field} must be an integer from 1 to 4094, got ${JSON.stringify(v)}`);
  return v;
}

/** A trunk list: VLAN ids and "FIRST-LAST" ranges, expanded, sorted, without duplicates. */
export function parseTrunk(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) throw new CniError(CNI_CODES.INVALID_CONFIG, 'trunk must be a non-empty list of VLAN ids or "FIRST-LAST" ranges');
  const ids = new Set<number>();
  value.forEach((item, i) => {
    if (typeof item === 'string' && /^\d+-\d+$/.test(item)) {
      const [a, b] = item.split('-').map(Number) as [number, number];
      vlanId(a, `trunk[${i}]`);
      vlanId(b, `trunk[${i}]`);
      if (a > b) throw new CniError(CNI_CODES.INVALID_CONFIG, `trunk[${i}]: "${item}" starts after it ends`);
      for (let v = a; v <= b; v++) ids.add(v);
    } else ids.add(vlanId(item, `trunk[${i}]`));
  });
  return [...ids].sort((x, y) => x - y);
}
