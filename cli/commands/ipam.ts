// berth ipam check [POOL] [--repair]
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { checkPool, type Finding } from '../../ipam/check.js';
import type { RegistryFinding, Store } from '../../ipam/model.js';
import { validatePoolName } from '../../ipam/pool-config.js';
import { operate, quote, reportFailure, type ArgsOf, type CliContext, type GlobalArgs } from '../context.js';
import { table, writeJson } from '../output.js';

/** The outcome of checking one pool. */
export interface PoolCheck {
  pool: string;
  /** what the first check found */
  findings: Finding[];
  /** fixes the store applied (--repair) */
  repaired: number;
  /** what is still wrong: the findings, or what a re-check after repair found */
  remaining: Finding[];
}

function checkBuilder(y: Argv<GlobalArgs>) {
  return y
    .positional('pool', { type: 'string', describe: 'the pool to check (default: every pool)' })
    .option('repair', {
      type: 'boolean',
      default: false,
      describe: 'rebuild indexes and counters that disagree with the address records',
    });
}

/**
 * Checks one pool or all, the registry against the pools' own data, and the
 * store's server settings; exits 1 while problems remain or a setting can
 * lose pool data.
 */
async function check(argv: ArgumentsCamelCase<ArgsOf<typeof checkBuilder>>): Promise<void> {
  const what = argv.pool === undefined ? 'check pools' : `check pool ${quote(argv.pool)}`;
  await operate(argv, what, async (open, ctx) => {
    if (argv.pool !== undefined) validatePoolName(argv.pool, 'POOL');
    const store = await open();
    const warnings = await store.serverWarnings();
    const registry = (await store.checkRegistry({ repair: argv.repair })).filter((r) => argv.pool === undefined || r.pool === argv.pool);
    const names = argv.pool !== undefined ? [argv.pool] : (await store.listPools()).map((u) => u.conf.name);
    const results: PoolCheck[] = [];
    for (const name of new Set([...names, ...registry.map((r) => r.pool)].sort())) {
      const found = registry.filter((r) => r.pool === name);
      // a pool whose keys are gone, or that is not in the registry, has no snapshot to check
      const readable = names.includes(name) && !found.some((r) => r.finding.kind === 'keys-missing');
      const own = readable ? await checkOne(store, name, argv.repair, ctx.actor) : { pool: name, findings: [], repaired: 0, remaining: [] };
      results.push(withRegistry(own, found));
    }
    if (argv.json) writeJson(ctx.io.stdout, results);
    else ctx.io.stdout.write(warnings.map((w) => `warning: ${w}\n`).join('') + (results.length === 0 ? 'no pools to check\n' : results.map(describeCheck).join('')));
    reportRemaining(ctx, results, argv.repair, store.location, warnings);
  });
}

/** A pool's check with what the registry check found for it. */
function withRegistry(own: PoolCheck, found: RegistryFinding[]): PoolCheck {
  if (found.length === 0) return own;
  return {
    pool: own.pool,
    findings: [...found.map((r) => r.finding), ...own.findings],
    repaired: own.repaired + found.filter((r) => r.repaired).length,
    remaining: [...found.filter((r) => !r.repaired).map((r) => r.finding), ...own.remaining],
  };
}

async function checkOne(store: Store, pool: string, repair: boolean, actor: string): Promise<PoolCheck> {
  const first = checkPool(await store.snapshot(pool));
  if (!repair || first.fixes.length === 0) {
    return { pool, findings: first.findings, repaired: 0, remaining: first.findings };
  }
  const repaired = await store.applyFixes(pool, first.fixes, actor);
  // Fixes are guarded: one may have been skipped because the pool changed
  // meanwhile, so only a fresh check says what is left.
  const again = checkPool(await store.snapshot(pool));
  return { pool, findings: first.findings, repaired, remaining: again.findings };
}

function describeCheck(r: PoolCheck): string {
  let out = '';
  if (r.repaired > 0) out += `pool ${quote(r.pool)}: repaired ${r.repaired} of ${r.findings.length} problems\n`;
  if (r.remaining.length === 0) return `${out}pool ${quote(r.pool)}: ok\n`;
  out += `pool ${quote(r.pool)}: ${r.remaining.length} ${r.remaining.length === 1 ? 'problem' : 'problems'}\n`;
  out += table(
    ['  KIND', 'IP', 'REPAIRABLE', 'PROBLEM'],
    r.remaining.map((f) => [`  ${f.kind}`, f.ip ?? '', f.repairable ? 'yes' : 'no', f.message]),
  );
  return out;
}

function reportRemaining(ctx: CliContext, results: PoolCheck[], repaired: boolean, location: string, warnings: string[]): void {
  const said: string[] = [];
  const bad = results.filter((r) => r.remaining.length > 0);
  if (bad.length > 0) {
    const total = bad.reduce((n, r) => n + r.remaining.length, 0);
    const pools = bad.map((r) => quote(r.pool)).join(', ');
    const repairable = bad.some((r) => r.remaining.some((f) => f.repairable));
    const hint = !repaired && repairable ? '; run "berth ipam check --repair"' : '';
    said.push(`${total} ${total === 1 ? 'problem remains' : 'problems remain'} in ${bad.length === 1 ? 'pool' : 'pools'} ${pools}${hint}`);
  }
  // every warning on the one error line: --json output keeps its shape, and the line alone says it all
  if (warnings.length > 0) said.push(`store ${location} can lose pool data: ${warnings.join('; ')}`);
  if (said.length > 0) reportFailure(ctx, said.join('; and '));
}

export const command = 'ipam';
export const describe = 'Check the consistency of pool state';

/** Registers the ipam subcommands. */
export function builder(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y
    .command({ command: 'check [pool]', describe: 'Check that indexes and counters agree with the address records', builder: checkBuilder, handler: check })
    .demandCommand(1, 'ipam needs a subcommand: check');
}

/** Never runs: a subcommand is demanded. */
export function handler(): void {}
