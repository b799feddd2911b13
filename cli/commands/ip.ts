// berth ip ls|show|reserve|unreserve|release|history
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { formatIp, parseIp } from '../../core/address.js';
import { freeAddresses } from '../../ipam/free-list.js';
import type { AddressInfo } from '../../ipam/model.js';
import { validatePoolName } from '../../ipam/pool-config.js';
import { actionSubject, applyAction } from '../../ipam/actions.js';
import { operate, quote, type ArgsOf, type GlobalArgs } from '../context.js';
import { addressState, integer, once } from '../flags.js';
import { fields, table, writeJson } from '../output.js';
import { addressView, historyView, type AddressView } from '../../ipam/views.js';
import { formatOf, parseImport, planImport, type Conflict, type MigrationFormat } from '../migration.js';

/** Free addresses listed when --limit is not given: a pool may hold millions. */
export const DEFAULT_FREE_LIMIT = 256;

const limitFlag = (what: string) =>
  ({
    type: 'string',
    coerce: integer('limit', 1, Number.MAX_SAFE_INTEGER, 'a positive integer'),
    describe: what,
  }) as const;

function poolBuilder(y: Argv<GlobalArgs>) {
  return y.positional('pool', { type: 'string', demandOption: true, describe: 'pool name' });
}

function addressBuilder(y: Argv<GlobalArgs>) {
  return poolBuilder(y).positional('ip', { type: 'string', demandOption: true, describe: 'address, as text' });
}

function lsBuilder(y: Argv<GlobalArgs>) {
  return poolBuilder(y)
    .option('state', {
      type: 'string',
      coerce: addressState,
      describe: 'list addresses in this state: free, allocated or reserved (default: allocated and reserved)',
    })
    .option('limit', limitFlag(`list at most N addresses (default ${DEFAULT_FREE_LIMIT} with --state free, else all)`));
}

/** Lists a pool's addresses: the non-free ones, or one state; free ones are derived from the ranges. */
async function list(argv: ArgumentsCamelCase<ArgsOf<typeof lsBuilder>>): Promise<void> {
  await operate(argv, `list addresses of pool ${quote(argv.pool)}`, async (open, ctx) => {
    validatePoolName(argv.pool, 'POOL');
    const store = await open();
    let views: AddressView[];
    let cut = false;
    if (argv.state === 'free') {
      const conf = await store.getPool(argv.pool);
      // An ended hold not yet swept still has a record, but it is free.
      const taken = new Set((await store.listAddresses(argv.pool)).filter((a) => a.state !== 'free').map((a) => a.ip));
      const limit = argv.limit ?? DEFAULT_FREE_LIMIT;
      views = [];
      for (const hex of freeAddresses(conf, taken)) {
        if (views.length === limit) {
          cut = true;
          break;
        }
        views.push({ pool: argv.pool, ip: formatIp(hex), state: 'free' });
      }
    } else {
      const wanted = (a: AddressInfo): boolean => (argv.state ? a.state === argv.state : a.state !== 'free');
      const all = (await store.listAddresses(argv.pool)).filter(wanted);
      cut = argv.limit !== undefined && all.length > argv.limit;
      views = all.slice(0, argv.limit).map(addressView);
    }
    if (argv.json) return writeJson(ctx.io.stdout, views);
    if (views.length === 0) {
      ctx.io.stdout.write(`no ${argv.state ?? 'allocated or reserved'} addresses in pool ${quote(argv.pool)}\n`);
      return;
    }
    ctx.io.stdout.write(
      argv.state === 'free'
        ? table(['IP', 'STATE'], views.map((v) => [v.ip, v.state]))
        : table(
            ['IP', 'STATE', 'OWNER', 'CONTAINER', 'IFNAME', 'SINCE', 'UNTIL', 'NOTE'],
            views.map((v) => [v.ip, v.state, v.owner ?? '-', v.containerId ?? '-', v.ifname ?? '-', v.since ?? '-', v.until ?? '-', v.note ?? '']),
          ),
    );
    if (cut) ctx.io.stdout.write(`(list cut at ${views.length} addresses; use --limit N to see more)\n`);
  });
}

/** Shows one address: state, owner, attachment, hold. */
async function show(argv: ArgumentsCamelCase<ArgsOf<typeof addressBuilder>>): Promise<void> {
  await operate(argv, `show address ${quote(argv.ip)} in pool ${quote(argv.pool)}`, async (open, ctx) => {
    const hex = parseTarget(argv);
    const store = await open();
    const view = addressView(await store.getAddress(argv.pool, hex));
    if (argv.json) writeJson(ctx.io.stdout, view);
    else ctx.io.stdout.write(describeAddress(view));
  });
}

function reserveBuilder(y: Argv<GlobalArgs>) {
  return addressBuilder(y)
    .option('owner', { type: 'string', coerce: once('owner'), describe: 'hand the address only to this owner key' })
    .option('note', { type: 'string', coerce: once('note'), describe: 'why it is reserved' });
}

