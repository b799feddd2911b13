// What berth's main plugins (berth-bridge, berth-ovs) share once a request
// is valid: undoing a half-made attachment, and taking a container's side
// away on DEL. Their config and spec are in attach-config.ts.
import { closeSync, existsSync, openSync } from 'node:fs';
import { sha1Hex } from '../core/sha1.js';
import { announce } from './announce.js';
import type { AttachConfig } from './attach-config.js';
import { delegateIpam } from './delegate.js';
import { BERTH_CODES, CNI_CODES, CniError } from './errors.js';
import type { CniInterface, CniResult } from './result.js';
import { macSource, stableMac } from './mac.js';
import { isErrno, Links, rtnetlink } from './netlink.js';
import { probe } from './probe.js';
import type { Request } from './skel.js';

/** The host end's name: derived from the attachment, so DEL and CHECK find it with no local state. */
export function hostVethName(containerId: string, ifname: string): string {
  return `vb${sha1Hex(`${containerId}/${ifname}`).slice(0, 11)}`;
}

/**
 * The CNI error for a container interface name already taken in its
 * namespace. Checked before anything is asked for or made: a failed ADD undoes
 * its attachment, and a repeated ADD must not undo the one that is there.
 */
function refuseTakenName(inside: Links, ifname: string, netns: string): void {
  if (inside.lookup(ifname)) throw new CniError(BERTH_CODES.LINK_FAILED, `interface "${ifname}" already exists in ${netns}`);
}

/**
 * Runs create; when the name is taken by a host end of this same attachment
 * (left by an interrupted ADD), deletes that and creates again. The common
 * case costs no lookup beforehand.
 */
export async function createReplacingStale<T>(host: Links, hostName: string, create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
    const stale = await host.byName(hostName);
    if (!stale) throw err;
    await host.delete(stale.index);
    return create();
  }
}

/** What one main plugin does in an ADD; attachAdd does the rest, the same for every plugin. */
export interface AttachSteps {
  /** refusals before anything is asked for or made (the interface name is checked already) */
  prepare?(): Promise<void>;
  /**
   * The host side: the veth `hostName` made with its peer `req.ifname` in the
   * namespace open at `nsFd`, up and joined to the switch; `asked` is the
   * IPAM request in flight (settled before any undo). Returns the host end's MAC.
   */
  connect(ctx: { host: Links; hostName: string; nsFd: number; asked: Promise<CniResult | undefined> }): Promise<{ hostMac: string }>;
  /** work beside the container's own configuration, given its addresses (the gateway on the bridge) */
  beside?(ipam: CniResult, host: Links): Promise<void>;
  /** the container's routes for an IPAM result */
  routes(ipam: CniResult): Array<{ dst: string; gw?: string }>;
  /** the result's interfaces before the container's: the switch's and the host end's */
  interfaces(hostMac: string, host: Links): Promise<CniInterface[]>;
  /** undoes what connect made beyond the veth (an OVS port) after a failed ADD */
  undo?(): Promise<void>;
  /** what the "attached" log line says of the host side */
  describe(): Record<string, unknown>;
}

/**
 * An ADD of a berth main plugin: the name checked, the plugin's refusals,
 * the address asked for while the host side is made (neither needs the
 * other, and in a start storm both wait: the store on its round trips, the
 * links on the kernel's lock), the container's side configured and its
 * addresses probed and announced, the result built. Any failure undoes
 * everything (the plugin's own part, the veth, the address) and reports the
 * IPAM request's error when it had one (it says more: try again later, an
 * exhausted pool).
 */
export async function attachAdd(req: Request, conf: AttachConfig, steps: AttachSteps): Promise<CniResult> {
  const host = new Links(rtnetlink());
  const nsFd = openNetns(req.netns);
  const inside = new Links(rtnetlink(req.netns));
  try {
    refuseTakenName(inside, req.ifname, req.netns);
    await steps.prepare?.();
    const hostName = hostVethName(req.containerId, req.ifname);
    const asked = delegateIpam(req, conf.ipamType, 'ADD');
    asked.catch(() => {});
    let done = false;
    try {
      const veth = await steps.connect({ host, hostName, nsFd, asked });
      const c = inside.lookup(req.ifname)!;
      const given = (await asked)!;
      const beside = steps.beside ? steps.beside(given, host) : Promise.resolve();
      beside.catch(() => {});
      let mac: string | undefined;
      let ipam: CniResult;
      try {
        ({ mac, ipam } = await configureContainer(req, conf, inside, c, given, steps.routes));
      } finally {
        await beside.catch(() => {});
      }
      await beside;
      const ours = [...(await steps.interfaces(veth.hostMac, host)), { name: req.ifname, ...(mac ? { mac } : {}), ...(conf.mtu ? { mtu: conf.mtu } : {}), sandbox: req.netns }];
      done = true;
      req.log.info({ ...steps.describe(), ips: (ipam.ips ?? []).map((i) => i.address) }, 'attached');
      // routes the plugin added (a default route via the gateway) go into the result beside IPAM's, for CHECK and later plugins to see
      const added = steps.routes(ipam).filter((r) => !(ipam.routes ?? []).some((x) => x.dst === r.dst));
      const routes = [...(ipam.routes ?? []), ...added];
      return attachResult(req.prevResult, ours, routes.length > 0 ? { ...ipam, routes } : ipam, req.config.dns as CniResult['dns']);
    } catch (err) {
      throw await ipamErrorOr(asked, err);
    } finally {
      if (!done) {
        await asked.catch(() => {});
        await steps.undo?.().catch(() => {});
        await undoAttach(req, conf, host, hostName);
      }
    }
  } finally {
    closeSync(nsFd);
    host.close();
    inside.close();
  }
}

