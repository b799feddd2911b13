// The console's HTTP handler on node:http: routing, input, session checks and
// store calls; every page comes from render.ts. A failure is shown as the CLI
// prints it, "failed to <what>: <cause>", with a status from its error code.
//
// Over 400 lines because the console's routes in one table, each a few lines
// of input checks and one store call; the pages are render.ts's.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseCidr, parseIp } from '../core/address.js';
import { BerthError, isBerthError, ValidationError } from '../core/errors.js';
import type { AddressInfo, PoolUsage, Store } from '../ipam/model.js';
import { capacity, validatePoolName } from '../ipam/pool-config.js';
import { actionSubject, applyAction, type AddressAction } from '../ipam/actions.js';
import { causeOf, quote } from '../core/errors.js';
import { crossSite, csrfMatches, sessionCookie, type Session, type Sessions } from './auth.js';
import { historyCsv } from './csv.js';
import type { ChangeFeed } from '../ipam/change-feed.js';
import { serveEvents } from './feed.js';
import type { Html } from './html.js';
import { blockAt, buildMap, mapLevels, parseBlock, trail } from './map.js';
import { doneAction, localPath, MAX_FORM_BYTES, oneOf, optional, poolsQuery, readParams, segment, text } from './params.js';
import {
  addressLive,
  poolLive,
  poolsTable,
  renderAddress,
  renderError,
  renderLogin,
  renderPool,
  renderPools,
  renderSearch,
  type AddressPage,
  type PageContext,
  type PoolPage,
} from './render.js';
import type { PoolRecords } from '../ipam/pool-records.js';
import { search } from './search.js';

/** A static file the pages load. */
export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

export interface ConsoleLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ConsoleDeps {
  store: Store;
  feed: ChangeFeed;
  /** the pools' records for maps and search, kept in step by the feed */
  records: PoolRecords;
  sessions: Sessions;
  /** recorded in the pool history as who made a change here */
  actor: string;
  log: ConsoleLog;
  assets: Map<string, Asset>;
}

/** A refusal or failure with the status it is answered with. */
class PageError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A failed login waits this long before it is answered, so guessing the token is slow. */
const LOGIN_FAIL_DELAY_MS = 500;

// Scripts and styles come from this console only; inline scripts never run. Style attributes carry the usage bars' widths.
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
};

interface Request {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** the path's matched segments, still percent-encoded */
  match: RegExpExecArray;
  session: Session | null;
  ctx: PageContext;
}

type Route = [method: 'GET' | 'POST', path: RegExp, handler: (r: Request) => Promise<void>];

/** The request handler of a console over these collaborators. */
export function consoleHandler(deps: ConsoleDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const routes: Route[] = [
    ['GET', /^\/$/, (r) => poolsPage(deps, r)],
    ['GET', /^\/pools\/([^/]+)$/, (r) => poolPage(deps, r)],
    ['GET', /^\/pools\/([^/]+)\/([^/]+)$/, (r) => addressPage(deps, r)],
    ['GET', /^\/pools\/([^/]+)\/([^/]+)\/history\.csv$/, (r) => historyExport(deps, r)],
    ['POST', /^\/pools\/([^/]+)\/([^/]+)\/(reserve|unreserve|release)$/, (r) => change(deps, r)],
    ['GET', /^\/search$/, (r) => searchPage(deps, r)],
    ['GET', /^\/login$/, (r) => loginPage(r)],
    ['POST', /^\/login$/, (r) => login(deps, r)],
    ['POST', /^\/logout$/, (r) => logout(deps, r)],
    ['GET', /^\/events$/, (r) => events(deps, r)],
    ['GET', /^\/assets\/([a-z.-]+)$/, async (r) => asset(deps, r)],
    ['GET', /^\/healthz$/, async (r) => send(r.res, 200, 'text/plain; charset=utf-8', 'ok\n')],
  ];
  return (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://console.invalid');
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'bad request\n');
      return;
    }
    const session = deps.sessions.get(req.headers.cookie);
    const ctx: PageContext = {
      auth: !deps.sessions.enabled ? 'none' : session ? 'in' : 'out',
      csrf: session?.csrf,
      store: deps.store.location,
      here: `${url.pathname}${url.search}`,
    };
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const matching = routes.map(([m, path, handler]) => [m, path.exec(url.pathname), handler] as const).filter(([, match]) => match);
    const route = matching.find(([m]) => m === method);
    if (!route) {
      if (matching.length === 0) sendPage(res, 404, renderError(404, `no page at ${url.pathname}`, ctx));
      else {
        res.setHeader('Allow', [...new Set(matching.map(([m]) => (m === 'GET' ? 'GET, HEAD' : m)))].join(', '));
        sendPage(res, 405, renderError(405, `${req.method} is not allowed here`, ctx));
      }
      return;
    }
    const r: Request = { req, res, url, match: route[1]!, session, ctx };
    route[2](r).catch((err: unknown) => {
      const status = err instanceof PageError ? err.status : statusOf(err);
      if (status >= 500) deps.log.error({ path: url.pathname, err: causeOf(err) }, 'request failed');
      if (res.headersSent) res.destroy();
      else sendPage(res, status, renderError(status, causeOf(err), ctx));
    });
  };
}

