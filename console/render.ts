// The console's pages, rendered from data: no I/O here. Every value goes
// through the `html` template, which escapes it (console/html.ts). A part of
// a page that follows the store live is rendered by its own function, so the
// page and the part fetched on a change are the same markup.
//
// Over 400 lines because every page of the console, each a small function over
// the html template; kept together so the pages share one look and one set of
// URL helpers.
import { formatIp, parseCidr, type Cidr } from '../core/address.js';
import type { AddressInfo, HistoryEntry, PoolUsage } from '../ipam/model.js';
import { formatRange, type PoolConfig } from '../ipam/pool-config.js';
import type { AddressAction } from '../ipam/actions.js';
import { duration, iso, poolView } from '../ipam/views.js';
import { html, join, type Html } from './html.js';
import type { BlockCell, PoolMap } from './map.js';
import type { SearchResult } from './search.js';

/** What every page needs to know about the request. */
export interface PageContext {
  /** none: no admin token configured (read-only); out: a token exists, not logged in; in: logged in */
  auth: 'none' | 'out' | 'in';
  /** the session's CSRF token, when logged in */
  csrf?: string | undefined;
  /** the store's location, without credentials */
  store: string;
  /** path and query of this page, for the login form's return */
  here: string;
}

export type PoolSort = 'name' | 'subnet' | 'vlan' | 'used' | 'free';
export const POOL_SORTS: readonly PoolSort[] = ['name', 'subnet', 'vlan', 'used', 'free'];
export type SortOrder = 'asc' | 'desc';

export interface PoolsQuery {
  sort: PoolSort;
  order: SortOrder;
  /** name filter: a substring, case-insensitive; '' for all */
  q: string;
}

// --- URLs -----------------------------------------------------------------

const enc = encodeURIComponent;

/** The pool page, at a block of its map. */
export function poolUrl(pool: string, block?: Cidr): string {
  return `/pools/${enc(pool)}${block ? `?block=${enc(block.text)}` : ''}`;
}

/** The address page (hex address). */
export function addressUrl(pool: string, hex: string): string {
  return `/pools/${enc(pool)}/${enc(formatIp(hex))}`;
}

function poolsUrl(q: PoolsQuery, part?: string): string {
  const params = new URLSearchParams();
  if (q.sort !== 'name') params.set('sort', q.sort);
  if (q.order !== 'asc') params.set('order', q.order);
  if (q.q !== '') params.set('q', q.q);
  if (part) params.set('part', part);
  const s = params.toString();
  return s ? `/?${s}` : '/';
}

function withPart(url: string, part: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}part=${part}`;
}

// --- layout ---------------------------------------------------------------

/** The page frame: header with navigation, search and login state; `events` is the SSE URL a live page listens to. */
export function layout(title: string, body: Html, ctx: PageContext, events?: string): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · berth console</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body${events ? html` data-events="${events}"` : ''}>
<header>
<a class="brand" href="/">berth</a>
<nav><a href="/">Pools</a></nav>
<form class="search" action="/search" method="get" role="search"><input type="search" name="q" placeholder="IP, owner, container id or note" aria-label="Search" maxlength="253"></form>
${events ? html`<span id="live" class="live" title="live updates from the store">live</span>` : ''}
${authBox(ctx)}
</header>
<main>
${body}
</main>
<footer>store ${ctx.store}</footer>
</body>
</html>
`;
}

function authBox(ctx: PageContext): Html {
  if (ctx.auth === 'none') return html`<span class="auth" title="started without an admin token">read-only</span>`;
  if (ctx.auth === 'out') return html`<a class="auth" href="/login?next=${enc(ctx.here)}">Log in</a>`;
  return html`<form class="auth" action="/logout" method="post"><input type="hidden" name="csrf" value="${ctx.csrf}"><span>admin</span> <button type="submit">Log out</button></form>`;
}

/** An error page: the message as the CLI would print it. */
export function renderError(status: number, message: string, ctx: PageContext): Html {
  return layout(`Error ${status}`, html`<h1>Error ${status}</h1><p class="error" role="alert">${message}</p><p><a href="/">Back to the pools</a></p>`, ctx);
}

