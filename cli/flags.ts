// Coercions for flag values the pool layer cannot check itself because yargs
// would already have mangled them (a non-numeric --vlan becomes NaN, a
// repeated flag becomes an array). Each throws a message naming the flag;
// yargs reports it as a usage error.
import type { AddressState } from '../ipam/model.js';

/** A non-empty flag that may be given once; yargs turns a repeated one into an array. */
export function once(flag: string): (value: unknown) => string {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`--${flag} may be given only once`);
    const text = String(value);
    if (text === '') throw new Error(`--${flag} needs a value`);
    return text;
  };
}

/** A flag that may be given once, where "" means none (--docker-socket "", --containerd-socket ""). */
export function onceOrNone(flag: string): (value: unknown) => string {
  return (value) => {
    if (Array.isArray(value)) throw new Error(`--${flag} may be given only once`);
    return String(value);
  };
}

/** A flag that may be repeated: always a list. */
export function repeated(flag: string): (value: unknown) => string[] {
  return (value) => {
    const list = (Array.isArray(value) ? value : [value]).map(String);
    if (list.some((v) => v === '')) throw new Error(`--${flag} needs a value`);
    return list;
  };
}

/** An integer flag in [min, max]; `what` completes "--flag must be ...". */
export function integer(flag: string, min: number, max: number, what: string): (value: unknown) => number {
  return (value) => {
    const text = once(flag)(value).trim();
    const n = Number(text);
    if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new Error(`--${flag} must be ${what}, got ${JSON.stringify(String(value))}`);
    }
    return n;
  };
}

const STATES: readonly AddressState[] = ['free', 'allocated', 'reserved'];

/** The --state flag of ip ls. */
export function addressState(value: unknown): AddressState {
  const text = once('state')(value);
  if (!(STATES as readonly string[]).includes(text)) {
    throw new Error(`--state must be one of ${STATES.join(', ')}, got ${JSON.stringify(text)}`);
  }
  return text as AddressState;
}