/** Runs `fn`; any failure becomes "failed to <what>: <cause>" with the status of its code. */
async function doing<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof PageError) throw err;
    throw new PageError(statusOf(err), `failed to ${what}: ${causeOf(err)}`);
  }
}

/** The HTTP status for an error from input or the store. */
function statusOf(err: unknown): number {
  if (!(err instanceof BerthError)) return 500;
  switch (err.code) {
    case 'INVALID':
      return 400;
    case 'POOL_NOT_FOUND':
      return 404;
    case 'STORE_UNAVAILABLE':
      return 503;
    case 'STORE_CORRUPT':
      return 500;
    default:
      return 409;
  }
}

// --- pages ----------------------------------------------------------------

async function poolsPage(deps: ConsoleDeps, r: Request): Promise<void> {
  await doing('list pools', async () => {
    const params = readParams(r.url.searchParams, ['sort', 'order', 'q', 'part']);
    const q = poolsQuery(params);
    const part = params.has('part') ? oneOf(params, 'part', ['pools']) : undefined;
    const pools = await deps.store.listPools();
    sendPage(r.res, 200, part ? poolsTable(pools, q) : renderPools(pools, q, r.ctx));
  });
}

async function poolPage(deps: ConsoleDeps, r: Request): Promise<void> {
  const raw = segment(r.match[1]!);
  await doing(`show pool ${quote(raw)}`, async () => {
    const name = validatePoolName(raw, 'pool');
    const params = readParams(r.url.searchParams, ['block', 'part']);
    const part = params.has('part') ? oneOf(params, 'part', ['map']) : undefined;
    const conf = await deps.store.getPool(name);
    const scope = params.has('block') ? parseBlock(conf, params.get('block')) : parseCidr(conf.subnet, 'subnet');
    const records = await deps.records.list(name);
    const page: PoolPage = { usage: usageOf(conf, records), map: buildMap(conf, scope, records), trail: trail(parseCidr(conf.subnet, 'subnet'), scope) };
    sendPage(r.res, 200, part ? poolLive(page) : renderPool(page, r.ctx));
  });
}

/** The pool's usage counted from the records read with the map, so the bar and the map agree. */
function usageOf(conf: PoolUsage['conf'], records: readonly AddressInfo[]): PoolUsage {
  let allocated = 0;
  let reserved = 0;
  for (const a of records) {
    if (a.state === 'allocated') allocated++;
    else if (a.state === 'reserved') reserved++;
  }
  return { conf, allocated, reserved, capacity: capacity(conf).toString() };
}

async function addressPage(deps: ConsoleDeps, r: Request): Promise<void> {
  const pool = segment(r.match[1]!);
  const ip = segment(r.match[2]!);
  await doing(`show address ${quote(ip)} in pool ${quote(pool)}`, async () => {
    const params = readParams(r.url.searchParams, ['done', 'part']);
    const part = params.has('part') ? oneOf(params, 'part', ['address']) : undefined;
    const page = await loadAddress(deps.store, pool, ip);
    page.done = doneAction(params);
    sendPage(r.res, 200, part ? addressLive(page) : renderAddress(page, r.ctx));
  });
}