// --- pools ----------------------------------------------------------------

/** The pools a query shows, filtered and in its order. */
export function orderPools(pools: readonly PoolUsage[], q: PoolsQuery): PoolUsage[] {
  const needle = q.q.toLowerCase();
  const shown = pools.filter((p) => p.conf.name.toLowerCase().includes(needle));
  const used = (p: PoolUsage) => (p.allocated + p.reserved) / Number(p.capacity);
  const free = (p: PoolUsage) => BigInt(p.capacity) - BigInt(p.allocated + p.reserved);
  const by: Record<PoolSort, (a: PoolUsage, b: PoolUsage) => number> = {
    name: (a, b) => cmp(a.conf.name, b.conf.name),
    subnet: (a, b) => a.conf.family - b.conf.family || cmp(subnetKey(a.conf), subnetKey(b.conf)),
    vlan: (a, b) => (a.conf.vlan ?? -1) - (b.conf.vlan ?? -1),
    used: (a, b) => used(a) - used(b),
    free: (a, b) => cmp(free(a), free(b)),
  };
  const sign = q.order === 'asc' ? 1 : -1;
  return shown.sort((a, b) => sign * by[q.sort](a, b) || cmp(a.conf.name, b.conf.name));
}

/** The pools page. */
export function renderPools(pools: readonly PoolUsage[], q: PoolsQuery, ctx: PageContext): Html {
  const body = html`<h1>Pools</h1>
<form class="filter" action="/" method="get">
<input type="hidden" name="sort" value="${q.sort}"><input type="hidden" name="order" value="${q.order}">
<label>Filter by name <input name="q" value="${q.q}" maxlength="63" autocomplete="off"></label> <button type="submit">Filter</button>
</form>
<div id="pools" data-live="${poolsUrl(q, 'pools')}">${poolsTable(pools, q)}</div>`;
  return layout('Pools', body, ctx, '/events');
}

/** The pools table: the live part of the pools page. */
export function poolsTable(pools: readonly PoolUsage[], q: PoolsQuery): Html {
  const shown = orderPools(pools, q);
  const head = (label: string, sort: PoolSort, cls = '') => {
    const active = q.sort === sort;
    const order: SortOrder = active && q.order === 'asc' ? 'desc' : 'asc';
    const mark = active ? (q.order === 'asc' ? ' ▲' : ' ▼') : '';
    const aria = active ? html` aria-sort="${q.order === 'asc' ? 'ascending' : 'descending'}"` : '';
    return html`<th${cls ? html` class="${cls}"` : ''}${aria}><a href="${poolsUrl({ ...q, sort, order })}">${label}${mark}</a></th>`;
  };
  if (pools.length === 0) return html`<p class="empty">No pools yet. Create one with <code>berth pool create NAME --subnet CIDR</code>.</p>`;
  if (shown.length === 0) return html`<p class="empty">No pool name contains “${q.q}”.</p>`;
  const rows = shown.map((p) => {
    const v = poolView(p.conf, p);
    return html`<tr data-pool="${v.name}">
<td><a href="${poolUrl(v.name)}">${v.name}</a></td><td>${v.subnet}</td><td>${v.vlan ?? '–'}</td><td>${v.gateway ?? '–'}</td><td>${duration(v.hold)}</td>
<td class="usage">${usageBar(p)}</td><td class="n">${v.allocated}</td><td class="n">${v.reserved}</td><td class="n">${v.free}</td></tr>`;
  });
  return html`<table class="pools">
<thead><tr>${head('Name', 'name')}${head('Subnet', 'subnet')}${head('VLAN', 'vlan')}<th>Gateway</th><th>Hold</th>${head('Usage', 'used')}<th class="n">Allocated</th><th class="n">Reserved</th>${head('Free', 'free', 'n')}</tr></thead>
<tbody>${rows}</tbody>
</table>`;
}

