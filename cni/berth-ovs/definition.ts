// berth-ovs, the CNI plugin for Open vSwitch VLAN access and trunk ports, as the runtime sees it.
import { attachSpec } from '../attach-config.js';
import { parseOvsConfig, type OvsConfig } from './config.js';

export const spec = attachSpec<OvsConfig>('berth-ovs', parseOvsConfig, async () => (await import('./plugin.js')).plugin);
