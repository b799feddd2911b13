// The rtnetlink messages berth sends and reads, encoded and decoded here:
// the framing of a request and of the kernel's answer, and the dozen message
// shapes the plugins use. (The netlink package's generated codecs for every
// link kind and attribute cost ~5 ms and a third of the bundle's code cache
// in every plugin call; cni/netlink.ts says why its socket is not used
// either.) Pure functions over Buffers; layouts from linux/netlink.h,
// linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h and linux/veth.h, in
// host byte order.
import { getSystemErrorMap } from 'node:util';
import { endianness } from 'node:os';

const LE = endianness() === 'LE';

/** Message types (RTM_*). */
export const RTM = { NEWLINK: 16, DELLINK: 17, GETLINK: 18, SETLINK: 19, NEWADDR: 20, GETADDR: 22, NEWROUTE: 24, GETROUTE: 26 } as const;

/** Request flags beside REQUEST and ACK, which requestMessage adds. */
export const NLM_F = { DUMP: 0x300, EXCL: 0x200, CREATE: 0x400 } as const;

const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLMSG_HDRLEN = 16;

/** Link flags (IFF_*). */
export const IFF = { UP: 0x1, PROMISC: 0x100 } as const;

const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, LINK: 5, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28, NUM_TX_QUEUES: 31, NUM_RX_QUEUES: 32 } as const;
const IFLA_INFO = { KIND: 1, DATA: 2 } as const;
const VETH_INFO_PEER = 1;
const IFLA_VLAN_ID = 1;
const IFA = { ADDRESS: 1, LOCAL: 2 } as const;
const RTA = { DST: 1, OIF: 4, GATEWAY: 5, TABLE: 15 } as const;
const NLA_TYPE_MASK = 0x3fff; // without NLA_F_NESTED and NLA_F_NET_BYTEORDER

/** One attribute: its type and its payload (a u32, a NUL-terminated string, bytes, or nested attributes). */
export type Attr = [type: number, value: number | string | Buffer | Attr[]];

function writeU32(b: Buffer, at: number, n: number): void {
  if (LE) b.writeUInt32LE(n >>> 0, at);
  else b.writeUInt32BE(n >>> 0, at);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  writeU32(b, 0, n);
  return b;
}

function readU32(b: Buffer, at: number): number {
  return LE ? b.readUInt32LE(at) : b.readUInt32BE(at);
}

function writeU16(b: Buffer, at: number, n: number): void {
  if (LE) b.writeUInt16LE(n, at);
  else b.writeUInt16BE(n, at);
}

function readU16(b: Buffer, at: number): number {
  return LE ? b.readUInt16LE(at) : b.readUInt16BE(at);
}

const pad4 = (n: number): number => (n + 3) & ~3;

/** A whole request: struct nlmsghdr (the kernel fills in the port) and the body, an ACK asked for. */
export function requestMessage(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const head = Buffer.alloc(NLMSG_HDRLEN);
  writeU32(head, 0, NLMSG_HDRLEN + body.length);
  writeU16(head, 4, type);
  writeU16(head, 6, flags | NLM_F_REQUEST | NLM_F_ACK);
  writeU32(head, 8, seq);
  return Buffer.concat([head, body]);
}

/**
 * Node's name and description of a kernel errno. Node's map is libuv's, where
 * a system error is its negated errno and libuv's own codes (EAI_* from -3000,
 * EFTYPE, ECHARSET, UNKNOWN, EOF up to -4095) sit where no Linux errno does
 * (the highest is in the low hundreds): a number from there is no errno Node
 * can name, and naming it EOF would send the reader the wrong way.
 */
function errnoEntry(errno: number): [name: string, description: string] | undefined {
  return errno < 3000 ? getSystemErrorMap().get(-errno) : undefined;
}

