// berth dns's records, built from the pools and the hosts' announcements, and
// the answer to one question. Pure: data in, records and answers out.
//
// Authoritative for: the zone (default "berth"), and the reverse names of
// every pool's subnet, split into zones at whole labels (names.ts
// reverseZones). A name in one of them that holds nothing is NXDOMAIN, with
// the zone's SOA for negative caching; a name in none is REFUSED.
import type { Answer, SrvData } from 'dns-packet';
import { formatIp, parseCidr, parseIp } from '../core/address.js';
import type { ServiceMember } from '../ipam/hosts.js';
import type { AddressInfo } from '../ipam/model.js';
import type { PoolConfig } from '../ipam/pool-config.js';
import { assignNames, labelOf, ownerLabels, reverseName, reverseZones, type NameClash } from './names.js';

/** SOA timers in seconds: refresh, retry, expire (no secondary transfers the zone; they are for form). */
const SOA_REFRESH = 3600;
const SOA_RETRY = 600;
const SOA_EXPIRE = 86400;
/** SRV priority and weight: every member alike. */
const SRV_PRIORITY = 0;
const SRV_WEIGHT = 1;

export interface ZoneInput {
  /** the zone, lower case, without the final dot (names.ts parseDomain) */
  zone: string;
  /** seconds, of every record and of negative answers */
  ttl: number;
  /** the SOA serial: greater for every new build */
  serial: number;
  /** the server's own addresses (text): the zone apex's A/AAAA, which its NS names */
  nsAddresses: string[];
  pools: Array<{ conf: PoolConfig; records: AddressInfo[] }>;
  /** the load-balancer members of every live host (hosts.ts current()) */
  members: ServiceMember[];
  /** ms since the epoch: a hold that has ended is free */
  now: number;
}

/** What a build found worth telling the operator. */
export interface ZoneReport {
  /** owner names, over all pools */
  names: number;
  /** names that two or more keys map to: of pools, of owners in one pool, of services */
  clashes: Array<NameClash & { kind: 'pool' | 'owner' | 'service'; pool?: string }>;
  /** members whose address has no name in the zone (not in a pool, or no longer owned): left out of SRV */
  unnamedMembers: ServiceMember[];
  /** ms: when the first hold ends, after which the zone must be built again; undefined when none does */
  nextExpiry: number | undefined;
}

export type Rcode = 'NOERROR' | 'NXDOMAIN' | 'REFUSED';

/** The answer to one question, sections as dns-packet encodes them. */
export interface Lookup {
  rcode: Rcode;
  /** false for REFUSED: not a name of this server */
  authoritative: boolean;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

/** The record sets at one name. */
interface Node {
  A?: Answer[];
  AAAA?: Answer[];
  PTR?: Answer[];
  SRV?: Answer[];
  SOA?: Answer[];
  NS?: Answer[];
}

type RrType = keyof Node;
const TYPES: RrType[] = ['SOA', 'NS', 'A', 'AAAA', 'PTR', 'SRV'];

/** A zone of this server: its SOA, for negative answers. */
interface ZoneApex {
  soa: Answer;
}

/** The records, ready to answer from; immutable once built. */
export class Zone {
  constructor(
    private readonly nodes: Map<string, Node>,
    /** names with nothing of their own but names below them (empty non-terminals): NOERROR with no data, never NXDOMAIN */
    private readonly between: Set<string>,
    private readonly apexes: Map<string, ZoneApex>,
  ) {}

  /** The answer to `name` (as asked, any case, with or without the final dot) of `type` (ANY for every set). */
  lookup(name: string, type: string): Lookup {
    const key = name.toLowerCase().replace(/\.$/, '');
    const apex = this.apexOf(key);
    if (!apex) return { rcode: 'REFUSED', authoritative: false, answers: [], authorities: [], additionals: [] };
    const node = this.nodes.get(key);
    if (!node && !this.between.has(key)) return { rcode: 'NXDOMAIN', authoritative: true, answers: [], authorities: [apex.soa], additionals: [] };
    const answers: Answer[] = [];
    if (node) {
      if (type === 'ANY') for (const t of TYPES) answers.push(...(node[t] ?? []));
      else if (isRrType(type)) answers.push(...(node[type] ?? []));
    }
    if (answers.length === 0) return { rcode: 'NOERROR', authoritative: true, answers, authorities: [apex.soa], additionals: [] };
    return { rcode: 'NOERROR', authoritative: true, answers, authorities: [], additionals: this.additionalsFor(answers) };
  }

  /** The zone a name is in: the nearest enclosing apex. */
  private apexOf(key: string): ZoneApex | undefined {
    let at = 0;
    for (;;) {
      const apex = this.apexes.get(at === 0 ? key : key.slice(at));
      if (apex) return apex;
      const dot = key.indexOf('.', at);
      if (dot < 0) return undefined;
      at = dot + 1;
    }
  }

