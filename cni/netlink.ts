// rtnetlink for the plugins, in-process (npm `netlink`), on the host and
// inside a container's network namespace: no `ip` subprocess anywhere.
//
// A netlink socket belongs to the namespace it was created in. setns(2) moves
// only the calling thread, so a socket for a container is made by switching
// the main thread into its namespace, creating the socket (synchronously), and
// switching back, all in one tick: nothing else runs on the thread meanwhile.
import { closeSync, openSync } from 'node:fs';
// Only the rtnetlink parts of the netlink package: its index also loads
// nl80211, genl and wireguard (~12 ms more of a plugin's start-up).
import { createRtNetlink, type RtNetlinkSocket } from 'netlink/dist/rt/rt.js';
import * as rt from 'netlink/dist/rt/structs.js';
import * as ifla from 'netlink/dist/rt/ifla.js';
import { AttrStream } from 'netlink/dist/structs.js';
import { FlagsNew } from 'netlink/dist/constants.js';
import { native } from '../native/index.js';
import { formatIp, parseCidr, parseIp } from '../ipam/address.js';

const nl = () => ({ createRtNetlink, rt, ifla, AttrStream, FlagsNew });

/** A thrown error from the kernel, with its errno name (EEXIST, ENODEV, ...) when netlink gave one. */
export interface NetlinkError extends Error {
  errno?: number;
  code?: string;
}

/** True when err is a netlink error with the given errno name. */
export function isErrno(err: unknown, code: string): boolean {
  const e = err as NetlinkError;
  return e?.code === code || (typeof e?.message === 'string' && e.message.includes(code));
}

/** An rtnetlink socket in the namespace at `nsPath`, or in this process's own when absent. */
export function rtnetlink(nsPath?: string): RtNetlinkSocket {
  if (!nsPath) return nl().createRtNetlink();
  const { setns, CLONE_NEWNET } = native();
  const own = openSync('/proc/thread-self/ns/net', 'r');
  let target = -1;
  try {
    target = openSync(nsPath, 'r');
    setns(target, CLONE_NEWNET);
    try {
      return nl().createRtNetlink();
    } finally {
      setns(own, CLONE_NEWNET);
    }
  } finally {
    closeSync(own);
    if (target >= 0) closeSync(target);
  }
}

export interface LinkInfo {
  index: number;
  name: string;
  kind?: string;
  master?: number;
  mtu?: number;
  up: boolean;
  mac?: string;
}

/** Link operations on one socket. */
export class Links {
  constructor(readonly sock: RtNetlinkSocket) {}

  /** Every link of the namespace. */
  async list(): Promise<LinkInfo[]> {
    return (await this.sock.getLinks()).map(toLinkInfo);
  }

  /** The link of that name, if any: one RTM_GETLINK by name, not a dump of every link. */
  async byName(name: string): Promise<LinkInfo | undefined> {
    let msgs;
    try {
      msgs = await this.sock.getLink({}, { ifname: name });
    } catch (err) {
      if (isErrno(err, 'ENODEV')) return undefined;
      throw err;
    }
    return msgs.map(toLinkInfo).find((l) => l.name === name);
  }

  /**
   * The bridge of that name, created (up) when missing. Creating what exists
   * is not an error, and of two plugins racing to create it both succeed.
   */
  async ensureBridge(name: string, mtu?: number): Promise<LinkInfo> {
    const existing = await this.byName(name);
    if (existing) {
      if (existing.kind !== 'bridge') throw new Error(`"${name}" exists and is not a bridge (it is ${existing.kind ?? 'a device'})`);
      if (!existing.up) await this.setUp(existing.index);
      return existing;
    }
    const { ifla, FlagsNew } = nl();
    try {
      await this.sock.newLink({}, { ifname: name, ...(mtu ? { mtu } : {}), linkinfo: encode(ifla.formatInfo({ kind: 'bridge' })) }, { flags: FlagsNew.CREATE | FlagsNew.EXCL });
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err; // another plugin made it first
    }
    const made = await this.byName(name);
    if (!made || made.kind !== 'bridge') throw new Error(`"${name}" exists and is not a bridge`);
    if (!made.up) await this.setUp(made.index);
    return (await this.byName(name))!;
  }

