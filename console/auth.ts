// Who may change the pool through the console: whoever logs in with the admin
// token. A login opens a session kept in memory (a restart logs everyone
// out), named by a random id in an HttpOnly, SameSite=Strict cookie.
//
// Cross-site requests are refused three ways, each enough on its own in a
// current browser: every change form carries the session's CSRF token, which
// another site cannot read; the session cookie is SameSite=Strict, so a
// request from another site arrives without it; and a POST whose Origin (or,
// without one, Sec-Fetch-Site) says another site sent it is refused before
// anything else is looked at.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ValidationError } from '../core/errors.js';
import { readSecretFile, type Warn } from '../ipam/password-files.js';

/** Shortest admin token accepted: 16 characters of `openssl rand -hex 32`'s 64 are 64 bits. */
export const MIN_TOKEN_LENGTH = 16;
/** A session ends this long after its last request. */
export const SESSION_IDLE_MS = 12 * 3600 * 1000;
/** Sessions kept at most; the one idle longest goes first. */
const MAX_SESSIONS = 1000;
export const COOKIE = 'berth_console';

/** Reads the admin token: the file wins over the environment; null when neither gives one. */
export function loadToken(file: string | undefined, env: NodeJS.ProcessEnv, warn: Warn): string | null {
  let token: string;
  let field: string;
  if (file !== undefined) {
    token = readSecretFile(file, '--token-file', 'token file', warn);
    field = '--token-file';
  } else if (env.BERTH_CONSOLE_TOKEN !== undefined && env.BERTH_CONSOLE_TOKEN !== '') {
    token = env.BERTH_CONSOLE_TOKEN;
    field = 'BERTH_CONSOLE_TOKEN';
  } else {
    return null;
  }
  if (token.trim().length < MIN_TOKEN_LENGTH) {
    throw new ValidationError(field, `the admin token must be at least ${MIN_TOKEN_LENGTH} characters (e.g. the output of "openssl rand -hex 32")`);
  }
  return token;
}

export interface Session {
  id: string;
  /** sent with every change form and compared on every POST */
  csrf: string;
  /** ms since the epoch */
  expires: number;
}

/** The sessions of one console. */
export class Sessions {
  private readonly digest: Buffer | null;
  private readonly sessions = new Map<string, Session>();

  /** `token` null: no one can log in, and the console is read-only. */
  constructor(
    token: string | null,
    private readonly now: () => number = Date.now,
  ) {
    this.digest = token === null ? null : sha256(token);
  }

  /** True when an admin token was configured. */
  get enabled(): boolean {
    return this.digest !== null;
  }

  /** A new session when `candidate` is the token; compared in constant time. */
  login(candidate: string): Session | null {
    if (!this.digest || !timingSafeEqual(sha256(candidate), this.digest)) return null;
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const session: Session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), expires: this.now() + SESSION_IDLE_MS };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session a request's cookie names, its idle time restarted; null when none. */
  get(cookieHeader: string | undefined): Session | null {
    const id = cookieValue(cookieHeader, COOKIE);
    const session = id === undefined ? undefined : this.sessions.get(id);
    if (!session) return null;
    if (session.expires <= this.now()) {
      this.sessions.delete(session.id);
      return null;
    }
    session.expires = this.now() + SESSION_IDLE_MS;
    // Map order is the eviction order: most recently used last.
    this.sessions.delete(session.id);
    this.sessions.set(session.id, session);
    return session;
  }

  logout(session: Session): void {
    this.sessions.delete(session.id);
  }
}

/** True when `given` is the session's CSRF token; compared in constant time. */
export function csrfMatches(session: Session, given: string | undefined): boolean {
  return given !== undefined && timingSafeEqual(sha256(given), sha256(session.csrf));
}

/**
 * Why a POST is refused as cross-site, or null when it may go on. The Origin
 * must name the host the request was sent to (Host, or X-Forwarded-Host from
 * a proxy: a page of another site cannot set either). A request without
 * Origin is judged by Sec-Fetch-Site when the browser sends it; one with
 * neither (curl, a script) still needs the session's CSRF token.
 */
export function crossSite(headers: IncomingHttpHeaders): string | null {
  const origin = headers.origin;
  if (origin !== undefined) {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return `the request came from ${JSON.stringify(origin)}, not from this console`;
    }
    const hosts = [headers.host, ...String(headers['x-forwarded-host'] ?? '').split(',')].map((h) => h?.trim().toLowerCase()).filter(Boolean);
    return hosts.includes(host.toLowerCase()) ? null : `the request came from ${origin}, not from this console`;
  }
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `the request came from another site (Sec-Fetch-Site: ${site})`;
  return null;
}

/** The Set-Cookie value that opens (or, with null, ends) a session; Secure when the page was served over HTTPS. */
export function sessionCookie(session: Session | null, secure: boolean): string {
  const attrs = `Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  if (!session) return `${COOKIE}=; ${attrs}; Max-Age=0`;
  return `${COOKIE}=${session.id}; ${attrs}; Max-Age=${Math.floor(SESSION_IDLE_MS / 1000)}`;
}

/** One cookie's value from a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