  /** The addresses of the names SRV and NS answers point at, so a resolver need not ask again. */
  private additionalsFor(answers: Answer[]): Answer[] {
    const out: Answer[] = [];
    const seen = new Set<string>();
    for (const a of answers) {
      const target = a.type === 'SRV' ? a.data.target : a.type === 'NS' ? a.data : undefined;
      if (target === undefined || seen.has(target)) continue;
      seen.add(target);
      const node = this.nodes.get(target);
      out.push(...(node?.A ?? []), ...(node?.AAAA ?? []));
    }
    return out;
  }
}

function isRrType(type: string): type is RrType {
  return (TYPES as string[]).includes(type);
}

/** Builds the zone from the pools' records and the hosts' members; the report lists what the operator should hear of. */
export function buildZone(input: ZoneInput): { zone: Zone; report: ZoneReport } {
  const { zone: apexName, ttl, now } = input;
  const nodes = new Map<string, Node>();
  const between = new Set<string>();
  const apexes = new Map<string, ZoneApex>();
  const report: ZoneReport = { names: 0, clashes: [], unnamedMembers: [], nextExpiry: undefined };
  const add = (name: string, type: RrType, rr: Answer) => {
    let node = nodes.get(name);
    if (!node) nodes.set(name, (node = {}));
    (node[type] ??= []).push(rr);
  };
  /** Marks the names between `name` and its zone's apex as existing. */
  const above = (name: string, apex: string) => {
    for (let at = name.indexOf('.'); at >= 0; at = name.indexOf('.', at + 1)) {
      const parent = name.slice(at + 1);
      if (parent.length <= apex.length) break;
      between.add(parent);
    }
  };
  const soaData = { mname: apexName, rname: `hostmaster.${apexName}`, serial: input.serial >>> 0, refresh: SOA_REFRESH, retry: SOA_RETRY, expire: SOA_EXPIRE, minimum: ttl };
  const makeApex = (name: string) => {
    const soa: Answer = { name, type: 'SOA', class: 'IN', ttl, data: soaData };
    apexes.set(name, { soa });
    add(name, 'SOA', soa);
    add(name, 'NS', { name, type: 'NS', class: 'IN', ttl, data: apexName });
  };
  makeApex(apexName);
  for (const text of input.nsAddresses) {
    const { family, hex } = parseIp(text, 'nsAddresses');
    add(apexName, family === 4 ? 'A' : 'AAAA', { name: apexName, type: family === 4 ? 'A' : 'AAAA', class: 'IN', ttl, data: formatIp(hex) });
  }

  // Pools: each one's label under the zone.
  const poolNames = assignNames(
    input.pools.map((p) => p.conf.name),
    (name) => [labelOf(name, name)],
  );
  for (const c of poolNames.clashes) report.clashes.push({ ...c, kind: 'pool' });
  /** the name of each owned address (hex), for PTR and SRV targets */
  const nameOfAddress = new Map<string, string>();
  for (const { conf, records } of input.pools) {
    const poolLabel = poolNames.names.get(conf.name);
    if (poolLabel === undefined) continue;
    const suffix = `${poolLabel}.${apexName}`;
    between.add(suffix);
    const subnet = parseCidr(conf.subnet, 'subnet');
    const reverse = reverseZones(subnet.first, subnet.prefix);
    for (const r of reverse) makeApex(r);
    const reverseApexLabels = reverse[0]!.split('.').length;

    // An owner's name answers its allocated addresses; only while it has none, its reserved ones.
    const byOwner = new Map<string, { allocated: string[]; reserved: string[] }>();
    for (const a of records) {
      if (a.owner === undefined || a.owner === '' || a.state === 'free') continue;
      if (a.state === 'reserved' && a.until !== undefined) {
        if (a.until <= now) continue;
        report.nextExpiry = Math.min(report.nextExpiry ?? Infinity, a.until);
      }
      let o = byOwner.get(a.owner);
      if (!o) byOwner.set(a.owner, (o = { allocated: [], reserved: [] }));
      (a.state === 'allocated' ? o.allocated : o.reserved).push(a.ip);
    }
    const owners = assignNames(byOwner.keys(), (owner) => ownerLabels(owner, suffix));
    for (const c of owners.clashes) report.clashes.push({ ...c, kind: 'owner', pool: conf.name });
    for (const [owner, addrs] of byOwner) {
      const label = owners.names.get(owner);
      if (label === undefined) continue;
      const name = `${label}.${suffix}`;
      report.names++;
      above(name, apexName);
      const forward = addrs.allocated.length > 0 ? addrs.allocated : addrs.reserved;
      for (const hex of forward.sort()) {
        const type = hex.length === 8 ? 'A' : 'AAAA';
        add(name, type, { name, type, class: 'IN', ttl, data: formatIp(hex) });
      }
      for (const hex of [...addrs.allocated, ...addrs.reserved]) {
        nameOfAddress.set(hex, name);
        const ptr = reverseName(hex);
        add(ptr, 'PTR', { name: ptr, type: 'PTR', class: 'IN', ttl, data: name });
        above(ptr, ptr.split('.').slice(-reverseApexLabels).join('.'));
      }
    }
  }

  // Services: _SERVICE._tcp.ZONE, a target per member that has a name.
  const byService = new Map<string, Map<string, SrvData>>();
  for (const m of input.members) {
    let hex: string | undefined;
    try {
      hex = parseIp(m.ip, 'ip').hex;
    } catch {
      hex = undefined;
    }
    const target = hex === undefined ? undefined : nameOfAddress.get(hex);
    if (target === undefined) {
      report.unnamedMembers.push(m);
      continue;
    }
    let set = byService.get(m.service);
    if (!set) byService.set(m.service, (set = new Map()));
    set.set(`${target} ${m.port}`, { priority: SRV_PRIORITY, weight: SRV_WEIGHT, port: m.port, target });
  }
  const services = assignNames(byService.keys(), (service) => [`_${labelOf(service, service, 62)}`]);
  for (const c of services.clashes) report.clashes.push({ ...c, kind: 'service' });
  for (const [service, set] of byService) {
    const label = services.names.get(service);
    if (label === undefined) continue;
    const name = `${label}._tcp.${apexName}`;
    between.add(`_tcp.${apexName}`);
    for (const key of [...set.keys()].sort()) add(name, 'SRV', { name, type: 'SRV', class: 'IN', ttl, data: set.get(key)! });
  }
  return { zone: new Zone(nodes, between, apexes), report };
}
