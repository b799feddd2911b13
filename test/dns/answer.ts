// One message in, one out, through dns-packet both ways: header flags and
// rcodes, EDNS, and the size rules (UDP: the client's EDNS size or 512, then
// TC; TCP whole).
import packet, { type Answer, type Packet } from 'dns-packet';
import t from 'tap';
import { parseIp } from '../../core/address.js';
import type { ServiceMember } from '../../ipam/hosts.js';
import type { AddressInfo } from '../../ipam/model.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { AnswerCache, answerQuery, EDNS_UDP_SIZE } from '../../dns/answer.js';
import { buildZone } from '../../dns/zone.js';

const members: ServiceMember[] = [];
const records: AddressInfo[] = [];
for (let i = 2; i < 200; i++) {
  const ip = `10.20.0.${i}`;
  records.push({ pool: 'web', ip: parseIp(ip, 'ip').hex, state: 'allocated' as const, owner: `backend-${i}` });
  members.push({ service: 'big', ip, port: 8000 + i, owner: `backend-${i}`, pool: 'web', container: `c${i}` });
}
const { zone } = buildZone({ zone: 'berth', ttl: 5, serial: 7, nsAddresses: ['127.0.0.1'], now: Date.now(), pools: [{ conf: buildPoolConfig({ name: 'web', subnet: '10.20.0.0/24' }), records }], members: [...members, members[0]!] });
const small = buildZone({ zone: 'berth', ttl: 5, serial: 7, nsAddresses: ['127.0.0.1'], now: Date.now(), pools: [{ conf: buildPoolConfig({ name: 'web', subnet: '10.20.0.0/24' }), records }], members: members.slice(0, 3) }).zone;

function ask(q: Packet, transport: 'udp' | 'tcp' = 'udp', z = zone) {
  const out = answerQuery(packet.encode({ type: 'query', id: 4242, flags: packet.RECURSION_DESIRED, ...q }), z, transport);
  if (!out) return null;
  return { bytes: out.length, ...(packet.decode(out) as ReturnType<typeof packet.decode> & { rcode: string; flag_tc: boolean; flag_aa: boolean; flag_rd: boolean; opcode: string }) };
}
const opt = (size: number, extra: Partial<Answer> = {}) => ({ type: 'OPT', name: '.', udpPayloadSize: size, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [], ...extra }) as unknown as Answer;

t.test('a plain question: the id, AA, RD copied, the question echoed as asked', async (t) => {
  const r = ask({ questions: [{ type: 'A', name: 'Backend-5.WEB.berth', class: 'IN' }] })!;
  t.match(r, { id: 4242, type: 'response', rcode: 'NOERROR', flag_aa: true, flag_rd: true, flag_tc: false });
  t.same(r.questions, [{ type: 'A', name: 'Backend-5.WEB.berth', class: 'IN' }]);
  t.match(r.answers, [{ type: 'A', data: '10.20.0.5', ttl: 5 }]);
  t.same(r.additionals, [], 'no OPT to a query without one');
  t.match(ask({ questions: [{ type: 'A', name: 'nobody.web.berth', class: 'IN' }] }), { rcode: 'NXDOMAIN', flag_aa: true, authorities: [{ type: 'SOA' }] });
  t.match(ask({ questions: [{ type: 'A', name: 'example.org', class: 'IN' }] }), { rcode: 'REFUSED', flag_aa: false, answers: [], authorities: [] });
});

t.test('what is not a plain question', async (t) => {
  t.match(ask({ questions: [{ type: 'TXT', name: 'version.bind', class: 'CH' }] }), { rcode: 'REFUSED' }, 'class CH');
  t.match(ask({ questions: [{ type: 'AXFR', name: 'berth', class: 'IN' }] }, 'tcp'), { rcode: 'REFUSED' }, 'no zone transfer');
  t.match(ask({ questions: [] }), { rcode: 'FORMERR' }, 'no question');
  t.match(ask({ questions: [{ type: 'A', name: 'a.berth' }, { type: 'A', name: 'b.berth' }] }), { rcode: 'FORMERR' }, 'two');
  const update = packet.encode({ type: 'query', id: 9, flags: 5 << 11, questions: [{ type: 'SOA', name: 'berth', class: 'IN' }] });
  t.match(packet.decode(answerQuery(update, zone, 'udp')!), { id: 9, rcode: 'NOTIMP', opcode: 'UPDATE' }, 'an UPDATE: NOTIMP, its opcode echoed');
  t.equal(answerQuery(packet.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'a.berth' }] }), zone, 'udp'), null, 'a response is never answered');
  t.equal(answerQuery(Buffer.from([1, 2, 3]), zone, 'udp'), null, 'nor a few bytes');
  const garbage = Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 1, 2]);
  t.match(packet.decode(answerQuery(garbage, zone, 'udp')!), { id: 0x1234, rcode: 'FORMERR' }, 'a message that does not decode: FORMERR with its id');
  t.match(ask({ questions: [{ type: 'A', name: 'a.berth', class: 'IN' }], additionals: [opt(1232), opt(1232)] }), { rcode: 'FORMERR' }, 'two OPT records');
  const badvers = ask({ questions: [{ type: 'A', name: 'berth', class: 'IN' }], additionals: [opt(1232, { ednsVersion: 1 } as Partial<Answer>)] })!;
  t.match(badvers.additionals, [{ type: 'OPT', extendedRcode: 1 }], 'EDNS version 1: BADVERS');
  t.same(badvers.answers, []);
});

