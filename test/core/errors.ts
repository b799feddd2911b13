import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { BerthError, ERROR_CODES, isBerthError, ValidationError, type ErrorCode } from '../../core/errors.js';
import { fail } from '../../ipam/failures.js';
import { BERTH_CODES, CNI_CODES, cniCodeOf, UNEXPECTED } from '../../cni/errors.js';

const codes = Object.keys(ERROR_CODES) as ErrorCode[];
const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const LUA = fileURLToPath(new URL('../../ipam/lua/', import.meta.url));

t.test('each pool code names its CNI code, and the CNI table agrees', async (t) => {
  const cni = new Set<number>([...Object.values(CNI_CODES), ...Object.values(BERTH_CODES)]);
  for (const code of codes) {
    t.ok(cni.has(ERROR_CODES[code].cni), `${code} is reported as CNI ${ERROR_CODES[code].cni}, a code of the table`);
    t.equal(cniCodeOf(code), ERROR_CODES[code].cni);
    if (Object.hasOwn(BERTH_CODES, code)) t.equal(ERROR_CODES[code].cni, BERTH_CODES[code as keyof typeof BERTH_CODES], `${code}: the same number in both tables`);
  }
  t.equal(cniCodeOf('NO_SUCH_CODE'), UNEXPECTED, 'an unknown code is unexpected');
  t.equal(cniCodeOf(undefined), UNEXPECTED);
});

t.test("the Redis scripts' error numbers are the table's", async (t) => {
  // lib.lua names them E_*, the registry scripts return the numbers: read both
  const lib = readFileSync(`${LUA}lib.lua`, 'utf8');
  const named = new Map<string, number>();
  for (const m of lib.matchAll(/^local ((?:E_[A-Z_]+(?:, )?)+) = ((?:-\d+(?:, )?)+)$/gm)) {
    const names = m[1]!.split(', ');
    const values = m[2]!.split(', ').map(Number);
    names.forEach((n, i) => named.set(n, values[i]!));
  }
  const luaNames: Record<string, string> = {
    E_POOL_NOT_FOUND: 'POOL_NOT_FOUND', E_EXHAUSTED: 'POOL_EXHAUSTED', E_NOT_IN_POOL: 'IP_NOT_IN_POOL', E_ALLOCATED: 'IP_ALLOCATED', E_RESERVED: 'IP_RESERVED',
    E_NOT_ALLOCATED: 'IP_NOT_ALLOCATED', E_NOT_RESERVED: 'IP_NOT_RESERVED', E_ATT_CONFLICT: 'ATTACHMENT_CONFLICT', E_STALE_GEN: 'STALE_GENERATION',
    E_POOL_IN_USE: 'POOL_IN_USE', E_CORRUPT: 'STORE_CORRUPT',
  };
  t.same([...named.keys()].sort(), Object.keys(luaNames).sort(), 'lib.lua names these');
  for (const [luaName, code] of Object.entries(luaNames)) t.equal(named.get(luaName), (ERROR_CODES[code as ErrorCode] as { lua?: number }).lua, `${luaName} = ${code}`);
  const register = readFileSync(`${LUA}pool-register-1.lua`, 'utf8');
  t.match(register, new RegExp(`return \\{ ${ERROR_CODES.POOL_EXISTS.lua} \\}`), 'pool-register returns POOL_EXISTS');
  t.match(register, new RegExp(`return \\{ ${ERROR_CODES.POOL_OVERLAP.lua},`), 'and POOL_OVERLAP');
  const numbers = codes.flatMap((c) => ((ERROR_CODES[c] as { lua?: number }).lua === undefined ? [] : [(ERROR_CODES[c] as { lua?: number }).lua]));
  t.equal(new Set(numbers).size, numbers.length, 'no two codes share a script number');
});

t.test('codes are distinct, well formed and described', async (t) => {
  t.ok(codes.length >= 15, `${codes.length} codes`);
  t.equal(new Set(codes.map((c) => c.toLowerCase())).size, codes.length, 'no two codes differ only in case');
  for (const code of codes) {
    t.match(code, /^[A-Z][A-Z_]*[A-Z]$/, `${code} is UPPER_SNAKE`);
    const description = ERROR_CODES[code].meaning;
    t.equal(typeof description, 'string', `${code} has a description`);
    t.ok(description.trim().length >= 10, `${code} is described in words: "${description}"`);
  }
  const descriptions = codes.map((c) => ERROR_CODES[c].meaning);
  t.equal(new Set(descriptions).size, descriptions.length, 'no two codes share a description');
});