/** A usage bar: allocated and reserved shares of the capacity, the rest free. */
export function usageBar(u: Pick<PoolUsage, 'allocated' | 'reserved' | 'capacity'>): Html {
  const cap = Number(u.capacity);
  const free = BigInt(u.capacity) - BigInt(u.allocated + u.reserved);
  const title = `${u.allocated} allocated, ${u.reserved} reserved, ${free < 0n ? 0n : free} free of ${u.capacity}`;
  return html`<div class="bar" role="img" aria-label="${title}" title="${title}"><span class="a" style="width:${share(u.allocated, cap)}"></span><span class="r" style="width:${share(u.reserved, cap)}"></span></div>`;
}

/** A count's share of a total as a CSS percentage; anything above zero stays visible. */
function share(n: number, total: number): string {
  if (n <= 0 || total <= 0) return '0%';
  return `${Math.max(0.5, Math.min(100, (n / total) * 100)).toFixed(2)}%`;
}

// --- pool and map ---------------------------------------------------------

export interface PoolPage {
  usage: PoolUsage;
  map: PoolMap;
  /** the blocks from the subnet down to the map's block */
  trail: Cidr[];
}

/** The pool page: its settings, usage and map. */
export function renderPool(page: PoolPage, ctx: PageContext): Html {
  const conf = page.usage.conf;
  const v = poolView(conf, page.usage);
  const liveUrl = withPart(poolUrl(conf.name, page.map.scope.prefix === page.trail[0]!.prefix ? undefined : page.map.scope), 'map');
  const body = html`<nav class="crumbs"><a href="/">Pools</a> / ${crumbs(conf.name, page.trail)}</nav>
<h1>Pool ${conf.name}</h1>
<dl class="facts wide">
<dt>Subnet</dt><dd>${v.subnet}</dd>
<dt>Ranges</dt><dd>${conf.ranges.map(formatRange).join(', ')}</dd>
<dt>Gateway</dt><dd>${v.gateway ?? '–'}</dd>
<dt>VLAN</dt><dd>${v.vlan ?? '–'}</dd>
<dt>Hold</dt><dd>${duration(v.hold)}</dd>
${v.routes.length > 0 ? html`<dt>Routes</dt><dd>${v.routes.map((r) => (r.gw ? `${r.dst} via ${r.gw}` : r.dst)).join(', ')}</dd>` : ''}
${v.dns.nameservers?.length ? html`<dt>DNS</dt><dd>${v.dns.nameservers.join(', ')}</dd>` : ''}
<dt>Created</dt><dd>${v.created}</dd>
</dl>
<div id="map" data-live="${liveUrl}">${poolLive(page)}</div>`;
  return layout(`Pool ${conf.name}`, body, ctx, `/events?pool=${enc(conf.name)}`);
}

/** The way from the pool's map down to a block: the pool's name, then each block; the last a link only when `linkLast`. */
function crumbs(pool: string, trail: Cidr[], linkLast = false): Html {
  return join(
    trail.map((b, i) => {
      const label = i === 0 ? pool : b.text;
      if (i === trail.length - 1 && !linkLast) return html`<span>${label}</span>`;
      return html`<a href="${poolUrl(pool, i === 0 ? undefined : b)}">${label}</a>`;
    }),
    ' / ',
  );
}

/** The live part of the pool page: usage, legend, the map, and the addresses in use of an address grid. */
export function poolLive(page: PoolPage): Html {
  const v = poolView(page.usage.conf, page.usage);
  const map = page.map;
  return html`<div class="usage-line">${usageBar(page.usage)} <span><b>${v.allocated}</b> allocated · <b>${v.reserved}</b> reserved · <b>${v.free}</b> free of ${v.capacity}</span></div>
<p class="legend"><span class="key s-allocated"></span> allocated <span class="key s-reserved"></span> reserved <span class="key s-free"></span> free <span class="key s-none"></span> never handed out</p>
<h2>${map.kind === 'addresses' ? html`Addresses of ${map.scope.text}` : html`${map.scope.text} in /${map.childPrefix} blocks`}</h2>
${map.kind === 'addresses' ? addressGrid(page.usage.conf.name, map) : blockGrid(map)}
${map.kind === 'addresses' ? inUseTable(page.usage.conf.name, map) : ''}`;
}

