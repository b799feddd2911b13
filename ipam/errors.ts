// Every error the pool can raise, in one table. Callers branch on `code`;
// the CNI layer maps codes to spec error codes, the CLI prints the message.

/** What each code means; documented in the README and tested for uniqueness. */
export const ERROR_CODES = {
  INVALID: 'an input field is missing or malformed',
  POOL_NOT_FOUND: 'no pool of that name',
  POOL_EXISTS: 'a pool of that name already exists',
  POOL_OVERLAP: "the pool's subnet overlaps another pool",
  POOL_IN_USE: 'the pool still has allocated addresses',
  POOL_EXHAUSTED: 'no free address is left in the pool',
  IP_NOT_IN_POOL: 'the address is outside the pool ranges, or is its network, broadcast or gateway',
  IP_ALLOCATED: 'the address is allocated to another attachment',
  IP_RESERVED: 'the address is reserved for another owner',
  IP_NOT_ALLOCATED: 'the address is not allocated',
  IP_NOT_RESERVED: 'the address is not reserved',
  ATTACHMENT_CONFLICT: 'the attachment already holds a different address',
  STALE_GENERATION: 'the request refers to an older allocation of the address',
  STORE_UNAVAILABLE: 'the store did not answer, refused the connection, or no replica confirmed a change in time',
  STORE_CORRUPT: 'the store holds data berth cannot read',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An expected failure of a pool operation. */
export class BerthError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BerthError';
    this.code = code;
    this.details = details;
  }
}

/** Bad input: the message starts with the field it concerns. */
export class ValidationError extends BerthError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('INVALID', `${field}: ${message}`, { field });
    this.name = 'ValidationError';
    this.field = field;
  }
}

/** True for a BerthError of the given code. */
export function isBerthError(err: unknown, code?: ErrorCode): err is BerthError {
  return err instanceof BerthError && (code === undefined || err.code === code);
}
