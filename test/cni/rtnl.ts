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
