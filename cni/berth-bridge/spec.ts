// berth-bridge, the CNI plugin for a Linux bridge (optionally behind an 802.1Q VLAN), as the runtime sees it.
import type { PluginSpec } from '../skel.js';
import { parseLogConfig } from '../log.js';
import { KNOWN_ARGS } from '../berth-ipam/config.js';
import { parseBridgeConfig, type BridgeConfig } from './config.js';

export const spec: PluginSpec<BridgeConfig> = {
  name: 'berth-bridge',
  knownArgs: KNOWN_ARGS,
  logConfig: (config) => {
    try {
      return parseLogConfig(config.log, 'log');
    } catch {
      return {}; // reported by parse
    }
  },
  parse: parseBridgeConfig,
  load: async () => (await import('./plugin.js')).plugin,
};
