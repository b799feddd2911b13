// berth-bridge, the CNI plugin for a Linux bridge (optionally behind an 802.1Q VLAN), as the runtime sees it.
import { attachSpec } from '../attach-config.js';
import { parseBridgeConfig, type BridgeConfig } from './config.js';

export const spec = attachSpec<BridgeConfig>('berth-bridge', parseBridgeConfig, async () => (await import('./plugin.js')).plugin);