// A cell's text (address, state, owner, note) is its aria-label: what a
// screen reader says, and what the stylesheet shows on hover.
function addressGrid(pool: string, map: Extract<PoolMap, { kind: 'addresses' }>): Html {
  const cells = map.cells.map((c) => {
    const text = formatIp(c.ip);
    const label = map.scope.family === 4 ? text.slice(text.lastIndexOf('.') + 1) : c.ip.slice(-2);
    if (c.state === 'none') return html`<span class="cell s-none" aria-label="${text} · never handed out">${label}</span>`;
    const owner = c.info?.owner;
    const title = `${text} · ${c.state}${owner !== undefined ? ` · ${owner}` : ''}${c.info?.note !== undefined ? ` · ${c.info.note}` : ''}`;
    return html`<a class="cell s-${c.state}" href="${addressUrl(pool, c.ip)}" aria-label="${title}" data-ip="${text}">${label}</a>`;
  });
  return html`<div class="grid addresses" style="--cols:${map.columns}">${cells}</div>`;
}

function blockGrid(map: Extract<PoolMap, { kind: 'blocks' }>): Html {
  const labelled = map.cells.length <= 256;
  const cells = map.cells.map((b) => blockCell(b, labelled, map.scope.family));
  return html`<div class="grid blocks${labelled ? ' labelled' : ''}" style="--cols:${map.columns}">${cells}</div>`;
}

// A /12 map has 4096 of these, so each is kept short: the link is relative to
// the pool page (only its query changes), and an empty block says only "free".
function blockCell(b: BlockCell, labelled: boolean, family: 4 | 6): Html {
  if (b.capacity === 0n) return html`<span class="s-none" aria-label="${b.block.text} · no assignable address"></span>`;
  const used = b.allocated + b.reserved;
  const free = b.capacity - BigInt(used);
  const label = labelled ? blockLabel(b.block, family) : '';
  if (used === 0) return html`<a href="?block=${b.block.text}" aria-label="${b.block.text} · ${free} free">${label}</a>`;
  const cap = Number(b.capacity);
  const title = `${b.block.text} · ${b.allocated} allocated · ${b.reserved} reserved · ${free} free`;
  return html`<a href="?block=${b.block.text}" aria-label="${title}" style="--a:${share(b.allocated, cap)};--r:${share(b.reserved, cap)}">${label}</a>`;
}

/** The octet (IPv4) or hex digits (IPv6) that tell a block from its siblings. */
function blockLabel(block: Cidr, family: 4 | 6): string {
  if (family === 4) {
    const octets = formatIp(block.first).split('.');
    return octets[Math.max(0, Math.ceil(block.prefix / 8) - 1)]!;
  }
  return block.first.slice(Math.max(0, Math.ceil(block.prefix / 4) - 2), Math.ceil(block.prefix / 4));
}

function inUseTable(pool: string, map: Extract<PoolMap, { kind: 'addresses' }>): Html {
  const used = map.cells.filter((c) => c.info);
  if (used.length === 0) return html`<p class="empty">No address of ${map.scope.text} is allocated or reserved.</p>`;
  const rows = used.map((c) => {
    const i = c.info!;
    return html`<tr><td><a href="${addressUrl(pool, i.ip)}">${formatIp(i.ip)}</a></td><td><span class="state s-${i.state}">${i.state}</span></td><td>${i.owner ?? '–'}</td><td class="mono">${i.containerId ?? '–'}</td><td>${iso(i.since) ?? '–'}</td><td class="note">${i.note ?? ''}</td></tr>`;
  });
  return html`<h2>In use</h2>
<table class="inuse"><thead><tr><th>IP</th><th>State</th><th>Owner</th><th>Container</th><th>Since</th><th>Note</th></tr></thead><tbody>${rows}</tbody></table>`;
}

// --- address --------------------------------------------------------------

