// Validation of address records read back from a store: a record berth cannot
// trust is reported as STORE_CORRUPT naming the address and field, never used.
import { BerthError } from '../core/errors.js';
import type { AddrRecord } from './model.js';

const FIELDS: Record<string, 'string' | 'number'> = {
  o: 'string',
  c: 'string',
  i: 'string',
  g: 'number',
  t: 'number',
  u: 'number',
  n: 'string',
  h: 'string',
  w: 'string',
};

/** Checks a decoded record's shape; `hex` names the address in the error. */
export function checkRecordShape(rec: unknown, hex: string): AddrRecord {
  const bad = (field: string, why: string): never => {
    throw new BerthError('STORE_CORRUPT', `failed to read the record of address ${hex}: field "${field}" ${why}`, { ip: hex, field });
  };
  if (!rec || typeof rec !== 'object' || Array.isArray(rec)) bad('(record)', 'is not an object');
  const r = rec as Record<string, unknown>;
  if (r.s !== 'a' && r.s !== 'r') bad('s', `must be "a" or "r", got ${JSON.stringify(r.s)}`);
  if (typeof r.t !== 'number') bad('t', 'must be a number');
  for (const [key, value] of Object.entries(r)) {
    if (key === 's') continue;
    if (key === 'p') {
      if (value !== 1) bad('p', 'must be 1');
      continue;
    }
    const type = Object.hasOwn(FIELDS, key) ? FIELDS[key] : undefined;
    if (!type) bad(key, 'is unknown');
    if (typeof value !== type) bad(key, `must be a ${type}`);
  }
  if (r.s === 'a' && (r.c === undefined || r.i === undefined || r.g === undefined)) bad('c/i/g', 'must be set on an allocated address');
  return r as unknown as AddrRecord;
}

/** Parses a record stored as JSON text. */
export function parseRecord(text: string, hex: string): AddrRecord {
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch (err) {
    throw new BerthError('STORE_CORRUPT', `failed to read the record of address ${hex}: ${(err as Error).message}`, { ip: hex });
  }
  return checkRecordShape(rec, hex);
}