t.test('every failure builder makes a BerthError with a known code', async (t) => {
  // Sample arguments and the code each builder must produce. A builder added
  // to `fail` without an entry here fails the coverage check below.
  const cases: Record<keyof typeof fail, { args: unknown[]; code: ErrorCode; message: RegExp }> = {
    poolNotFound: { args: ['vlan100'], code: 'POOL_NOT_FOUND', message: /^pool "vlan100" does not exist$/ },
    poolExists: { args: ['vlan100'], code: 'POOL_EXISTS', message: /^pool "vlan100" already exists$/ },
    poolOverlap: { args: ['10.0.0.0/24', 'other', '10.0.0.0/16'], code: 'POOL_OVERLAP', message: /10\.0\.0\.0\/24 overlaps pool "other" \(10\.0\.0\.0\/16\)/ },
    poolInUse: { args: ['vlan100', 3], code: 'POOL_IN_USE', message: /pool "vlan100" has 3 allocated addresses/ },
    exhausted: { args: ['vlan100', 250, 3], code: 'POOL_EXHAUSTED', message: /pool "vlan100" has no free address \(250 allocated, 3 reserved\)/ },
    notInPool: { args: ['0a000001', 'vlan100'], code: 'IP_NOT_IN_POOL', message: /^10\.0\.0\.1 is not an assignable address of pool "vlan100"$/ },
    allocated: { args: ['0a000005', 'own', 'c1'], code: 'IP_ALLOCATED', message: /^10\.0\.0\.5 is allocated to own \(container c1\)$/ },
    allocatedToOther: { args: ['0a000005', 'own'], code: 'IP_ALLOCATED', message: /^10\.0\.0\.5 is allocated to own;/ },
    reservedFor: { args: ['fd000000000000000000000000000005', 'own'], code: 'IP_RESERVED', message: /^fd00::5 is reserved for own$/ },
    notAllocated: { args: ['0a000005', 'free'], code: 'IP_NOT_ALLOCATED', message: /^10\.0\.0\.5 is free, not allocated$/ },
    notReserved: { args: ['0a000005', 'allocated'], code: 'IP_NOT_RESERVED', message: /^10\.0\.0\.5 is allocated, not reserved$/ },
    attachmentConflict: { args: ['c1/eth0', '0a000005', '0a000006'], code: 'ATTACHMENT_CONFLICT', message: /^attachment c1\/eth0 already holds 10\.0\.0\.5, not 10\.0\.0\.6$/ },
    corruptRecord: { args: ['0a000005'], code: 'STORE_CORRUPT', message: /^the record of 10\.0\.0\.5 cannot be read/ },
    staleGeneration: { args: ['0a000005', 4, 3], code: 'STALE_GENERATION', message: /^10\.0\.0\.5 is at generation 4, the request refers to 3$/ },
  };
  t.strictSame(Object.keys(fail).sort(), Object.keys(cases).sort(), 'every builder has a case');
  for (const [name, { args, code, message }] of Object.entries(cases)) {
    const build = fail[name as keyof typeof fail] as (...a: unknown[]) => unknown;
    const err = build(...args);
    t.ok(err instanceof BerthError, `${name} builds a BerthError`);
    t.ok(err instanceof Error, `${name} builds an Error`);
    const e = err as BerthError;
    t.ok(Object.hasOwn(ERROR_CODES, e.code), `${name}: ${e.code} is in ERROR_CODES`);
    t.equal(e.code, code, `${name} has code ${code}`);
    t.equal(e.name, 'BerthError');
    t.match(e.message, message, `${name} message`);
  }
});

t.test('failure builders with unknown owner or container', async (t) => {
  t.equal(fail.allocated('0a000005', undefined, undefined).message, '10.0.0.5 is allocated to ? (container ?)');
  t.equal(fail.reservedFor('0a000005', undefined).message, '10.0.0.5 is reserved');
});

t.test('ValidationError', async (t) => {
  const e = new ValidationError('ranges[1]', 'is outside subnet 10.0.0.0/24');
  t.ok(e instanceof BerthError);
  t.ok(e instanceof Error);
  t.equal(e.code, 'INVALID');
  t.equal(e.name, 'ValidationError');
  t.equal(e.field, 'ranges[1]');
  t.equal(e.message, 'ranges[1]: is outside subnet 10.0.0.0/24');
  t.strictSame(e.details, { field: 'ranges[1]' });
  t.ok(Object.hasOwn(ERROR_CODES, 'INVALID'));
});

t.test('BerthError keeps details and cause', async (t) => {
  const cause = new Error('ECONNREFUSED');
  const e = new BerthError('STORE_UNAVAILABLE', 'failed to reach store', { host: 'h' }, { cause });
  t.equal(e.code, 'STORE_UNAVAILABLE');
  t.equal(e.message, 'failed to reach store');
  t.strictSame(e.details, { host: 'h' });
  t.equal(e.cause, cause);
  t.equal(new BerthError('POOL_EXISTS', 'x').details, undefined);
});

t.test('isBerthError', async (t) => {
  const e = fail.poolNotFound('p');
  t.equal(isBerthError(e), true);
  t.equal(isBerthError(e, 'POOL_NOT_FOUND'), true);
  t.equal(isBerthError(e, 'POOL_EXISTS'), false);
  t.equal(isBerthError(new ValidationError('f', 'bad'), 'INVALID'), true);
  t.equal(isBerthError(new Error('POOL_NOT_FOUND')), false);
  t.equal(isBerthError({ code: 'POOL_NOT_FOUND', message: 'x' }), false);
  t.equal(isBerthError(undefined), false);
});

/** The text of the README section headed "Error codes", up to the next heading of the same or a higher level. */
function errorCodesSection(readme: string): string | undefined {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => /^#{1,6}\s+error codes\b/i.test(l));
  if (start < 0) return undefined;
  const level = /^(#+)/.exec(lines[start]!)![1]!.length;
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => {
    const m = /^(#{1,6})\s/.exec(l);
    return m !== null && m[1]!.length <= level;
  });
  return (end < 0 ? rest : rest.slice(0, end)).join('\n');
}

const section = existsSync(README) ? errorCodesSection(readFileSync(README, 'utf8')) : undefined;

t.test('the README lists every error code', async (t) => {
  t.ok(section !== undefined, 'README.md has an "Error codes" section');
  for (const code of codes) t.match(section!, new RegExp(`\\b${code}\\b`), `README lists ${code}`);
});
