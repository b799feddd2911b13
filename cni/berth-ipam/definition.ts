// berth-ipam, the CNI IPAM plugin, as the runtime sees it.
import type { PluginSpec } from '../skel.js';
import { parseLogConfig } from '../log.js';
import { ipamSection, KNOWN_ARGS, parseIpamConfig, type IpamConfig } from './config.js';

/** berth-ipam as the runtime sees it. */
export const spec: PluginSpec<IpamConfig> = {
  name: 'berth-ipam',
  knownArgs: KNOWN_ARGS,
  logConfig: (config) => {
    try {
      return parseLogConfig(ipamSection(config).log, 'ipam.log');
    } catch {
      return {}; // reported by parse
    }
  },
  parse: parseIpamConfig,
  load: async () => (await import('./plugin.js')).plugin,
};

