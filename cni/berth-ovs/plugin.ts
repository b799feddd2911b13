// berth-ovs's handlers: containers on an Open vSwitch bridge as VLAN access
// or trunk ports. The veth is made as berth-bridge makes it (cni/netlink.ts);
// the port is added over OVSDB (cni/ovsdb.ts) in one transaction, and carries
// the attachment in its external_ids, so DEL and GC find it with no local cache.
import { attachAdd, beginCheck, containerRoutes, createReplacingStale, detachContainer, expectedMac, hostVethName, releaseAndDetach } from '../attach.js';
import { delegateIpam } from '../delegate.js';
import { BERTH_CODES, CNI_CODES, CniError } from '../errors.js';
import { Links, rtnetlink } from '../netlink.js';
import { OvsdbClient, type PortInfo } from '../ovsdb.js';
import { validAttachments, type Plugin } from '../skel.js';
import type { OvsConfig } from './config.js';

/** How long a new port may take to get an OpenFlow port number: vswitchd on a busy host has taken over 5 s. */
export const OFPORT_WAIT_MS = 15000;

const ATTACHMENT = 'berth.attachment';
const NETWORK = 'berth.network';

async function ovsdb(conf: OvsConfig, failCode: number): Promise<OvsdbClient> {
  try {
    return await OvsdbClient.connect(conf.ovsdbSocket, { timeout: 5000 });
  } catch (err) {
    throw new CniError(failCode, (err as Error).message, undefined, { cause: err });
  }
}

function ovsError(what: string, err: unknown): CniError {
  if (err instanceof CniError) return err;
  return new CniError(BERTH_CODES.OVSDB_FAILED, `failed to ${what}: ${(err as Error).message}`, undefined, { cause: err });
}

/** This network's ports on the bridge that belong to an attachment (or to any, when key is absent). */
async function portsOf(db: OvsdbClient, conf: OvsConfig, network: string, key?: string): Promise<PortInfo[]> {
  const ports = await db.listPorts(conf.bridge);
  return ports.filter((p) => p.externalIds[NETWORK] === network && (key === undefined || p.externalIds[ATTACHMENT] === key));
}

