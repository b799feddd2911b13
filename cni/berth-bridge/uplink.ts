// The bridge's uplink as a plan: pure data, so the 802.1Q steps are tested on
// kernels that cannot run them (like the test machines), and executed by the
// plugin where the kernel can.
import { existsSync } from 'node:fs';
import type { BridgeConfig } from './config.js';
import { vlanLinkName } from './config.js';

export type UplinkStep =
  | { op: 'ensure-vlan'; name: string; master: string; id: number; mtu?: number }
  | { op: 'set-master'; link: string; bridge: string }
  | { op: 'up'; link: string };

/** The steps that put `master`'s VLAN sub-interface under the bridge; none without a VLAN. */
export function planUplink(conf: Pick<BridgeConfig, 'bridge' | 'master' | 'vlan' | 'mtu'>): UplinkStep[] {
  if (!conf.master || conf.vlan === undefined) return [];
  const name = vlanLinkName(conf.master, conf.vlan);
  const ensure: UplinkStep = { op: 'ensure-vlan', name, master: conf.master, id: conf.vlan };
  if (conf.mtu !== undefined) ensure.mtu = conf.mtu;
  return [ensure, { op: 'set-master', link: name, bridge: conf.bridge }, { op: 'up', link: name }];
}

/** Whether this kernel has 802.1Q VLAN support (the 8021q code registers /proc/net/vlan). */
export function kernelHasVlan(procNet = '/proc/net/vlan'): boolean {
  return existsSync(procNet);
}
