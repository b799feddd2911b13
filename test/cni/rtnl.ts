// berth's rtnetlink codecs (cni/rtnl.ts) against the netlink package's own
// generated ones, both ways: what berth encodes, the package decodes to the
// same fields, and what the package encodes, berth reads back. The kernel's
// side is proven in netlink.ts and berth-bridge.ts, on real namespaces.
import t from 'tap';
import * as pkg from 'netlink/dist/rt/structs.js';
import * as ifla from 'netlink/dist/rt/ifla.js';
import { AttrStream } from 'netlink/dist/structs.js';
import * as rtnl from '../../cni/rtnl.js';

const stream = (emit: (s: AttrStream) => void): Buffer => {
  const s = new AttrStream();
  emit(s);
  return Buffer.concat(s.bufs);
};
const attrs = (data: unknown): Buffer => stream((s) => s.emit(data as never));

t.test('a veth with its peer in another namespace, up on a bridge: the package reads every field', async (t) => {
  const mac = Buffer.from('020000000001', 'hex');
  const body = rtnl.newLinkBody({ name: 'vbabc', mtu: 1400, master: 7, queues: 1, kind: { name: 'veth', peer: { name: 'eth0', netnsFd: 19, mtu: 1400, mac, queues: 1 } } }, true);
  const m = pkg.parseLinkMessage(body);
  t.equal(m.data.flags?.up, true, 'IFF_UP set');
  t.equal(m.data.change?.up, true, 'and in the change mask');
  t.equal(m.attrs.ifname, 'vbabc');
  t.equal(m.attrs.mtu, 1400);
  t.equal(m.attrs.master, 7);
  t.equal(m.attrs.numTxQueues, 1, 'one transmit queue asked for');
  t.equal(m.attrs.numRxQueues, 1, 'and one receive queue');
  const info = ifla.parseInfo(m.attrs.linkinfo!);
  t.equal(info.kind, 'veth');
  const peerBuf = ifla.parseVethInfo(info.data!).peer!;
  const peer = pkg.parseLinkMessage(peerBuf);
  t.equal(peer.attrs.ifname, 'eth0', 'the peer has its own ifinfomsg and name');
  t.equal(peer.attrs.netNsFd, 19, 'and the namespace fd');
  t.same(peer.attrs.address, mac, 'and the MAC');
  t.equal(peer.attrs.mtu, 1400);
  t.equal(peer.attrs.numTxQueues, 1, 'the peer too');
  t.equal(peer.attrs.numRxQueues, 1);
  t.equal(pkg.parseLinkMessage(rtnl.newLinkBody({ name: 'br0', kind: { name: 'bridge' } })).attrs.numTxQueues, undefined, 'the kernel default unless asked');
});

t.test('a bridge, a VLAN sub-interface, a lookup by name, set-link: as the package reads them', async (t) => {
  const br = pkg.parseLinkMessage(rtnl.newLinkBody({ name: 'br0', kind: { name: 'bridge' } }));
  t.equal(ifla.parseInfo(br.attrs.linkinfo!).kind, 'bridge');
  t.notOk(br.data.flags?.up, 'not up unless asked');
  const vl = pkg.parseLinkMessage(rtnl.newLinkBody({ name: 'eth1.100', link: 3, kind: { name: 'vlan', id: 100 } }));
  t.same(vl.attrs.link, Buffer.from([3, 0, 0, 0]), 'on its parent link (the package leaves IFLA_LINK raw; x86 and arm64 are little-endian)');
  const vinfo = ifla.parseInfo(vl.attrs.linkinfo!);
  t.equal(vinfo.kind, 'vlan');
  t.equal(ifla.parseVlan(vinfo.data!).id, 100, 'VLAN id 100 (a u16)');
  t.equal(pkg.parseLinkMessage(rtnl.linkByNameBody('eth0')).attrs.ifname, 'eth0');
  const up = pkg.parseLinkMessage(rtnl.setLinkBody(12, { flags: rtnl.IFF.UP, change: rtnl.IFF.UP }));
  t.equal(up.data.index, 12);
  t.equal(up.data.flags?.up, true);
  const promiscOff = pkg.parseLinkMessage(rtnl.setLinkBody(12, { flags: 0, change: rtnl.IFF.PROMISC }));
  t.equal(promiscOff.data.change?.promisc, true, 'promisc in the mask');
  t.notOk(promiscOff.data.flags?.promisc, 'and cleared');
  t.equal(pkg.parseLinkMessage(rtnl.setLinkBody(12, { master: 4 })).attrs.master, 4);
});

