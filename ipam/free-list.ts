// The free addresses of a pool, derived rather than stored: the store keeps
// records only for addresses in use, so "free" is the ranges less the
// excluded and the taken ones. Lazy, because a /12 or an IPv6 /64 cannot be
// listed whole; the caller stops after as many as it wants.
import { fromBig, toBig } from '../core/address.js';
import type { PoolConfig } from './pool-config.js';

/** Yields the pool's free addresses (hex) in address order, skipping excluded and taken ones. */
export function* freeAddresses(
  conf: Pick<PoolConfig, 'family' | 'ranges' | 'exclude'>,
  taken: Set<string>,
): Generator<string> {
  const excluded = new Set(conf.exclude);
  // Stored ranges are sorted and disjoint (buildPoolConfig), but a hand-edited
  // store may not be: sorting and skipping what was already walked keeps the
  // output in address order and free of duplicates either way.
  const ranges = [...conf.ranges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  let next = -1n;
  for (const [first, last] of ranges) {
    const end = toBig(last);
    let v = toBig(first);
    if (v < next) v = next;
    for (; v <= end; v++) {
      const hex = fromBig(v, conf.family);
      if (!excluded.has(hex) && !taken.has(hex)) yield hex;
    }
    if (end + 1n > next) next = end + 1n;
  }
}