/** Reserves an address, optionally for an owner; for its own owner an allocated address is pinned. */
async function reserve(argv: ArgumentsCamelCase<ArgsOf<typeof reserveBuilder>>): Promise<void> {
  await operate(argv, actionSubject('reserve', argv.ip, argv.pool), async (open, ctx) => {
    const hex = parseTarget(argv);
    const view = addressView(await applyAction(await open(), 'reserve', argv.pool, hex, { actor: ctx.actor, owner: argv.owner, note: argv.note }));
    if (argv.json) writeJson(ctx.io.stdout, view);
    else {
      const what = view.state === 'allocated' ? 'pinned' : 'reserved';
      ctx.io.stdout.write(`${what} ${view.ip} in pool ${quote(view.pool)}${view.owner !== undefined ? ` for ${view.owner}` : ''}\n`);
    }
  });
}

/** Ends a reservation or a hold, or unpins an allocated address. */
async function unreserve(argv: ArgumentsCamelCase<ArgsOf<typeof addressBuilder>>): Promise<void> {
  await operate(argv, actionSubject('unreserve', argv.ip, argv.pool), async (open, ctx) => {
    const hex = parseTarget(argv);
    const view = addressView(await applyAction(await open(), 'unreserve', argv.pool, hex, { actor: ctx.actor }));
    if (argv.json) writeJson(ctx.io.stdout, view);
    else ctx.io.stdout.write(`unreserved ${view.ip} in pool ${quote(view.pool)}: now ${view.state}\n`);
  });
}

/** Releases an allocated address as if its container had gone: it is held for its owner for the pool's hold time. */
async function release(argv: ArgumentsCamelCase<ArgsOf<typeof addressBuilder>>): Promise<void> {
  await operate(argv, actionSubject('release', argv.ip, argv.pool), async (open, ctx) => {
    const hex = parseTarget(argv);
    const view = addressView(await applyAction(await open(), 'release', argv.pool, hex, { actor: ctx.actor }));
    if (argv.json) return writeJson(ctx.io.stdout, view);
    let now = `now ${view.state}`;
    if (view.state === 'reserved' && view.owner !== undefined) now += ` for ${view.owner}`;
    if (view.until !== undefined) now += ` until ${view.until}`;
    ctx.io.stdout.write(`released ${view.ip} in pool ${quote(view.pool)}: ${now}\n`);
  });
}

function importBuilder(y: Argv<GlobalArgs>) {
  return poolBuilder(y)
    .positional('file', { type: 'string', demandOption: true, describe: 'CSV (header ip,owner,note) or JSON lines ({"ip", "owner", "note"}); "-" for stdin' })
    .option('format', { type: 'string', choices: ['csv', 'jsonl'], coerce: once('format'), describe: 'the file format (default: by its name, else by its first character)' })
    .option('skip-conflicts', { type: 'boolean', default: false, describe: 'reserve the rows that can be, and list the others (default: apply nothing unless every row can be)' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'only list what would be reserved and the conflicts' });
}

/** Reserves in flight at once: enough to fill a Redis connection's pipeline and a file store's batch, bounded in memory. */
const IMPORT_PARALLEL = 64;

/**
 * Reserves each row of a file (migration.ts): planned first against the
 * pool as it is, and applied only when every row can be (or with
 * --skip-conflicts, the rows that can). The history names the file.
 */
async function importRows(argv: ArgumentsCamelCase<ArgsOf<typeof importBuilder>>): Promise<void> {
  await operate(argv, `import ${quote(argv.file)} into pool ${quote(argv.pool)}`, async (open, ctx) => {
    validatePoolName(argv.pool, 'POOL');
    const text = argv.file === '-' ? readFileSync(0, 'utf8') : readFileSync(argv.file, 'utf8');
    const rows = parseImport(text, (argv.format as MigrationFormat | undefined) ?? formatOf(argv.file, text));
    const store = await open();
    const pool = await store.getPool(argv.pool);
    const plan = planImport(pool, rows, await store.listAddresses(argv.pool));
    const refused = plan.conflicts.length > 0 && !argv.skipConflicts;
    const report = (applied: number, failed: Conflict[]) => {
      const all = [...plan.conflicts, ...failed].sort((a, b) => a.line - b.line);
      if (argv.json) return writeJson(ctx.io.stdout, { pool: argv.pool, file: argv.file, rows: rows.length, reserved: applied, unchanged: plan.unchanged.length, dryRun: argv.dryRun, conflicts: all });
      if (all.length > 0) ctx.io.stdout.write(table(['LINE', 'IP', 'CONFLICT'], all.map((c) => [String(c.line), c.ip, c.why])));
      const verb = argv.dryRun ? 'would reserve' : 'reserved';
      ctx.io.stdout.write(`${verb} ${applied} of ${rows.length} rows in pool ${quote(argv.pool)}; ${plan.unchanged.length} already so; ${all.length} conflict${all.length === 1 ? '' : 's'}\n`);
    };
    if (argv.dryRun || refused) {
      report(argv.dryRun && !refused ? plan.apply.length : 0, []);
      if (refused) throw new Error(`${plan.conflicts.length} of ${rows.length} rows conflict and nothing was reserved (fix them, or --skip-conflicts to reserve the others)`);
      return;
    }
    const actor = `${ctx.actor} import ${basename(argv.file)}`.slice(0, 253);
    const failed: Conflict[] = [];
    const progress = (ctx.io.stderr as { isTTY?: boolean }).isTTY ? ctx.io.stderr : undefined;
    let done = 0;
    let next = 0;
    const worker = async () => {
      while (next < plan.apply.length) {
        const r = plan.apply[next++]!;
        try {
          await store.reserve(argv.pool, r.hex, { actor, ...(r.owner !== undefined ? { owner: r.owner } : {}), ...(r.note !== undefined ? { note: r.note } : {}) });
        } catch (err) {
          // taken since the plan was made: reported with the conflicts
          failed.push({ line: r.line, ip: r.ip, why: (err as Error).message });
        }
        done++;
        if (progress && (done % 100 === 0 || done === plan.apply.length)) {
          const width = 30;
          const filled = Math.round((done / plan.apply.length) * width);
          progress.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done}/${plan.apply.length}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(IMPORT_PARALLEL, plan.apply.length) }, worker));
    if (progress && plan.apply.length > 0) progress.write('\n');
    report(plan.apply.length - failed.length, failed);
    if (failed.length > 0) throw new Error(`${failed.length} rows could not be reserved (listed above); the other ${plan.apply.length - failed.length} were`);
  });
}

