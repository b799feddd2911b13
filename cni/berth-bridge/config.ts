// berth-bridge's config: defaults first, then parse, then validate with
// messages that name the field. Light on purpose: it runs before any link or
// store code is loaded.
import { parseAttachConfig, type AttachConfig } from '../attach-config.js';
import { CNI_CODES, CniError } from '../errors.js';
import { validateIfname, type Request } from '../skel.js';

export interface BridgeConfig extends AttachConfig {
  bridge: string;
  /** host NIC whose 802.1Q sub-interface uplinks the bridge */
  master?: string;
  vlan?: number;
  isGateway: boolean;
  isDefaultGateway: boolean;
  hairpinMode: boolean;
  promiscMode: boolean;
}

const OWN = ['bridge', 'master', 'vlan', 'isGateway', 'isDefaultGateway', 'hairpinMode', 'promiscMode'];
// the reference bridge plugin's settings berth-bridge does not implement
const UNSUPPORTED = ['ipMasq', 'vlanTrunk', 'enabledad', 'macspoofchk', 'disableContainerInterface', 'forceAddress', 'preserveDefaultVlan', 'portIsolation'];

/** Validates berth-bridge's config. */
export function parseBridgeConfig(req: Request): BridgeConfig {
  const c = req.config;
  const conf: BridgeConfig = {
    ...parseAttachConfig(req, OWN, UNSUPPORTED),
    bridge: 'cni0',
    isGateway: false,
    isDefaultGateway: false,
    hairpinMode: false,
    promiscMode: false,
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
  for (const key of ['isGateway', 'isDefaultGateway', 'hairpinMode', 'promiscMode'] as const) {
    if (c[key] !== undefined) {
      if (typeof c[key] !== 'boolean') throw new CniError(CNI_CODES.INVALID_CONFIG, `${key} must be true or false, got ${JSON.stringify(c[key])}`);
      conf[key] = c[key] as boolean;
    }
  }
  if (conf.isDefaultGateway) conf.isGateway = true; // the default route points at the bridge's address
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
