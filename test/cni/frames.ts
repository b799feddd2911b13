// The announcement frames, byte for byte as RFC 826/5227 and RFC 4861 lay
// them out (written out here by hand, not by the code under test). That
// receivers accept them is proven in test/cni/announce.ts: a peer's kernel
// moves its neighbour entry on each.
import t from 'tap';
import { announcementFrames, garpFrame, icmpv6Checksum, unsolicitedNaFrame } from '../../cni/frames.js';

const hex = (s: string) => s.replace(/[\s|]/g, '');

t.test('a gratuitous ARP request', async (t) => {
  const f = garpFrame('02:be:0a:5d:01:03', '10.93.1.3');
  t.equal(
    f.toString('hex'),
    hex(`ffffffffffff 02be0a5d0103 0806 |
         0001 0800 06 04 0001 | 02be0a5d0103 0a5d0103 | 000000000000 0a5d0103`),
  );
  t.throws(() => garpFrame('02:be:0a:5d:01:03', 'fd00::1'), /IPv4/);
});

t.test('an unsolicited neighbour advertisement, with its checksum', async (t) => {
  const f = unsolicitedNaFrame('02:aa:00:00:00:04', 'fd00:93:3::3');
  const body = hex(`88 00 CSUM 20000000 fd000093000300000000000000000003 02 01 02aa00000004`);
  const [before, after] = body.split('CSUM') as [string, string];
  t.equal(f.subarray(0, 14).toString('hex'), hex('333300000001 02aa00000004 86dd'), 'to all nodes');
  t.equal(f.subarray(14, 54).toString('hex'), hex('60000000 0020 3a ff fd000093000300000000000000000003 ff020000000000000000000000000001'), 'hop limit 255, ICMPv6');
  const icmp = f.subarray(54).toString('hex');
  t.equal(icmp.slice(0, 4), before);
  t.equal(icmp.slice(8), after);
  // A checksum over the message with its own checksum in place sums to zero (RFC 1071).
  const src = Buffer.from('fd000093000300000000000000000003', 'hex');
  const dst = Buffer.from('ff020000000000000000000000000001', 'hex');
  t.equal(icmpv6Checksum(src, dst, f.subarray(54)), 0, 'the checksum verifies');
  t.throws(() => unsolicitedNaFrame('02:aa:00:00:00:04', '10.0.0.1'), /IPv6/);
});

t.test('the checksum of a known message', async (t) => {
  // An echo request (type 128) from ::1 to ::1, id 1, seq 1, no data: summed by hand,
  // ::1 + ::1 + length 8 + next header 58 + 0x8000 + 0x0001 + 0x0001 = 0x8046, inverted 0x7fb9.
  const loop = Buffer.from('00000000000000000000000000000001', 'hex');
  t.equal(icmpv6Checksum(loop, loop, Buffer.from('8000000000010001', 'hex')), 0x7fb9);
});

t.test('one frame per address, by family', async (t) => {
  const frames = announcementFrames('02:be:0a:00:00:05', ['10.0.0.5/24', 'fd00::5/64']);
  t.equal(frames.length, 2);
  t.equal(frames[0]!.readUInt16BE(12), 0x0806);
  t.equal(frames[1]!.readUInt16BE(12), 0x86dd);
});