function historyBuilder(y: Argv<GlobalArgs>) {
  return poolBuilder(y)
    .positional('ip', { type: 'string', describe: 'only the events of this address' })
    .option('limit', limitFlag('show at most the N newest events'));
}

/** Shows a pool's (or one address's) history, newest first. */
async function history(argv: ArgumentsCamelCase<ArgsOf<typeof historyBuilder>>): Promise<void> {
  const subject = argv.ip === undefined ? `pool ${quote(argv.pool)}` : `address ${quote(argv.ip)} in pool ${quote(argv.pool)}`;
  await operate(argv, `read the history of ${subject}`, async (open, ctx) => {
    validatePoolName(argv.pool, 'POOL');
    const opts: { ip?: string; limit?: number } = {};
    if (argv.ip !== undefined) opts.ip = parseIp(argv.ip, 'IP').hex;
    if (argv.limit !== undefined) opts.limit = argv.limit;
    const store = await open();
    const views = (await store.history(argv.pool, opts)).map(historyView);
    if (argv.json) return writeJson(ctx.io.stdout, views);
    if (views.length === 0) {
      ctx.io.stdout.write(`no history for ${subject}\n`);
      return;
    }
    ctx.io.stdout.write(
      table(
        ['TIME', 'EVENT', 'IP', 'OWNER', 'CONTAINER', 'IFNAME', 'GEN', 'ACTOR', 'NOTE'],
        views.map((v) => [
          v.at,
          v.event,
          v.ip,
          v.owner ?? '-',
          v.containerId ?? '-',
          v.ifname ?? '-',
          v.gen === undefined ? '-' : String(v.gen),
          v.actor ?? '-',
          v.note ?? '',
        ]),
      ),
    );
  });
}

/** Validates the POOL and IP positionals; returns the address as hex. */
function parseTarget(argv: { pool: string; ip: string }): string {
  validatePoolName(argv.pool, 'POOL');
  return parseIp(argv.ip, 'IP').hex;
}

function describeAddress(v: AddressView): string {
  return fields([
    ['pool', v.pool],
    ['ip', v.ip],
    ['state', v.state],
    ['owner', v.owner],
    ['container', v.containerId],
    ['ifname', v.ifname],
    ['generation', v.gen === undefined ? undefined : String(v.gen)],
    ['since', v.since],
    ['until', v.until],
    ['pinned', v.pinned ? 'yes' : undefined],
    ['note', v.note],
  ]);
}

export const command = 'ip';
export const describe = 'List, show, reserve and release addresses of a pool';

/** Registers the ip subcommands. */
export function builder(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y
    .command({ command: 'ls <pool>', describe: "List a pool's addresses", builder: lsBuilder, handler: list })
    .command({ command: 'show <pool> <ip>', describe: 'Show one address', builder: addressBuilder, handler: show })
    .command({ command: 'reserve <pool> <ip>', describe: 'Reserve an address, optionally for an owner', builder: reserveBuilder, handler: reserve })
    .command({ command: 'unreserve <pool> <ip>', describe: 'End a reservation or hold; unpin an allocated address', builder: addressBuilder, handler: unreserve })
    .command({ command: 'release <pool> <ip>', describe: 'Release an allocated address (held for its owner)', builder: addressBuilder, handler: release })
    .command({ command: 'import <pool> <file>', describe: 'Reserve the addresses of a CSV or JSON-lines file (ip, owner, note): all or nothing', builder: importBuilder, handler: importRows })
    .command({ command: 'history <pool> [ip]', describe: 'Show the history of a pool or an address, newest first', builder: historyBuilder, handler: history })
    .demandCommand(1, 'ip needs a subcommand: ls, show, reserve, unreserve, release, import or history');
}

/** Never runs: a subcommand is demanded. */
export function handler(): void {}