t.test('addresses and routes: as the package reads them', async (t) => {
  const a = pkg.parseAddressMessage(rtnl.newAddressBody({ family: 4, prefix: 24, index: 9, address: Buffer.from([10, 1, 2, 3]) }));
  t.equal(a.data.family, 2);
  t.equal(a.data.prefixlen, 24);
  t.equal(a.data.index, 9);
  t.same(a.attrs.local, Buffer.from([10, 1, 2, 3]));
  t.same(a.attrs.address, Buffer.from([10, 1, 2, 3]));
  const via = pkg.parseRouteMessage(rtnl.newRouteBody({ family: 4, prefix: 0, dst: Buffer.alloc(4), gateway: Buffer.from([10, 1, 2, 1]), oif: 9 }));
  t.equal(via.data.table, 254, 'main table');
  t.equal(via.data.dstLen, 0);
  t.equal(via.attrs.dst, undefined, 'a default route has no RTA_DST');
  t.same(via.attrs.gateway, Buffer.from([10, 1, 2, 1]));
  t.equal(via.attrs.oif, 9);
  t.equal(via.data.scope, 'UNIVERSE', 'universe scope via a gateway');
  t.equal(via.data.protocol, 'BOOT');
  t.equal(via.data.type, 'UNICAST');
  const onLink = pkg.parseRouteMessage(rtnl.newRouteBody({ family: 6, prefix: 64, dst: Buffer.from('fd000000000000000000000000000000', 'hex'), oif: 9 }));
  t.equal(onLink.data.family, 10);
  t.equal(onLink.data.scope, 'LINK', 'link scope without a gateway');
  t.same(onLink.attrs.dst, Buffer.from('fd000000000000000000000000000000', 'hex'));
});

t.test('what the package encodes, berth decodes', async (t) => {
  const link = rtnl.decodeLink(
    stream((s) =>
      pkg.formatLinkMessage(
        {
          kind: 'link',
          data: { index: 42, flags: { up: true } },
          attrs: { ifname: 'vbdef', mtu: 9000, master: 5, address: Buffer.from('0a0b0c0d0e0f', 'hex'), linkinfo: attrs(ifla.formatInfo({ kind: 'veth' })) },
        } as never,
        s,
      ),
    ),
  );
  t.same(link, { index: 42, flags: rtnl.IFF.UP, name: 'vbdef', kind: 'veth', master: 5, mtu: 9000, mac: Buffer.from('0a0b0c0d0e0f', 'hex') });
  const addr = rtnl.decodeAddress(stream((s) => pkg.formatAddressMessage({ kind: 'address', data: { family: 10, prefixlen: 64, index: 3 }, attrs: { address: Buffer.alloc(16, 1) } } as never, s)));
  t.same(addr, { family: 6, prefix: 64, index: 3, address: Buffer.alloc(16, 1) });
  const route = rtnl.decodeRoute(
    stream((s) => pkg.formatRouteMessage({ kind: 'route', data: { family: 2, dstLen: 16, table: 252 }, attrs: { dst: Buffer.from([10, 9, 0, 0]), oif: 4, table: 1000 } } as never, s)),
  );
  t.same(route, { family: 4, prefix: 16, table: 1000, dst: Buffer.from([10, 9, 0, 0]), oif: 4 }, 'RTA_TABLE wins over the 8-bit rtm_table');
});

t.test('malformed input: short messages throw naming the kind, a bad attribute length ends the walk', async (t) => {
  t.throws(() => rtnl.decodeLink(Buffer.alloc(8)), /link message of 8 bytes is too short/);
  t.throws(() => rtnl.decodeAddress(Buffer.alloc(4)), /address message/);
  t.throws(() => rtnl.decodeRoute(Buffer.alloc(4)), /route message/);
  const good = rtnl.encodeAttrs([[3, 'eth0']]);
  const bad = Buffer.concat([good, Buffer.from([0xff, 0x00, 0x04, 0x00])]); // claims 255 bytes
  t.same([...rtnl.decodeAttrs(bad).keys()], [3], 'the good attribute is read, the overlong one is not');
  const nested = rtnl.encodeAttrs([[18 | 0x8000, [[1, 'bridge']]]]);
  t.ok(rtnl.decodeAttrs(nested).has(18), 'NLA_F_NESTED is masked off the type');
});

