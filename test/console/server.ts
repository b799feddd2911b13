// A real console on a free port over HTTP, on the file store and on Redis:
// pages, inputs refused naming their field, changes only in a session from
// the console's own forms (and with the CLI's errors), the CSV, search, and
// the event stream.
import t, { type Test } from 'tap';
import { hostname } from 'node:os';
import { main } from '../../cli/main.js';
import { parseIp } from '../../core/address.js';
import type { Store } from '../../ipam/model.js';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { startConsole } from '../helpers/console.js';
import { freshStoreUrl, PROCESS_STORE_KINDS, type StoreKind } from '../helpers/stores.js';

const TOKEN = 'test-token-0123456789abcdef';
const hex = (ip: string) => parseIp(ip, 'ip').hex;

interface Reply {
  status: number;
  headers: Headers;
  body: string;
}

/** One request, redirects not followed. */
async function http(base: string, path: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(`${base}${path}`, { redirect: 'manual', ...init });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

function form(fields: Record<string, string>, cookie?: string, headers: Record<string, string> = {}): RequestInit {
  return {
    method: 'POST',
    body: new URLSearchParams(fields).toString(),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(cookie ? { Cookie: cookie } : {}), ...headers },
  };
}

/** The text of the page's error paragraph, unescaped. */
function errorOf(body: string): string | undefined {
  const m = /<p class="error" role="alert">([^<]*)<\/p>/.exec(body);
  return m?.[1]!.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

async function cliError(url: string, args: string[]): Promise<string> {
  let stderr = '';
  await main(['--store', url, ...args], { stdout: { write: () => true }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  return stderr.replace(/^berth: /, '').trimEnd();
}

async function setup(t: Test, kind: StoreKind): Promise<{ url: string; store: Store } | null> {
  const url = await freshStoreUrl(t, kind);
  if (!url) return null;
  const store = await openStore(url);
  t.teardown(() => store.close());
  await store.createPool(buildPoolConfig({ name: 'web', subnet: '10.0.0.0/24', vlan: 120, hold: 600 }));
  await store.allocate('web', { containerId: 'c1', ifname: 'eth0', owner: 'web-1', host: 'node-a' });
  return { url, store };
}

/** Logs in and returns the session cookie and its CSRF token. */
async function login(base: string): Promise<{ cookie: string; csrf: string }> {
  const r = await http(base, '/login', form({ token: TOKEN, next: '/pools/web/10.0.0.2' }));
  const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
  const page = await http(base, '/pools/web/10.0.0.2', { headers: { Cookie: cookie } });
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!;
  return { cookie, csrf };
}

for (const kind of PROCESS_STORE_KINDS) {
  t.test(`${kind} store`, async (t) => {
    t.test('pages, with their security headers; inputs refused naming the field, as the CLI words it', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const c = await startConsole(t, s.url, TOKEN);
      const home = await http(c.base, '/');
      t.equal(home.status, 200);
      t.match(home.headers.get('content-security-policy'), /script-src 'self'/);
      t.equal(home.headers.get('x-content-type-options'), 'nosniff');
      t.equal(home.headers.get('cache-control'), 'no-store');
      t.match(home.body, /<a href="\/pools\/web">web<\/a>/);
      t.match(home.body, /title="1 allocated, 0 reserved, 252 free of 253"/);
      t.match((await http(c.base, '/pools/web')).body, /aria-label="10\.0\.0\.2 · allocated · web-1"/);
      const part = await http(c.base, '/pools/web/10.0.0.2?part=address');
      t.notMatch(part.body, /<html/, 'a live part is a fragment');
      t.match(part.body, /<dt>Host<\/dt><dd>node-a<\/dd>/);
      const head = await fetch(`${c.base}/`, { method: 'HEAD' });
      t.equal(head.status, 200);
      t.equal(await head.text(), '');

      const cases: Array<[string, number, string]> = [
        ['/?sort=size', 400, 'failed to list pools: sort: must be one of name, subnet, vlan, used, free, got "size"'],
        ['/?colour=red', 400, 'failed to list pools: colour: is not a parameter of this page (it takes sort, order, q, part)'],
        ['/pools/nope', 404, 'failed to show pool "nope": pool "nope" does not exist'],
        ['/pools/bad%20name', 400, 'failed to show pool "bad name": pool: pool name must be 1-63 characters'],
        ['/pools/web?block=10.9.0.0/24', 400, 'failed to show pool "web": block: "10.9.0.0/24" is not a block of the map of pool "web"'],
        ['/pools/web?part=all', 400, 'failed to show pool "web": part: must be one of map, got "all"'],
        ['/pools/web/%E0%A4%A', 400, 'failed to show address "%E0%A4%A" in pool "web": ip: "%E0%A4%A" is not a valid IP address'],
        ['/pools/web/10.0.0.300', 400, 'failed to show address "10.0.0.300" in pool "web": ip: "10.0.0.300" is not a valid IPv4 address'],
        ['/pools/web/10.0.0.1', 409, 'failed to show address "10.0.0.1" in pool "web": 10.0.0.1 is not an assignable address of pool "web"'],
        ['/pools/web/10.0.0.2?done=delete', 400, 'failed to show address "10.0.0.2" in pool "web": done: must be one of reserve, unreserve, release, got "delete"'],
        ['/events?pool=a/b', 400, 'failed to follow the changes of pool "a/b": pool: pool name must be'],
        ['/login?next=//evil.example/', 400, 'failed to show the login page: next: must be a path of this console'],
        ['/nowhere', 404, 'no page at /nowhere'],
      ];
      for (const [path, status, message] of cases) {
        const r = await http(c.base, path);
        t.equal(r.status, status, `${path}: ${status}`);
        t.ok(errorOf(r.body)?.startsWith(message), `${path}: ${errorOf(r.body)}`);
      }
      const del = await http(c.base, '/', { method: 'DELETE' });
      t.equal(del.status, 405);
      t.equal(del.headers.get('allow'), 'GET, HEAD');
      t.equal((await http(c.base, '/healthz')).body, 'ok\n');
    });

    t.test('changes: refused without a session, from another site, or without the CSRF token; made in a session with the CLI rules and errors', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const c = await startConsole(t, s.url, TOKEN);
      const reserve = '/pools/web/10.0.0.9/reserve';

      let r = await http(c.base, reserve, form({ owner: 'db-1', note: 'x' }));
      t.equal(r.status, 403);
      t.equal(errorOf(r.body), 'failed to reserve address "10.0.0.9" in pool "web": log in with the admin token first');

      const t0 = Date.now();
      r = await http(c.base, '/login', form({ token: 'wrong-token-0123456789', next: '/' }));
      t.equal(r.status, 403);
      t.ok(Date.now() - t0 >= 400, 'a wrong token is answered slowly');
      t.equal(errorOf(r.body), 'failed to log in: that is not the admin token');
      t.equal(r.headers.get('set-cookie'), null);
      r = await http(c.base, '/login', form({ token: TOKEN, next: '/' }, undefined, { Origin: 'https://evil.example' }));
      t.equal(r.status, 403, 'a login posted from another site');

      const { cookie, csrf } = await login(c.base);
      r = await http(c.base, reserve, form({ owner: 'db-1', note: 'x' }, cookie));
      t.equal(r.status, 403);
      t.equal(errorOf(r.body), `failed to reserve address "10.0.0.9" in pool "web": the form's CSRF token is not this session's; load the page again`);
      r = await http(c.base, reserve, form({ csrf: 'forged', owner: 'db-1' }, cookie));
      t.equal(r.status, 403, 'a CSRF token not of the session');
      r = await http(c.base, reserve, form({ csrf, owner: 'db-1' }, cookie, { Origin: 'https://evil.example' }));
      t.equal(r.status, 403);
      t.equal(errorOf(r.body), 'failed to reserve address "10.0.0.9" in pool "web": refused: the request came from https://evil.example, not from this console');
      r = await http(c.base, reserve, form({ csrf, owner: 'db-1' }, cookie, { 'Sec-Fetch-Site': 'cross-site' }));
      t.equal(r.status, 403);
      t.equal((await s.store.getAddress('web', hex('10.0.0.9'))).state, 'free', 'nothing refused was done');

      r = await http(c.base, reserve, form({ csrf, owner: 'db-1', note: '<b>FW-1234</b>' }, cookie, { Origin: c.base }));
      t.equal(r.status, 303);
      t.equal(r.headers.get('location'), '/pools/web/10.0.0.9?done=reserve');
      t.match(await s.store.getAddress('web', hex('10.0.0.9')), { state: 'reserved', owner: 'db-1', note: '<b>FW-1234</b>' });
      t.match((await s.store.history('web', { ip: hex('10.0.0.9') }))[0], { event: 'reserve', actor: `console@${hostname()}` }, 'the history names the console');
      t.match((await http(c.base, '/pools/web/10.0.0.9?done=reserve', { headers: { Cookie: cookie } })).body, /<p class="done" role="status">Reserved\.<\/p>/);

      // The same refusal as the CLI's, word for word.
      r = await http(c.base, '/pools/web/10.0.0.2/reserve', form({ csrf, owner: 'someone', note: 'n' }, cookie));
      t.equal(r.status, 409);
      const cli = await cliError(s.url, ['ip', 'reserve', 'web', '10.0.0.2', '--owner', 'someone']);
      t.equal(errorOf(r.body), cli, `the page says what the CLI says: ${cli}`);
      t.match(r.body, /<input name="owner" value="someone"/, 'the form keeps what was typed');
      r = await http(c.base, '/pools/web/10.0.0.20/unreserve', form({ csrf }, cookie));
      t.equal(errorOf(r.body), await cliError(s.url, ['ip', 'unreserve', 'web', '10.0.0.20']));
      r = await http(c.base, '/pools/web/10.0.0.20/release', form({ csrf }, cookie));
      t.equal(errorOf(r.body), await cliError(s.url, ['ip', 'release', 'web', '10.0.0.20']));
      r = await http(c.base, '/pools/web/10.0.0.1/release', form({ csrf }, cookie));
      t.equal(r.status, 409);
      t.equal(errorOf(r.body), await cliError(s.url, ['ip', 'release', 'web', '10.0.0.1']), 'an address with no page: the error page, same words');
      r = await http(c.base, '/pools/web/10.0.0.21/reserve', form({ csrf, owner: 'a\u0001b' }, cookie));
      t.equal(r.status, 400);
      t.equal(errorOf(r.body), 'failed to reserve address "10.0.0.21" in pool "web": owner: must be 1-253 printable characters, got "a\\u0001b"');
      r = await http(c.base, '/pools/web/10.0.0.21/release', form({ csrf, owner: 'x' }, cookie));
      t.equal(errorOf(r.body), 'failed to release address "10.0.0.21" in pool "web": owner: is not a parameter of this page (it takes csrf)');
      r = await http(c.base, '/pools/web/10.0.0.21/reserve', { method: 'POST', body: JSON.stringify({ csrf }), headers: { 'Content-Type': 'application/json', Cookie: cookie } });
      t.equal(r.status, 400);
      t.equal(errorOf(r.body), 'failed to reserve address "10.0.0.21" in pool "web": Content-Type: must be application/x-www-form-urlencoded, got "application/json"');

      r = await http(c.base, '/pools/web/10.0.0.2/release', form({ csrf }, cookie));
      t.equal(r.status, 303);
      t.match(await s.store.getAddress('web', hex('10.0.0.2')), { state: 'reserved', owner: 'web-1' }, 'released: held for its owner');
      r = await http(c.base, '/pools/web/10.0.0.2/unreserve', form({ csrf }, cookie));
      t.equal(r.status, 303);
      t.equal((await s.store.getAddress('web', hex('10.0.0.2'))).state, 'free');
      t.match(c.logs.filter((l) => l.msg === 'address changed').map((l) => l.action), ['reserve', 'release', 'unreserve']);

      r = await http(c.base, '/logout', form({ csrf }, cookie));
      t.equal(r.status, 303);
      t.match(r.headers.get('set-cookie'), /Max-Age=0/);
      r = await http(c.base, reserve, form({ csrf, owner: 'x' }, cookie));
      t.equal(errorOf(r.body), 'failed to reserve address "10.0.0.9" in pool "web": log in with the admin token first', 'the session has ended');
    });

    t.test('IPv6: the map opens in blocks down to /120 grids, and an address page by its RFC 5952 text', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      await s.store.createPool(buildPoolConfig({ name: 'v6', subnet: 'fd00:100::/64' }));
      const a = await s.store.allocate('v6', { containerId: 'c6', ifname: 'eth0', owner: 'edge-1' });
      const c = await startConsole(t, s.url, TOKEN);
      const top = await http(c.base, '/pools/v6');
      t.match(top.body, /fd00:100::\/64 in \/76 blocks/);
      t.match(top.body, /<a href="\?block=fd00:100::\/76" aria-label="fd00:100::\/76 · 1 allocated · 0 reserved · 4503599627370493 free"/);
      const leaf = await http(c.base, '/pools/v6?block=fd00:100::/120');
      t.match(leaf.body, /<a class="cell s-allocated" href="\/pools\/v6\/fd00%3A100%3A%3A2" aria-label="fd00:100::2 · allocated · edge-1"/);
      t.equal(a.ip, hex('fd00:100::2'));
      const page = await http(c.base, '/pools/v6/fd00%3A100%3A%3A2');
      t.match(page.body, /<h1>fd00:100::2 <span class="state s-allocated">allocated<\/span><\/h1>/);
      t.match((await http(c.base, '/search?q=fd00:100::2')).body, /<a href="\/pools\/v6\/fd00%3A100%3A%3A2">fd00:100::2<\/a>/);
      t.equal((await http(c.base, '/pools/v6?block=fd00:100::/100')).status, 200, 'a level between');
    });

    t.test('read-only without a token', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const c = await startConsole(t, s.url);
      t.match((await http(c.base, '/login')).body, /it is read-only/);
      t.match((await http(c.base, '/pools/web/10.0.0.2')).body, /Read-only: this console was started without an admin token/);
      const r = await http(c.base, '/pools/web/10.0.0.2/release', form({ csrf: 'x' }));
      t.equal(r.status, 403);
      t.equal(errorOf(r.body), 'failed to release address "10.0.0.2" in pool "web": the console is read-only: it was started without an admin token');
      t.equal((await http(c.base, '/login', form({ token: '', next: '/' }))).status, 403);
      t.equal((await s.store.getAddress('web', hex('10.0.0.2'))).state, 'allocated');
    });

    t.test('the history as CSV, and search', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      await s.store.release('web', { containerId: 'c1', ifname: 'eth0', actor: 'cni@node-a' });
      await s.store.reserve('web', hex('10.0.0.2'), { owner: 'web-1', note: '=cmd|"x"', actor: 'cli:root@h' });
      const c = await startConsole(t, s.url, TOKEN);
      const csv = await http(c.base, '/pools/web/10.0.0.2/history.csv');
      t.equal(csv.status, 200);
      t.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
      t.equal(csv.headers.get('content-disposition'), 'attachment; filename="berth-web-10.0.0.2-history.csv"');
      const lines = csv.body.trimEnd().split('\r\n');
      t.equal(lines[0], 'time,event,pool,ip,owner,container,ifname,generation,actor,note');
      t.same(lines.slice(1).map((l) => l.split(',')[1]), ['reserve', 'release', 'allocate'], 'newest first');
      t.match(lines[1], /,cli:root@h,"'=cmd\|""x"""$/);
      t.equal((await http(c.base, '/pools/web/10.0.0.2/history.csv?x=1')).status, 400);

      const hits = await http(c.base, '/search?q=WEB-1');
      t.match(hits.body, /<a href="\/pools\/web\/10\.0\.0\.2">10\.0\.0\.2<\/a>/);
      t.match((await http(c.base, '/search?q=10.0.0.77')).body, /<span class="state s-free">free<\/span>/, 'an address by its text, free');
      t.match((await http(c.base, '/search?q=nothing-like-it')).body, /Nothing found for “nothing-like-it”/);
      t.notMatch((await http(c.base, '/search')).body, /<table class="hits">/);
      t.equal((await http(c.base, `/search?q=${'x'.repeat(300)}`)).status, 400);
    });

    t.test('the event stream: a change made elsewhere arrives within a second', async (t) => {
      const s = await setup(t, kind);
      if (!s) return;
      const c = await startConsole(t, s.url, TOKEN);
      const abort = new AbortController();
      t.teardown(() => abort.abort());
      const res = await fetch(`${c.base}/events?pool=web`, { signal: abort.signal });
      t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      const reader = res.body!.getReader();
      let text = '';
      const until = async (re: RegExp, ms: number): Promise<RegExpExecArray | null> => {
        const deadline = Date.now() + ms;
        for (;;) {
          const m = re.exec(text);
          if (m) return m;
          const left = deadline - Date.now();
          if (left <= 0) return null;
          let timer: NodeJS.Timeout | undefined;
          const chunk = await Promise.race([reader.read(), new Promise<null>((r) => (timer = setTimeout(() => r(null), left)))]);
          clearTimeout(timer);
          if (chunk && !chunk.done) text += Buffer.from(chunk.value).toString();
        }
      };
      t.ok(await until(/event: status\ndata: \{"live":true\}/, 5000), 'the console follows the store');
      const t0 = Date.now();
      await s.store.allocate('web', { containerId: 'c2', ifname: 'eth0', owner: 'web-2' });
      const m = await until(/event: change\ndata: (\{[^\n]*"event":"allocate"[^\n]*\})/, 1000);
      t.ok(m, `the allocation arrived in ${Date.now() - t0} ms`);
      t.match(JSON.parse(m![1]!), { pool: 'web', ip: '10.0.0.3', event: 'allocate' });
      await s.store.createPool(buildPoolConfig({ name: 'other', subnet: '10.9.0.0/24' }));
      await s.store.allocate('other', { containerId: 'c3', ifname: 'eth0', owner: 'x' });
      await s.store.reserve('web', hex('10.0.0.50'), { owner: 'y' });
      t.ok(await until(/"ip":"10\.0\.0\.50",[^\n]*"event":"reserve"/, 7000), 'a later change of the pool');
      t.notMatch(text, /"pool":"other"/, 'another pool is not on this stream');
    });
  });
}
