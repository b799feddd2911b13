// One DNS message in, its answer out, through dns-packet (decoding, encoding).
// Pure: no sockets; the server (server.ts) carries the bytes.
//
// Size: an answer over TCP is whole. Over UDP it fits the client's EDNS size
// (at most EDNS_UDP_SIZE, at least 512) or 512 bytes without EDNS: first the
// additional section is dropped (it is optional), then, if the answer still
// does not fit, it is sent empty with TC set so the client asks again over TCP.
import packet, { type Answer, type DecodedPacket, type OptAnswer, type Question } from 'dns-packet';
import type { Lookup, Zone } from './zone.js';

/** The largest UDP answer berth sends, and the size it advertises: the DNS Flag Day 2020 value, which no path fragments. */
export const EDNS_UDP_SIZE = 1232;
/** The largest UDP answer to a client without EDNS (RFC 1035). */
export const PLAIN_UDP_SIZE = 512;
/** A DNS message over TCP is at most this long (its 2-byte length prefix). */
export const TCP_MAX = 65535;

/** Header RCODE values (RFC 1035 4.1.1); BADVERS is 16, its upper bits in the OPT record. */
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const BADVERS_EXTENDED = 1;
/** The opcode's bits in the header's flags word, as dns-packet gives it. */
const OPCODE_BITS = 0xf << 11;

export type Transport = 'udp' | 'tcp';

/** What dns-packet's decode gives beyond its declared type. */
interface Decoded extends DecodedPacket {
  opcode: string;
}

/** The answer to a query (bytes), or null when none is due (a response, or bytes too short for a header). */
export function answerQuery(query: Buffer, zone: Zone, transport: Transport): Buffer | null {
  return answerKeepable(query, zone, transport).out;
}

/** Distinct questions an AnswerCache keeps; when full it starts again empty. */
const CACHE_ENTRIES = 20_000;

/**
 * answerQuery, remembered per zone: two queries that differ only in their id
 * get the same answer but for its id, so an answer is kept by the query's
 * other bytes and the transport, and reused with the new id until the zone
 * changes; only answers answerKeepable allows are kept.
 */
export class AnswerCache {
  private zone: Zone | undefined;
  private readonly entries = new Map<string, Buffer>();

  answer(query: Buffer, zone: Zone, transport: Transport): Buffer | null {
    if (zone !== this.zone) {
      this.entries.clear();
      this.zone = zone;
    }
    if (query.length < 12) return null;
    const key = `${transport === 'udp' ? 'u' : 't'}${query.toString('latin1', 2)}`;
    const kept = this.entries.get(key);
    if (kept) {
      // a copy: the one kept may still be queued on a socket
      const out = Buffer.from(kept);
      out.writeUInt16BE(query.readUInt16BE(0), 0);
      return out;
    }
    const { out, keep } = answerKeepable(query, zone, transport);
    if (out && keep) {
      if (this.entries.size >= CACHE_ENTRIES) this.entries.clear();
      this.entries.set(key, out);
    }
    return out;
  }
}

/** answerQuery, and whether its answer may be given again, with the id replaced, to the same bytes after the id while the zone stays (not when the query has EDNS options: a client cookie is new in every query). */
export function answerKeepable(query: Buffer, zone: Zone, transport: Transport): { out: Buffer | null; keep: boolean } {
  const out = (bytes: Buffer | null, keep = false) => ({ out: bytes, keep });
  if (query.length < 12) return out(null);
  let q: Decoded;
  try {
    q = packet.decode(query) as Decoded;
  } catch {
    // the header alone is readable: its id tells the client which question failed
    return out(encode({ type: 'response', id: query.readUInt16BE(0), flags: RCODE.FORMERR }));
  }
  if (q.type === 'response') return out(null);
  const id = q.id ?? 0;
  const rd = (q.flags ?? 0) & packet.RECURSION_DESIRED;
  const questions = (q.questions ?? []) as Question[];
  if (q.opcode !== 'QUERY') return out(encode({ type: 'response', id, flags: ((q.flags ?? 0) & OPCODE_BITS) | rd | RCODE.NOTIMP, questions }));
  const opts = (q.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
  if (questions.length !== 1 || opts.length > 1) return out(encode({ type: 'response', id, flags: rd | RCODE.FORMERR, questions }));
  const opt = opts[0];
  const question = questions[0]!;
  const ours: OptAnswer[] = opt ? [{ name: '.', type: 'OPT', udpPayloadSize: EDNS_UDP_SIZE, extendedRcode: 0, ednsVersion: 0, flags: opt.flags & packet.DNSSEC_OK, flag_do: opt.flag_do, options: [] }] : [];
  if (opt && opt.ednsVersion > 0) {
    return out(encode({ type: 'response', id, flags: rd, questions, additionals: [{ ...ours[0]!, extendedRcode: BADVERS_EXTENDED }] }));
  }
  const result = lookup(zone, question);
  const response = {
    type: 'response' as const,
    id,
    flags: (result.authoritative ? packet.AUTHORITATIVE_ANSWER : 0) | rd | RCODE[result.rcode],
    questions,
    answers: result.answers,
    authorities: result.authorities,
    additionals: [...result.additionals, ...ours],
  };
  const limit = transport === 'tcp' ? TCP_MAX : opt ? Math.max(PLAIN_UDP_SIZE, Math.min(opt.udpPayloadSize, EDNS_UDP_SIZE)) : PLAIN_UDP_SIZE;
  const keep = !opt || opt.options.length === 0;
  const whole = encode(response);
  if (whole.length <= limit) return out(whole, keep);
  const lean = encode({ ...response, additionals: ours });
  if (lean.length <= limit) return out(lean, keep);
  return out(encode({ ...response, flags: response.flags | packet.TRUNCATED_RESPONSE, answers: [], authorities: [], additionals: ours }), keep);
}

/** The zone's answer to a question; only class IN (or ANY) is served, and no zone transfer. */
function lookup(zone: Zone, q: Question): Lookup {
  if ((q.class !== undefined && q.class !== 'IN' && q.class !== 'ANY') || q.type === 'AXFR' || q.type === 'IXFR') {
    return { rcode: 'REFUSED', authoritative: false, answers: [], authorities: [], additionals: [] };
  }
  return zone.lookup(q.name, q.type);
}

function encode(p: { type: 'response'; id: number; flags: number; questions?: Question[]; answers?: Answer[]; authorities?: Answer[]; additionals?: Answer[] }): Buffer {
  return packet.encode(p);
}