/** Everything an address page shows, read from the store. */
async function loadAddress(store: Store, poolText: string, ipText: string): Promise<AddressPage> {
  const pool = validatePoolName(poolText, 'pool');
  const hex = parseIp(ipText, 'ip').hex;
  const [conf, info, history] = await Promise.all([store.getPool(pool), store.getAddress(pool, hex), store.history(pool, { ip: hex })]);
  const subnet = parseCidr(conf.subnet, 'subnet');
  const levels = mapLevels(subnet);
  return { conf, info, history, trail: trail(subnet, blockAt(hex, levels[levels.length - 1]!, subnet.family)) };
}

async function historyExport(deps: ConsoleDeps, r: Request): Promise<void> {
  const pool = segment(r.match[1]!);
  const ip = segment(r.match[2]!);
  await doing(`read the history of address ${quote(ip)} in pool ${quote(pool)}`, async () => {
    readParams(r.url.searchParams, []);
    const name = validatePoolName(pool, 'pool');
    const hex = parseIp(ip, 'ip').hex;
    const entries = await deps.store.history(name, { ip: hex });
    const file = `berth-${name}-${ip.replace(/[^0-9A-Za-z.]/g, '-')}-history.csv`;
    r.res.setHeader('Content-Disposition', `attachment; filename="${file}"`);
    send(r.res, 200, 'text/csv; charset=utf-8', historyCsv(name, entries));
  });
}

async function searchPage(deps: ConsoleDeps, r: Request): Promise<void> {
  await doing('search the pools', async () => {
    const params = readParams(r.url.searchParams, ['q']);
    const q = text(params, 'q', 253).trim();
    if (q === '') return sendPage(r.res, 200, renderSearch('', null, r.ctx));
    const pools = await deps.store.listPools();
    const records = await Promise.all(pools.map((p) => deps.records.list(p.conf.name)));
    sendPage(r.res, 200, renderSearch(q, search(q, pools.map((p, i) => ({ conf: p.conf, records: records[i]! }))), r.ctx));
  });
}

// --- changes --------------------------------------------------------------

/** Reserve, unreserve or release: only in a session, from this console's own form. */
async function change(deps: ConsoleDeps, r: Request): Promise<void> {
  const pool = segment(r.match[1]!);
  const ip = segment(r.match[2]!);
  const action = r.match[3] as AddressAction;
  const what = actionSubject(action, ip, pool);
  const { form } = await admit(deps, r, what, action === 'reserve' ? ['owner', 'note'] : []);
  const owner = optional(form, 'owner');
  const note = optional(form, 'note');
  let hex: string;
  try {
    validatePoolName(pool, 'pool');
    hex = parseIp(ip, 'ip').hex;
    await applyAction(deps.store, action, pool, hex, { actor: deps.actor, owner, note });
    deps.records.changed(pool, hex);
  } catch (err) {
    const message = `failed to ${what}: ${causeOf(err)}`;
    // The address page shows the error beside the address as it is now; without an address to show, the error page does.
    let page: AddressPage;
    try {
      if (!isBerthError(err) || err.code === 'INVALID' || err.code === 'STORE_UNAVAILABLE') throw err;
      page = await loadAddress(deps.store, pool, ip);
    } catch {
      throw new PageError(statusOf(err), message);
    }
    page.error = message;
    page.form = { owner, note };
    sendPage(r.res, statusOf(err), renderAddress(page, r.ctx));
    return;
  }
  deps.log.info({ action, pool, ip, owner, note, actor: deps.actor, remote: r.req.socket.remoteAddress }, 'address changed');
  redirect(r.res, `${r.url.pathname.slice(0, r.url.pathname.lastIndexOf('/'))}?done=${action}`);
}

/**
 * The checks before any change, in this order: not cross-site, a console
 * with a token, a session, a form of the right fields carrying the
 * session's CSRF token. Each refusal is a 403 naming the reason.
 */
