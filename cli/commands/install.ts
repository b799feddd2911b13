// berth install: links the CNI plugins into a CNI bin dir and puts the
// systemd units (the agent's, berth dns's) in place, pointing at this berth.
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { findUp } from '../../native/index.js';
import { causeOf, contextOf, reportFailure, type ArgsOf, type GlobalArgs } from '../context.js';
import { once } from '../flags.js';
import { table, writeJson } from '../output.js';

export const PLUGINS = ['berth-bridge', 'berth-ovs', 'berth-ipam'];
/** The units in deploy/, each installed with ExecStart pointing at this berth. */
export const UNITS = ['berth-agent.service', 'berth-dns.service'];
/** The repository root: above the sources (cli/commands) or the build (dist/cli/commands). */
const ROOT = dirname(dirname(findUp(dirname(fileURLToPath(import.meta.url)), 'deploy/berth-agent.service') ?? resolve('deploy/x')));

function installBuilder(y: Argv<GlobalArgs>) {
  return y
    .option('cni-bin-dir', { type: 'string', default: '/opt/cni/bin', coerce: once('cni-bin-dir'), describe: 'where container runtimes look for CNI plugins' })
    .option('unit-dir', { type: 'string', default: '/etc/systemd/system', coerce: once('unit-dir'), describe: 'where the systemd units go (berth-agent.service, berth-dns.service)' })
    .option('unit', { type: 'boolean', default: true, describe: 'install the systemd units too (--no-unit: the plugins only)' })
    .option('force', { type: 'boolean', default: false, describe: 'replace plugins of the same name that are not berth links' });
}

interface Step {
  path: string;
  action: 'linked' | 'unchanged' | 'replaced' | 'written';
  target?: string;
}

function link(target: string, path: string, force: boolean): Step {
  let existing: string | undefined;
  try {
    const st = lstatSync(path);
    existing = st.isSymbolicLink() ? readlinkSync(path) : '(a file)';
  } catch {
    existing = undefined;
  }
  if (existing === target) return { path, action: 'unchanged', target };
  if (existing !== undefined && !force) throw new Error(`${path} exists (${existing}); use --force to replace it`);
  // a new link renamed over the old one: a runtime never sees the plugin missing
  const tmp = `${path}.berth-tmp`;
  if (existsSync(tmp)) unlinkSync(tmp);
  symlinkSync(target, tmp);
  renameSync(tmp, path);
  return { path, action: existing === undefined ? 'linked' : 'replaced', target };
}

async function install(argv: ArgumentsCamelCase<ArgsOf<typeof installBuilder>>): Promise<void> {
  const ctx = contextOf(argv);
  try {
    for (const [flag, dir] of [['cni-bin-dir', argv.cniBinDir], ['unit-dir', argv.unitDir]] as const) {
      if (!dir.startsWith('/')) throw new Error(`--${flag} must be an absolute path, got "${dir}"`);
    }
    const steps: Step[] = [];
    mkdirSync(argv.cniBinDir, { recursive: true, mode: 0o755 });
    for (const p of PLUGINS) {
      const target = join(ROOT, 'bin', p);
      if (!existsSync(target)) throw new Error(`${target} is missing: run the install from a built berth`);
      steps.push(link(target, join(argv.cniBinDir, p), argv.force));
    }
    for (const name of argv.unit ? UNITS : []) {
      const unit = readFileSync(join(ROOT, 'deploy', name), 'utf8').replace(/^ExecStart=\S+/m, `ExecStart=${join(ROOT, 'bin', 'berth')}`)
        .replace(/^Documentation=.*$/m, `Documentation=file://${join(ROOT, 'README.md')}`);
      const path = join(argv.unitDir, name);
      const same = existsSync(path) && readFileSync(path, 'utf8') === unit;
      if (!same) {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(`${path}.tmp`, unit, { mode: 0o644 });
        renameSync(`${path}.tmp`, path);
      }
      steps.push({ path, action: same ? 'unchanged' : 'written' });
    }
    if (argv.json) return writeJson(ctx.io.stdout, steps);
    ctx.io.stdout.write(table(null, steps.map((s) => [s.action, s.path, s.target ? `-> ${s.target}` : ''])));
    if (argv.unit) ctx.io.stdout.write('next: systemctl daemon-reload && systemctl enable --now berth-agent (and berth-dns, to serve the names)\n');
  } catch (err) {
    reportFailure(ctx, `failed to install: ${causeOf(err)}`);
  }
}

export const command = 'install';
export const describe = 'Link the CNI plugins into a CNI bin dir and install the systemd units (agent, dns)';
export const builder = installBuilder;
export const handler = install;