/** Waits (bounded) until vswitchd has opened the port's device. */
async function waitOfport(db: OvsdbClient, name: string): Promise<void> {
  const deadline = Date.now() + OFPORT_WAIT_MS;
  for (;;) {
    const iface = await db.getInterface(name);
    if (iface?.ofport !== undefined && iface.ofport > 0) return;
    if (iface?.ofport === -1 || Date.now() > deadline) {
      throw new CniError(BERTH_CODES.OVSDB_FAILED, `port "${name}" did not come up in Open vSwitch: ${iface?.error ?? `no OpenFlow port after ${OFPORT_WAIT_MS} ms`}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const plugin: Plugin<OvsConfig> = {
  async add(req, conf) {
    const db = await ovsdb(conf, CNI_CODES.TRY_AGAIN_LATER);
    const network = String(req.config.name);
    const key = `${req.containerId}/${req.ifname}`;
    const hostName = hostVethName(req.containerId, req.ifname);
    try {
      return await attachAdd(req, conf, {
        prepare: async () => {
          const bridges = await db.transact('Open_vSwitch', [{ op: 'select', table: 'Bridge', where: [['name', '==', conf.bridge]], columns: ['name'] }]);
          if ((bridges[0]?.rows ?? []).length === 0) throw new CniError(CNI_CODES.INVALID_CONFIG, `Open vSwitch bridge "${conf.bridge}" does not exist`);
          // ports of this attachment left by an earlier, interrupted ADD
          for (const stale of await portsOf(db, conf, network, key)) await db.deletePort(conf.bridge, stale.name);
        },
        connect: async ({ host, nsFd }) => {
          // up in the same message
          const veth = await createReplacingStale(host, hostName, () =>
            host.createVeth(hostName, req.ifname, nsFd, { ...(conf.mtu ? { mtu: conf.mtu } : {}), ...(conf.mac ? { peerMac: conf.mac } : {}), up: true }),
          ).catch((err: Error) => {
            throw err instanceof CniError ? err : new CniError(BERTH_CODES.LINK_FAILED, `failed to create veth "${hostName}": ${err.message}`);
          });
          await db
            .addPort(conf.bridge, {
              name: hostName,
              ...(conf.vlan !== undefined ? { vlanTag: conf.vlan } : {}),
              ...(conf.trunk ? { trunks: conf.trunk } : {}),
              externalIds: { [ATTACHMENT]: key, [NETWORK]: network, 'berth.netns': req.netns },
            })
            .catch((err: Error) => {
              throw ovsError(`add port "${hostName}" to "${conf.bridge}"`, err);
            });
          await waitOfport(db, hostName);
          return veth;
        },
        routes: (ipam) => containerRoutes(ipam, false),
        interfaces: async (hostMac) => [{ name: hostName, mac: hostMac }],
        undo: async () => void (await db.deletePort(conf.bridge, hostName)),
        describe: () => ({ bridge: conf.bridge, port: hostName, vlan: conf.vlan, trunk: conf.trunk }),
      });
    } finally {
      db.close();
    }
  },

  async del(req, conf) {
    await releaseAndDetach(req, conf, async () => {
      // The interfaces go while the port rows are found and deleted: the
      // kernel takes ~15 ms to tear a veth down, OVSDB answers in round
      // trips, and neither needs the other. (Until its row goes, OVS sees
      // the port's device gone; a DEL that fails half-way is repeated, and
      // both halves are idempotent.)
      const host = new Links(rtnetlink());
      const unlinked = detachContainer(req, host, hostVethName(req.containerId, req.ifname));
      unlinked.catch(() => {});
      try {
        const db = await ovsdb(conf, CNI_CODES.TRY_AGAIN_LATER);
        try {
          for (const p of await portsOf(db, conf, String(req.config.name), `${req.containerId}/${req.ifname}`)) {
            await db.deletePort(conf.bridge, p.name).catch((err: Error) => {
              throw ovsError(`delete port "${p.name}"`, err);
            });
          }
        } finally {
          db.close();
        }
        await unlinked;
      } catch (err) {
        await unlinked.catch(() => {});
        throw err;
      } finally {
        host.close();
      }
    });
  },

  async check(req, conf) {
    const { prev, fail } = await beginCheck(req, conf);
    const db = await ovsdb(conf, CNI_CODES.TRY_AGAIN_LATER);
    const inside = new Links(rtnetlink(req.netns));
    try {
      const hostName = hostVethName(req.containerId, req.ifname);
      const port = (await db.listPorts(conf.bridge)).find((p) => p.name === hostName);
      if (!port) throw fail(`port "${hostName}" is not on Open vSwitch bridge "${conf.bridge}"`);
      if (conf.vlan !== undefined && port.tag !== conf.vlan) throw fail(`port "${hostName}" has VLAN tag ${port.tag ?? 'none'}, not ${conf.vlan}`);
      if (conf.vlan === undefined && port.tag !== undefined) throw fail(`port "${hostName}" has VLAN tag ${port.tag}, the config has none`);
      if (conf.trunk && port.trunks.join(',') !== conf.trunk.join(',')) throw fail(`port "${hostName}" trunks ${port.trunks.join(',') || 'none'}, not ${conf.trunk.join(',')}`);
      if (!port.interfaces.some((i) => i.ofport !== undefined && i.ofport > 0)) throw fail(`port "${hostName}" has no OpenFlow port`);
      const c = await inside.byName(req.ifname);
      if (!c) throw fail(`interface "${req.ifname}" is missing from ${req.netns}`);
      const mac = expectedMac(req, conf, prev);
      if (mac && c.mac !== mac) throw fail(`${req.ifname} has MAC ${c.mac}, not ${mac}`);
      const have = await inside.addresses(c.index);
      for (const ip of prev.ips ?? []) if (!have.includes(ip.address)) throw fail(`${req.ifname} lacks ${ip.address}`);
    } finally {
      db.close();
      inside.close();
    }
  },

  async gc(req, conf) {
    const valid = validAttachments(req.config);
    const db = await ovsdb(conf, CNI_CODES.TRY_AGAIN_LATER);
    const host = new Links(rtnetlink());
    const errors: string[] = [];
    try {
      for (const p of await portsOf(db, conf, String(req.config.name))) {
        if (valid.has(p.externalIds[ATTACHMENT] ?? '')) continue;
        try {
          await db.deletePort(conf.bridge, p.name);
          await host.deleteByName(p.name);
        } catch (err) {
          errors.push(`${p.name}: ${(err as Error).message}`); // keep going past one stuck port
        }
      }
    } finally {
      db.close();
      host.close();
    }
    await delegateIpam(req, conf.ipamType, 'GC');
    if (errors.length > 0) throw new CniError(BERTH_CODES.GC_INCOMPLETE, `gc failed on ${errors.length} ports: ${errors.join('; ')}`);
  },

  async status(req, conf) {
    const db = await ovsdb(conf, CNI_CODES.NOT_AVAILABLE);
    try {
      const rows = await db.transact('Open_vSwitch', [{ op: 'select', table: 'Bridge', where: [['name', '==', conf.bridge]], columns: ['name'] }]);
      if ((rows[0]?.rows ?? []).length === 0) throw new CniError(CNI_CODES.NOT_AVAILABLE, `Open vSwitch bridge "${conf.bridge}" does not exist`);
    } catch (err) {
      throw err instanceof CniError ? err : new CniError(CNI_CODES.NOT_AVAILABLE, (err as Error).message);
    } finally {
      db.close();
    }
    if (conf.ipamType) await delegateIpam(req, conf.ipamType, 'STATUS');
  },
};

