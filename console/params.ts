// Validation of what a browser sends: query parameters, path segments and
// form fields. Each rule throws a ValidationError whose message starts with
// the field's name, as the pool's own errors do; nothing unchecked reaches
// the store or a page.
import { ValidationError } from '../core/errors.js';
import { ADDRESS_ACTIONS, type AddressAction } from '../ipam/actions.js';
import { POOL_SORTS, type PoolSort, type PoolsQuery, type SortOrder } from './render.js';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Largest form body accepted: a reserve form with the longest owner and note fits many times over. */
export const MAX_FORM_BYTES = 16 * 1024;

/**
 * The parameters of a query string or form, each at most once and each one
 * the page takes; `allowed` lists them.
 */
export function readParams(params: URLSearchParams, allowed: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of params) {
    if (!allowed.includes(name)) {
      const takes = allowed.length > 0 ? `it takes ${allowed.join(', ')}` : 'it takes none';
      throw new ValidationError(name, `is not a parameter of this page (${takes})`);
    }
    if (out.has(name)) throw new ValidationError(name, 'may be given only once');
    out.set(name, value);
  }
  return out;
}

/** Printable text of at most `max` characters; '' when absent. */
export function text(params: Map<string, string>, name: string, max: number): string {
  const value = params.get(name) ?? '';
  if (value.length > max || CONTROL.test(value)) throw new ValidationError(name, `must be at most ${max} printable characters, got ${JSON.stringify(value.slice(0, 80))}`);
  return value;
}

/** One of the given words; `fallback` when absent. */
export function oneOf<T extends string>(params: Map<string, string>, name: string, words: readonly T[], fallback?: T): T {
  const value = params.get(name);
  if (value === undefined && fallback !== undefined) return fallback;
  if (!(words as readonly string[]).includes(value ?? '')) {
    throw new ValidationError(name, `must be one of ${words.join(', ')}, got ${JSON.stringify(value ?? '')}`);
  }
  return value as T;
}

/** The pools page's sort, order and name filter. */
export function poolsQuery(params: Map<string, string>): PoolsQuery {
  return {
    sort: oneOf<PoolSort>(params, 'sort', POOL_SORTS, 'name'),
    order: oneOf<SortOrder>(params, 'order', ['asc', 'desc'], 'asc'),
    q: text(params, 'q', 63),
  };
}

/** The change an address page reports as just made. */
export function doneAction(params: Map<string, string>): AddressAction | undefined {
  return params.has('done') ? oneOf(params, 'done', ADDRESS_ACTIONS) : undefined;
}

/**
 * Where to go after logging in: a path of this console, never another site
 * ("//host" and "/\host" are other sites to a browser).
 */
export function localPath(params: Map<string, string>, name: string): string {
  const value = params.get(name) ?? '/';
  if (!/^\/(?![/\\])/.test(value) || value.length > 2048 || CONTROL.test(value)) {
    throw new ValidationError(name, `must be a path of this console starting with "/", got ${JSON.stringify(value.slice(0, 80))}`);
  }
  return value;
}

/** An optional form field: undefined when empty, so that "no owner" is not an empty owner. */
export function optional(params: Map<string, string>, name: string): string | undefined {
  const value = params.get(name);
  return value === undefined || value.trim() === '' ? undefined : value;
}

/**
 * A path segment, percent-decoded; kept as sent when it is not valid
 * percent-encoding, for the check of what it names (a pool name, an
 * address) to refuse it.
 */
export function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