t.test('framing: a request asks for an ACK; the answer is read to its ACK, error or DONE, by sequence number', async (t) => {
  const body = rtnl.linkByNameBody('vb1');
  const req = rtnl.requestMessage(rtnl.RTM.DELLINK, 0, 7, body);
  t.equal(req.readUInt32LE(0), 16 + body.length, 'nlmsg_len counts the header');
  t.equal(req.readUInt16LE(4), rtnl.RTM.DELLINK);
  t.equal(req.readUInt16LE(6), 0x1 | 0x4, 'NLM_F_REQUEST | NLM_F_ACK');
  t.equal(req.readUInt32LE(8), 7, 'the sequence number');
  t.equal(req.readUInt32LE(12), 0, 'port 0: the kernel fills it in');
  t.same(req.subarray(16), body);
  t.equal(rtnl.requestMessage(rtnl.RTM.GETLINK, rtnl.NLM_F.DUMP, 1, body).readUInt16LE(6), 0x300 | 0x5, 'DUMP kept beside them');

  // nlmsghdr + body, as the kernel sends them
  const msg = (type: number, seq: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(16 + payload.length, 0);
    h.writeUInt16LE(type, 4);
    h.writeUInt32LE(seq, 8);
    return Buffer.concat([h, payload, Buffer.alloc(((payload.length + 3) & ~3) - payload.length)]);
  };
  const errno = (n: number): Buffer => {
    const b = Buffer.alloc(20); // the error and the request's header
    b.writeInt32LE(n, 0);
    return b;
  };
  const link = rtnl.newLinkBody({ name: 'eth0' });
  t.same(rtnl.answerBodies(msg(2, 3, errno(0)), rtnl.RTM.DELLINK, 3), [], 'a plain ACK: no bodies');
  t.same(rtnl.answerBodies(Buffer.concat([msg(16, 3, link), msg(2, 3, errno(0))]), rtnl.RTM.GETLINK, 3), [link], 'an answer, then its ACK');
  t.same(rtnl.answerBodies(Buffer.concat([msg(16, 4, link), msg(16, 4, link), msg(3, 4, Buffer.alloc(4))]), rtnl.RTM.GETLINK, 4), [link, link], 'a dump to DONE');
  t.same(rtnl.answerBodies(Buffer.concat([msg(2, 2, errno(-17)), msg(2, 3, errno(0))]), rtnl.RTM.NEWLINK, 3), [], 'another request\'s answer is skipped');
  const refused = t.throws(() => rtnl.answerBodies(msg(2, 5, errno(-19)), rtnl.RTM.DELLINK, 5)) as unknown as rtnl.KernelError;
  t.equal(refused.code, 'ENODEV', 'the errno by name');
  t.equal(refused.errno, 19);
  t.match(refused.message, /the kernel refused RTM_DELLINK: ENODEV \(no such device\)/i, 'the message names the request and the error');
  t.throws(() => rtnl.answerBodies(msg(16, 6, link), rtnl.RTM.GETLINK, 6), /cut short or malformed/, 'an answer with no end is refused');
  t.throws(() => rtnl.answerBodies(msg(2, 6, errno(0)).subarray(0, 30), rtnl.RTM.GETLINK, 6), /cut short or malformed/, 'and so is a truncated one');
});

// The exact bytes, for what the package does not read back (attribute order,
// padding, an attribute of 0) and for the fallbacks no real answer takes.
const hex = (b: Buffer): string => b.toString('hex');
const le32 = (n: number): string => Buffer.from(Uint32Array.of(n).buffer).toString('hex');
const le16 = (n: number): string => Buffer.from(Uint16Array.of(n).buffer).toString('hex');
/** One attribute as the kernel lays it out: length, type, payload, zero padding to 4 bytes. */
const attr = (type: number, payload: string): string => le16(4 + payload.length / 2) + le16(type) + payload + '00'.repeat((4 - ((payload.length / 2) % 4)) % 4);
const cstring = (s: string): string => Buffer.from(`${s}\0`).toString('hex');

