// berth-bridge's config: defaults first, then parse, then validate with
// messages that name the field. Light on purpose: it runs before any link or
// store code is loaded.
import { CNI_CODES, CniError } from '../errors.js';
import { parseLogConfig, type LogConfig } from '../log.js';
import { validateIfname, type Request } from '../skel.js';

export interface BridgeConfig {
  bridge: string;
  /** host NIC whose 802.1Q sub-interface uplinks the bridge */
  master?: string;
  vlan?: number;
  mtu?: number;
  isGateway: boolean;
  isDefaultGateway: boolean;
  hairpinMode: boolean;
  promiscMode: boolean;
  /** MAC for the container interface: the `mac` capability or MAC= in CNI_ARGS */
  mac?: string;
  ipamType: string;
  log: LogConfig;
}

const FIELDS = new Set([
  'cniVersion',
  'cniVersions',
  'name',
  'type',
  'bridge',
  'master',
  'vlan',
  'mtu',
  'isGateway',
  'isDefaultGateway',
  'hairpinMode',
  'promiscMode',
  'ipam',
  'dns',
  'args',
  'runtimeConfig',
  'capabilities',
  'prevResult',
  'log',
  'cni.dev/valid-attachments',
  'cni.dev/attachments',
]);
// the reference bridge plugin's settings berth-bridge does not implement
const UNSUPPORTED = new Set(['ipMasq', 'vlanTrunk', 'enabledad', 'macspoofchk', 'disableContainerInterface', 'forceAddress', 'preserveDefaultVlan', 'portIsolation']);

/** Validates berth-bridge's config. */
export function parseBridgeConfig(req: Request): BridgeConfig {
  const c = req.config;
  for (const key of Object.keys(c)) {
    if (UNSUPPORTED.has(key)) {
      throw new CniError(CNI_CODES.UNSUPPORTED_FIELD, `${key}: unsupported field ${JSON.stringify(key)}=${JSON.stringify(c[key])}`);
    }
    if (!FIELDS.has(key)) throw new CniError(CNI_CODES.INVALID_CONFIG, `${key}: unknown field`);
  }
  const conf: BridgeConfig = {
    bridge: 'cni0',
    isGateway: false,
    isDefaultGateway: false,
    hairpinMode: false,
    promiscMode: false,
    ipamType: '',
    log: parseLogConfig(c.log, 'log'),
  };
  if (c.bridge !== undefined) conf.bridge = ifname(c.bridge, 'bridge');
  if (c.master !== undefined) conf.master = ifname(c.master, 'master');
  if (c.vlan !== undefined) {
    if (typeof c.vlan !== 'number' || !Number.isInteger(c.vlan) || c.vlan < 1 || c.vlan > 4094) {
      throw new CniError(CNI_CODES.INVALID_CONFIG, `vlan must be an integer from 1 to 4094, got ${JSON.stringify(c.vlan)}`);
    }
    if (!conf.master) throw new CniError(CNI_CODES.INVALID_CONFIG, 'vlan needs master: the host NIC whose 802.1Q sub-interface uplinks the bridge');
    conf.vlan = c.vlan;
    ifname(vlanLinkName(conf.master, c.vlan), 'master.vlan');
  }
  if (c.mtu !== undefined) {
    if (typeof c.mtu !== 'number' || !Number.isInteger(c.mtu) || c.mtu < 68 || c.mtu > 65535) {
      throw new CniError(CNI_CODES.INVALID_CONFIG, `mtu must be an integer from 68 to 65535, got ${JSON.stringify(c.mtu)}`);
    }
    conf.mtu = c.mtu;
  }
  for (const key of ['isGateway', 'isDefaultGateway', 'hairpinMode', 'promiscMode'] as const) {
    if (c[key] !== undefined) {
      if (typeof c[key] !== 'boolean') throw new CniError(CNI_CODES.INVALID_CONFIG, `${key} must be true or false, got ${JSON.stringify(c[key])}`);
      conf[key] = c[key] as boolean;
    }
  }
  if (conf.isDefaultGateway) conf.isGateway = true; // the default route points at the bridge's address
  const ipam = c.ipam as { type?: unknown } | undefined;
  if (req.command !== 'STATUS' || ipam !== undefined) {
    if (!ipam || typeof ipam !== 'object' || typeof ipam.type !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(ipam.type)) {
      throw new CniError(CNI_CODES.INVALID_CONFIG, 'ipam.type must name an IPAM plugin, like {"type": "berth-ipam", "pool": "NAME"}');
    }
    conf.ipamType = ipam.type;
  }
  const rc = c.runtimeConfig as { mac?: unknown } | undefined;
  const mac = rc?.mac ?? req.args.get('MAC');
  if (mac !== undefined) {
    if (typeof mac !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) {
      throw new CniError(CNI_CODES.INVALID_CONFIG, `mac must be like 02:42:ac:11:00:02, got ${JSON.stringify(mac)}`);
    }
    conf.mac = mac.toLowerCase();
  }
  return conf;
}

/** The name of the 802.1Q sub-interface of master for vlan. */
export function vlanLinkName(master: string, vlan: number): string {
  return `${master}.${vlan}`;
}

function ifname(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new CniError(CNI_CODES.INVALID_CONFIG, `${field} must be an interface name`);
  validateIfname(value, field, CNI_CODES.INVALID_CONFIG);
  return value;
}