/** Undoes a half-made attachment after a failed ADD: the veth (its peer goes with it), then the address. */
async function undoAttach(req: Request, conf: AttachConfig, host: Links, hostName: string): Promise<void> {
  await host.deleteByName(hostName).catch(() => {});
  await delegateIpam(req, conf.ipamType, 'DEL').catch((err: Error) => req.log.error({ err: err.message }, 'failed to release the address after a failed ADD'));
}

/**
 * The error to report when the link work of an attachment failed while its
 * IPAM request ran beside it: the request's own failure if it had one (it
 * says more: TRY_AGAIN_LATER, an exhausted pool), else `err`. Waits for the
 * request to settle.
 */
async function ipamErrorOr(ipam: Promise<unknown>, err: unknown): Promise<unknown> {
  return (await ipam.then(() => undefined, (e: unknown) => e)) ?? err;
}

/**
 * DEL: the address released (IPAM DEL) while `detach` takes the interfaces
 * away. Neither needs the other, and each mostly waits: on the store, and on
 * the kernel (deleting a veth returns only after an RCU grace period). Both
 * are settled before DEL answers; when both fail, IPAM's error is reported.
 * A DEL that fails half-way is repeated by the runtime, and both halves are
 * idempotent.
 */
export async function releaseAndDetach(req: Request, conf: AttachConfig, detach: () => Promise<void>): Promise<void> {
  const released = delegateIpam(req, conf.ipamType, 'DEL');
  released.catch(() => {});
  try {
    await detach();
  } catch (err) {
    throw await ipamErrorOr(released, err);
  }
  await released;
}

/**
 * Takes the container's side away: its interface when the namespace is still
 * there, and the host end by its derived name (also when the namespace is gone).
 */
export async function detachContainer(req: Request, host: Links, hostName: string): Promise<void> {
  if (req.netns && existsSync(req.netns)) {
    const inside = new Links(rtnetlink(req.netns));
    try {
      await inside.deleteByName(req.ifname);
    } finally {
      inside.close();
    }
  }
  await host.deleteByName(hostName);
}

/** CHECK's common start: prevResult is required and IPAM checks its part first. Returns prevResult and a failure maker. */
export async function beginCheck(req: Request, conf: AttachConfig): Promise<{ prev: CniResult; fail: (msg: string) => CniError }> {
  if (!req.prevResult) throw new CniError(CNI_CODES.INVALID_CONFIG, 'CHECK needs prevResult');
  await delegateIpam(req, conf.ipamType, 'CHECK');
  return { prev: req.prevResult, fail: (msg: string) => new CniError(BERTH_CODES.CHECK_FAILED, msg) };
}

/** The MAC CHECK expects on the container's interface: the one asked for, else the one ADD reported in prevResult. */
export function expectedMac(req: Request, conf: AttachConfig, prev: CniResult): string | undefined {
  return conf.mac ?? prev.interfaces?.find((i) => i.name === req.ifname && i.sandbox === req.netns)?.mac?.toLowerCase();
}

/** prevResult (if chained) with this plugin's interfaces appended and the IPAM addresses pointing at the container's. */
function attachResult(prev: CniResult | undefined, ours: CniInterface[], ipam: CniResult, dns: CniResult['dns']): CniResult {
  const interfaces = [...(prev?.interfaces ?? []), ...ours];
  const containerIndex = interfaces.length - 1;
  const result: CniResult = {
    interfaces,
    ips: [...(prev?.ips ?? []), ...(ipam.ips ?? []).map((ip) => ({ ...ip, interface: containerIndex }))],
  };
  const routes = [...(prev?.routes ?? []), ...(ipam.routes ?? [])];
  if (routes.length > 0) result.routes = routes;
  const d = { ...(prev?.dns ?? {}), ...(dns ?? {}), ...(ipam.dns ?? {}) };
  if (Object.keys(d).length > 0) result.dns = d;
  return result;
}

