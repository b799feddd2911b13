// A marker password sent through every path that shows a store URL: the CLI
// (errors and output), berth-ipam and berth-bridge (CNI errors, debug log
// lines), and the agent (its log, /v1/status, berth status). Real processes,
// a real redis-server that requires the password; the agent runs without
// Docker (its socket names nothing), which is enough for its start-up line,
// its API and its reconciliations. The marker is three tokens, so a password
// cut at a character that breaks the URL is caught by either half.
import t, { type Test } from 'tap';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentGet } from '../../cli/agent-client.js';
import { BIN, cniEnv, runCni } from '../helpers/cni.js';
import { freePort, skipWithoutRedis, startRedis, type RedisServer } from '../helpers/redis.js';

const [A, B, C] = ['Mk7Q9z', 'Zx4Wv8', 'Pq2Rt5'];
/** The ACL user's password: with an "@", as in issue 18's `u:p@ss@host`. */
const PASSWORD = `${A}@${B}`;

function clean(t: Test, text: string, what: string): void {
  const found = [A, B, C].filter((m) => text.includes(m));
  t.strictSame(found, [], `${what} shows no part of the password${found.length ? `: ${text.slice(0, 2000)}` : ''}`);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function berth(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(join(BIN, 'berth'), args, { env: { PATH: process.env.PATH, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

function secretFile(dir: string, name: string, text: string, mode: number): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

let redis: RedisServer;
let dead: number;
/** Store URLs that each fail in their own way, every one carrying the password. */
const failing = () => ({
  'malformed: "?" and "#" in the password': `redis://u:${A}?${B}#${C}@127.0.0.1:${redis.port}/0`,
  'malformed: "/" in the password': `redis://u:${A}/${B}@127.0.0.1:${redis.port}/0`,
  'malformed: an unescaped "&" in sentinelPassword': `redis+sentinel://127.0.0.1:${dead}/m/0?sentinelPassword=${A}&${B}=1`,
  'malformed: unknown scheme': `redis+typo://u:${A}@${B}@127.0.0.1:${redis.port}/0`,
  unreachable: `redis://u:${PASSWORD}@127.0.0.1:${dead}/0?connectTimeout=500`,
  'unreachable sentinel, sentinelPassword': `redis+sentinel://:${PASSWORD}@127.0.0.1:${dead}/m/0?connectTimeout=500&sentinelPassword=${C}`,
  'wrong password': `redis://u:${A}@${C}@127.0.0.1:${redis.port}/0`,
});

t.before(async () => {
  if (!existsSync(join(BIN, '../dist/cli/main.js'))) throw new Error('dist/ is missing: run "npm run build" first');
});

t.test('secrets', async (t) => {
  if (skipWithoutRedis(t)) return;
  redis = await startRedis({ config: ['user default off', `user u on >${PASSWORD} ~* &* +@all`] });
  t.teardown(() => redis.stop());
  dead = await freePort();
  const good = (prefix: string) => `redis://u:${PASSWORD}@127.0.0.1:${redis.port}/0?prefix=${prefix}&sentinelPassword=${C}`;

  t.test('the CLI: errors for every failing URL, with and without --json, from --store and BERTH_STORE', async (t) => {
    for (const [why, url] of Object.entries(failing())) {
      for (const run of [() => berth(['--store', url, 'pool', 'ls']), () => berth(['pool', 'ls', '--json'], { BERTH_STORE: url })]) {
        const r = await run();
        t.equal(r.code, 1, `${why}: fails: ${r.stderr}`);
        t.match(r.stderr, /^berth: failed to list pools: /);
        clean(t, r.stdout + r.stderr, why);
      }
    }
    const shown = await berth(['--store', failing()['malformed: "?" and "#" in the password'], 'pool', 'ls']);
    t.match(shown.stderr, `"redis://u:***@127.0.0.1:${redis.port}/0" is not a store URL`, 'the user and host stay');
  });

  t.test('the CLI: output and errors with the right password, inline and from a file', async (t) => {
    const dir = t.testdir();
    const url = good('cli');
    const created = await berth(['--store', url, 'pool', 'create', 'web', '--subnet', '10.77.0.0/24']);
    t.equal(created.code, 0, created.stderr);
    for (const args of [['pool', 'ls'], ['pool', 'show', 'web'], ['pool', 'ls', '--json'], ['ip', 'ls', 'web'], ['ipam', 'check'], ['pool', 'show', 'nope']]) {
      const r = await berth(['--store', url, ...args]);
      clean(t, r.stdout + r.stderr, `berth ${args.join(' ')}`);
    }
    const loose = secretFile(dir, 'loose.pass', `${PASSWORD}\n`, 0o644);
    const fromFile = await berth(['--store', `redis://u@127.0.0.1:${redis.port}/0?prefix=cli&passwordFile=${loose}`, 'pool', 'ls']);
    t.equal(fromFile.code, 0, fromFile.stderr);
    t.match(fromFile.stdout, /web/);
    t.equal(fromFile.stderr, `berth: warning: password file "${loose}" can be read by users other than its owner (mode 0644); chmod 0600 it\n`);
    clean(t, fromFile.stdout + fromFile.stderr, 'with a password file');
    const missing = await berth(['--store', `redis://u@127.0.0.1:${redis.port}/0?passwordFile=${dir}/gone.pass`, 'pool', 'ls']);
    t.equal(missing.stderr, `berth: failed to list pools: store.passwordFile: failed to read password file "${dir}/gone.pass": ENOENT: no such file or directory\n`);
  });

  t.test('berth-ipam and berth-bridge: CNI errors and debug log lines', async (t) => {
    const dir = t.testdir();
    const logFile = join(dir, 'plugins.log');
    const conf = (store: string, type = 'berth-ipam') => ({
      cniVersion: '1.0.0',
      name: 'net1',
      type,
      ...(type === 'berth-bridge' ? { bridge: 'brsecret0', log: { file: logFile, level: 'debug' } } : {}),
      ipam: { type: 'berth-ipam', pool: 'web', store, host: 'node-a', log: { file: logFile, level: 'debug' } },
    });
    for (const [why, url] of Object.entries(failing())) {
      const add = await runCni('berth-ipam', cniEnv('ADD', 'c-fail'), conf(url));
      t.equal(add.code, 1, `${why}: ${add.stdout}`);
      t.ok([7, 11].includes(add.json?.code), `${why}: code ${add.json?.code} (7 invalid config, 11 try again later)`);
      clean(t, add.stdout + add.stderr, `berth-ipam ADD, ${why}`);
      const del = await runCni('berth-bridge', cniEnv('DEL', 'c-fail', 'eth0', ''), conf(url, 'berth-bridge'));
      t.not(del.code, 0, `berth-bridge DEL, ${why}: ${del.stdout}`);
      clean(t, del.stdout + del.stderr, `berth-bridge DEL, ${why}`);
    }
    const url = good('cni');
    const created = await berth(['--store', url, 'pool', 'create', 'web', '--subnet', '10.78.0.0/24']);
    t.equal(created.code, 0, created.stderr);
    const add = await runCni('berth-ipam', cniEnv('ADD', 'c1'), conf(url));
    t.equal(add.code, 0, add.stdout);
    const loose = secretFile(dir, 'loose.pass', PASSWORD, 0o644);
    const fromFile = await runCni('berth-ipam', cniEnv('ADD', 'c2'), conf(`redis://u@127.0.0.1:${redis.port}/0?prefix=cni&passwordFile=${loose}`));
    t.equal(fromFile.code, 0, fromFile.stdout);
    clean(t, add.stdout + add.stderr + fromFile.stdout + fromFile.stderr, 'successful ADDs');
    const missing = await runCni('berth-ipam', cniEnv('ADD', 'c3'), conf(`redis://u@127.0.0.1:${redis.port}/0?prefix=cni&passwordFile=${dir}/gone.pass`));
    t.match(missing.json, { code: 7, msg: `store.passwordFile: failed to read password file "${dir}/gone.pass": ENOENT: no such file or directory` });
    const log = readFileSync(logFile, 'utf8');
    t.match(log, /"level":20,.*"msg":"ADD request"/, 'debug lines were written');
    t.match(log, /"msg":"allocated"/);
    t.match(log, `password file \\"${loose}\\" can be read by users other than its owner`, 'the warning is logged');
    clean(t, log, 'the plugins\' log file');
  });

  t.test('the agent: start-up line, log, /v1/status and berth status', async (t) => {
    const dir = t.testdir({ conf: {}, bin: {}, state: {} });
    // broken next to the password, where V8 quotes the text around a syntax error
    writeFileSync(join(dir, 'conf', '10-broken.conflist'), `{"name": "n", "ipam": {"store": redis://:${A}${B}@h/0}}`);
    writeFileSync(join(dir, 'conf', '20-quote.conflist'), `{"name": "n", "ipam": {"store": "redis://:${A}"${B}@h/0"}}`);
    const loose = secretFile(dir, 'loose.pass', `${PASSWORD}\n`, 0o644);
    const runs = {
      inline: { store: good('agent'), shows: `redis://u:***@127.0.0.1:${redis.port}/0?prefix=agent&sentinelPassword=***` },
      'password file': {
        store: `redis://u@127.0.0.1:${redis.port}/0?prefix=agent&passwordFile=${loose}`,
        shows: `redis://u@127.0.0.1:${redis.port}/0?prefix=agent&passwordFile=${loose}`,
      },
    };
    for (const [why, { store, shows }] of Object.entries(runs)) {
      t.test(why, async (t) => {
        // a unix socket path has at most 107 bytes: not under the test dir
        const sockDir = mkdtempSync(join(tmpdir(), 'berth-secrets-'));
        t.teardown(() => rmSync(sockDir, { recursive: true, force: true }));
        const socket = join(sockDir, 'agent.sock');
        const config = join(dir, 'agent.json');
        writeFileSync(
          config,
          JSON.stringify({
            store,
            cniConfDir: join(dir, 'conf'),
            cniBinDir: join(dir, 'bin'),
            dockerSocket: join(dir, 'no-docker.sock'),
            containerdSocket: '',
            socket,
            stateDir: join(dir, 'state'),
            logLevel: 'debug',
            reconcileInterval: 1,
            nice: 0,
          }),
        );
        let log = '';
        const agent: ChildProcess = spawn(join(BIN, 'berth'), ['agent', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
        agent.stdout!.on('data', (c: Buffer) => (log += c.toString()));
        agent.stderr!.on('data', (c: Buffer) => (log += c.toString()));
        const exited = new Promise<number | null>((r) => agent.once('exit', r));
        t.teardown(() => {
          agent.kill('SIGKILL');
        });
        let status: { status: number; body: Record<string, unknown> } | undefined;
        for (let i = 0; i < 200 && !status; i++) {
          if (agent.exitCode !== null) break;
          status = (await agentGet(socket, '/v1/status', 2000).catch(() => undefined)) as typeof status;
          if (!status) await new Promise((r) => setTimeout(r, 50));
        }
        t.equal(status?.status, 200, `/v1/status answers without Docker: ${log.slice(-2000)}`);
        t.equal(status?.body.store, shows);
        t.equal(status?.body.docker, 'disconnected');
        clean(t, JSON.stringify(status?.body), '/v1/status');
        const pools = await agentGet(socket, '/v1/pools');
        t.equal(pools.status, 200, 'the store answers with the password');
        clean(t, JSON.stringify(pools.body), '/v1/pools');
        for (const path of ['/metrics', '/readyz', '/v1/attachments', '/v1/lb']) clean(t, JSON.stringify((await agentGet(socket, path)).body), path);
        for (const args of [['status'], ['status', '--json']]) {
          const r = await berth([...args, '--socket', socket]);
          t.equal(r.code, 0, r.stderr);
          t.match(r.stdout, shows);
          clean(t, r.stdout + r.stderr, `berth ${args.join(' ')}`);
        }
        await new Promise((r) => setTimeout(r, 2500)); // two reconciliations, each failing to reach Docker
        agent.kill('SIGTERM');
        t.equal(await exited, 0, 'stops on SIGTERM');
        const lines = log.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; store?: string; err?: string });
        t.match(lines.find((l) => l.msg === 'berth agent starting'), { store: shows }, 'the start-up line shows the store redacted');
        t.ok(lines.some((l) => l.msg === 'reconciliation failed'), 'it reconciled');
        t.equal(lines.filter((l) => l.msg === 'network config skipped').length, 2, 'each broken config logged once');
        if (why === 'password file') t.ok(lines.some((l) => l.msg.startsWith(`password file "${loose}" can be read by users other than its owner`)), 'the warning is logged');
        clean(t, log, 'the agent\'s log');
      });
    }
  });
});
