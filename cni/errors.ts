// CNI errors: every error leaving a plugin carries a spec code (0-99) or one
// of berth's own (100+); anything unexpected becomes 999. One table, tested
// for uniqueness and listed in the README; a pool error carries its CNI code
// in core/errors.ts.
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';

/** The well-known codes of the CNI spec that berth uses. */
export const CNI_CODES = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILED: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  NOT_AVAILABLE: 50,
  LIMITED_CONNECTIVITY: 51,
} as const;

/** berth's plugin-specific codes, 100 and up. */
export const BERTH_CODES = {
  POOL_EXHAUSTED: 100,
  IP_ALLOCATED: 101,
  IP_RESERVED: 102,
  IP_NOT_IN_POOL: 103,
  ATTACHMENT_CONFLICT: 104,
  STALE_GENERATION: 105,
  STORE_CORRUPT: 106,
  CHECK_FAILED: 107,
  KERNEL_UNSUPPORTED: 108,
  LINK_FAILED: 109,
  OVSDB_FAILED: 110,
  GC_INCOMPLETE: 111,
  ADDRESS_IN_USE: 112,
} as const;

export const UNEXPECTED = 999;

/** An error as the spec prints it. */
export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, details?: string, options?: { cause?: unknown }) {
    super(msg, options);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
}

/** The CNI code a pool error code (core/errors.ts) is reported as; anything else is unexpected (999). */
export function cniCodeOf(berthCode: string | undefined): number {
  return berthCode !== undefined && Object.hasOwn(ERROR_CODES, berthCode) ? ERROR_CODES[berthCode as ErrorCode].cni : UNEXPECTED;
}

/** Any thrown value as a CniError. */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return new CniError(cniCodeOf(typeof e?.code === 'string' ? e.code : undefined), message, undefined, { cause: err });
}