t.test('encodeAttrs: strings end in NUL, numbers are u32, buffers raw, lists nested; each padded to 4 bytes', async (t) => {
  t.equal(hex(rtnl.encodeAttrs([[3, 'eth0']])), '0900030065746830' + '00' + '000000', 'IFLA_IFNAME "eth0": 4 + 5 bytes, 3 of padding');
  t.equal(hex(rtnl.encodeAttrs([[4, 1500]])), '08000400' + le32(1500));
  t.equal(hex(rtnl.encodeAttrs([[1, Buffer.from('020000000001', 'hex')]])), '0a000100020000000001' + '0000');
  t.equal(hex(rtnl.encodeAttrs([[1, Buffer.alloc(0)]])), '04000100', 'an empty payload: the header alone');
  t.equal(hex(rtnl.encodeAttrs([[18, [[1, 'veth']]]])), le16(4 + 12) + le16(18) + attr(1, cstring('veth')), 'nested: the inner attributes, padded, as the payload');
  t.equal(hex(rtnl.encodeAttrs([[3, 'a'], [4, 7]])), attr(3, cstring('a')) + attr(4, le32(7)), 'one after another, in order');
  t.equal(hex(rtnl.encodeAttrs([[4, 0xffffffff]])), '08000400ffffffff', 'a u32 at its top');
  t.equal(hex(rtnl.encodeAttrs([])), '');
});

t.test('decodeAttrs: the first of each type, from an offset, stepping over padding', async (t) => {
  const b = Buffer.from(attr(3, cstring('abc')) + attr(4, le32(9)) + attr(3, cstring('second')) + attr(1, '0a0b'), 'hex');
  const m = rtnl.decodeAttrs(b);
  t.same([...m.keys()], [3, 4, 1]);
  t.equal(m.get(3)!.toString(), 'abc\0', 'the first IFLA_IFNAME, without its padding');
  t.equal(m.get(1)!.length, 2, 'an unpadded length is the payload\'s own');
  const head = Buffer.concat([Buffer.alloc(8, 0xff), b]);
  t.same([...rtnl.decodeAttrs(head, 8).keys()], [3, 4, 1], 'from an offset');
  t.same([...rtnl.decodeAttrs(Buffer.from('0000030000000000', 'hex')).keys()], [], 'a zero length ends the walk (it would never advance)');
  t.same([...rtnl.decodeAttrs(Buffer.from('03000300', 'hex')).keys()], [], 'a length under the header ends it');
  t.same([...rtnl.decodeAttrs(Buffer.from('040003', 'hex')).keys()], [], 'fewer than 4 bytes left: nothing');
  t.same([...rtnl.decodeAttrs(Buffer.from('04000300', 'hex')).keys()], [3], 'exactly a header: an empty attribute');
  t.equal(rtnl.decodeAttrs(Buffer.from('0400ff7f', 'hex')).has(0x3fff), true, 'both high flag bits masked off');
});

