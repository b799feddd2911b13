// berth-ovs, the CNI plugin for Open vSwitch VLAN access and trunk ports, as the runtime sees it.
import type { PluginSpec } from '../skel.js';
import { parseLogConfig } from '../log.js';
import { KNOWN_ARGS } from '../berth-ipam/config.js';
import { parseOvsConfig, type OvsConfig } from './config.js';

export const spec: PluginSpec<OvsConfig> = {
  name: 'berth-ovs',
  knownArgs: KNOWN_ARGS,
  logConfig: (config) => {
    try {
      return parseLogConfig(config.log, 'log');
    } catch {
      return {}; // reported by parse
    }
  },
  parse: parseOvsConfig,
  load: async () => (await import('./plugin.js')).plugin,
};
