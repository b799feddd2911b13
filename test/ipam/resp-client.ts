// berth's own RESP client: the parser fed a byte stream cut every way, then a
// real redis-server for commands, AUTH, SELECT, TLS, Sentinel, a server that
// stops answering or dies, close(), and a process that must exit on its own.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RedisReplyError, UnconfirmedWriteError, type RedisLocation, type RedisReply } from '../../ipam/redis-conn.js';
import { RespClient } from '../../ipam/resp-client.js';
import { encodeCommand, MAX_REPLY_BYTES, RespParser } from '../../ipam/resp-protocol.js';
import { parseStoreUrl } from '../../ipam/store-url.js';
import { freePort, skipWithoutRedis, startRedis } from '../helpers/redis.js';
import { makeCerts } from '../helpers/tls.js';
import { haConfig, replicating, until } from '../helpers/sentinel.js';

type Plain = RedisReply | { error: string };

const plain = (r: RedisReply | RedisReplyError): Plain => (r instanceof RedisReplyError ? { error: r.message } : r);
const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function locOf(url: string): RedisLocation {
  const loc = parseStoreUrl(url);
  if (loc.kind !== 'redis') throw new Error(`${url} is not a redis URL`);
  return loc;
}

function client(t: Test, url: string): RespClient {
  const c = new RespClient(locOf(url));
  t.teardown(() => c.close());
  return c;
}

/** Every reply the parser produces for these chunks, in order. */
function decode(chunks: Buffer[]): Plain[] {
  const out: Plain[] = [];
  const parser = new RespParser((r) => out.push(plain(r)));
  for (const c of chunks) parser.feed(c);
  return out;
}

/** Why a rejection happened, for asserting on every one of many. */
async function reasons(promises: Array<Promise<unknown>>): Promise<Error[]> {
  const settled = await Promise.allSettled(promises);
  return settled.map((s) => (s.status === 'rejected' ? (s.reason as Error) : new Error(`resolved with ${JSON.stringify(s.value)}`)));
}

/**
 * A stand-in server (a sentinel, or a broken Redis) on a free port: answers
 * each command with what `answer` returns (raw RESP, or null to never
 * answer), and records them.
 */
async function fakeServer(t: Test, answer: (cmd: string[]) => string | null): Promise<{ port: number; seen: string[][] }> {
  const seen: string[][] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const parser = new RespParser((r) => {
      const cmd = (r as string[]).map(String);
      seen.push(cmd);
      const reply = answer(cmd);
      if (reply !== null) socket.write(reply);
    });
    socket.on('data', (chunk: Buffer) => parser.feed(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as { port: number }).port, seen };
}

const masterAt = (port: number) => `*2\r\n${bulk('127.0.0.1')}${bulk(String(port))}`;

const STREAM: Array<[string, Plain]> = [
  ['+OK\r\n', 'OK'],
  ['+héllo wörld ✓\r\n', 'héllo wörld ✓'],
  ['-WRONGTYPE Operation against a key holding the wrong kind of value\r\n', { error: 'WRONGTYPE Operation against a key holding the wrong kind of value' }],
  ['-ERR ünïcödé 🙂\r\n', { error: 'ERR ünïcödé 🙂' }],
  [':0\r\n', 0],
  [':-42\r\n', -42],
  [':9007199254740991\r\n', 9007199254740991],
  ['$-1\r\n', null],
  ['$0\r\n\r\n', ''],
  [bulk('a\r\nb\r\n'), 'a\r\nb\r\n'],
  [bulk('日本語🙂é'), '日本語🙂é'],
  ['*-1\r\n', null],
  ['*0\r\n', []],
  [`*3\r\n:1\r\n$-1\r\n*2\r\n${bulk('x🙂')}*0\r\n`, [1, null, ['x🙂', []]]],
  ['*2\r\n:1\r\n-ERR inner\r\n', { error: 'ERR inner' }],
  ['*2\r\n*1\r\n-ERR deep\r\n:2\r\n', { error: 'ERR deep' }],
  ['+after\r\n', 'after'],
];

