// The real executable: bin/berth running the compiled dist/ (npm run build).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const BIN = fileURLToPath(new URL('../../bin/berth', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function berth(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(BIN, args, { env: { ...process.env, BERTH_STORE: '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

t.before(() => {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run "npm run build" first`);
});

t.test('--help exits 0 and lists the verbs', async (t) => {
  const r = await berth(['--help']);
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  for (const verb of ['pool', 'ip', 'ipam']) t.match(r.stdout, new RegExp(`^\\s+berth ${verb}\\s`, 'm'), `lists ${verb}`);
  const sub = await berth(['ip', 'ls', '--help']);
  t.equal(sub.code, 0);
  t.match(sub.stdout, /--state/);
});

t.test('a bad CIDR: non-zero exit, one line on stderr, no stack', async (t) => {
  const store = `file://${t.testdir()}`;
  const r = await berth(['pool', 'create', 'web', '--subnet', '10.0.0.5/24', '--store', store]);
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.equal(r.stderr, 'berth: failed to create pool "web": subnet: "10.0.0.5/24" has host bits set; the network is 10.0.0.0/24\n');
  t.equal(r.stderr.split('\n').length, 2, 'exactly one line');
  t.notMatch(r.stderr, /\bat .*:\d+:\d+/, 'no stack');
});

t.test('a usage error: exit 2, one line, no stack', async (t) => {
  const r = await berth(['pool', 'ls', '--bogus']);
  t.equal(r.code, 2);
  t.equal(r.stdout, '');
  t.match(r.stderr, /^berth: Unknown argument: bogus[^\n]*\n$/);
});

t.test('--json output parses, with BERTH_STORE from the environment', async (t) => {
  const env = { BERTH_STORE: `file://${t.testdir()}` };
  const created = await berth(['pool', 'create', 'big', '--subnet', '10.64.0.0/12', '--vlan', '7', '--json'], env);
  t.equal(created.code, 0, created.stderr);
  t.match(JSON.parse(created.stdout), { name: 'big', subnet: '10.64.0.0/12', vlan: 7, gateway: '10.64.0.1' });
  const pools = await berth(['pool', 'ls', '--json'], env);
  t.equal(pools.code, 0);
  t.same(JSON.parse(pools.stdout).map((p: { name: string }) => p.name), ['big']);
  const free = await berth(['ip', 'ls', 'big', '--state', 'free', '--limit', '3', '--json'], env);
  t.equal(free.code, 0);
  t.same(JSON.parse(free.stdout).map((a: { ip: string }) => a.ip), ['10.64.0.2', '10.64.0.3', '10.64.0.4']);
  const check = await berth(['ipam', 'check', '--json'], env);
  t.equal(check.code, 0);
  t.same(JSON.parse(check.stdout), [{ pool: 'big', findings: [], repaired: 0, remaining: [] }]);
});