/** The kernel refused a request: errno and its name (ENODEV, EEXIST, ...) in `code`. */
export class KernelError extends Error {
  constructor(
    readonly errno: number,
    readonly code: string,
    request: string,
  ) {
    super(`the kernel refused ${request}: ${code} (${errnoEntry(errno)?.[1] ?? 'unknown error'})`);
    this.name = 'KernelError';
  }
}

const RTM_NAMES: Record<number, string> = Object.fromEntries(Object.entries(RTM).map(([name, type]) => [type, `RTM_${name}`]));

/**
 * The bodies of the kernel's answer to request `seq` of `type` (none for a
 * plain ACK), read from the bytes received; messages of other sequence
 * numbers are skipped. An error answer is thrown as a KernelError; an answer
 * that is cut short or malformed is refused.
 */
export function answerBodies(bytes: Buffer, type: number, seq: number): Buffer[] {
  const bodies: Buffer[] = [];
  for (let at = 0; at + NLMSG_HDRLEN <= bytes.length; ) {
    const len = readU32(bytes, at);
    if (len < NLMSG_HDRLEN || at + len > bytes.length) break;
    const msgType = readU16(bytes, at + 4);
    const msgSeq = readU32(bytes, at + 8);
    const body = bytes.subarray(at + NLMSG_HDRLEN, at + len);
    at += pad4(len);
    if (msgSeq !== seq) continue;
    if (msgType === NLMSG_DONE) return bodies;
    if (msgType === NLMSG_ERROR) {
      if (body.length < 4) break;
      const err = LE ? body.readInt32LE(0) : body.readInt32BE(0);
      if (err === 0) return bodies;
      throw new KernelError(-err, errnoEntry(-err)?.[0] ?? `errno ${-err}`, RTM_NAMES[type] ?? `message type ${type}`);
    }
    bodies.push(body);
  }
  throw new Error(`rtnetlink answer of ${bytes.length} bytes to ${RTM_NAMES[type] ?? `message type ${type}`} is cut short or malformed`);
}

/** Attributes in netlink's TLV form: 2 bytes length, 2 bytes type, the payload, padded to 4 bytes. */
export function encodeAttrs(attrs: Attr[]): Buffer {
  const parts: Buffer[] = [];
  for (const [type, value] of attrs) {
    const payload =
      typeof value === 'number' ? u32(value) : typeof value === 'string' ? Buffer.from(`${value}\0`) : Buffer.isBuffer(value) ? value : encodeAttrs(value);
    const head = Buffer.alloc(4);
    writeU16(head, 0, 4 + payload.length);
    writeU16(head, 2, type);
    parts.push(head, payload, Buffer.alloc(pad4(payload.length) - payload.length));
  }
  return Buffer.concat(parts);
}

/** The attributes in `b` from `at` on, by type (the first of each type); a malformed length ends the walk. */
export function decodeAttrs(b: Buffer, at = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  while (at + 4 <= b.length) {
    const len = readU16(b, at);
    if (len < 4 || at + len > b.length) break;
    const type = readU16(b, at + 2) & NLA_TYPE_MASK;
    if (!out.has(type)) out.set(type, b.subarray(at + 4, at + len));
    at += pad4(len);
  }
  return out;
}

/** The attributes after a message's fixed `head` bytes; a body shorter than its head is refused, naming the kind. */
function bodyAttrs(b: Buffer, head: number, kind: string): Map<number, Buffer> {
  if (b.length < head) throw new Error(`rtnetlink ${kind} message of ${b.length} bytes is too short`);
  return decodeAttrs(b, head);
}

const cstr = (b: Buffer): string => {
  const end = b.indexOf(0);
  return b.toString('utf8', 0, end < 0 ? b.length : end);
};

/** struct ifinfomsg (16 bytes): family, type, index, flags and the mask of flags to change. */
export function ifinfomsg(m: { index?: number; flags?: number; change?: number } = {}): Buffer {
  const b = Buffer.alloc(16);
  writeU32(b, 4, m.index ?? 0);
  writeU32(b, 8, m.flags ?? 0);
  writeU32(b, 12, m.change ?? 0);
  return b;
}

