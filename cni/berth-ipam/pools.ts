// Which pool each address of an ADD comes from, as data: one address per
// family, from that family's pools in the order the network lists them, and
// a requested address only from a pool it belongs to. Pure.
import { parseCidr } from '../../core/address.js';
import type { PoolConfig } from '../../ipam/pool-config.js';
import { BERTH_CODES, CNI_CODES, CniError } from '../errors.js';
import type { CniResult } from '../result.js';
import type { IpamConfig } from './config.js';

/** One family of an ADD: the pools to try, in order, and the address asked for, if one was. */
export interface FamilyPlan {
  family: 4 | 6;
  pools: PoolConfig[];
  /** hex */
  ip?: string;
}

/** True when the address (hex) lies in the pool's subnet. */
export function inSubnet(pool: PoolConfig, hex: string): boolean {
  const subnet = parseCidr(pool.subnet, 'subnet');
  return hex.length === subnet.first.length && hex >= subnet.first && hex <= subnet.last;
}

/**
 * The plan of an ADD over `pools` (the network's, in order): a family per
 * family the pools have, in the order it first appears. A requested address
 * narrows its family to the pools it belongs to; one requested where no pool
 * of its family holds it, or two of one family, is a config error.
 */
export function planFamilies(pools: PoolConfig[], requested: IpamConfig['requested']): FamilyPlan[] {
  const plans: FamilyPlan[] = [];
  for (const pool of pools) {
    const plan = plans.find((p) => p.family === pool.family);
    if (plan) plan.pools.push(pool);
    else plans.push({ family: pool.family, pools: [pool] });
  }
  for (const r of requested) {
    const plan = plans.find((p) => p.family === r.family);
    const names = pools.map((p) => `"${p.name}"`).join(', ');
    if (!plan) throw new CniError(CNI_CODES.INVALID_CONFIG, `${r.text} was requested, but no pool of this network (${names}) is IPv${r.family}`);
    if (plan.ip !== undefined) {
      throw new CniError(CNI_CODES.INVALID_CONFIG, `berth-ipam hands out one address per family; ${requested.filter((x) => x.family === r.family).map((x) => x.text).join(', ')} were requested`);
    }
    const holding = plan.pools.filter((p) => inSubnet(p, r.hex));
    if (holding.length === 0) throw new CniError(BERTH_CODES.IP_NOT_IN_POOL, `${r.text} was requested, but it is in none of the pools ${plan.pools.map((p) => `"${p.name}" (${p.subnet})`).join(', ')}`);
    plan.ip = r.hex;
    plan.pools = holding;
  }
  return plans;
}

/** The results of each family's address, as one: every address, the routes of all, the DNS settings merged (the first pool's win). */
export function mergeResults(parts: CniResult[]): CniResult {
  const out: CniResult = { ips: parts.flatMap((p) => p.ips ?? []) };
  const routes = parts.flatMap((p) => p.routes ?? []);
  if (routes.length > 0) out.routes = routes.filter((r, i) => routes.findIndex((x) => x.dst === r.dst && x.gw === r.gw) === i);
  const dns: NonNullable<CniResult['dns']> = {};
  for (const p of parts) {
    if (!p.dns) continue;
    if (p.dns.nameservers) dns.nameservers = [...new Set([...(dns.nameservers ?? []), ...p.dns.nameservers])];
    if (p.dns.search) dns.search = [...new Set([...(dns.search ?? []), ...p.dns.search])];
    if (p.dns.options) dns.options = [...new Set([...(dns.options ?? []), ...p.dns.options])];
    if (p.dns.domain && !dns.domain) dns.domain = p.dns.domain;
  }
  if (Object.keys(dns).length > 0) out.dns = dns;
  return out;
}