t.test('link bodies: ifinfomsg then the attributes, in order; 0 is a value where it means one', async (t) => {
  const ifinfo = (index: number, flags: number, change: number) => '0000' + '0000' + le32(index) + le32(flags) + le32(change);
  t.equal(hex(rtnl.ifinfomsg()), ifinfo(0, 0, 0));
  t.equal(hex(rtnl.ifinfomsg({ index: 5, flags: 1, change: 0x101 })), ifinfo(5, 1, 0x101));
  const mac = '020000000001';
  const veth = rtnl.newLinkBody({ name: 'v1', mtu: 1400, master: 7, link: 2, mac: Buffer.from(mac, 'hex'), netnsFd: 0, queues: 1, kind: { name: 'veth', peer: { name: 'p1', netnsFd: 0 } } }, true);
  const peer = ifinfo(0, 0, 0) + attr(3, cstring('p1')) + attr(28, le32(0));
  // a nest's length is its own header and every inner attribute with its padding:
  // LINKINFO = 4 + KIND (4 + "veth\0" padded to 8) + DATA (4 + PEER (4 + the peer))
  t.equal(
    hex(veth),
    ifinfo(0, 1, 1) +
      attr(3, cstring('v1')) +
      attr(4, le32(1400)) +
      attr(10, le32(7)) +
      attr(5, le32(2)) +
      attr(1, mac) +
      attr(28, le32(0)) +
      attr(31, le32(1)) +
      attr(32, le32(1)) +
      le16(4 + 12 + 4 + 4 + peer.length / 2) + le16(18) + attr(1, cstring('veth')) + le16(4 + 4 + peer.length / 2) + le16(2) + attr(1, peer),
    'IFNAME, MTU, MASTER, LINK, ADDRESS, NET_NS_FD (fd 0 is an fd), both queue counts, LINKINFO with the peer',
  );
  t.equal(hex(rtnl.newLinkBody({ name: 'br0' })), ifinfo(0, 0, 0) + attr(3, cstring('br0')), 'nothing asked: the name alone, down');
  t.equal(
    hex(rtnl.newLinkBody({ name: 'e.7', link: 3, kind: { name: 'vlan', id: 4094 } })),
    ifinfo(0, 0, 0) + attr(3, cstring('e.7')) + attr(5, le32(3)) + le16(4 + 12 + 12) + le16(18) + attr(1, cstring('vlan')) + le16(4 + 8) + le16(2) + attr(1, le16(4094)),
    'a VLAN id is a u16',
  );
  t.equal(hex(rtnl.newLinkBody({ name: 'x', kind: { name: 'bridge' } })), ifinfo(0, 0, 0) + attr(3, cstring('x')) + le16(4 + 12) + le16(18) + attr(1, cstring('bridge')), 'a bridge: its kind alone');
  t.equal(hex(rtnl.linkByNameBody('eth0')), ifinfo(0, 0, 0) + attr(3, cstring('eth0')));
  t.equal(hex(rtnl.setLinkBody(9, {})), ifinfo(9, 0, 0), 'nothing to set: no attributes');
  t.equal(hex(rtnl.setLinkBody(9, { master: 0 })), ifinfo(9, 0, 0) + attr(10, le32(0)), 'master 0 takes the link off its bridge');
  t.equal(hex(rtnl.setLinkBody(9, { master: 4, mac: Buffer.from(mac, 'hex'), flags: 1, change: 1 })), ifinfo(9, 1, 1) + attr(10, le32(4)) + attr(1, mac));
});

t.test('address and route bodies, byte by byte', async (t) => {
  t.equal(hex(rtnl.newAddressBody({ family: 6, prefix: 64, index: 3, address: Buffer.alloc(16, 0xfd) })), '0a40000003000000' + attr(2, 'fd'.repeat(16)) + attr(1, 'fd'.repeat(16)), 'AF_INET6, /64, IFA_LOCAL then IFA_ADDRESS');
  t.equal(hex(rtnl.newAddressBody({ family: 4, prefix: 32, index: 1, address: Buffer.from([1, 2, 3, 4]) })), '0220000001000000' + attr(2, '01020304') + attr(1, '01020304'));
  t.equal(hex(rtnl.dumpBody('address')), '00'.repeat(8), 'every family');
  t.equal(hex(rtnl.dumpBody('address', 4)), '02' + '00'.repeat(7));
  t.equal(hex(rtnl.dumpBody('address', 6)), '0a' + '00'.repeat(7));
  t.equal(hex(rtnl.dumpBody('route')), '00'.repeat(12));
  t.equal(hex(rtnl.dumpBody('route', 6)), '0a' + '00'.repeat(11));
  t.equal(rtnl.RT_TABLE_MAIN, 254);
  // struct rtmsg is 12 bytes: eight one-byte fields (family, dst_len, src_len,
  // tos, table, protocol, scope, type), then the u32 rtm_flags
  const gw = Buffer.from([10, 0, 0, 1]);
  t.equal(hex(rtnl.newRouteBody({ family: 4, prefix: 0, dst: Buffer.alloc(4), gateway: gw, oif: 7 })), '02000000fe030001' + '00000000' + attr(4, le32(7)) + attr(5, '0a000001'), 'a default route via a gateway: universe scope, no RTA_DST');
  t.equal(hex(rtnl.newRouteBody({ family: 4, prefix: 24, dst: Buffer.from([10, 1, 2, 0]), oif: 7 })), '02180000fe03fd01' + '00000000' + attr(4, le32(7)) + attr(1, '0a010200'), 'on-link: link scope');
  t.equal(hex(rtnl.newRouteBody({ family: 6, prefix: 8, oif: 1 })), '0a080000fe03fd01' + '00000000' + attr(4, le32(1)), 'a prefix without a destination: none sent');
});