async function admit(deps: ConsoleDeps, r: Request, what: string, fields: string[]): Promise<{ session: Session; form: Map<string, string> }> {
  const refuse = (why: string) => new PageError(403, `failed to ${what}: ${why}`);
  const cross = crossSite(r.req.headers);
  if (cross) throw refuse(`refused: ${cross}`);
  if (!deps.sessions.enabled) throw refuse('the console is read-only: it was started without an admin token');
  if (!r.session) throw refuse('log in with the admin token first');
  const form = await doing(what, async () => readParams(await readForm(r.req), ['csrf', ...fields]));
  if (!csrfMatches(r.session, form.get('csrf'))) throw refuse("the form's CSRF token is not this session's; load the page again");
  return { session: r.session, form };
}

async function loginPage(r: Request): Promise<void> {
  await doing('show the login page', async () => {
    const next = localPath(readParams(r.url.searchParams, ['next']), 'next');
    sendPage(r.res, 200, renderLogin(next, undefined, r.ctx));
  });
}

async function login(deps: ConsoleDeps, r: Request): Promise<void> {
  const cross = crossSite(r.req.headers);
  if (cross) throw new PageError(403, `failed to log in: refused: ${cross}`);
  const form = await doing('log in', async () => readParams(await readForm(r.req), ['token', 'next']));
  const next = await doing('log in', async () => localPath(form, 'next'));
  if (!deps.sessions.enabled) return sendPage(r.res, 403, renderLogin(next, undefined, r.ctx));
  const session = deps.sessions.login(form.get('token') ?? '');
  if (!session) {
    deps.log.warn({ remote: r.req.socket.remoteAddress }, 'login refused: wrong token');
    await new Promise((res) => setTimeout(res, LOGIN_FAIL_DELAY_MS));
    return sendPage(r.res, 403, renderLogin(next, 'failed to log in: that is not the admin token', r.ctx));
  }
  deps.log.info({ remote: r.req.socket.remoteAddress }, 'logged in');
  r.res.setHeader('Set-Cookie', sessionCookie(session, isHttps(r.req)));
  redirect(r.res, next);
}

async function logout(deps: ConsoleDeps, r: Request): Promise<void> {
  const { session } = await admit(deps, r, 'log out', []);
  deps.sessions.logout(session);
  r.res.setHeader('Set-Cookie', sessionCookie(null, isHttps(r.req)));
  redirect(r.res, '/');
}

// --- events, assets and plumbing ------------------------------------------

async function events(deps: ConsoleDeps, r: Request): Promise<void> {
  const params = readParams(r.url.searchParams, ['pool']);
  const raw = params.get('pool');
  const pool = await doing(raw === undefined ? 'follow the changes of every pool' : `follow the changes of pool ${quote(raw)}`, async () =>
    raw === undefined ? undefined : validatePoolName(raw, 'pool'),
  );
  serveEvents(r.res, deps.feed, pool);
}

function asset(deps: ConsoleDeps, r: Request): void {
  const a = deps.assets.get(r.match[1]!);
  if (!a) throw new PageError(404, `no asset ${r.match[1]}`);
  r.res.setHeader('ETag', a.etag);
  r.res.setHeader('Cache-Control', 'no-cache');
  if (r.req.headers['if-none-match'] === a.etag) {
    r.res.writeHead(304, SECURITY_HEADERS).end();
    return;
  }
  send(r.res, 200, a.type, a.body);
}

/** The body of a form post: urlencoded, at most MAX_FORM_BYTES. */
async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new ValidationError('Content-Type', `must be application/x-www-form-urlencoded, got ${JSON.stringify(type)}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) {
      // the connection is not worth keeping with the rest of such a body unread
      req.socket.destroy();
      throw new ValidationError('form', `larger than ${MAX_FORM_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** True when a TLS proxy in front says the browser used HTTPS. */
function isHttps(req: IncomingMessage): boolean {
  return String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim() === 'https';
}

function sendPage(res: ServerResponse, status: number, page: Html): void {
  res.setHeader('Cache-Control', 'no-store');
  send(res, status, 'text/html; charset=utf-8', page.text);
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** 303: after a POST, the browser GETs the page (so reloading it does not post again). */
function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { ...SECURITY_HEADERS, Location: location, 'Content-Length': 0 });
  res.end();
}
