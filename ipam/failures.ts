// The expected failures of pool operations, built in one place so the file
// store (engine.ts) and the Redis store (Lua replies) say exactly the same.
import { formatIp } from '../core/address.js';
import { BerthError } from '../core/errors.js';

/** Builders for every expected failure, by error code. */
export const fail = {
  poolNotFound: (pool: string) => new BerthError('POOL_NOT_FOUND', `pool "${pool}" does not exist`, { pool }),
  poolExists: (pool: string) => new BerthError('POOL_EXISTS', `pool "${pool}" already exists`, { pool }),
  poolOverlap: (subnet: string, other: string, otherSubnet: string) =>
    new BerthError('POOL_OVERLAP', `subnet ${subnet} overlaps pool "${other}" (${otherSubnet})`, { pool: other }),
  poolInUse: (pool: string, allocated: number) =>
    new BerthError('POOL_IN_USE', `pool "${pool}" has ${allocated} allocated addresses; release them or use --force`, { allocated }),
  exhausted: (pool: string, allocated: number, reserved: number) =>
    new BerthError('POOL_EXHAUSTED', `pool "${pool}" has no free address (${allocated} allocated, ${reserved} reserved)`, {
      allocated,
      reserved,
    }),
  notInPool: (hex: string, pool: string) =>
    new BerthError('IP_NOT_IN_POOL', `${formatIp(hex)} is not an assignable address of pool "${pool}"`, { ip: formatIp(hex) }),
  allocated: (hex: string, owner: string | undefined, containerId: string | undefined) =>
    new BerthError('IP_ALLOCATED', `${formatIp(hex)} is allocated to ${owner ?? '?'} (container ${containerId ?? '?'})`, {
      owner,
      containerId,
    }),
  allocatedToOther: (hex: string, owner: string | undefined) =>
    new BerthError('IP_ALLOCATED', `${formatIp(hex)} is allocated to ${owner ?? '?'}; reserve it for that owner or release it first`, {
      owner,
    }),
  reservedFor: (hex: string, owner: string | undefined) =>
    new BerthError('IP_RESERVED', `${formatIp(hex)} is reserved${owner !== undefined ? ` for ${owner}` : ''}`, { owner }),
  notAllocated: (hex: string, state: string) => new BerthError('IP_NOT_ALLOCATED', `${formatIp(hex)} is ${state}, not allocated`),
  notReserved: (hex: string, state: string) => new BerthError('IP_NOT_RESERVED', `${formatIp(hex)} is ${state}, not reserved`),
  attachmentConflict: (key: string, current: string, requested: string) =>
    new BerthError('ATTACHMENT_CONFLICT', `attachment ${key} already holds ${formatIp(current)}, not ${formatIp(requested)}`, {
      ip: formatIp(current),
    }),
  corruptRecord: (hex: string) =>
    new BerthError('STORE_CORRUPT', `the record of ${formatIp(hex)} cannot be read; see "berth ipam check"`, { ip: formatIp(hex) }),
  staleGeneration: (hex: string, gen: number, requested: number) =>
    new BerthError('STALE_GENERATION', `${formatIp(hex)} is at generation ${gen}, the request refers to ${requested}`, { gen }),
};