/** What a link's options are, for RTM_NEWLINK. */
export interface NewLink {
  name: string;
  mtu?: number;
  master?: number;
  /** the parent link, for a VLAN sub-interface */
  link?: number;
  mac?: Buffer;
  /** the namespace, open at this fd, to create the link in */
  netnsFd?: number;
  /** transmit and receive queues to allocate (the kernel's default when absent) */
  queues?: number;
  kind?: { name: 'bridge' } | { name: 'veth'; peer: NewLink } | { name: 'vlan'; id: number };
}

function linkAttrs(l: NewLink): Attr[] {
  const attrs: Attr[] = [[IFLA.IFNAME, l.name]];
  if (l.mtu) attrs.push([IFLA.MTU, l.mtu]);
  if (l.master) attrs.push([IFLA.MASTER, l.master]);
  if (l.link) attrs.push([IFLA.LINK, l.link]);
  if (l.mac) attrs.push([IFLA.ADDRESS, l.mac]);
  if (l.netnsFd !== undefined) attrs.push([IFLA.NET_NS_FD, l.netnsFd]);
  if (l.queues) attrs.push([IFLA.NUM_TX_QUEUES, l.queues], [IFLA.NUM_RX_QUEUES, l.queues]);
  const k = l.kind;
  if (k) {
    const info: Attr[] = [[IFLA_INFO.KIND, k.name]];
    // the peer is a whole ifinfomsg with its own attributes
    if (k.name === 'veth') info.push([IFLA_INFO.DATA, [[VETH_INFO_PEER, Buffer.concat([ifinfomsg(), encodeAttrs(linkAttrs(k.peer))])]]]);
    if (k.name === 'vlan') {
      const id = Buffer.alloc(2); // a u16
      writeU16(id, 0, k.id);
      info.push([IFLA_INFO.DATA, [[IFLA_VLAN_ID, id]]]);
    }
    attrs.push([IFLA.LINKINFO, info]);
  }
  return attrs;
}

/** The body of an RTM_NEWLINK that creates `l`, with `up` set on it in the same message when asked. */
export function newLinkBody(l: NewLink, up = false): Buffer {
  return Buffer.concat([ifinfomsg(up ? { flags: IFF.UP, change: IFF.UP } : {}), encodeAttrs(linkAttrs(l))]);
}

/** The body of an RTM_GETLINK or RTM_DELLINK of one link by name (no index: the kernel looks the name up). */
export function linkByNameBody(name: string): Buffer {
  return Buffer.concat([ifinfomsg(), encodeAttrs([[IFLA.IFNAME, name]])]);
}

/** The body of an RTM_SETLINK: flags under the mask `change`, and a new master and MAC when given. */
export function setLinkBody(index: number, set: { flags?: number; change?: number; master?: number; mac?: Buffer }): Buffer {
  const attrs: Attr[] = set.master !== undefined ? [[IFLA.MASTER, set.master]] : [];
  if (set.mac) attrs.push([IFLA.ADDRESS, set.mac]);
  return Buffer.concat([ifinfomsg({ index, flags: set.flags ?? 0, change: set.change ?? 0 }), encodeAttrs(attrs)]);
}

/** A link as the kernel described it. */
export interface Link {
  index: number;
  name: string;
  flags: number;
  kind?: string;
  master?: number;
  mtu?: number;
  mac?: Buffer;
}

/** Reads an RTM_NEWLINK message body (an answer to GETLINK). */
export function decodeLink(b: Buffer): Link {
  const a = bodyAttrs(b, 16, 'link');
  const link: Link = { index: readU32(b, 4) | 0, flags: readU32(b, 8), name: a.has(IFLA.IFNAME) ? cstr(a.get(IFLA.IFNAME)!) : '' };
  const info = a.get(IFLA.LINKINFO);
  if (info) {
    const kind = decodeAttrs(info).get(IFLA_INFO.KIND);
    if (kind) link.kind = cstr(kind);
  }
  if (a.has(IFLA.MASTER)) link.master = readU32(a.get(IFLA.MASTER)!, 0);
  if (a.has(IFLA.MTU)) link.mtu = readU32(a.get(IFLA.MTU)!, 0);
  if (a.has(IFLA.ADDRESS)) link.mac = Buffer.from(a.get(IFLA.ADDRESS)!);
  return link;
}