  /** A veth pair: `hostName` here, its peer `peerName` created directly in the namespace open at `peerNsFd`. */
  async createVeth(hostName: string, peerName: string, peerNsFd: number, opts: { mtu?: number; peerMac?: string; master?: number; up?: boolean } = {}): Promise<LinkInfo> {
    const { ifla, rt, FlagsNew } = nl();
    const peerAttrs: Record<string, unknown> = { ifname: peerName, netNsFd: peerNsFd };
    if (opts.mtu) peerAttrs.mtu = opts.mtu;
    if (opts.peerMac) peerAttrs.address = parseMac(opts.peerMac);
    // `up` and `master` bring the host end up on its bridge in the same
    // message: one trip through the kernel's link lock instead of three. (The
    // peer cannot come up in it: the kernel configures it before the two ends
    // are joined, and a veth end without its peer refuses to open.)
    const upFlags = opts.up ? { flags: { up: true }, change: { up: true } } : {};
    const peer = Buffer.concat([rt.formatLink({}), encode(ifla.formatLinkAttrs(peerAttrs as never))]);
    const linkinfo = encode(ifla.formatInfo({ kind: 'veth', data: encode(ifla.formatVethInfo({ peer })) }));
    const attrs = { ifname: hostName, ...(opts.mtu ? { mtu: opts.mtu } : {}), ...(opts.master ? { master: opts.master } : {}), linkinfo };
    await this.sock.newLink(upFlags as never, attrs, { flags: FlagsNew.CREATE | FlagsNew.EXCL });
    const host = await this.byName(hostName);
    if (!host) throw new Error(`veth "${hostName}" vanished right after it was created`);
    return host;
  }

  /** Brings a link up. */
  async setUp(index: number): Promise<void> {
    await this.sock.setLink({ index, change: { up: true }, flags: { up: true } });
  }

  /** Attaches a link to a bridge. */
  async setMaster(index: number, master: number): Promise<void> {
    await this.sock.setLink({ index }, { master });
  }

  /** Deletes a link (its veth peer goes with it); a link already gone is fine. */
  async delete(index: number): Promise<void> {
    try {
      await this.sock.delLink({ index });
    } catch (err) {
      if (!isErrno(err, 'ENODEV')) throw err;
    }
  }