export interface AddressPage {
  conf: PoolConfig;
  info: AddressInfo;
  history: HistoryEntry[];
  /** the blocks from the subnet down to the address grid that holds the address */
  trail: Cidr[];
  /** a change just made (after its redirect) */
  done?: AddressAction | undefined;
  /** a change that failed: the message as the CLI prints it */
  error?: string | undefined;
  /** the reserve form's values to show again after a failure */
  form?: { owner?: string | undefined; note?: string | undefined } | undefined;
}

/** History entries an address page lists; the CSV has them all. */
export const PAGE_HISTORY = 500;

const DONE: Record<AddressAction, string> = {
  reserve: 'Reserved.',
  unreserve: 'Unreserved.',
  release: 'Released.',
};

/** The address page: its state, record, history and (with the admin token) its changes. */
export function renderAddress(page: AddressPage, ctx: PageContext): Html {
  const pool = page.conf.name;
  const text = formatIp(page.info.ip);
  const body = html`<nav class="crumbs"><a href="/">Pools</a> / ${crumbs(pool, page.trail, true)} / <span>${text}</span></nav>
${page.done ? html`<p class="done" role="status">${DONE[page.done]}</p>` : ''}
${page.error ? html`<p class="error" role="alert">${page.error}</p>` : ''}
<div id="address" data-live="${withPart(addressUrl(pool, page.info.ip), 'address')}" data-ip="${text}">${addressLive(page)}</div>
${changes(page, ctx)}`;
  return layout(`${text} in ${pool}`, body, ctx, `/events?pool=${enc(pool)}`);
}

/** The live part of the address page: the record and its history. */
export function addressLive(page: AddressPage): Html {
  const i = page.info;
  const host = i.host === undefined ? undefined : i.hostId ? `${i.host} (${i.hostId})` : i.host;
  const row = (label: string, value: unknown, cls = '') => (value === undefined || value === '' ? '' : html`<dt>${label}</dt><dd${cls ? html` class="${cls}"` : ''}>${value}</dd>`);
  return html`<h1>${formatIp(i.ip)} <span class="state s-${i.state}">${i.state}${i.pinned ? ', pinned' : ''}</span></h1>
<dl class="facts">
${row('Pool', page.conf.name)}
${row('Owner', i.owner)}
${row('Container', i.containerId, 'mono')}
${row('Interface', i.ifname)}
${row('Host', host)}
${row('Network', i.network)}
${row('Generation', i.gen)}
${row('Since', iso(i.since))}
${row('Until', iso(i.until))}
${row('Note', i.note, 'note')}
</dl>
<h2>History <a class="csv" href="${addressUrl(page.conf.name, i.ip)}/history.csv" download>Download CSV</a></h2>
${historyTable(page.history)}`;
}

function historyTable(entries: HistoryEntry[]): Html {
  if (entries.length === 0) return html`<p class="empty">No history for this address.</p>`;
  const rows = entries.slice(0, PAGE_HISTORY).map(
    (e) =>
      html`<tr><td><time datetime="${iso(e.at)}">${iso(e.at)}</time></td><td>${e.event}</td><td>${e.owner ?? '–'}</td><td class="mono">${e.containerId ?? '–'}</td><td>${e.ifname ?? '–'}</td><td class="n">${e.gen ?? '–'}</td><td>${e.actor ?? '–'}</td><td class="note">${e.note ?? ''}</td></tr>`,
  );
  return html`<table class="history"><thead><tr><th>When</th><th>What</th><th>Owner</th><th>Container</th><th>Interface</th><th class="n">Gen</th><th>Who</th><th>Note</th></tr></thead><tbody>${rows}</tbody></table>
${entries.length > PAGE_HISTORY ? html`<p class="more">The ${PAGE_HISTORY} newest of ${entries.length} entries; the CSV has them all.</p>` : ''}`;
}