t.test('parser: a reply stream cut at every byte boundary decodes the same', async (t) => {
  const stream = Buffer.from(STREAM.map(([raw]) => raw).join(''));
  const expected = STREAM.map(([, value]) => value);
  t.strictSame(decode([stream]), expected, 'all replies in one chunk');
  t.strictSame(
    decode([...stream].map((b) => Buffer.from([b]))),
    expected,
    'one byte per chunk',
  );
  // Every 2-way cut (j = i), and 3-way cuts with a short middle piece: this
  // splits every multi-byte UTF-8 character, every CRLF and every header,
  // and also gets a header or a character in three pieces.
  let cuts = 0;
  let wrong: string | null = null;
  for (let i = 0; i <= stream.length && !wrong; i++) {
    for (let j = i; j <= Math.min(i + 24, stream.length) && !wrong; j++) {
      const got = decode([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
      cuts++;
      if (JSON.stringify(got) !== JSON.stringify(expected)) wrong = `cut at ${i} and ${j}: ${JSON.stringify(got)}`;
    }
  }
  t.equal(wrong, null, `${cuts} ways to cut ${stream.length} bytes in two, or in three with up to 24 bytes in the middle`);
  const multiByte = [...stream.entries()].filter(([, b]) => b >= 0x80 && b < 0xc0).length;
  t.ok(multiByte > 20, `${multiByte} cuts fall inside a UTF-8 character`);
});

t.test('parser: a large bulk string in many chunks, with the next reply in its last chunk', async (t) => {
  const value = 'é🙂xyz'.repeat(100_000);
  const stream = Buffer.from(`${bulk(value)}:7\r\n`);
  const chunks: Buffer[] = [];
  for (let i = 0; i < stream.length; i += 65_536) chunks.push(stream.subarray(i, i + 65_536));
  const got = decode(chunks);
  t.equal(got.length, 2);
  t.ok(got[0] === value, `${Buffer.byteLength(value)} bytes intact`);
  t.equal(got[1], 7);
});

t.test('parser: bytes that are not RESP2 throw', async (t) => {
  t.throws(() => decode([Buffer.from('?x\r\n')]), /protocol error: unexpected reply type byte 0x3f/);
  t.throws(() => decode([Buffer.from('$3\r\nabcXY')]), /does not end in CRLF/);
  t.throws(() => decode([Buffer.from('$3\r\nab'), Buffer.from('cXY')]), /does not end in CRLF/, 'also when gathered across chunks');
  t.throws(() => decode([Buffer.from(':12a\r\n')]), /"12a" is not an integer/);
  t.throws(() => decode([Buffer.from('*-2\r\n')]), /length -2/);
  t.throws(() => decode([Buffer.from('+OK\n')]), /malformed line/);
  t.throws(() => decode([Buffer.from('HTTP/1.1 400 Bad Request\r\n')]), /protocol error/);
});

t.test('parser: a reply is bounded in bytes, whatever shape it takes, and the bound resets per reply', async (t) => {
  const bounded = (chunks: string[], max: number): Plain[] => {
    const out: Plain[] = [];
    const parser = new RespParser((r) => out.push(plain(r)), max);
    for (const c of chunks) parser.feed(Buffer.from(c));
    return out;
  };
  const ten = bulk('0123456789'); // 17 bytes on the wire
  t.same(bounded([ten, ten, ten], 17), ['0123456789', '0123456789', '0123456789'], 'replies of exactly the bound, one after another');
  t.throws(() => bounded([bulk('01234567890')], 17), /protocol error: a reply larger than 17 bytes/);
  t.throws(() => bounded(['$1000000000\r\n'], 1024), /larger than 1024 bytes/, 'a bulk length past the bound fails at its header, before any body is awaited');
  t.throws(() => bounded(['+', 'x'.repeat(600), 'x'.repeat(600)], 1024), /larger than 1024 bytes/, 'a line that never ends');
  t.throws(() => bounded([`*1000000\r\n${':1\r\n'.repeat(300)}`], 1024), /larger than 1024 bytes/, 'an array of many small items');
  t.throws(() => bounded(['*1\r\n'.repeat(300)], 1024), /larger than 1024 bytes/, 'nesting');
  t.throws(() => bounded(['$600\r\n', 'y'.repeat(300), 'y'.repeat(300)], 512), /larger than 512 bytes/, 'a body arriving in chunks');
  t.equal(MAX_REPLY_BYTES, 64 * 1024 * 1024, 'the default: a pool\'s records for ~350,000 addresses in use');
});

t.test('encoding: bulk strings with UTF-8 byte lengths, numbers as decimal text', async (t) => {
  t.equal(encodeCommand(['SET', 'k', 'é🙂', 42, -1.5]), '*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\né🙂\r\n$2\r\n42\r\n$4\r\n-1.5\r\n');
  t.equal(encodeCommand(['GET', '']), '*2\r\n$3\r\nGET\r\n$0\r\n\r\n');
  t.throws(() => encodeCommand([]), TypeError);
  t.throws(() => encodeCommand(['INCRBY', 'k', NaN]), /argument 2 of INCRBY is NaN/);
  t.throws(() => encodeCommand(['GET', undefined as unknown as string]), /argument 1 of GET is undefined/);
});

if (!skipWithoutRedis(t)) {
  const shared = await startRedis();
  t.teardown(() => shared.stop());
  let n = 0;
  /** keys of one test, apart from every other test's */
  const keys = () => {
    const prefix = `t${process.pid}-${n++}`;
    return (name: string) => `${prefix}:${name}`;
  };

  t.test('commands and the shapes of their replies', async (t) => {
    const c = client(t, shared.url);
    const k = keys();
    t.equal(await c.send(['SET', k('s'), 'v']), 'OK', 'simple string');
    t.equal(await c.send(['GET', k('s')]), 'v', 'bulk string');
    t.equal(await c.send(['GET', k('missing')]), null, 'nil bulk');
    t.equal(await c.send(['INCR', k('n')]), 1, 'integer');
    t.equal(await c.send(['INCRBY', k('n'), 41]), 42, 'a number argument');
    t.equal(await c.send(['HSET', k('h'), 'a', '1', 'b', '2']), 2);
    t.strictSame(await c.send(['HGETALL', k('h')]), ['a', '1', 'b', '2'], 'array');
    t.strictSame(await c.send(['LRANGE', k('none'), 0, -1]), [], 'empty array');
    t.equal(await c.send(['BLPOP', k('none'), '0.01']), null, 'nil array');
    const id = await c.send(['XADD', k('x'), '*', 'f', 'v', 'g', 'w']);
    t.strictSame(await c.send(['XRANGE', k('x'), '-', '+']), [[id, ['f', 'v', 'g', 'w']]], 'nested arrays');
    t.strictSame(
      await c.pipeline([['MULTI'], ['SET', k('m'), 'x'], ['INCR', k('n')], ['GET', k('m')], ['EXEC']]),
      ['OK', 'QUEUED', 'QUEUED', 'QUEUED', ['OK', 43, 'x']],
      'MULTI/EXEC in a pipeline',
    );
    t.strictSame(await c.pipeline([]), [], 'an empty pipeline');
  });

  t.test('unicode values and keys round-trip, and a 1 MB value', async (t) => {
    const c = client(t, shared.url);
    const k = keys();
    const values = ['héllo', '日本語', '🙂👩‍👩‍👧', 'a\r\nb', '', 'nul\u0000byte', 'e\u0301 combining', '\u{10ffff}'];
    for (const [i, v] of values.entries()) {
      await c.send(['SET', k(`ключ-${i}`), v]);
      t.equal(await c.send(['GET', k(`ключ-${i}`)]), v, JSON.stringify(v));
      t.equal(await c.send(['STRLEN', k(`ключ-${i}`)]), Buffer.byteLength(v), 'sent with its byte length');
    }
    const big = 'é🙂abc'.repeat(120_000);
    const [set, got, len] = await c.pipeline([['SET', k('big'), big], ['GET', k('big')], ['STRLEN', k('big')]]);
    t.equal(set, 'OK');
    t.ok(got === big, 'the 1 MB value comes back intact');
    t.equal(len, Buffer.byteLength(big), `${Buffer.byteLength(big)} bytes`);
    t.ok(Buffer.byteLength(big) > 1024 * 1024);
  });

  t.test('error replies: thrown by send, in their slot in a pipeline, and the connection carries on', async (t) => {
    const c = client(t, shared.url);
    const k = keys();
    await c.send(['SET', k('s'), 'v']);
    const err = await c.send(['LPUSH', k('s'), 'x']).catch((e: unknown) => e);
    t.type(err, RedisReplyError);
    t.match((err as Error).message, /^WRONGTYPE /);
    await t.rejects(c.send(['NOSUCHCOMMAND']), /^ERR unknown command/);
    t.equal(await c.send(['PING']), 'PONG', 'the same connection still answers');
    const replies = await c.pipeline([['GET', k('s')], ['LPUSH', k('s'), 'x'], ['GET', k('s')]]);
    t.equal(replies[0], 'v');
    t.type(replies[1], RedisReplyError);
    t.match((replies[1] as Error).message, /^WRONGTYPE /);
    t.equal(replies[2], 'v', 'the commands after it ran');
  });

  t.test('EVAL, EVALSHA and NOSCRIPT', async (t) => {
    const c = client(t, shared.url);
    const k = keys();
    t.strictSame(await c.send(['EVAL', 'return {KEYS[1], ARGV[1], 7, {1, false, "é"}}', 1, k('a'), 'arg']), [k('a'), 'arg', 7, [1, null, 'é']]);
    const script = `return "${k('token')}"`;
    const sha = createHash('sha1').update(script).digest('hex');
    await t.rejects(c.send(['EVALSHA', sha, 0]), { name: 'ReplyError', message: /^NOSCRIPT/ });
    const [missing, loaded, ran] = await c.pipeline([['EVALSHA', sha, 0], ['SCRIPT', 'LOAD', script], ['EVALSHA', sha, 0]]);
    t.type(missing, RedisReplyError, 'NOSCRIPT in its pipeline slot');
    t.equal(loaded, sha);
    t.equal(ran, k('token'));
    await t.rejects(c.send(['EVAL', 'return {1, redis.error_reply("boom")}', 0]), { name: 'ReplyError', message: /boom/ }, 'an error nested in an array fails the reply');
    t.type(await c.send(['EVAL', 'return redis.call("NOPE")', 0]).catch((e: unknown) => e), RedisReplyError, 'a script error');
  });

  t.test('1000 concurrent sends each get their own reply', async (t) => {
    const c = client(t, shared.url);
    const k = keys();
    const sends = Array.from({ length: 1000 }, (_, i) => (i % 2 ? c.send(['ECHO', `m${i}-é`]) : c.send(['INCRBY', k('sum'), i])));
    const piped = c.pipeline(Array.from({ length: 50 }, (_, i) => ['ECHO', `p${i}`]));
    const replies = await Promise.all(sends);
    let wrong = 0;
    let sum = 0;
    for (const [i, r] of replies.entries()) {
      if (i % 2 === 0) sum += i;
      if (r !== (i % 2 ? `m${i}-é` : sum)) wrong++;
    }
    t.equal(wrong, 0, 'every ECHO its own message, every INCRBY the running sum in order');
    t.strictSame(await piped, Array.from({ length: 50 }, (_, i) => `p${i}`));
  });

  t.test('AUTH with requirepass and with an ACL user', async (t) => {
    const server = await startRedis({ config: ['requirepass s3cret', 'user app on >app-pass ~* &* +@all'] });
    t.teardown(() => server.stop());
    const at = `127.0.0.1:${server.port}`;
    await t.rejects(client(t, `redis://${at}/0`).send(['PING']), { name: 'ReplyError', message: /^NOAUTH/ });
    const wrong = client(t, `redis://:nope@${at}/0`);
    const errors = await reasons([wrong.send(['PING']), wrong.send(['SET', 'a', 'b']), wrong.pipeline([['GET', 'a']])]);
    for (const e of errors) t.match(e, { name: 'ReplyError', message: /^WRONGPASS/ }, 'every queued command gets the AUTH failure');
    t.notOk(errors.some((e) => e.message.includes('nope')), 'the password is not in the message');
    await t.rejects(wrong.send(['PING']), /WRONGPASS/, 'the next command tries again');
    t.equal(await client(t, `redis://:s3cret@${at}/0`).send(['PING']), 'PONG');
    const user = client(t, `redis://app:app-pass@${at}/0`);
    t.equal(await user.send(['ACL', 'WHOAMI']), 'app', 'AUTH username password');
    await t.rejects(client(t, `redis://app:bad@${at}/0`).send(['PING']), /^WRONGPASS/);
    const selectFirst = client(t, `redis://${at}/2`);
    const refused = await reasons([selectFirst.send(['PING']), selectFirst.send(['PING'])]);
    for (const e of refused) t.match(e, { name: 'ReplyError', message: /^NOAUTH/ }, 'a refused SELECT fails the queued commands');
  });

  t.test('SELECT: each client sees its own database', async (t) => {
    const k = keys();
    const zero = client(t, shared.url);
    const three = client(t, `redis://127.0.0.1:${shared.port}/3`);
    await zero.send(['SET', k('x'), 'in 0']);
    await three.send(['SET', k('x'), 'in 3']);
    t.equal(await zero.send(['GET', k('x')]), 'in 0');
    t.equal(await three.send(['GET', k('x')]), 'in 3');
    t.equal(shared.cli('-n', '3', 'GET', k('x')), 'in 3', 'database 3 on the server');
  });

  t.test('TLS with a private CA; an unknown CA, a wrong name and plain text are refused', async (t) => {
    const pem = makeCerts(t.testdir());
    const server = await startRedis({ tls: { cert: pem('server.crt'), key: pem('server.key'), ca: pem('ca.crt') } });
    t.teardown(() => server.stop());
    const at = `127.0.0.1:${server.port}`;
    const ca = `ca=${encodeURIComponent(pem('ca.crt'))}`;
    const c = client(t, `rediss://${at}/0?${ca}`);
    const big = 'é'.repeat(300_000);
    t.strictSame(await c.pipeline([['SET', 'k', big], ['GET', 'k'], ['PING']]), ['OK', big, 'PONG'], 'works over TLS, large replies too');
    t.equal(await client(t, `rediss://${at}/0?${ca}&servername=localhost`).send(['PING']), 'PONG', 'verified against servername');
    await t.rejects(client(t, `rediss://${at}/0?${ca}&servername=other.example`).send(['PING']), /failed to connect to redis 127\.0\.0\.1:\d+: .*(altnames|does not match)/i);
    const started = Date.now();
    await t.rejects(client(t, `rediss://${at}/0?connectTimeout=20000`).send(['PING']), /failed to connect to redis .*certificate/i, 'an unknown CA is refused');
    t.ok(Date.now() - started < 5000, 'at once, not after the 20 s connect timeout');
    await t.rejects(client(t, `rediss://${at}/0?ca=/nonexistent/ca.pem`).send(['PING']), /failed to read the TLS ca file "\/nonexistent\/ca.pem": ENOENT/);
    const plainText = await client(t, `redis://${at}/0?timeout=500`).send(['PING']).catch((e: Error) => e);
    t.type(plainText, Error);
    t.notOk(plainText instanceof RedisReplyError, `plain text to a TLS port: ${(plainText as Error).message}`);
    server.signal('SIGSTOP');
    const handshake = Date.now();
    const stalled = await client(t, `rediss://${at}/0?${ca}&connectTimeout=500`).send(['PING']).catch((e: Error) => e);
    const took = Date.now() - handshake;
    server.signal('SIGCONT');
    t.match(stalled, { message: /^failed to connect to redis 127\.0\.0\.1:\d+: timed out after 500 ms$/ }, 'a handshake nobody answers is bounded by connectTimeout');
    t.ok(took >= 450 && took < 3000, `after its connectTimeout, not before and not much later (${took} ms)`);
  });

  t.test('TLS with a client certificate', async (t) => {
    const pem = makeCerts(t.testdir());
    const server = await startRedis({ tls: { cert: pem('server.crt'), key: pem('server.key'), ca: pem('ca.crt') }, config: ['tls-auth-clients yes'] });
    t.teardown(() => server.stop());
    const base = `rediss://127.0.0.1:${server.port}/0?ca=${encodeURIComponent(pem('ca.crt'))}`;
    const withCert = client(t, `${base}&cert=${encodeURIComponent(pem('client.crt'))}&key=${encodeURIComponent(pem('client.key'))}`);
    t.equal(await withCert.send(['PING']), 'PONG', 'cert and key read from their files');
    const without = await client(t, `${base}&timeout=1000`).send(['PING']).catch((e: Error) => e);
    t.type(without, Error, `refused without one: ${(without as Error).message}`);
    t.notOk(without instanceof RedisReplyError);
  });

  t.test('Sentinel: a real sentinel names the master', async (t) => {
    const master = await startRedis();
    t.teardown(() => master.stop());
    const port = await freePort();
    const dead = await freePort();
    const conf = join(t.testdir(), 'sentinel.conf');
    writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `sentinel monitor berthmaster 127.0.0.1 ${master.port} 1`, ''].join('\n'));
    const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    t.teardown(() => {
      sentinel.kill('SIGKILL');
    });
    const url = `redis+sentinel://127.0.0.1:${dead},127.0.0.1:${port}/berthmaster/0`;
    let reply: unknown;
    for (let i = 0; i < 50 && reply !== 'OK'; i++) {
      const c = new RespClient(locOf(url));
      reply = await c.send(['SET', 'via', 'sentinel']).catch(() => sleep(100));
      await c.close();
    }
    t.equal(reply, 'OK', 'past a refused sentinel, through the live one');
    t.equal(master.cli('GET', 'via'), 'sentinel', 'on the master it names');
  });

  t.test('Sentinel: AUTH to sentinels, unknown names, replicas and silent sentinels are passed over', async (t) => {
    const master = await startRedis();
    t.teardown(() => master.stop());
    const replica = await startRedis({ config: [`replicaof 127.0.0.1 ${master.port}`] });
    t.teardown(() => replica.stop());
    const auth = (cmd: string[]) => (cmd[0] === 'AUTH' ? (cmd[1] === 'sentuser' && cmd[2] === 'sentpass' ? '+OK\r\n' : '-WRONGPASS bad\r\n') : null);
    const unknown = await fakeServer(t, (cmd) => auth(cmd) ?? '*-1\r\n');
    const toReplica = await fakeServer(t, (cmd) => auth(cmd) ?? masterAt(replica.port));
    const silent = await fakeServer(t, () => null);
    const good = await fakeServer(t, (cmd) => auth(cmd) ?? masterAt(master.port));
    const hosts = [unknown, toReplica, silent, good].map((s) => `127.0.0.1:${s.port}`).join(',');
    const c = client(t, `redis+sentinel://${hosts}/berthmaster/0?connectTimeout=2000&sentinelUsername=sentuser&sentinelPassword=sentpass`);
    t.equal(await c.send(['SET', 'found', 'yes']), 'OK');
    t.equal(master.cli('GET', 'found'), 'yes', 'on the master');
    t.strictSame(good.seen, [
      ['AUTH', 'sentuser', 'sentpass'],
      ['SENTINEL', 'get-master-addr-by-name', 'berthmaster'],
      ['SENTINEL', 'REPLICAS', 'berthmaster'],
    ], 'the replicas it knows are asked in the same round trip (the default of ?replicas)');
    t.equal(silent.seen.length, 3, 'the silent sentinel was asked, and left after its share of the time');

    const refused = await freePort();
    const none = client(t, `redis+sentinel://127.0.0.1:${unknown.port},127.0.0.1:${refused},127.0.0.1:${toReplica.port},127.0.0.1:${silent.port}/berthmaster/0?connectTimeout=500&timeout=20000`);
    const started = Date.now();
    const err = (await none.send(['PING']).catch((e: Error) => e)) as Error;
    t.ok(Date.now() - started < 3000, `within connectTimeout (500 ms), not the 20 s command timeout (${Date.now() - started} ms)`);
    t.match(err.message, /^failed to find the redis master "berthmaster" through sentinels: /);
    t.match(err.message, new RegExp(`sentinel 127\\.0\\.0\\.1:${unknown.port}: does not know master "berthmaster"`));
    t.match(err.message, new RegExp(`sentinel 127\\.0\\.0\\.1:${refused}: .*ECONNREFUSED`));
    t.match(err.message, new RegExp(`sentinel 127\\.0\\.0\\.1:${toReplica.port} named 127\\.0\\.0\\.1:${replica.port}: ROLE says "slave", not master`));
    t.match(err.message, new RegExp(`sentinel 127\\.0\\.0\\.1:${silent.port}: .*timed out after \\d+ ms`));
    const wrongAuth = client(t, `redis+sentinel://127.0.0.1:${good.port}/berthmaster/0?sentinelPassword=nope`);
    await t.rejects(wrongAuth.send(['PING']), /sentinel 127\.0\.0\.1:\d+: WRONGPASS bad/);
  });

  t.test('a server that sends an endless reply: the connection is dropped at the bound, not buffered', async (t) => {
    let sent = 0;
    const big = await new Promise<number>((resolve) => {
      const server = createServer((socket) => {
        socket.on('error', () => {});
        socket.once('data', () => {
          // a bulk string that claims 1 GB, then bytes for as long as the client reads
          socket.write('$1000000000\r\n');
          const chunk = Buffer.alloc(1 << 16, 0x61);
          const pump = () => {
            while (sent < 512 * 1024 * 1024 && socket.write(chunk)) sent += chunk.length;
          };
          socket.on('drain', pump);
          pump();
        });
      });
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
      t.teardown(() => server.close());
    });
    const c = client(t, `redis://127.0.0.1:${big}/0?timeout=5000`);
    const err = await c.send(['GET', 'k']).catch((e: Error) => e);
    t.match(err, { message: /^failed to run GET on redis 127\.0\.0\.1:\d+: protocol error: a reply larger than 67108864 bytes$/ });
    t.ok(sent < MAX_REPLY_BYTES, `refused at the header: ${sent} bytes were offered, none kept`);
  });

  t.test('write(): WAIT after the command on the same connection; too few replicas is an UnconfirmedWriteError', async (t) => {
    const master = await startRedis({ config: haConfig() });
    t.teardown(() => master.stop());
    const replica = await startRedis({ config: [...haConfig(), `replicaof 127.0.0.1 ${master.port}`] });
    t.teardown(async () => {
      replica.signal('SIGCONT');
      await replica.stop();
    });
    await replicating(master, 1);
    const c = client(t, `${master.url}?timeout=2000`);
    t.equal(await c.write(['SET', 'k', '1']), 'OK', 'confirmed by the replica (the default: one, as the master lists one)');
    t.equal(replica.cli('GET', 'k'), '1');
    t.equal(c.stats.retired, 0);

    replica.signal('SIGSTOP');
    const started = Date.now();
    const err = await c.write(['SET', 'k', '2']).catch((e: Error) => e);
    t.ok(err instanceof UnconfirmedWriteError, `not confirmed: ${(err as Error).message}`);
    t.match(err, { acked: 0, required: 1, message: /^the change ran on 127\.0\.0\.1:\d+, but 0 of 1 replica confirmed it within 1000 ms$/ });
    t.ok(Date.now() - started < 2000 + 3000, 'within the timeout');
    t.equal(master.cli('GET', 'k'), '2', 'WAIT rolls nothing back: the change is on the master');
    t.equal(c.stats.retired, 1, 'the connection that could not confirm is not used again');
    t.equal(await c.send(['GET', 'k']), '2', 'reads still answer, on a fresh connection');
    const none = client(t, `${master.url}?timeout=2000&replicas=0`);
    t.equal(await none.write(['SET', 'k', '3']), 'OK', 'replicas=0: no WAIT at all');
    replica.signal('SIGCONT');
    await until('the replica to catch up', () => (replica.cli('GET', 'k') === '3' ? true : undefined));
    t.equal(await c.write(['SET', 'k', '4']), 'OK', 'confirmed again once the replica is back');
  });

  t.test('write() on a replica fails closed: READONLY for the command, and a WAIT the server refuses', async (t) => {
    const master = await startRedis({ config: haConfig() });
    t.teardown(() => master.stop());
    const replica = await startRedis({ config: [...haConfig(), `replicaof 127.0.0.1 ${master.port}`] });
    t.teardown(() => replica.stop());
    await until('the replica to sync', () => (/state=online/.test(master.cli('INFO', 'replication')) ? true : undefined));
    const direct = client(t, `${replica.url}?replicas=1`);
    await t.rejects(direct.write(['EVAL', '#!lua\nreturn 1', 0]), { name: 'ReplyError', message: /^READONLY/ }, 'a script that may write is refused before it runs, even one that writes nothing');
    // a master demoted between the script and WAIT: WAIT's refusal is not a confirmation
    const demoted = await fakeServer(t, (cmd) => (cmd[0] === 'WAIT' ? '-ERR WAIT cannot be used with replica instances.\r\n' : '+OK\r\n'));
    const err = await client(t, `redis://127.0.0.1:${demoted.port}/0?replicas=1`).write(['SET', 'a', 'b']).catch((e: Error) => e);
    t.ok(err instanceof UnconfirmedWriteError, 'unconfirmed');
    t.match(err, { message: /but WAIT failed there: ERR WAIT cannot be used with replica instances/ });
    t.same(demoted.seen.map((c) => c[0]), ['SET', 'WAIT'], 'WAIT right after the command, on its connection');
    // and a plain redis:// URL with no ?replicas reads ROLE in the first write's round trip
    const probed = await fakeServer(t, (cmd) => (cmd[0] === 'ROLE' ? `*3\r\n${bulk('master')}:0\r\n*0\r\n` : '+OK\r\n'));
    const p = client(t, `redis://127.0.0.1:${probed.port}/0`);
    await p.send(['GET', 'x']);
    await p.write(['SET', 'a', 'b']);
    await p.write(['SET', 'a', 'c']);
    t.same(probed.seen.map((c) => c[0]), ['GET', 'ROLE', 'SET', 'SET'], 'ROLE once, with the first write; no replica listed, no WAIT');
  });

  t.test('Sentinel: a demoted master answers READONLY, and the same client finds the new master within the call', async (t) => {
    const a = await startRedis({ config: haConfig() });
    t.teardown(() => a.stop());
    const b = await startRedis({ config: haConfig() });
    t.teardown(() => b.stop());
    let named = a.port;
    const sentinel = await fakeServer(t, (cmd) => (cmd[1] === 'get-master-addr-by-name' ? masterAt(named) : '*0\r\n'));
    const c = client(t, `redis+sentinel://127.0.0.1:${sentinel.port}/m/0?timeout=3000`);
    t.equal(await c.write(['SET', 'k', 'on a']), 'OK');
    // an operator demotes a by hand: no sentinel kills its clients, so the kept connection stays on a replica
    a.cli('REPLICAOF', '127.0.0.1', String(b.port));
    named = b.port;
    await until('a to be a replica', () => (a.cli('ROLE').startsWith('slave') ? true : undefined));
    t.equal(await c.write(['SET', 'k', 'on b']), 'OK', 'the write that met READONLY went to the master the sentinel names now');
    t.equal(b.cli('GET', 'k'), 'on b');
    t.equal(c.stats.retired, 1, "the demoted master's connection was retired");
    t.equal(sentinel.seen.filter((cmd) => cmd[1] === 'get-master-addr-by-name').length, 2, 'the sentinel was asked again');

    const direct = client(t, `redis://127.0.0.1:${a.port}/0?timeout=3000`);
    await t.rejects(direct.write(['SET', 'k', 'x']), { name: 'ReplyError', message: /^READONLY/ }, 'a plain redis:// URL has nowhere else to go: the refusal is the answer');
  });

  t.test('a refused connection fails at once, and the next command tries again', async (t) => {
    const port = await freePort();
    const c = client(t, `redis://127.0.0.1:${port}/0?connectTimeout=20000`);
    const started = Date.now();
    await t.rejects(c.send(['PING']), /^failed to connect to redis 127\.0\.0\.1:\d+: connect ECONNREFUSED/);
    t.ok(Date.now() - started < 5000, `at once, not after the 20 s connect timeout (${Date.now() - started} ms)`);
    await t.rejects(c.pipeline([['PING']]), /ECONNREFUSED/);
    // sent from the rejection handler itself, before the failed attempt is quite over
    const retried = c.send(['PING']).catch(() => c.send(['PING']));
    const hung = sleep(2000).then(() => 'hung');
    t.match(await Promise.race([retried.catch((e: Error) => e.message), hung]), /ECONNREFUSED/, 'a retry from the rejection handler connects afresh');
  });

  t.test('a server that does not speak RESP: a protocol error, not a hang', async (t) => {
    const http = await fakeServer(t, () => 'HTTP/1.1 400 Bad Request\r\n\r\n');
    const c = client(t, `redis://127.0.0.1:${http.port}/0?timeout=5000`);
    const err = await c.send(['PING']).catch((e: Error) => e);
    t.match(err, { message: /^failed to run PING on redis 127\.0\.0\.1:\d+: protocol error: unexpected reply type byte 0x48/ });
    t.notOk(err instanceof RedisReplyError);
  });

  t.test('a server that stops answering: every pending command fails after the timeout, then a fresh connection', async (t) => {
    const server = await startRedis();
    t.teardown(async () => {
      server.signal('SIGCONT');
      await server.stop();
    });
    const c = client(t, `${server.url}?timeout=500`);
    t.equal(await c.send(['PING']), 'PONG');
    server.signal('SIGSTOP');
    const started = Date.now();
    const first = reasons([c.send(['PING']), c.send(['SET', 'a', 'b']), c.pipeline([['GET', 'a'], ['PING']])]);
    await sleep(100);
    const later = reasons([c.send(['PING'])]);
    const errors = [...(await first), ...(await later)];
    const took = Date.now() - started;
    for (const e of errors) t.match(e.message, /^failed to run .* on redis 127\.0\.0\.1:\d+: timed out after 500 ms$/);
    t.notOk(errors.some((e) => e instanceof RedisReplyError), 'transport errors, not reply errors');
    t.ok(took >= 450 && took < 3000, `all rejected after the timeout, not before and not much later: ${took} ms after the first was sent`);

    const fresh = client(t, `redis://127.0.0.1:${server.port}/1?connectTimeout=500`);
    const connectStarted = Date.now();
    await t.rejects(fresh.send(['PING']), /^failed to connect to redis 127\.0\.0\.1:\d+: timed out after 500 ms$/, 'SELECT unanswered: the connect timeout');
    const connectTook = Date.now() - connectStarted;
    t.ok(connectTook >= 450 && connectTook < 3000, `after the connect timeout (${connectTook} ms)`);

    server.signal('SIGCONT');
    t.equal(await c.send(['PING']), 'PONG', 'the next command connects again');
  });

  t.test('a server killed mid-run: pending commands fail, and the next command after the restart reconnects', async (t) => {
    const server = await startRedis();
    t.teardown(() => server.stop());
    const c = client(t, `${server.url}?timeout=20000`);
    t.equal(await c.send(['PING']), 'PONG');
    const pending = reasons([c.send(['BLPOP', 'nothing', '10']), c.send(['PING']), c.pipeline([['PING'], ['PING']])]);
    await sleep(100);
    const killed = Date.now();
    await server.stop('SIGKILL');
    const errors = await pending;
    for (const e of errors) t.match(e.message, /^failed to run .* on redis 127\.0\.0\.1:\d+: connection closed/);
    t.ok(Date.now() - killed < 5000, 'at once, not after the 20 s timeout');
    await t.rejects(c.send(['PING']), /ECONNREFUSED/, 'while it is down');
    await server.start();
    t.equal(await c.send(['PING']), 'PONG', 'after the restart');
  });

  t.test('close(): QUIT after pending replies, idempotent, also never connected or mid-connect', async (t) => {
    const never = new RespClient(locOf(shared.url));
    await never.close();
    await never.close();
    await t.rejects(never.send(['PING']), /the client is closed/);

    const c = new RespClient(locOf(shared.url));
    await c.send(['CLIENT', 'SETNAME', 'resp-close-test']);
    const slow = c.send(['BLPOP', 'nothing-here', '0.2']);
    const first = c.close();
    const second = c.close();
    t.equal(await slow, null, 'a command sent before close() still gets its reply');
    await Promise.all([first, second]);
    t.notMatch(shared.cli('CLIENT', 'LIST'), /resp-close-test/, 'the connection is gone');
    await t.rejects(c.send(['PING']), /^failed to run PING on redis: the client is closed$/);

    const silent = await fakeServer(t, () => null);
    const connecting = new RespClient(locOf(`redis+sentinel://127.0.0.1:${silent.port}/m/0?connectTimeout=20000`));
    const stuck = connecting.send(['PING']);
    await sleep(50);
    const started = Date.now();
    await connecting.close();
    await t.rejects(stuck, /the client is closed/);
    t.ok(Date.now() - started < 5000, 'close() cuts a connection attempt short, not after the 20 s connect timeout');
  });

  t.test('a process using the client exits on its own', async (t) => {
    const dir = t.testdir();
    const script = join(dir, 'use-client.ts');
    writeFileSync(
      script,
      [
        'const [clientUrl, storeUrlModule, url, mode] = process.argv.slice(2);',
        'const { RespClient } = await import(clientUrl!);',
        'const { parseStoreUrl } = await import(storeUrlModule!);',
        'const c = new RespClient(parseStoreUrl(url));',
        "console.log(await c.send(['PING']).catch((e: Error) => e.message));",
        "if (mode === 'close') await c.close();",
        "console.log('done');",
        '',
      ].join('\n'),
    );
    const repo = fileURLToPath(new URL('../..', import.meta.url));
    const run = (url: string, mode: string) =>
      new Promise<{ code: number | null; lines: string[]; exitAfterDone: number }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', script, pathToFileURL(join(repo, 'ipam/resp-client.ts')).href, pathToFileURL(join(repo, 'ipam/store-url.ts')).href, url, mode], {
          cwd: repo,
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        let doneAt = 0;
        const killer = setTimeout(() => child.kill('SIGKILL'), 15000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (!doneAt && out.includes('done\n')) doneAt = Date.now();
        });
        child.on('exit', (code) => {
          clearTimeout(killer);
          resolve({ code, lines: out.split('\n').filter(Boolean), exitAfterDone: doneAt ? Date.now() - doneAt : Infinity });
        });
      });
    const refused = await freePort();
    const pem = makeCerts(dir);
    const tls = await startRedis({ tls: { cert: pem('server.crt'), key: pem('server.key'), ca: pem('ca.crt') } });
    t.teardown(() => tls.stop());
    // long timeouts: a timer or socket that held the process would hold it past the 15 s kill
    const long = 'connectTimeout=20000&timeout=20000';
    const tlsUrl = `${tls.url}?ca=${encodeURIComponent(pem('ca.crt'))}&${long}`;
    for (const [url, mode, first] of [
      [`${shared.url}?${long}`, 'close', 'PONG'],
      [`${shared.url}?${long}`, 'no close', 'PONG'],
      [tlsUrl, 'close', 'PONG'],
      [tlsUrl, 'no close', 'PONG'],
      [`redis://127.0.0.1:${refused}/0?${long}`, 'no close', /ECONNREFUSED/],
    ] as const) {
      const r = await run(url, mode);
      t.equal(r.code, 0, `${mode}: exit code`);
      t.match(r.lines, [first, 'done'], `${mode}: output`);
      t.ok(r.exitAfterDone < 5000, `${mode}, ${url}: exited ${r.exitAfterDone} ms after its work was done`);
    }
  });
}