/** struct ifaddrmsg (8 bytes) and IFA_LOCAL + IFA_ADDRESS: the body of an RTM_NEWADDR. */
export function newAddressBody(a: { family: 4 | 6; prefix: number; index: number; address: Buffer }): Buffer {
  const head = Buffer.alloc(8);
  head[0] = a.family === 4 ? 2 : 10;
  head[1] = a.prefix;
  writeU32(head, 4, a.index);
  return Buffer.concat([head, encodeAttrs([[IFA.LOCAL, a.address], [IFA.ADDRESS, a.address]])]);
}

/**
 * The body of an RTM_GETADDR or RTM_GETROUTE dump, of every family or of
 * one. (An address dump of one family takes no link lock on kernels since
 * 6.9, where one of every family still does.)
 */
export function dumpBody(kind: 'address' | 'route', family?: 4 | 6): Buffer {
  const b = Buffer.alloc(kind === 'address' ? 8 : 12);
  if (family) b[0] = family === 4 ? 2 : 10;
  return b;
}

/** An address as the kernel described it. */
export interface Address {
  family: 4 | 6;
  prefix: number;
  index: number;
  address?: Buffer;
}

/** Reads an RTM_NEWADDR message body. */
export function decodeAddress(b: Buffer): Address {
  const a = bodyAttrs(b, 8, 'address');
  const out: Address = { family: b[0] === 10 ? 6 : 4, prefix: b[1]!, index: readU32(b, 4) };
  const addr = a.get(IFA.ADDRESS) ?? a.get(IFA.LOCAL);
  if (addr) out.address = Buffer.from(addr);
  return out;
}

/** The main routing table. */
export const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;

/** struct rtmsg (12 bytes) and its attributes: a unicast route in the main table, via gw or on-link. */
export function newRouteBody(r: { family: 4 | 6; dst?: Buffer; prefix: number; gateway?: Buffer; oif: number }): Buffer {
  const head = Buffer.alloc(12);
  head[0] = r.family === 4 ? 2 : 10;
  head[1] = r.prefix;
  head[4] = RT_TABLE_MAIN;
  head[5] = RTPROT_BOOT;
  head[6] = r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  head[7] = RTN_UNICAST;
  const attrs: Attr[] = [[RTA.OIF, r.oif]];
  if (r.prefix > 0 && r.dst) attrs.push([RTA.DST, r.dst]);
  if (r.gateway) attrs.push([RTA.GATEWAY, r.gateway]);
  return Buffer.concat([head, encodeAttrs(attrs)]);
}

/** A route as the kernel described it. */
export interface Route {
  family: 4 | 6;
  prefix: number;
  table: number;
  dst?: Buffer;
  gateway?: Buffer;
  oif?: number;
}

/** Reads an RTM_NEWROUTE message body; RTA_TABLE, when present, is the table (rtm_table holds only 8 bits). */
export function decodeRoute(b: Buffer): Route {
  const a = bodyAttrs(b, 12, 'route');
  const out: Route = { family: b[0] === 10 ? 6 : 4, prefix: b[1]!, table: a.has(RTA.TABLE) ? readU32(a.get(RTA.TABLE)!, 0) : b[4]! };
  if (a.has(RTA.DST)) out.dst = Buffer.from(a.get(RTA.DST)!);
  if (a.has(RTA.GATEWAY)) out.gateway = Buffer.from(a.get(RTA.GATEWAY)!);
  if (a.has(RTA.OIF)) out.oif = readU32(a.get(RTA.OIF)!, 0);
  return out;
}