/**
 * The routes a container gets: IPAM's (a route without a gateway goes via
 * the gateway of its family), and a default route via each gateway when
 * `defaultGateway` is set and IPAM gave none.
 */
export function containerRoutes(ipam: CniResult, defaultGateway: boolean): Array<{ dst: string; gw?: string }> {
  const routes: Array<{ dst: string; gw?: string }> = [...(ipam.routes ?? [])];
  if (defaultGateway) {
    for (const ip of ipam.ips ?? []) {
      const dst = ip.address.includes(':') ? '::/0' : '0.0.0.0/0';
      if (ip.gateway && !routes.some((r) => r.dst === dst)) routes.push({ dst, gw: ip.gateway });
    }
  }
  return routes.map((r) => {
    const gw = r.gw ?? ipam.ips?.find((ip) => ip.address.includes(':') === r.dst.includes(':'))?.gateway;
    return gw ? { dst: r.dst, gw } : { dst: r.dst };
  });
}

/** How many addresses in a row a probe may find in use before the ADD gives up. */
const CONFLICT_TRIES = 3;

/**
 * Makes the container's interface ready and announces it; returns its MAC
 * and the IPAM result it was made with. The MAC is the one asked for (set
 * when the veth was made), else, with stableMac, the one derived from its
 * address, else the kernel's. With probing on, the interface first gets its
 * MAC and comes up bare, and its addresses are probed (probe.ts); an address
 * another node claims is handed back to berth-ipam, which withdraws it and
 * gives another (another IPAM plugin: the ADD fails). Then, or at once
 * without probing, it gets its addresses, "up" and its routes (`routesOf`
 * the result) in one batch of requests (Links.configure); a refusal is a CNI
 * error. The announcements (announce.ts) are best effort: a failure is
 * logged, the ADD stands.
 */
async function configureContainer(
  req: Request,
  conf: AttachConfig,
  inside: Links,
  link: { index: number; mac?: string },
  ipam: CniResult,
  routesOf: (ipam: CniResult) => Array<{ dst: string; gw?: string }>,
): Promise<{ mac: string | undefined; ipam: CniResult }> {
  const macFor = (addresses: string[]) => {
    const source = macSource(addresses);
    return !conf.mac && conf.stableMac && source ? stableMac(source) : undefined;
  };
  const setUp = async (want: Parameters<Links['configure']>[1]) => {
    try {
      await inside.configure(link.index, want);
    } catch (err) {
      throw new CniError(BERTH_CODES.LINK_FAILED, `failed to set up ${req.ifname}: ${(err as Error).message}`, undefined, { cause: err });
    }
  };
  let addresses = (ipam.ips ?? []).map((ip) => ip.address);
  let derived = macFor(addresses);
  if (conf.probe.count > 0 && addresses.length > 0) {
    for (let tries = 0; ; tries++) {
      await setUp({ ...(derived ? { mac: derived } : {}), addresses: [], routes: [] });
      const conflicts = await probe(req.netns, link.index, conf.mac ?? derived ?? link.mac ?? '00:00:00:00:00:00', addresses, conf.probe);
      if (conflicts.length === 0) break;
      const seen = conflicts.map((c) => `${c.ip} by ${c.mac}`).join(', ');
      req.log.warn({ conflicts }, `address in use on the wire: ${seen}`);
      if (conf.ipamType !== 'berth-ipam') throw new CniError(BERTH_CODES.ADDRESS_IN_USE, `failed to set up ${req.ifname}: ${seen} answered the probe: the address is in use on the network`);
      if (tries + 1 >= CONFLICT_TRIES) throw new CniError(BERTH_CODES.ADDRESS_IN_USE, `failed to set up ${req.ifname}: ${CONFLICT_TRIES} addresses in a row were in use on the network (the last: ${seen}); each is reserved with a note`);
      ipam = (await delegateIpam(req, conf.ipamType, 'ADD', conflicts))!;
      addresses = (ipam.ips ?? []).map((ip) => ip.address);
      derived = macFor(addresses);
    }
    await setUp({ addresses, routes: routesOf(ipam) });
  } else {
    await setUp({ ...(derived ? { mac: derived } : {}), addresses, routes: routesOf(ipam) });
  }
  const mac = conf.mac ?? derived ?? link.mac;
  if (mac) {
    try {
      announce(req.netns, link.index, mac, addresses, conf.announce, req.longLived ?? false);
    } catch (err) {
      req.log.warn({ err: (err as Error).message }, `failed to announce the addresses of ${req.ifname}`);
    }
  }
  return { mac, ipam };
}

/** The container's namespace, or the CNI error a runtime expects for one that is gone. */
function openNetns(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    throw new CniError(CNI_CODES.UNKNOWN_CONTAINER, `failed to open network namespace "${path}": ${(err as Error).message}`);
  }
}
