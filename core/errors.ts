// Every error the pool can raise, in one table. Callers branch on `code`;
// the CNI layer maps codes to spec error codes, the CLI prints the message.

/**
 * What each code means (documented in the README, tested for uniqueness),
 * the CNI error code a plugin reports it as, and, for the codes a Redis
 * script answers with, the negative number the scripts use (ipam/lua/lib.lua
 * and the registry scripts name them E_*; a test holds the two together).
 */
export const ERROR_CODES = {
  INVALID: { meaning: 'an input field is missing or malformed', cni: 7 },
  POOL_NOT_FOUND: { meaning: 'no pool of that name', cni: 7, lua: -1 },
  POOL_EXISTS: { meaning: 'a pool of that name already exists', cni: 7, lua: -10 },
  POOL_OVERLAP: { meaning: "the pool's subnet overlaps another pool", cni: 7, lua: -11 },
  POOL_IN_USE: { meaning: 'the pool still has allocated addresses', cni: 7, lua: -12 },
  POOL_EXHAUSTED: { meaning: 'no free address is left in the pool', cni: 100, lua: -2 },
  IP_NOT_IN_POOL: { meaning: 'the address is outside the pool ranges, or is its network, broadcast or gateway', cni: 103, lua: -3 },
  IP_ALLOCATED: { meaning: 'the address is allocated to another attachment', cni: 101, lua: -4 },
  IP_RESERVED: { meaning: 'the address is reserved for another owner', cni: 102, lua: -5 },
  IP_NOT_ALLOCATED: { meaning: 'the address is not allocated', cni: 7, lua: -6 },
  IP_NOT_RESERVED: { meaning: 'the address is not reserved', cni: 7, lua: -7 },
  ATTACHMENT_CONFLICT: { meaning: 'the attachment already holds a different address', cni: 104, lua: -8 },
  STALE_GENERATION: { meaning: 'the request refers to an older allocation of the address', cni: 105, lua: -9 },
  STORE_UNAVAILABLE: { meaning: 'the store did not answer, refused the connection, or no replica confirmed a change in time', cni: 11 },
  STORE_CORRUPT: { meaning: 'the store holds data berth cannot read', cni: 106, lua: -13 },
} as const satisfies Record<string, { meaning: string; cni: number; lua?: number }>;

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

/** The code a Redis script's negative answer stands for, if it is one. */
export function codeOfLua(n: number): ErrorCode | undefined {
  return (Object.keys(ERROR_CODES) as ErrorCode[]).find((c) => (ERROR_CODES[c] as { lua?: number }).lua === n);
}

/** The message of anything thrown, on one line. */
export function causeOf(err: unknown): string {
  if (err instanceof Error) return oneLine(err.message || err.name);
  return oneLine(String(err));
}

/** A name quoted for messages: `"web"`, escaped so it stays on one line. */
export function quote(name: unknown): string {
  return JSON.stringify(String(name));
}

/** Text on one line: line breaks and the white space around them become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
