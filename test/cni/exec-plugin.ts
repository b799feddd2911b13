// Executing another project's plugin: its output and its time are bounded,
// for both callers (berth's plugins delegating IPAM, the agent's runtime).
// The plugins here are small shell scripts, stand-ins for external plugins.
import t, { type Test } from 'tap';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniRuntime } from '../../agent/cni-runtime.js';
import { delegateIpam } from '../../cni/delegate.js';
import { CniError } from '../../cni/errors.js';
import { execPlugin, MAX_STDOUT } from '../../cni/exec-plugin.js';
import type { Request } from '../../cni/skel.js';

/** Writes an executable shell script `name` into dir. */
function script(dir: string, name: string, body: string): string {
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** True while process `pid` exists (and is not a zombie). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

async function gone(t: Test, pidFile: string, what: string): Promise<void> {
  const pid = Number(readFileSync(pidFile, 'utf8'));
  const deadline = Date.now() + 5000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.notOk(alive(pid), `${what} (pid ${pid}) is gone`);
}

// floods stdout from a process of its own, which outlives a kill of the script unless its pipe closes;
// each writes its pid before the flood starts, so the kill the flood brings on finds both files
const FLOOD = (dir: string) => `echo $$ > ${dir}/sh.pid
sh -c 'echo $$ > ${dir}/yes.pid; exec yes flooding' &
wait`;

t.test('execPlugin', async (t) => {
  t.test('output, exit code and stdin as given', async (t) => {
    const dir = t.testdir();
    const file = script(dir, 'echo', 'cat; echo "to stderr $CNI_COMMAND" >&2; exit 3');
    const out = await execPlugin(file, 'plugin "echo"', { CNI_COMMAND: 'ADD' }, '{"x":"é"}', { timeoutMs: 10000 });
    t.strictSame(out, { code: 3, stdout: '{"x":"é"}', stderr: 'to stderr ADD\n' });
  });

  t.test('multi-byte characters cut across reads come out whole', async (t) => {
    const dir = t.testdir();
    const text = 'é€😀'.repeat(60000);
    writeFileSync(join(dir, 'big.txt'), text);
    const file = script(dir, 'big', `cat ${dir}/big.txt`);
    t.equal((await execPlugin(file, 'plugin "big"', {}, '', { timeoutMs: 10000 })).stdout, text);
  });

  t.test('a plugin that floods stdout is killed, its own children too, and the call fails', async (t) => {
    const dir = t.testdir();
    const file = script(dir, 'flood', FLOOD(dir));
    const started = Date.now();
    const err = await execPlugin(file, 'plugin "flood"', {}, '', { timeoutMs: 60000 }).catch((e: unknown) => e);
    t.type(err, CniError);
    t.match(err, { code: 5, message: `failed to run plugin "flood": it printed more than ${MAX_STDOUT} bytes on stdout; killed` });
    t.ok(Date.now() - started < 10000, 'at once, not at the timeout');
    await gone(t, join(dir, 'sh.pid'), 'the plugin');
    await gone(t, join(dir, 'yes.pid'), 'the process it started');
  });

  t.test('the cap is a parameter; output up to it is fine', async (t) => {
    const dir = t.testdir();
    const file = script(dir, 'k', "head -c 1000 /dev/zero | tr '\\0' x");
    t.equal((await execPlugin(file, 'plugin "k"', {}, '', { timeoutMs: 10000, maxStdout: 1000 })).stdout.length, 1000);
    await t.rejects(execPlugin(file, 'plugin "k"', {}, '', { timeoutMs: 10000, maxStdout: 999 }), /printed more than 999 bytes on stdout; killed/);
  });

  t.test('stderr is kept up to 64 KiB', async (t) => {
    const dir = t.testdir();
    const file = script(dir, 'noisy', "head -c 300000 /dev/zero | tr '\\0' e >&2; exit 1");
    const out = await execPlugin(file, 'plugin "noisy"', {}, '', { timeoutMs: 10000 });
    t.equal(out.code, 1);
    t.equal(out.stderr.length, 65536);
  });

  t.test('a plugin that does not answer is killed at the timeout', async (t) => {
    const dir = t.testdir();
    const file = script(dir, 'slow', `echo $$ > ${dir}/sh.pid; exec sleep 60`);
    await t.rejects(execPlugin(file, 'plugin "slow"', {}, '', { timeoutMs: 300 }), { code: 5, message: 'failed to run plugin "slow": no answer within 300 ms; killed' });
    await gone(t, join(dir, 'sh.pid'), 'the plugin');
  });

  t.test('a file that cannot run', async (t) => {
    const dir = t.testdir({ 'not-exec': '#!/bin/sh\n' });
    await t.rejects(execPlugin(join(dir, 'not-exec'), 'plugin "not-exec"', {}, '', { timeoutMs: 10000 }), { code: 5, message: /^failed to run plugin "not-exec": spawn .* EACCES$/ });
  });
});

t.test('berth plugins delegating to a flooding IPAM plugin fail the call', async (t) => {
  const dir = t.testdir();
  script(dir, 'flood-ipam', FLOOD(dir));
  const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'berth-bridge', ipam: { type: 'flood-ipam' } });
  const req = { command: 'ADD', containerId: 'c', netns: '', ifname: 'eth0', args: new Map(), path: [dir], config: JSON.parse(stdin), stdin, env: {}, version: '1.0.0' } as unknown as Request;
  await t.rejects(delegateIpam(req, 'flood-ipam', 'ADD'), { code: 5, message: `failed to run IPAM plugin "flood-ipam": it printed more than ${MAX_STDOUT} bytes on stdout; killed` });
  await gone(t, join(dir, 'yes.pid'), 'the process it started');
});

t.test('the agent running a flooding plugin fails the ADD (and undoes it)', async (t) => {
  const dir = t.testdir();
  script(dir, 'flood', `if [ "$CNI_COMMAND" = DEL ]; then echo del >> ${dir}/del.log; exit 0; fi\n${FLOOD(dir)}`);
  const rt = new CniRuntime([dir], false);
  const att = { containerId: 'c1', ifname: 'eth0', netns: '/proc/self/ns/net', args: [] as Array<[string, string]>, capabilityArgs: {} };
  await t.rejects(rt.add({ cniVersion: '1.1.0', name: 'n', plugins: [{ type: 'flood' }], file: 'f' }, att), {
    code: 5,
    message: `failed to run plugin "flood": it printed more than ${MAX_STDOUT} bytes on stdout; killed`,
  });
  t.ok(existsSync(join(dir, 'del.log')), 'the chain was DELeted');
  await gone(t, join(dir, 'yes.pid'), 'the process it started');
  await rt.close();
});
