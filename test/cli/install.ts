// berth install: plugin links and the systemd unit, into temporary dirs.
import { lstatSync, readFileSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../cli/main.js';
import { BIN } from '../helpers/cni.js';

async function berth(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} });
  return { code, stdout, stderr };
}

t.test('install links the plugins and writes the units pointing at this berth', async (t) => {
  const dir = t.testdir({ bin: {}, units: {} });
  const args = ['install', '--cni-bin-dir', join(dir, 'bin'), '--unit-dir', join(dir, 'units')];
  const first = await berth(args);
  t.equal(first.code, 0, first.stderr);
  for (const p of ['berth-bridge', 'berth-ovs', 'berth-ipam']) {
    t.ok(lstatSync(join(dir, 'bin', p)).isSymbolicLink(), `${p} is a link`);
    t.equal(readlinkSync(join(dir, 'bin', p)), join(BIN, p));
  }
  const unit = readFileSync(join(dir, 'units', 'berth-agent.service'), 'utf8');
  t.match(unit, new RegExp(`^ExecStart=${join(BIN, 'berth').replace(/[.]/g, '\\.')} agent$`, 'm'), 'ExecStart runs this berth');
  t.match(unit, new RegExp(`^Documentation=file://${join(BIN, '..', 'README.md').replace(/[.]/g, '\\.')}$`, 'm'), 'Documentation points at its README');
  t.match(unit, /^Restart=always$/m);
  const dnsUnit = readFileSync(join(dir, 'units', 'berth-dns.service'), 'utf8');
  t.match(dnsUnit, new RegExp(`^ExecStart=${join(BIN, 'berth').replace(/[.]/g, '\\.')} dns \\$BERTH_DNS_ARGS$`, 'm'), "berth dns's unit too, its flags from its environment file");
  t.match(dnsUnit, /^EnvironmentFile=-\/etc\/berth\/dns\.env$/m);
  t.match(dnsUnit, /^Restart=always$/m);
  t.match(first.stdout, /linked/);
  const again = await berth([...args, '--json']);
  t.equal(again.code, 0);
  t.same(JSON.parse(again.stdout).map((s: { action: string }) => s.action), ['unchanged', 'unchanged', 'unchanged', 'unchanged', 'unchanged'], 'idempotent');
  const foreign = join(dir, 'bin', 'berth-ovs');
  await berth(['install', '--cni-bin-dir', join(dir, 'bin'), '--no-unit']);
  // a plugin of the same name that is not ours is not replaced without --force
  unlinkSync(foreign);
  writeFileSync(foreign, 'someone else');
  const refused = await berth(['install', '--cni-bin-dir', join(dir, 'bin'), '--no-unit']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /berth-ovs exists \(\(a file\)\); use --force/);
  t.equal(readFileSync(foreign, 'utf8'), 'someone else', 'left alone');
  t.equal((await berth(['install', '--cni-bin-dir', join(dir, 'bin'), '--no-unit', '--force'])).code, 0);
  t.equal(readlinkSync(foreign), join(BIN, 'berth-ovs'));
  const rel = await berth(['install', '--cni-bin-dir', 'relative']);
  t.equal(rel.code, 1);
  t.match(rel.stderr, /--cni-bin-dir must be an absolute path/);
});

t.test('agent, status and attachments have help; status names the socket when no agent runs', async (t) => {
  const help = await berth(['agent', '--help']);
  t.equal(help.code, 0);
  for (const flag of ['--config', '--cni-conf-dir', '--cni-bin-dir', '--docker-socket', '--socket', '--state-dir', '--store']) t.match(help.stdout, flag);
  const dir = t.testdir();
  const s = await berth(['status', '--socket', join(dir, 'none.sock')]);
  t.equal(s.code, 1);
  t.match(s.stderr, /cannot reach the agent at .*none\.sock: is the agent running\?/);
  const bad = await berth(['agent', '--config', join(dir, 'missing.json')]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /^berth: failed to read the agent config ".*missing\.json": no such file\n$/);
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({ socket: 'relative' }));
  const badField = await berth(['agent', '--config', join(dir, 'bad.json')]);
  t.match(badField.stderr, /^berth: failed to read the agent config ".*bad\.json": socket must be an absolute path/);
});