t.test('EDNS: our size, the DO bit copied', async (t) => {
  const r = ask({ questions: [{ type: 'A', name: 'backend-5.web.berth', class: 'IN' }], additionals: [opt(4096, { flags: packet.DNSSEC_OK } as Partial<Answer>)] })!;
  t.match(r.additionals, [{ type: 'OPT', udpPayloadSize: EDNS_UDP_SIZE, flag_do: true }]);
});

t.test('size: UDP answers fit, else TC and empty; TCP is whole', async (t) => {
  const q = { questions: [{ type: 'SRV' as const, name: '_big._tcp.berth', class: 'IN' as const }] };
  const tcp = ask(q, 'tcp')!;
  t.equal(tcp.answers!.length, 198, 'TCP: every member');
  t.equal(tcp.additionals!.length, 198, 'with their addresses');
  t.equal(tcp.flag_tc, false);
  const plain = ask(q)!;
  t.match(plain, { flag_tc: true, answers: [], authorities: [] }, 'UDP without EDNS: over 512, so TC');
  t.ok(plain.bytes <= 512);
  const edns = ask({ ...q, additionals: [opt(65000)] })!;
  t.match(edns, { flag_tc: true, answers: [] }, 'EDNS 65000: still capped at our 1232');
  t.match(edns.additionals, [{ type: 'OPT' }], 'the OPT record stays');
  t.ok(edns.bytes <= EDNS_UDP_SIZE);
  // three members: answers fit in 512 with their addresses
  const three = ask(q, 'udp', small)!;
  t.match(three, { flag_tc: false });
  t.equal(three.answers!.length, 3);
  t.equal(three.additionals!.length, 3);
  // answers that fit only without the additional section: that is dropped, no TC
  let fitted: ReturnType<typeof ask> | undefined;
  for (let n = 4; n < 40 && !fitted; n++) {
    const z = buildZone({ zone: 'berth', ttl: 5, serial: 7, nsAddresses: [], now: Date.now(), pools: [{ conf: buildPoolConfig({ name: 'web', subnet: '10.20.0.0/24' }), records }], members: members.slice(0, n) }).zone;
    const r = ask(q, 'udp', z)!;
    if (!r.flag_tc && r.additionals!.length === 0) fitted = r;
  }
  t.ok(fitted, 'some member count fits in 512 only without the addresses: sent without them, TC clear');
  t.ok(fitted!.answers!.length > 3);
});

t.test('AnswerCache: the same bytes as answerQuery but for the id; a new zone is asked anew; queries with EDNS options are not kept', async (t) => {
  const cache = new AnswerCache();
  const q = (id: number, name: string, options: Array<{ code: number; data: Buffer }> = []) =>
    packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ type: 'A', name, class: 'IN' }], additionals: [opt(1232, { options } as Partial<Answer>)] });
  const first = cache.answer(q(1, 'backend-5.web.berth'), small, 'udp')!;
  const again = cache.answer(q(2, 'backend-5.web.berth'), small, 'udp')!;
  t.same(first, answerQuery(q(1, 'backend-5.web.berth'), small, 'udp'));
  t.same(again, answerQuery(q(2, 'backend-5.web.berth'), small, 'udp'), 'kept, with the new id');
  t.not(again, first, 'a copy each time');
  const entries = (cache as unknown as { entries: Map<string, Buffer> }).entries;
  t.equal(entries.size, 1);
  cache.answer(q(3, 'backend-5.web.berth'), small, 'tcp');
  t.equal(entries.size, 2, 'UDP and TCP answers kept apart (their size rules differ)');
  const other = buildZone({ zone: 'berth', ttl: 9, serial: 8, nsAddresses: [], now: Date.now(), pools: [{ conf: buildPoolConfig({ name: 'web', subnet: '10.20.0.0/24' }), records }], members: [] }).zone;
  t.match(packet.decode(cache.answer(q(4, 'backend-5.web.berth'), other, 'udp')!).answers, [{ ttl: 9 }], 'a new zone: answered from it');
  t.equal(entries.size, 1, 'the old answers dropped');
  cache.answer(q(5, 'backend-6.web.berth', [{ code: 10, data: Buffer.alloc(8, 7) }]), other, 'udp');
  t.equal(entries.size, 1, 'a query with a client cookie is not kept');
  t.equal(cache.answer(Buffer.from([1, 2]), other, 'udp'), null);
});
