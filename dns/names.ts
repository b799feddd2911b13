// DNS names from berth's keys, and the reverse names of addresses. Pure.
//
// The rule (docs/dns.md, Names): an owner key is split at "/" and its parts taken in
// reverse order, so a Kubernetes-style "ns/pod" reads "pod.ns", most specific
// first. Each part (and a pool or service name) becomes one label: lower-
// cased, every run of characters other than a-z, 0-9 and "-" turned into one
// "-", a "-" at either end dropped. A part left empty is replaced by HASH; a
// label longer than it may be is cut and ends in "-HASH". HASH is the first 6
// hex digits of the SHA-256 of the whole key (UTF-8), so the name of a key
// never depends on which other keys exist; only a collision does
// (assignNames).
import { createHash } from 'node:crypto';
import { familyOfHex } from '../core/address.js';

/** The longest label. */
export const LABEL_MAX = 63;
/** The longest name in text form, without the final dot (255 octets on the wire). */
export const NAME_MAX = 253;
/** Digits of the key's hash a label carries when it needs one. */
const HASH_DIGITS = 6;

const PLAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** True for a label berth writes as is: a-z, 0-9 and inner "-", 1-63 characters. */
export function isPlainLabel(text: string): boolean {
  return PLAIN_LABEL.test(text);
}

/** The 6 hex digits that tell keys apart where their labels alone would not. */
export function keyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex').slice(0, HASH_DIGITS);
}

/** One part of a key as a label of at most `max` characters; `key` is the whole key, for the hash. */
export function labelOf(part: string, key: string, max = LABEL_MAX): string {
  const label = part
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (label === '') return keyHash(key);
  if (label.length <= max) return label;
  return withHash(label, key, max);
}

/** The label cut to leave room for "-HASH", and that appended: how colliding and over-long labels are told apart. */
export function withHash(label: string, key: string, max = LABEL_MAX): string {
  const room = max - HASH_DIGITS - 1;
  return `${label.slice(0, room).replace(/-+$/, '')}-${keyHash(key)}`;
}

/**
 * An owner key's labels, most specific first. Under `suffix` (POOL.ZONE),
 * a name that would pass NAME_MAX takes one label instead: the parts
 * joined by "-", cut, with the hash.
 */
export function ownerLabels(owner: string, suffix: string): string[] {
  const labels = owner
    .split('/')
    .reverse()
    .map((part) => labelOf(part, owner));
  if (labels.join('.').length + 1 + suffix.length <= NAME_MAX) return labels;
  return [withHash(labelOf(owner.split('/').reverse().join('-'), owner, 10 * NAME_MAX), owner)];
}

/** A key that its name renders exactly: a single plain label, unchanged. It keeps its name in a collision. */
export function isExactKey(key: string): boolean {
  return isPlainLabel(key);
}

/** A keyed name that lost a collision (assignNames). */
export interface NameClash {
  /** the name they all map to */
  name: string;
  /** the key that keeps it */
  winner: string;
  /** the others, each with the name it gets instead (null: none, its hashed name being taken too) */
  others: Array<{ key: string; name: string | null }>;
}

/**
 * Gives each key a name, `nameOf(key)` (labels joined by ".", first label
 * first). Keys that map to one name keep it in this order: the key written
 * exactly as its name, else the least key in code unit order; each other key
 * gets its first label with "-HASH" (withHash) instead, unless that name is
 * taken too. Deterministic: the result depends only on the set of keys.
 */
export function assignNames(keys: Iterable<string>, nameOf: (key: string) => string[]): { names: Map<string, string>; clashes: NameClash[] } {
  const byName = new Map<string, string[]>();
  const labelsOf = new Map<string, string[]>();
  for (const key of new Set(keys)) {
    const labels = nameOf(key);
    labelsOf.set(key, labels);
    const name = labels.join('.');
    const list = byName.get(name);
    if (list) list.push(key);
    else byName.set(name, [key]);
  }
  const names = new Map<string, string>();
  const clashes: NameClash[] = [];
  for (const [name, list] of byName) {
    if (list.length === 1) {
      names.set(list[0]!, name);
      continue;
    }
    list.sort((a, b) => Number(isExactKey(b)) - Number(isExactKey(a)) || (a < b ? -1 : a > b ? 1 : 0));
    const [winner, ...rest] = list as [string, ...string[]];
    names.set(winner, name);
    clashes.push({ name, winner, others: rest.map((key) => ({ key, name: null })) });
  }
  clashes.sort((a, b) => (a.name < b.name ? -1 : 1));
  // The losers' names, once every first-choice name is known: a hashed name never takes another key's.
  for (const clash of clashes) {
    for (const other of clash.others) {
      const [first, ...tail] = labelsOf.get(other.key)!;
      const alt = [withHash(first!, other.key), ...tail].join('.');
      if (byName.has(alt) || [...names.values()].includes(alt)) continue;
      names.set(other.key, alt);
      other.name = alt;
    }
  }
  return { names, clashes };
}

/** A zone or other domain name as given by a user: lower-cased, without the final dot; throws a message naming what is wrong. */
export function parseDomain(text: string): string {
  const name = text.replace(/\.$/, '').toLowerCase();
  if (name === '') throw new Error('must be a domain name, not the root');
  if (name.length > NAME_MAX) throw new Error(`must be at most ${NAME_MAX} characters, got ${name.length}`);
  for (const label of name.split('.')) {
    if (label === '') throw new Error(`has an empty label: ${JSON.stringify(text)}`);
    // "_" is allowed for names such as _dns.example; "-" not at either end
    if (!/^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label)) {
      throw new Error(`label ${JSON.stringify(label)} must be 1-63 letters, digits, "-" or "_", not starting or ending with "-"`);
    }
  }
  return name;
}

/** The reverse name of a hex address: d.c.b.a.in-addr.arpa, or 32 nibbles under ip6.arpa. */
export function reverseName(hex: string): string {
  if (familyOfHex(hex) === 4) {
    const octets = [0, 2, 4, 6].map((i) => String(parseInt(hex.slice(i, i + 2), 16)));
    return `${octets.reverse().join('.')}.in-addr.arpa`;
  }
  return `${[...hex].reverse().join('.')}.ip6.arpa`;
}

/**
 * The reverse zones that cover a subnet exactly, with the prefix rounded up
 * to whole labels: octets for IPv4, nibbles for IPv6 (10.20.0.0/22 is four
 * /24 zones, 0-3.20.10.in-addr.arpa). Their number is at most 2^7 (IPv4)
 * or 2^3 (IPv6).
 */
export function reverseZones(first: string, prefix: number): string[] {
  const v4 = familyOfHex(first) === 4;
  const unit = v4 ? 8 : 4;
  const bits = v4 ? 32 : 128;
  const rounded = Math.min(bits, Math.ceil(prefix / unit) * unit);
  const labels = rounded / unit;
  const count = 2 ** (rounded - prefix);
  const base = BigInt(`0x${first}`);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const hex = (base + (BigInt(i) << BigInt(bits - rounded))).toString(16).padStart(first.length, '0');
    const full = reverseName(hex).split('.');
    // the address's labels come least significant first: keep its `labels` most significant ones and the two of the arpa suffix
    out.push(full.slice(full.length - 2 - labels).join('.'));
  }
  return out;
}
