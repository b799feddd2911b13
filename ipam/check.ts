// The pool consistency check: address records are the truth; every index and
// counter must agree with them. Pure: a snapshot in, findings and guarded fixes out.
import { formatIp } from '../core/address.js';
import { isAssignable } from './pool-config.js';
import { attachmentKey, heldKey, type Finding, type Fix, type PoolSnapshot } from './model.js';

export type { Finding } from './model.js';

export interface CheckResult {
  pool: string;
  findings: Finding[];
  fixes: Fix[];
}

/** Compares every index and counter of a pool with its address records. */
export function checkPool(snap: PoolSnapshot): CheckResult {
  const { conf, meta, addr, att, held, expiry, free } = snap;
  const findings: Finding[] = [];
  const fixes: Fix[] = [];
  const found = (f: Omit<Finding, 'repairable'>, fix?: Fix): void => {
    findings.push({ ...f, repairable: fix !== undefined });
    if (fix) fixes.push(fix);
  };
  let allocated = 0;
  let reserved = 0;
  let maxGen = 0;
  for (const hex of snap.corrupt ?? []) {
    found({ kind: 'bad-record', ip: formatIp(hex), message: `the record of ${formatIp(hex)} cannot be read; fix or delete it by hand` });
  }

  for (const [hex, rec] of addr) {
    const ip = formatIp(hex);
    if (!isAssignable(conf, hex)) {
      found({ kind: 'outside-pool', ip, message: `${ip} has a ${rec.s === 'a' ? 'allocated' : 'reserved'} record but is not assignable in the pool` });
    }
    if (rec.g !== undefined) maxGen = Math.max(maxGen, rec.g);
    if (rec.s === 'a') {
      allocated++;
      if (rec.c === undefined || rec.i === undefined || rec.g === undefined) {
        found({ kind: 'bad-record', ip, message: `${ip} is allocated without container id, interface or generation` });
        continue;
      }
      const key = attachmentKey(rec.c, rec.i);
      const indexed = att.get(key);
      if (indexed !== hex) {
        found(
          { kind: 'attachment-missing', ip, message: `attachment ${key} of ${ip} is missing from the attachment index` },
          { kind: 'att', key, expect: indexed ?? null, value: hex },
        );
      }
    } else if (rec.s === 'r') {
      reserved++;
      if (rec.o !== undefined && !held.has(heldKey(rec.o, hex))) {
        found(
          { kind: 'held-missing', ip, message: `${ip} is reserved for ${rec.o} but missing from the owner index` },
          { kind: 'held', key: heldKey(rec.o, hex), present: true },
        );
      }
      if (rec.u !== undefined && expiry.get(hex) !== rec.u) {
        found(
          { kind: 'expiry-missing', ip, message: `the hold on ${ip} is missing from the expiry index` },
          { kind: 'expiry', key: hex, value: rec.u },
        );
      }
    } else {
      found({ kind: 'bad-record', ip, message: `${ip} has a record in unknown state ${JSON.stringify((rec as { s: unknown }).s)}` });
    }
    if (free.has(hex)) {
      found(
        { kind: 'free-but-used', ip, message: `${ip} is in the free list but has a record` },
        { kind: 'free', key: hex, value: null },
      );
    }
  }

  for (const [key, hex] of att) {
    const rec = addr.get(hex);
    if (!rec || rec.s !== 'a' || attachmentKey(rec.c ?? '', rec.i ?? '') !== key) {
      found(
        { kind: 'attachment-stale', ip: formatIp(hex), message: `attachment ${key} points at ${formatIp(hex)}, which it does not hold` },
        { kind: 'att', key, expect: hex, value: null },
      );
    }
  }
  for (const entry of held) {
    const sep = entry.lastIndexOf('\u0000');
    const owner = entry.slice(0, sep);
    const hex = entry.slice(sep + 1);
    const rec = addr.get(hex);
    if (!rec || rec.s !== 'r' || rec.o !== owner) {
      found(
        { kind: 'held-stale', ip: formatIp(hex), message: `owner index says ${formatIp(hex)} is reserved for ${owner}; it is not` },
        { kind: 'held', key: entry, present: false },
      );
    }
  }
  for (const hex of expiry.keys()) {
    const rec = addr.get(hex);
    // A hold whose end differs is corrected by the expiry-missing fix above, not removed.
    if (!rec || rec.s !== 'r' || rec.u === undefined) {
      found(
        { kind: 'expiry-stale', ip: formatIp(hex), message: `expiry index holds ${formatIp(hex)}, which has no such hold` },
        { kind: 'expiry', key: hex, value: null },
      );
    }
  }
  for (const hex of free.keys()) {
    if (!addr.has(hex) && !isAssignable(conf, hex)) {
      found(
        { kind: 'free-outside-pool', ip: formatIp(hex), message: `free list holds ${formatIp(hex)}, which is not assignable` },
        { kind: 'free', key: hex, value: null },
      );
    }
  }
  // Stored counters count records, a hold past its end among them until a
  // change expires it; only usage() reads that hold as free.
  if (meta.allocated !== allocated || meta.reserved !== reserved) {
    found(
      {
        kind: 'counter',
        message: `counters say ${meta.allocated} allocated and ${meta.reserved} reserved; records say ${allocated} and ${reserved}`,
      },
      { kind: 'meta', key: 'allocated', value: 'recount' },
    );
  }
  if (maxGen > meta.gen) {
    found(
      { kind: 'generation', message: `the generation counter (${meta.gen}) is behind a record's (${maxGen})` },
      { kind: 'meta', key: 'gen', value: String(maxGen) },
    );
  }
  return { pool: conf.name, findings, fixes };
}
