// berth-bridge's handlers: a container on a Linux bridge, optionally uplinked
// through an 802.1Q sub-interface of a host NIC. All link work is rtnetlink,
// in-process, on the host and inside the container's namespace.
import { writeFileSync } from 'node:fs';
import { parseCidr } from '../../core/address.js';
import { attachAdd, beginCheck, containerRoutes, createReplacingStale, detachContainer, expectedMac, hostVethName, releaseAndDetach } from '../attach.js';
import { delegateIpam } from '../delegate.js';
import { BERTH_CODES, CniError } from '../errors.js';
import { hostBridgeUp, Links, rtnetlink } from '../netlink.js';
import type { CniResult } from '../result.js';
import type { Plugin } from '../skel.js';
import type { BridgeConfig } from './config.js';
import { kernelHasVlan, planUplink } from './uplink.js';


function linkError(what: string, err: unknown): CniError {
  if (err instanceof CniError) return err;
  return new CniError(BERTH_CODES.LINK_FAILED, `failed to ${what}: ${(err as Error).message}`, undefined, { cause: err });
}

async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw linkError(what, err);
  }
}

/**
 * Bridges this process has found to be bridges, by name: their index. Once
 * known, a bridge is found again by an ioctl lookup (index and flags, read
 * under RCU, so it never waits for the link lock that registering links
 * takes). A bridge deleted and made again has a new index, and one that is
 * down is looked at again.
 */
const knownBridges = new Map<string, number>();

/** A VLAN uplink on a kernel without 802.1Q: refused before anything is asked for or made. */
function refuseMissingVlan(conf: BridgeConfig): void {
  if (planUplink(conf).length > 0 && !kernelHasVlan()) {
    throw new CniError(
      BERTH_CODES.KERNEL_UNSUPPORTED,
      `this kernel has no 802.1Q VLAN support (no /proc/net/vlan): cannot create ${conf.master}.${conf.vlan} for vlan ${conf.vlan}`,
    );
  }
}

/** The bridge and its uplink, made where missing. */
async function ensureBridge(host: Links, conf: BridgeConfig): Promise<{ index: number }> {
  const plan = planUplink(conf);
  const seen = host.lookup(conf.bridge);
  const known = seen?.up && knownBridges.get(conf.bridge) === seen.index ? seen : undefined;
  // a bridge not known yet is read from sysfs: a lookup by netlink would wait for the kernel's link lock
  const br = known ?? hostBridgeUp(conf.bridge) ?? (await step(`create bridge "${conf.bridge}"`, () => host.ensureBridge(conf.bridge, conf.mtu)));
  knownBridges.set(conf.bridge, br.index);
  for (const s of plan) {
    if (s.op === 'ensure-vlan') await step(`create VLAN sub-interface "${s.name}"`, () => host.ensureVlan(s.name, s.master, s.id, s.mtu));
    else if (s.op === 'set-master') {
      const link = (await host.byName(s.link))!;
      if (link.master !== br.index) await step(`attach "${s.link}" to "${s.bridge}"`, () => host.setMaster(link.index, br.index));
    } else await step(`bring "${s.link}" up`, async () => host.setUp((await host.byName(s.link))!.index));
  }
  if (conf.promiscMode) await step(`set "${conf.bridge}" promiscuous`, () => host.setPromisc(br.index, true));
  return br;
}

/**
 * The gateway addresses on the bridge, added where missing. Looked for
 * first, by a dump of the one family, which takes no link lock (kernel 6.9
 * on): an RTM_NEWADDR waits its turn for the lock, in a start storm up to
 * 1.4 s here, although after the first container it only finds the address there.
 */
async function ensureGateways(host: Links, bridgeIndex: number, bridge: string, ipam: CniResult): Promise<void> {
  for (const ip of ipam.ips ?? []) {
    if (!ip.gateway) continue;
    const want = parseCidr(`${ip.gateway}/${ip.address.split('/')[1]}`, 'gateway', true);
    const have = await step(`read the addresses of "${bridge}"`, () => host.addresses(bridgeIndex, want.family));
    if (have.some((h) => sameAddress(parseCidr(h, 'address', true), want))) continue;
    await step(`add gateway ${ip.gateway} to "${bridge}"`, () => host.addAddress(bridgeIndex, `${ip.gateway}/${want.prefix}`));
  }
}

function sameAddress(a: { hex: string; prefix: number }, b: { hex: string; prefix: number }): boolean {
  return a.hex === b.hex && a.prefix === b.prefix;
}