t.test('decoders: the fields of each message, and what is absent stays absent', async (t) => {
  const ifinfo = (index: number, flags: number) => Buffer.from('0000' + '0000' + le32(index) + le32(flags) + le32(0), 'hex');
  t.same(rtnl.decodeLink(ifinfo(0, 0)), { index: 0, flags: 0, name: '' }, 'a bare ifinfomsg');
  t.same(rtnl.decodeLink(Buffer.concat([ifinfo(2, 0), Buffer.from(attr(3, '00' + Buffer.from('x').toString('hex')), 'hex')])), { index: 2, flags: 0, name: '' }, 'a name ends at its first NUL, even the first byte');
  t.same(rtnl.decodeLink(Buffer.concat([ifinfo(3, 0x1003), Buffer.from(attr(3, Buffer.from('noterm').toString('hex')), 'hex')])), { index: 3, flags: 0x1003, name: 'noterm' }, 'a name without its NUL');
  t.same(
    rtnl.decodeLink(Buffer.concat([ifinfo(3, 0), Buffer.from(attr(3, cstring('br0')) + le16(4 + 8) + le16(18) + attr(2, '00000000'), 'hex')])),
    { index: 3, flags: 0, name: 'br0' },
    'link info without a kind: no kind',
  );
  t.same(rtnl.decodeLink(Buffer.concat([ifinfo(3, 0), Buffer.from(attr(10, le32(0)), 'hex')])), { index: 3, flags: 0, name: '', master: 0 });
  const addrHead = Buffer.from('02180000' + le32(5), 'hex');
  t.same(rtnl.decodeAddress(addrHead), { family: 4, prefix: 24, index: 5 }, 'no address attribute');
  t.same(rtnl.decodeAddress(Buffer.concat([addrHead, Buffer.from(attr(2, '0a000005'), 'hex')])), { family: 4, prefix: 24, index: 5, address: Buffer.from([10, 0, 0, 5]) }, 'IFA_LOCAL alone');
  t.same(rtnl.decodeAddress(Buffer.concat([addrHead, Buffer.from(attr(2, '0a000005') + attr(1, '0a000009'), 'hex')])).address, Buffer.from([10, 0, 0, 9]), 'IFA_ADDRESS over IFA_LOCAL (the peer on a point-to-point link)');
  const routeHead = Buffer.from('0a400000fe030001', 'hex');
  t.same(rtnl.decodeRoute(Buffer.concat([routeHead, Buffer.alloc(4)])), { family: 6, prefix: 64, table: 254 }, 'the table from rtm_table when there is no RTA_TABLE');
  t.same(
    rtnl.decodeRoute(Buffer.concat([Buffer.from('02000000fe030001' + '00000000', 'hex'), Buffer.from(attr(5, '0a000001') + attr(4, le32(2)), 'hex')])),
    { family: 4, prefix: 0, table: 254, gateway: Buffer.from([10, 0, 0, 1]), oif: 2 },
  );
  // a decoded buffer is a copy: reusing the receive buffer must not change it
  const raw = Buffer.concat([ifinfo(1, 0), Buffer.from(attr(1, '020000000001'), 'hex')]);
  const link = rtnl.decodeLink(raw);
  raw.fill(0);
  t.same(link.mac, Buffer.from('020000000001', 'hex'), 'the MAC survives its buffer');
  const routeRaw = Buffer.concat([routeHead, Buffer.alloc(4), Buffer.from(attr(1, 'fd'.repeat(16)) + attr(5, 'fe'.repeat(16)), 'hex')]);
  const route = rtnl.decodeRoute(routeRaw);
  const addrRaw = Buffer.concat([addrHead, Buffer.from(attr(1, '0a000009'), 'hex')]);
  const addr = rtnl.decodeAddress(addrRaw);
  routeRaw.fill(0);
  addrRaw.fill(0);
  t.same([route.dst, route.gateway, addr.address], [Buffer.alloc(16, 0xfd), Buffer.alloc(16, 0xfe), Buffer.from([10, 0, 0, 9])], 'and so do a route\'s and an address\'s');
  t.doesNotThrow(() => rtnl.decodeLink(Buffer.alloc(16)), 'exactly the head is enough');
  t.throws(() => rtnl.decodeLink(Buffer.alloc(15)), /^rtnetlink link message of 15 bytes is too short$/);
  t.throws(() => rtnl.decodeAddress(Buffer.alloc(7)), /^rtnetlink address message of 7 bytes is too short$/);
  t.throws(() => rtnl.decodeRoute(Buffer.alloc(11)), /^rtnetlink route message of 11 bytes is too short$/);
});

