// Validation of what callers hand a store, shared by both stores so they
// refuse the same inputs the same way. Empty strings, control characters
// (NUL separates owner and address in the owner index) and malformed hex never
// reach the engine or a Lua script.
import { ValidationError } from '../core/errors.js';
import type { AllocateRequest, ConflictRequest, HistoryCursor, HistoryOptions, ReleaseRequest, ReserveRequest } from './model.js';
import { validatePoolName } from './pool-config.js';

const HEX = /^(?:[0-9a-f]{8}|[0-9a-f]{32})$/;
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;
const HOST_ID = /^[A-Za-z0-9_.-]{1,64}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** An address as the stores take it: 8 or 32 lowercase hex digits (see address.ts). */
export function checkHex(ip: unknown, field = 'ip'): string {
  if (typeof ip !== 'string' || !HEX.test(ip)) throw new ValidationError(field, `must be an address in berth's hex form, got ${JSON.stringify(ip)}`);
  return ip;
}

function text(value: unknown, field: string, max: number): void {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || CONTROL.test(value)) {
    throw new ValidationError(field, `must be 1-${max} printable characters, got ${JSON.stringify(value)}`);
  }
}

function optionalText(value: unknown, field: string, max: number): void {
  if (value !== undefined) text(value, field, max);
}

function attachment(containerId: unknown, ifname: unknown): void {
  if (typeof containerId !== 'string' || !CONTAINER_ID.test(containerId)) {
    throw new ValidationError('containerId', `must start with a letter or digit, then letters, digits, "_", "." or "-"; got ${JSON.stringify(containerId)}`);
  }
  if (typeof ifname !== 'string' || ifname.length === 0 || Buffer.byteLength(ifname) > 15 || /[/:\s]/.test(ifname) || CONTROL.test(ifname)) {
    throw new ValidationError('ifname', `must be an interface name (1-15 bytes, no "/", ":" or white space), got ${JSON.stringify(ifname)}`);
  }
}

/** Validates an allocation request. */
export function checkAllocate(req: AllocateRequest): void {
  attachment(req.containerId, req.ifname);
  text(req.owner, 'owner', 253);
  if (req.ip !== undefined) checkHex(req.ip);
  optionalText(req.host, 'host', 253);
  if (req.host !== undefined && req.host.includes('@')) throw new ValidationError('host', `must be a host name without "@", got ${JSON.stringify(req.host)}`);
  if (req.hostId !== undefined && (typeof req.hostId !== 'string' || !HOST_ID.test(req.hostId))) {
    throw new ValidationError('hostId', `must be 1-64 letters, digits, "_", "." or "-", got ${JSON.stringify(req.hostId)}`);
  }
  optionalText(req.network, 'network', 253);
  optionalText(req.actor, 'actor', 253);
}

/** Validates a release request: by attachment or by address, with an optional generation. */
export function checkRelease(req: ReleaseRequest): void {
  if (req.containerId !== undefined) attachment(req.containerId, req.ifname);
  else checkHex(req.ip);
  if (req.gen !== undefined && (!Number.isSafeInteger(req.gen) || req.gen < 1)) throw new ValidationError('gen', `must be a positive integer, got ${JSON.stringify(req.gen)}`);
  optionalText(req.actor, 'actor', 253);
}

/** Validates an admin reservation. */
export function checkReserve(ip: string, req: ReserveRequest): void {
  checkHex(ip);
  optionalText(req.owner, 'owner', 253);
  optionalText(req.note, 'note', 1024);
  optionalText(req.actor, 'actor', 253);
}

/** Validates a conflict report: the attachment is optional, the note is not. */
export function checkConflict(ip: string, req: ConflictRequest): void {
  checkHex(ip);
  if (req.containerId !== undefined || req.ifname !== undefined) attachment(req.containerId, req.ifname);
  text(req.note, 'note', 1024);
  optionalText(req.actor, 'actor', 253);
}

/** Validates history options. */
export function checkHistory(opts: HistoryOptions): void {
  if (opts.ip !== undefined) checkHex(opts.ip);
  if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 0)) {
    throw new ValidationError('limit', `must be a whole number, got ${JSON.stringify(opts.limit)}`);
  }
}

/** Longest wait historyAfter takes: a caller that wants longer asks again. */
export const MAX_HISTORY_WAIT_MS = 60_000;

/** Validates a historyAfter call: pool names, a cursor of strings, a wait in ms. */
export function checkHistoryAfter(pools: unknown, cursor: unknown, waitMs: unknown): void {
  if (!Array.isArray(pools)) throw new ValidationError('pools', `must be a list of pool names, got ${typeof pools}`);
  pools.forEach((p, i) => validatePoolName(p, `pools[${i}]`));
  if (typeof cursor !== 'object' || cursor === null || Object.values(cursor as HistoryCursor).some((v) => typeof v !== 'string')) {
    throw new ValidationError('cursor', 'must be the cursor a previous historyAfter returned');
  }
  if (!Number.isSafeInteger(waitMs) || (waitMs as number) < 0 || (waitMs as number) > MAX_HISTORY_WAIT_MS) {
    throw new ValidationError('waitMs', `must be a whole number of ms from 0 to ${MAX_HISTORY_WAIT_MS}, got ${JSON.stringify(waitMs)}`);
  }
}