export const plugin: Plugin<BridgeConfig> = {
  async add(req, conf) {
    let br: { index: number } | undefined;
    return attachAdd(req, conf, {
      prepare: async () => refuseMissingVlan(conf),
      connect: async ({ host, hostName, nsFd, asked }) => {
        // A bridge that does not exist yet is made once the pool has given an
        // address: an ADD the pool refuses (no such pool, none free) leaves nothing.
        if (!host.lookup(conf.bridge)) await asked;
        br = await ensureBridge(host, conf);
        const bridge = br;
        // created on the bridge and up, in one message
        const veth = await step(`create veth "${hostName}" on "${conf.bridge}"`, () =>
          createReplacingStale(host, hostName, () =>
            host.createVeth(hostName, req.ifname, nsFd, { ...(conf.mtu ? { mtu: conf.mtu } : {}), ...(conf.mac ? { peerMac: conf.mac } : {}), master: bridge.index, up: true }),
          ),
        );
        if (conf.hairpinMode) {
          await step(`set hairpin mode on "${hostName}"`, async () => writeFileSync(`/sys/class/net/${hostName}/brport/hairpin_mode`, '1'));
        }
        return veth;
      },
      // The gateway is seen to on the bridge while the container's side is
      // made: where it has to be added, that waits its turn for the kernel's
      // link lock as the container's side does, and side by side the two
      // waits overlap. (An address given instead of one in use comes from the
      // same pool: the same gateway.)
      beside: (ipam, host) => (conf.isGateway ? ensureGateways(host, br!.index, conf.bridge, ipam) : Promise.resolve()),
      routes: (ipam) => containerRoutes(ipam, conf.isDefaultGateway),
      interfaces: async (hostMac, host) => {
        // read again: a bridge without a MAC of its own takes its lowest port's
        const brNow = host.lookup(conf.bridge) ?? (await host.byName(conf.bridge))!;
        return [{ name: conf.bridge, ...(brNow.mac ? { mac: brNow.mac } : {}) }, { name: hostVethName(req.containerId, req.ifname), mac: hostMac }];
      },
      describe: () => ({ bridge: conf.bridge, veth: hostVethName(req.containerId, req.ifname) }),
    });
  },

  async del(req, conf) {
    await releaseAndDetach(req, conf, async () => {
      const host = new Links(rtnetlink());
      try {
        await step(`delete the interfaces of ${req.containerId}/${req.ifname}`, () => detachContainer(req, host, hostVethName(req.containerId, req.ifname)));
      } finally {
        host.close();
      }
    });
  },

  async check(req, conf) {
    const { prev, fail } = await beginCheck(req, conf);
    const host = new Links(rtnetlink());
    const inside = new Links(rtnetlink(req.netns));
    try {
      const br = await host.byName(conf.bridge);
      if (!br || br.kind !== 'bridge') throw fail(`bridge "${conf.bridge}" is missing`);
      const hostName = hostVethName(req.containerId, req.ifname);
      const veth = await host.byName(hostName);
      if (!veth) throw fail(`host interface "${hostName}" is missing`);
      if (veth.master !== br.index) throw fail(`"${hostName}" is not on bridge "${conf.bridge}"`);
      for (const s of planUplink(conf)) {
        if (s.op !== 'ensure-vlan') continue;
        const vl = await host.byName(s.name);
        if (!vl || vl.kind !== 'vlan') throw fail(`VLAN sub-interface "${s.name}" is missing`);
        if (vl.master !== br.index) throw fail(`"${s.name}" is not on bridge "${conf.bridge}"`);
      }
      const c = await inside.byName(req.ifname);
      if (!c) throw fail(`interface "${req.ifname}" is missing from ${req.netns}`);
      const mac = expectedMac(req, conf, prev);
      if (mac && c.mac !== mac) throw fail(`${req.ifname} has MAC ${c.mac}, not ${mac}`);
      const idx = (prev.interfaces ?? []).findIndex((i) => i.name === req.ifname && i.sandbox === req.netns);
      const have = await inside.addresses(c.index);
      for (const ip of prev.ips ?? []) {
        if (idx >= 0 && ip.interface !== undefined && ip.interface !== idx) continue;
        if (!have.includes(ip.address)) throw fail(`${req.ifname} lacks ${ip.address}`);
      }
      const routes = await inside.routes();
      for (const r of prev.routes ?? []) {
        if (!routes.some((x) => x.dst === r.dst && (r.gw === undefined || x.gw === r.gw))) throw fail(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} is missing`);
      }
    } finally {
      host.close();
      inside.close();
    }
  },

  async gc(req, conf) {
    await delegateIpam(req, conf.ipamType, 'GC');
  },

  async status(req, conf) {
    if (conf.ipamType) await delegateIpam(req, conf.ipamType, 'STATUS');
  },
};