t.test('answers: malformed framing, unknown errors and unknown request types are named', async (t) => {
  const msg = (type: number, seq: number, payload: Buffer, len = 16 + payload.length): Buffer => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(len, 0);
    h.writeUInt16LE(type, 4);
    h.writeUInt32LE(seq, 8);
    return Buffer.concat([h, payload, Buffer.alloc(((payload.length + 3) & ~3) - payload.length)]);
  };
  const errno = (n: number): Buffer => {
    const b = Buffer.alloc(20);
    b.writeInt32LE(n, 0);
    return b;
  };
  const unknown = t.throws(() => rtnl.answerBodies(msg(2, 1, errno(-4095)), 999, 1)) as unknown as rtnl.KernelError;
  t.equal(unknown.code, 'errno 4095', 'an errno Node has no name for');
  t.equal(unknown.errno, 4095);
  t.equal(unknown.name, 'KernelError');
  t.ok(unknown instanceof Error);
  t.equal(unknown.message, 'the kernel refused message type 999: errno 4095 (unknown error)', 'nor a description (Node\'s map has EOF there: libuv\'s, not the kernel\'s)');
  const eai = t.throws(() => rtnl.answerBodies(msg(2, 1, errno(-3008)), rtnl.RTM.GETLINK, 1)) as unknown as rtnl.KernelError;
  t.equal(eai.code, 'errno 3008', 'a number in libuv\'s resolver range is not named EAI_NONAME');
  const first = t.throws(() => rtnl.answerBodies(msg(2, 1, errno(-3000)), rtnl.RTM.GETLINK, 1)) as unknown as rtnl.KernelError;
  t.equal(first.code, 'errno 3000', 'nor the first of that range (EAI_ADDRFAMILY)');
  const remote = t.throws(() => rtnl.answerBodies(msg(2, 1, errno(-121)), rtnl.RTM.GETLINK, 1)) as unknown as rtnl.KernelError;
  t.equal(remote.message, 'the kernel refused RTM_GETLINK: EREMOTEIO (remote I/O error)', 'a real errno is named, however rare');
  t.throws(() => rtnl.answerBodies(Buffer.alloc(0), 999, 1), /^rtnetlink answer of 0 bytes to message type 999 is cut short or malformed$/);
  t.throws(() => rtnl.answerBodies(msg(16, 1, Buffer.alloc(16)), rtnl.RTM.GETROUTE, 1), /^rtnetlink answer of 32 bytes to RTM_GETROUTE is cut short/);
  t.throws(() => rtnl.answerBodies(msg(3, 1, Buffer.alloc(4), 8), rtnl.RTM.GETLINK, 1), /cut short or malformed/, 'a length under the header');
  t.throws(() => rtnl.answerBodies(msg(2, 1, Buffer.alloc(4), 16 + 3), rtnl.RTM.GETLINK, 1), /cut short or malformed/, 'an error too short for its errno');
  t.same(rtnl.answerBodies(msg(2, 1, Buffer.alloc(4)), rtnl.RTM.GETLINK, 1), [], 'an ACK of exactly the errno');
  t.same(rtnl.answerBodies(msg(3, 1, Buffer.alloc(0)), rtnl.RTM.GETLINK, 1), [], 'DONE with no body');
  t.same(rtnl.answerBodies(Buffer.concat([msg(16, 1, Buffer.from('abcde')), msg(3, 1, Buffer.alloc(0))]), rtnl.RTM.GETLINK, 1), [Buffer.from('abcde')], 'a body of 5 bytes, then padding, then DONE');
  t.same(Object.keys(rtnl.RTM).map((k) => [k, rtnl.RTM[k as keyof typeof rtnl.RTM]]), [['NEWLINK', 16], ['DELLINK', 17], ['GETLINK', 18], ['SETLINK', 19], ['NEWADDR', 20], ['GETADDR', 22], ['NEWROUTE', 24], ['GETROUTE', 26]]);
  t.same(rtnl.NLM_F, { DUMP: 0x300, EXCL: 0x200, CREATE: 0x400 });
  t.same(rtnl.IFF, { UP: 0x1, PROMISC: 0x100 });
  for (const [name, type] of Object.entries(rtnl.RTM)) {
    const e = t.throws(() => rtnl.answerBodies(msg(2, 1, errno(-1)), type, 1)) as unknown as Error;
    t.match(e.message, new RegExp(`^the kernel refused RTM_${name}: EPERM \\(`), name);
  }
});