function changes(page: AddressPage, ctx: PageContext): Html {
  if (ctx.auth === 'none') return html`<p class="readonly">Read-only: this console was started without an admin token.</p>`;
  if (ctx.auth === 'out') return html`<p class="readonly"><a href="/login?next=${enc(ctx.here)}">Log in</a> with the admin token to reserve, unreserve or release this address.</p>`;
  const i = page.info;
  const action = (a: AddressAction) => `${addressUrl(page.conf.name, i.ip)}/${a}`;
  const csrf = html`<input type="hidden" name="csrf" value="${ctx.csrf}">`;
  const owner = page.form?.owner ?? i.owner ?? '';
  const note = page.form?.note ?? i.note ?? '';
  return html`<section class="changes">
<h2>Change</h2>
<form id="reserve" method="post" action="${action('reserve')}">${csrf}
<label>Owner <input name="owner" value="${owner}" maxlength="253" autocomplete="off"></label>
<label>Note <input name="note" value="${note}" maxlength="1024" autocomplete="off"></label>
<button type="submit">${i.state === 'allocated' ? 'Pin for this owner' : 'Reserve'}</button>
</form>
${i.state === 'reserved' || i.pinned ? html`<form id="unreserve" method="post" action="${action('unreserve')}">${csrf}<button type="submit">${i.pinned ? 'Unpin' : 'Unreserve'}</button></form>` : ''}
${i.state === 'allocated' ? html`<form id="release" method="post" action="${action('release')}">${csrf}<button type="submit">Release</button></form>` : ''}
</section>`;
}

// --- search and login -----------------------------------------------------

/** The search page: the form, and the hits when there was a query. */
export function renderSearch(q: string, result: SearchResult | null, ctx: PageContext): Html {
  let hits: Html | string = '';
  if (result && result.hits.length === 0) hits = html`<p class="empty">Nothing found for “${q}”.</p>`;
  else if (result) {
    const rows = result.hits.map((h) => {
      const i = h.info;
      return html`<tr><td><a href="${poolUrl(h.pool)}">${h.pool}</a></td><td><a href="${addressUrl(h.pool, h.ip)}">${formatIp(h.ip)}</a></td><td><span class="state s-${i?.state ?? 'free'}">${i?.state ?? 'free'}</span></td><td>${i?.owner ?? '–'}</td><td class="mono">${i?.containerId ?? '–'}</td><td class="note">${i?.note ?? ''}</td><td>${h.matched.join(', ')}</td></tr>`;
    });
    hits = html`<table class="hits"><thead><tr><th>Pool</th><th>IP</th><th>State</th><th>Owner</th><th>Container</th><th>Note</th><th>Matched</th></tr></thead><tbody>${rows}</tbody></table>
${result.cut ? html`<p class="more">Only the first ${result.hits.length} hits are shown; narrow the search.</p>` : ''}`;
  }
  const body = html`<h1>Search</h1>
<form class="filter" action="/search" method="get"><label>IP, owner, container id or note <input name="q" value="${q}" maxlength="253" autofocus></label> <button type="submit">Search</button></form>
<p class="hint">Allocated and reserved addresses of every pool whose address, owner, container id or note contains the text; a whole address is also found when free.</p>
${hits}`;
  return layout(q ? `Search ${q}` : 'Search', body, ctx);
}

/** The login page. */
export function renderLogin(next: string, error: string | undefined, ctx: PageContext): Html {
  if (ctx.auth === 'none') {
    return layout('Log in', html`<h1>Log in</h1><p class="readonly">This console was started without an admin token (<code>--token-file FILE</code> or <code>BERTH_CONSOLE_TOKEN</code>): it is read-only.</p>`, ctx);
  }
  const body = html`<h1>Log in</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form class="login" method="post" action="/login">
<input type="hidden" name="next" value="${next}">
<label>Admin token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form>
<p class="hint">The token the console was started with (<code>--token-file</code> or <code>BERTH_CONSOLE_TOKEN</code>). Changes made after logging in are recorded in the pool history as the console's.</p>`;
  return layout('Log in', body, ctx);
}

function subnetKey(conf: PoolConfig): string {
  return parseCidr(conf.subnet, 'subnet').first;
}

function cmp<T extends string | bigint>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
