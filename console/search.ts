// Search across pools, as data: an address by its text, or any non-free
// address whose address, owner, container id or note contains the query.
import { formatIp, parseCidr, parseIp, within } from '../core/address.js';
import type { AddressInfo } from '../ipam/model.js';
import type { PoolConfig } from '../ipam/pool-config.js';

/** Hits listed at most; the page says when there were more. */
export const MAX_HITS = 500;

export type SearchField = 'ip' | 'owner' | 'container' | 'note';

export interface SearchHit {
  pool: string;
  /** hex */
  ip: string;
  /** the address's record; absent for a free address found by its exact text */
  info?: AddressInfo;
  matched: SearchField[];
}

export interface SearchResult {
  hits: SearchHit[];
  /** more hits than MAX_HITS */
  cut: boolean;
}

/** Searches the pools' non-free addresses; `records` per pool are those listAddresses returns. */
export function search(query: string, pools: ReadonlyArray<{ conf: PoolConfig; records: readonly AddressInfo[] }>): SearchResult {
  const q = query.trim().toLowerCase();
  let exact: string | undefined;
  try {
    exact = parseIp(query.trim(), 'q').hex;
  } catch {
    // not an address: a substring search only
  }
  const hits: SearchHit[] = [];
  let cut = false;
  for (const { conf, records } of pools) {
    let exactSeen = false;
    for (const info of records) {
      if (info.state === 'free') continue;
      const matched: SearchField[] = [];
      if (info.ip === exact || formatIp(info.ip).includes(q)) matched.push('ip');
      if (info.owner?.toLowerCase().includes(q)) matched.push('owner');
      if (info.containerId?.toLowerCase().includes(q)) matched.push('container');
      if (info.note?.toLowerCase().includes(q)) matched.push('note');
      if (matched.length === 0) continue;
      if (info.ip === exact) exactSeen = true;
      if (hits.length === MAX_HITS) {
        cut = true;
        break;
      }
      hits.push({ pool: conf.name, ip: info.ip, info, matched });
    }
    // An address asked for by its text is found in its pool even when free.
    if (exact !== undefined && !exactSeen) {
      const subnet = parseCidr(conf.subnet, 'subnet');
      if (within(exact, subnet.first, subnet.last)) hits.unshift({ pool: conf.name, ip: exact, matched: ['ip'] });
    }
  }
  // Whole-field matches first (owner "web-1" before "web-10"), else in pool and address order.
  const whole = (h: SearchHit) =>
    h.ip === exact || [h.info?.owner, h.info?.containerId, h.info?.note].some((v) => v !== undefined && v.toLowerCase() === q) ? 0 : 1;
  hits.sort((a, b) => whole(a) - whole(b));
  return { hits, cut };
}
