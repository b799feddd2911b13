// The admin token, sessions, the CSRF token and the cross-site check.
import t from 'tap';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cookieValue, crossSite, csrfMatches, loadToken, sessionCookie, Sessions, SESSION_IDLE_MS } from '../../console/auth.js';

const TOKEN = 'a'.repeat(32);

t.test('the token: from --token-file (read like a password file), else BERTH_CONSOLE_TOKEN, else none', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'token');
  writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  t.equal(loadToken(file, { BERTH_CONSOLE_TOKEN: 'b'.repeat(20) }, warn), TOKEN, 'the file wins; its trailing newline is not the token');
  t.equal(loadToken(undefined, { BERTH_CONSOLE_TOKEN: 'b'.repeat(20) }, warn), 'b'.repeat(20));
  t.equal(loadToken(undefined, {}, warn), null, 'no token: read-only');
  t.same(warnings, []);
  chmodSync(file, 0o644);
  loadToken(file, {}, warn);
  t.match(warnings, [/token file ".*" can be read by users other than its owner \(mode 0644\); chmod 0600 it/]);
  t.throws(() => loadToken(join(dir, 'missing'), {}, warn), { name: 'ValidationError', field: '--token-file', message: /^--token-file: failed to read token file ".*missing": / });
  writeFileSync(file, 'short', { mode: 0o600 });
  t.throws(() => loadToken(file, {}, warn), { message: /^--token-file: the admin token must be at least 16 characters/ });
  t.throws(() => loadToken(undefined, { BERTH_CONSOLE_TOKEN: 'short' }, warn), { message: /^BERTH_CONSOLE_TOKEN: the admin token must be at least 16 characters/ });
});

t.test('sessions: opened by the token only, named by their cookie, ended by logout or idleness', async (t) => {
  let now = 1_000_000;
  const sessions = new Sessions(TOKEN, () => now);
  t.equal(sessions.login('wrong'), null);
  t.equal(sessions.login(`${TOKEN}x`), null);
  const s = sessions.login(TOKEN)!;
  t.ok(s.id.length >= 40 && s.csrf.length >= 40 && s.id !== s.csrf, 'random id and CSRF token');
  const cookie = sessionCookie(s, false);
  t.equal(cookie, `berth_console=${s.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_IDLE_MS / 1000}`);
  t.match(sessionCookie(s, true), /; Secure;/);
  t.match(sessionCookie(null, false), /^berth_console=; .*Max-Age=0$/);
  t.equal(sessions.get(`other=1; ${cookie.split(';')[0]}`), s);
  t.equal(sessions.get('berth_console=forged'), null);
  t.ok(csrfMatches(s, s.csrf));
  t.notOk(csrfMatches(s, undefined));
  t.notOk(csrfMatches(s, `${s.csrf}x`));
  now += SESSION_IDLE_MS - 1;
  t.equal(sessions.get(cookie), s, 'used just before its end, it goes on');
  now += SESSION_IDLE_MS;
  t.equal(sessions.get(cookie), null, 'idle too long, it has ended');
  const s2 = sessions.login(TOKEN)!;
  sessions.logout(s2);
  t.equal(sessions.get(sessionCookie(s2, false)), null);
  const readOnly = new Sessions(null);
  t.equal(readOnly.enabled, false);
  t.equal(readOnly.login(''), null);
  t.equal(cookieValue('a=1; berth_console=xyz', 'berth_console'), 'xyz');
});

t.test('cross-site: Origin must be this console (Host or X-Forwarded-Host); else Sec-Fetch-Site', async (t) => {
  t.equal(crossSite({ host: '127.0.0.1:8089', origin: 'http://127.0.0.1:8089' }), null);
  t.equal(crossSite({ host: '127.0.0.1:8089', origin: 'https://console.example.com', 'x-forwarded-host': 'console.example.com' }), null, 'behind a proxy');
  t.match(crossSite({ host: '127.0.0.1:8089', origin: 'https://evil.example' }), /the request came from https:\/\/evil\.example, not from this console/);
  t.match(crossSite({ host: '127.0.0.1:8089', origin: 'null' }), /not from this console/, 'an opaque origin');
  t.match(crossSite({ host: '127.0.0.1:8089', 'sec-fetch-site': 'cross-site' }), /another site \(Sec-Fetch-Site: cross-site\)/);
  t.match(crossSite({ host: '127.0.0.1:8089', 'sec-fetch-site': 'same-site' }), /another site/);
  t.equal(crossSite({ host: '127.0.0.1:8089', 'sec-fetch-site': 'same-origin' }), null);
  t.equal(crossSite({ host: '127.0.0.1:8089' }), null, 'a script: the CSRF token decides');
});
