// berth console as the CLI runs it: --help, --listen, the token's sources,
// and the one-line errors when it cannot start.
import t from 'tap';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { main } from '../../cli/main.js';
import { parseListen } from '../../console/daemon.js';
import { freePort } from '../helpers/redis.js';

async function berth(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env });
  return { code, stdout, stderr };
}

t.test('--listen: ADDR:PORT or [IPv6]:PORT', async (t) => {
  t.same(parseListen('127.0.0.1:8089'), { host: '127.0.0.1', port: 8089 });
  t.same(parseListen('[::1]:8089'), { host: '::1', port: 8089 });
  t.same(parseListen('localhost:0'), { host: 'localhost', port: 0 });
  for (const bad of ['8089', '127.0.0.1', '127.0.0.1:65536', '::1:8089', '127.0.0.1:http', '']) {
    t.throws(() => parseListen(bad), { name: 'ValidationError', field: '--listen', message: /^--listen: must be ADDR:PORT, e\.g\. 127\.0\.0\.1:8089 or \[::1\]:8089, got / }, bad);
  }
});

t.test('berth console --help names the flags and the default', async (t) => {
  const r = await berth(['console', '--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /--listen/);
  t.match(r.stdout, /127\.0\.0\.1:8089/);
  t.match(r.stdout, /--token-file/);
  t.match(r.stdout, /BERTH_CONSOLE_TOKEN/);
  t.match((await berth(['--help'])).stdout, /berth console\s+Serve the web console/);
});

t.test('what stops it starting is one line naming the cause', async (t) => {
  const dir = t.testdir();
  const store = `file://${dir}`;
  let r = await berth(['--store', store, 'console', '--listen', 'nowhere']);
  t.equal(r.code, 1);
  t.equal(r.stderr, 'berth: failed to run the console: --listen: must be ADDR:PORT, e.g. 127.0.0.1:8089 or [::1]:8089, got "nowhere"\n');
  r = await berth(['--store', store, 'console', '--token-file', join(dir, 'missing')]);
  t.match(r.stderr, /^berth: failed to run the console: --token-file: failed to read token file ".*missing": ENOENT: no such file or directory\n$/);
  r = await berth(['--store', store, 'console'], { BERTH_CONSOLE_TOKEN: 'short' });
  t.match(r.stderr, /^berth: failed to run the console: BERTH_CONSOLE_TOKEN: the admin token must be at least 16 characters/);
  r = await berth(['--store', store, 'console', '--listen', 'a:1', '--listen', 'b:2']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--listen may be given only once/);

  const port = await freePort();
  const taken = createServer();
  await new Promise<void>((res) => taken.listen(port, '127.0.0.1', res));
  t.teardown(() => new Promise<void>((res) => taken.close(() => res())));
  r = await berth(['--store', store, 'console', '--listen', `127.0.0.1:${port}`]);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`^berth: failed to run the console: failed to listen on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`));
});