  /** Adds "ADDR/PREFIX" to a link; an address already there is fine. */
  async addAddress(index: number, cidr: string): Promise<void> {
    const c = parseCidr(cidr, 'address', true);
    const { FlagsNew } = nl();
    const bytes = Buffer.from(c.hex, 'hex');
    try {
      await this.sock.newAddress(
        { family: c.family === 4 ? 2 : 10, prefixlen: c.prefix, index },
        { local: bytes, address: bytes },
        { flags: FlagsNew.CREATE | FlagsNew.EXCL },
      );
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
  }

  /** The addresses on a link, as "ADDR/PREFIX". */
  async addresses(index: number): Promise<string[]> {
    const msgs = await this.sock.getAddresses();
    return msgs
      .filter((m) => m.data.index === index && m.attrs.address)
      .map((m) => `${formatIp((m.attrs.address as Buffer).toString('hex'))}/${m.data.prefixlen}`);
  }

  /** Adds a route via a gateway (or on-link when gw is absent) out of a link; an existing one is fine. */
  async addRoute(dst: string, gw: string | undefined, index: number): Promise<void> {
    const c = parseCidr(dst, 'route.dst');
    const { FlagsNew } = nl();
    const attrs: Record<string, unknown> = { oif: index };
    if (c.prefix > 0) attrs.dst = Buffer.from(c.first, 'hex');
    if (gw) attrs.gateway = Buffer.from(parseIp(gw, 'route.gw').hex, 'hex');
    try {
      await this.sock.newRoute(
        { family: c.family === 4 ? 2 : 10, dstLen: c.prefix, table: 254, protocol: 3, scope: gw ? 0 : 253, type: 1 } as never,
        attrs as never,
        { flags: FlagsNew.CREATE | FlagsNew.EXCL },
      );
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
  }

  /** The 802.1Q sub-interface `name` of link `master` for VLAN `id`, created when missing. */
  async ensureVlan(name: string, master: string, id: number, mtu?: number): Promise<LinkInfo> {
    const existing = await this.byName(name);
    if (existing) {
      if (existing.kind !== 'vlan') throw new Error(`"${name}" exists and is not a VLAN sub-interface`);
      return existing;
    }
    const parent = await this.byName(master);
    if (!parent) throw new Error(`master "${master}" does not exist`);
    const { ifla, FlagsNew } = nl();
    try {
      await this.sock.newLink(
        {},
        { ifname: name, link: parent.index, ...(mtu ? { mtu } : {}), linkinfo: encode(ifla.formatInfo({ kind: 'vlan', data: encode(ifla.formatVlan({ id })) })) } as never,
        { flags: FlagsNew.CREATE | FlagsNew.EXCL },
      );
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    return (await this.byName(name))!;
  }

  /** Sets promiscuous mode on a link. */
  async setPromisc(index: number, on: boolean): Promise<void> {
    await this.sock.setLink({ index, change: { promisc: true }, flags: on ? { promisc: true } : {} });
  }

  /** The main table's routes, as {dst CIDR, gw, oif}. */
  async routes(): Promise<Array<{ dst: string; gw?: string; oif?: number }>> {
    const msgs = await this.sock.getRoutes();
    return msgs
      .filter((m) => (m.data.table ?? 254) === 254 && (m.attrs.table ?? 254) === 254)
      .map((m) => {
        const family = m.data.family === 10 ? 6 : 4;
        const zero = family === 4 ? '00000000' : '0'.repeat(32);
        const dst = m.attrs.dst ? (m.attrs.dst as Buffer).toString('hex') : zero;
        const r: { dst: string; gw?: string; oif?: number } = { dst: `${formatIp(dst.padEnd(zero.length, '0'))}/${m.data.dstLen ?? 0}` };
        if (m.attrs.gateway) r.gw = formatIp((m.attrs.gateway as Buffer).toString('hex'));
        if (m.attrs.oif !== undefined) r.oif = m.attrs.oif;
        return r;
      });
  }

  /** Closes the socket. */
  close(): void {
    this.sock.socket.close();
  }
}

function toLinkInfo(m: rt.LinkMessage): LinkInfo {
  const info: LinkInfo = { index: m.data.index ?? 0, name: m.attrs.ifname ?? '', up: Boolean(m.data.flags?.up) };
  if (m.attrs.linkinfo) {
    const kind = ifla.parseInfo(m.attrs.linkinfo).kind;
    if (kind) info.kind = kind;
  }
  if (m.attrs.master !== undefined) info.master = m.attrs.master;
  if (m.attrs.mtu !== undefined) info.mtu = m.attrs.mtu;
  if (m.attrs.address) info.mac = formatMac(m.attrs.address);
  return info;
}

function encode(data: unknown): Buffer {
  const stream = new AttrStream();
  stream.emit(data as never);
  return Buffer.concat(stream.bufs);
}

/** "aa:bb:cc:dd:ee:ff" from 6 bytes. */
export function formatMac(bytes: Buffer): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** 6 bytes from "aa:bb:cc:dd:ee:ff"; throws naming the value otherwise. */
export function parseMac(text: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) throw new Error(`"${text}" is not a MAC address like 02:42:ac:11:00:02`);
  return Buffer.from(text.replace(/:/g, ''), 'hex');
}
