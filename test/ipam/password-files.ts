// Passwords read from files (passwordFile, sentinelPasswordFile): the reading
// rules, then both Redis clients against a real redis-server and a real
// sentinel that require them.
import t, { type Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBerthError } from '../../core/errors.js';
import { openStore, type OpenOptions } from '../../ipam/open-store.js';
import { readPasswordFiles } from '../../ipam/password-files.js';
import type { RedisLocation } from '../../ipam/redis-conn.js';
import { parseStoreUrl } from '../../ipam/store-url.js';
import { freePort, skipWithoutRedis, startRedis } from '../helpers/redis.js';

const locOf = (url: string) => parseStoreUrl(url) as RedisLocation;

/** Writes a file with `mode` (chmod after, so the umask does not interfere). */
function secretFile(dir: string, name: string, text: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

function reads(t: Test, path: string, opts: { sentinel?: boolean } = {}): { loc: RedisLocation; warnings: string[] } {
  const warnings: string[] = [];
  const key = opts.sentinel ? 'sentinelPasswordFile' : 'passwordFile';
  const loc = readPasswordFiles(locOf(`redis${opts.sentinel ? '+sentinel' : ''}://h/${opts.sentinel ? 'm/' : ''}0?${key}=${encodeURIComponent(path)}`), (m) => warnings.push(m));
  t.ok(loc, 'read');
  return { loc, warnings };
}

/** The error readPasswordFiles throws for this file. */
function failure(path: string): Error {
  try {
    readPasswordFiles(locOf(`redis://h/0?passwordFile=${encodeURIComponent(path)}`), () => {});
  } catch (err) {
    return err as Error;
  }
  throw new Error(`reading ${path} did not fail`);
}

t.test('the password is the file, less one trailing newline', async (t) => {
  const dir = t.testdir();
  t.equal(reads(t, secretFile(dir, 'a', 'Pa55 w0rd\n')).loc.password, 'Pa55 w0rd');
  t.equal(reads(t, secretFile(dir, 'b', 'crlf\r\n')).loc.password, 'crlf');
  t.equal(reads(t, secretFile(dir, 'c', 'none')).loc.password, 'none');
  t.equal(reads(t, secretFile(dir, 'd', 'two\n\n')).loc.password, 'two\n', 'only one newline is the editor\'s');
  t.equal(reads(t, secretFile(dir, 'e', 'sp\n'), { sentinel: true }).loc.sentinelPassword, 'sp');
  const plain = locOf('redis://:inline@h/0');
  t.equal(readPasswordFiles(plain, () => t.fail('no warning')), plain, 'a location without files is returned as it is');
});

t.test('a file others can read is used, with a warning naming it', async (t) => {
  const dir = t.testdir();
  for (const mode of [0o644, 0o640, 0o604]) {
    const file = secretFile(dir, `m${mode.toString(8)}`, 'Mk9secret\n', mode);
    const { loc, warnings } = reads(t, file);
    t.equal(loc.password, 'Mk9secret');
    t.equal(warnings.length, 1, `mode ${mode.toString(8)}`);
    t.match(warnings[0], `password file "${file}" can be read by users other than its owner (mode 0${mode.toString(8)}); chmod 0600 it`);
    t.notMatch(warnings[0], /Mk9secret/);
  }
  for (const mode of [0o600, 0o400]) t.strictSame(reads(t, secretFile(dir, `q${mode.toString(8)}`, 'x', mode)).warnings, [], `no warning at ${mode.toString(8)}`);
});

t.test('a file that cannot serve fails with a message naming its path, never its content', async (t) => {
  const dir = t.testdir({ sub: {} });
  const missing = join(dir, 'missing.pass');
  const e = failure(missing);
  t.ok(isBerthError(e, 'INVALID'));
  t.equal(e.message, `store.passwordFile: failed to read password file "${missing}": ENOENT: no such file or directory`);
  t.throws(() => readPasswordFiles(locOf(`redis+sentinel://h/m?sentinelPasswordFile=${encodeURIComponent(missing)}`), () => {}), {
    field: 'store.sentinelPasswordFile',
    message: `store.sentinelPasswordFile: failed to read password file "${missing}": ENOENT: no such file or directory`,
  });
  t.match(failure(join(dir, 'sub')).message, /^store\.passwordFile: failed to read password file ".*sub": not a regular file$/);
  t.match(failure(secretFile(dir, 'empty', '')).message, /: the file is empty$/);
  t.match(failure(secretFile(dir, 'nl', '\n')).message, /: the file is empty$/);
  const big = failure(secretFile(dir, 'big', `Mk9secret${'x'.repeat(5000)}`));
  t.match(big.message, /: 5009 bytes, more than a password \(4096 at most\)$/);
  t.notMatch(big.message, /Mk9secret/);
  const fifo = join(dir, 'fifo');
  t.equal(spawnSync('mkfifo', [fifo]).status, 0);
  t.match(failure(fifo).message, /: not a regular file$/, 'a FIFO fails at once, with no writer');
});

t.test('both Redis clients', async (t) => {
  if (skipWithoutRedis(t)) return;
  const dir = t.testdir();
  const server = await startRedis({ config: ['requirepass Mk9redis', 'user app on >Mk9app ~* &* +@all'] });
  t.teardown(() => server.stop());
  const right = secretFile(dir, 'right', 'Mk9redis\n');
  const app = secretFile(dir, 'app', 'Mk9app\n');
  const wrong = secretFile(dir, 'wrong', 'Mk9wrong\n');
  const loose = secretFile(dir, 'loose', 'Mk9redis\n', 0o644);
  const url = (userAndFile: string) => `redis://${userAndFile}127.0.0.1:${server.port}/0`;
  for (const redisClient of ['resp', 'ioredis'] as const) {
    t.test(redisClient, async (t) => {
      const warnings: string[] = [];
      const open = async (u: string) => {
        const opts: OpenOptions = { redisClient, warn: (m) => warnings.push(m) };
        const store = await openStore(u, opts);
        t.teardown(() => store.close());
        return store;
      };
      const ok = await open(`${url('')}?passwordFile=${right}`);
      t.strictSame(await ok.listPools(), [], 'AUTH with the password from the file');
      const user = await open(`${url('app@')}?passwordFile=${app}`);
      t.strictSame(await user.listPools(), [], 'AUTH as the user the URL names, with the password from the file');
      t.strictSame(warnings, []);
      const bad = await open(`${url('')}?passwordFile=${wrong}`);
      const refused = await bad.listPools().catch((e: Error) => e);
      t.match(refused, { code: 'STORE_UNAVAILABLE', message: /WRONGPASS/ });
      t.notMatch((refused as Error).message, /Mk9/, 'the password is not in the message');
      const warned = await open(`${url('')}?passwordFile=${loose}`);
      t.strictSame(await warned.listPools(), []);
      t.equal(warnings.length, 1);
      t.match(warnings[0], `password file "${loose}" can be read by users other than its owner`);
      await t.rejects(openStore(`${url('')}?passwordFile=${join(dir, 'gone')}`, { redisClient }), {
        code: 'INVALID',
        message: `store.passwordFile: failed to read password file "${join(dir, 'gone')}": ENOENT: no such file or directory`,
      });
    });
  }
});

t.test('Sentinel: the sentinels\' password and the master\'s, each from its file, for both clients', async (t) => {
  if (skipWithoutRedis(t)) return;
  const dir = t.testdir();
  const master = await startRedis({ config: ['requirepass Mk9master'] });
  t.teardown(() => master.stop());
  const port = await freePort();
  mkdirSync(join(dir, 'sentinel'));
  const conf = join(dir, 'sentinel', 'sentinel.conf');
  writeFileSync(
    conf,
    [`port ${port}`, 'bind 127.0.0.1', `dir ${join(dir, 'sentinel')}`, 'requirepass Mk9sentinel', `sentinel monitor berthmaster 127.0.0.1 ${master.port} 1`, 'sentinel auth-pass berthmaster Mk9master', ''].join('\n'),
  );
  const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  t.teardown(() => {
    sentinel.kill('SIGKILL');
  });
  const files = `passwordFile=${secretFile(dir, 'm', 'Mk9master\n')}&sentinelPasswordFile=${secretFile(dir, 's', 'Mk9sentinel\n')}`;
  const url = `redis+sentinel://127.0.0.1:${port}/berthmaster/0?connectTimeout=1000&${files}`;
  for (const redisClient of ['resp', 'ioredis'] as const) {
    let pools: unknown;
    let last: unknown;
    for (let i = 0; i < 50 && pools === undefined; i++) {
      const store = await openStore(url, { redisClient, warn: (m) => t.fail(m) });
      pools = await store.listPools().catch((err: Error) => {
        last = err;
        return new Promise((r) => setTimeout(r, 100)).then(() => undefined);
      });
      await store.close();
    }
    t.strictSame(pools, [], `${redisClient}: through the sentinel to the master (${String(last)})`);
  }
  const store = await openStore(`redis+sentinel://127.0.0.1:${port}/berthmaster/0?connectTimeout=1000&passwordFile=${secretFile(dir, 'm2', 'Mk9master')}`);
  const refused = await store.listPools().catch((e: Error) => e);
  await store.close();
  t.match(refused, { code: 'STORE_UNAVAILABLE', message: /NOAUTH|WRONGPASS|authentication/i }, 'without the sentinels\' password the sentinel refuses');
  t.notMatch((refused as Error).message, /Mk9/);
});
