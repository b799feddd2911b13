// berth pool create|ls|show|rm
import { writeFileSync } from 'node:fs';
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { buildPoolConfig, MAX_HOLD_SECONDS, validatePoolName, type PoolSpec } from '../../ipam/pool-config.js';
import { operate, quote, type ArgsOf, type GlobalArgs } from '../context.js';
import { integer, once, repeated } from '../flags.js';
import { fields, table, writeJson } from '../output.js';
import { duration } from '../../ipam/views.js';
import { poolView, type PoolView } from '../../ipam/views.js';
import { formatExport, type MigrationFormat } from '../migration.js';

function createBuilder(y: Argv<GlobalArgs>) {
  return y
    .positional('name', { type: 'string', demandOption: true, describe: 'pool name (letters, digits, "_", ".", "-")' })
    .option('subnet', {
      type: 'string',
      demandOption: true,
      coerce: once('subnet'),
      describe: 'the network, as CIDR (10.1.0.0/16, fd00::/64)',
    })
    .option('range', {
      type: 'string',
      coerce: repeated('range'),
      describe: 'assignable addresses, FIRST-LAST, one address or a CIDR; repeat for several (default: the subnet)',
    })
    .option('gateway', { type: 'string', coerce: once('gateway'), describe: 'gateway address (default: the first host)' })
    .option('vlan', {
      type: 'string',
      coerce: integer('vlan', 1, 4094, 'an integer from 1 to 4094'),
      describe: '802.1Q VLAN id, 1-4094',
    })
    .option('route', { type: 'string', coerce: repeated('route'), describe: 'extra route, CIDR or CIDR,GATEWAY; repeatable' })
    .option('hold', {
      type: 'string',
      coerce: integer('hold', 0, MAX_HOLD_SECONDS, `whole seconds from 0 to ${MAX_HOLD_SECONDS}`),
      describe: 'seconds a released address stays reserved for its last owner (default 3600)',
    })
    .option('dns-server', { type: 'string', coerce: repeated('dns-server'), describe: 'DNS server address; repeatable' })
    .option('dns-domain', { type: 'string', coerce: once('dns-domain'), describe: 'DNS domain' })
    .option('dns-search', { type: 'string', coerce: repeated('dns-search'), describe: 'DNS search domain; repeatable' })
    .option('dns-option', { type: 'string', coerce: repeated('dns-option'), describe: 'resolver option; repeatable' })
    .example('$0 pool create web --subnet 10.1.0.0/24 --range 10.1.0.100-10.1.0.199 --vlan 100', '');
}

/** Creates a pool from flags. */
async function create(argv: ArgumentsCamelCase<ArgsOf<typeof createBuilder>>): Promise<void> {
  await operate(argv, `create pool ${quote(argv.name)}`, async (open, ctx) => {
    const spec: PoolSpec = { name: argv.name, subnet: argv.subnet };
    if (argv.range) spec.ranges = argv.range;
    if (argv.gateway !== undefined) spec.gateway = argv.gateway;
    if (argv.vlan !== undefined) spec.vlan = argv.vlan;
    if (argv.route) spec.routes = argv.route;
    if (argv.hold !== undefined) spec.hold = argv.hold;
    const dns: NonNullable<PoolSpec['dns']> = {};
    if (argv.dnsServer) dns.nameservers = argv.dnsServer;
    if (argv.dnsDomain !== undefined) dns.domain = argv.dnsDomain;
    if (argv.dnsSearch) dns.search = argv.dnsSearch;
    if (argv.dnsOption) dns.options = argv.dnsOption;
    if (Object.keys(dns).length > 0) spec.dns = dns;
    const conf = buildPoolConfig(spec);
    const store = await open();
    const view = poolView(await store.createPool(conf, ctx.actor));
    if (argv.json) writeJson(ctx.io.stdout, view);
    else ctx.io.stdout.write(`created pool ${quote(view.name)}: ${view.subnet}, ${view.capacity} assignable addresses\n`);
  });
}

function nameBuilder(y: Argv<GlobalArgs>) {
  return y.positional('name', { type: 'string', demandOption: true, describe: 'pool name' });
}

/** Lists every pool with its usage. */
async function list(argv: ArgumentsCamelCase<GlobalArgs>): Promise<void> {
  await operate(argv, 'list pools', async (open, ctx) => {
    const store = await open();
    const views = (await store.listPools()).map((u) => poolView(u.conf, u));
    if (argv.json) return writeJson(ctx.io.stdout, views);
    if (views.length === 0) {
      ctx.io.stdout.write(`no pools in ${store.location}\n`);
      return;
    }
    ctx.io.stdout.write(
      table(
        ['NAME', 'SUBNET', 'VLAN', 'ALLOCATED', 'RESERVED', 'CAPACITY', 'HOLD'],
        views.map((v) => [
          v.name,
          v.subnet,
          v.vlan === null ? '-' : String(v.vlan),
          String(v.allocated),
          String(v.reserved),
          v.capacity,
          duration(v.hold),
        ]),
      ),
    );
  });
}

/** Shows one pool in full. */
async function show(argv: ArgumentsCamelCase<ArgsOf<typeof nameBuilder>>): Promise<void> {
  await operate(argv, `show pool ${quote(argv.name)}`, async (open, ctx) => {
    validatePoolName(argv.name, 'NAME');
    const store = await open();
    const usage = await store.usage(argv.name);
    const view = poolView(usage.conf, usage);
    if (argv.json) writeJson(ctx.io.stdout, view);
    else ctx.io.stdout.write(describePool(view));
  });
}

function rmBuilder(y: Argv<GlobalArgs>) {
  return nameBuilder(y).option('force', {
    type: 'boolean',
    default: false,
    describe: 'remove even while addresses are allocated (their containers keep them until restarted)',
  });
}

/** Removes a pool; refuses while addresses are allocated unless forced. */
async function remove(argv: ArgumentsCamelCase<ArgsOf<typeof rmBuilder>>): Promise<void> {
  await operate(argv, `remove pool ${quote(argv.name)}`, async (open, ctx) => {
    validatePoolName(argv.name, 'NAME');
    const store = await open();
    const { allocated } = await store.removePool(argv.name, { force: argv.force, actor: ctx.actor });
    if (argv.json) writeJson(ctx.io.stdout, { pool: argv.name, removed: true, allocated });
    else {
      const note = allocated > 0 ? ` (${allocated} addresses were still allocated)` : '';
      ctx.io.stdout.write(`removed pool ${quote(argv.name)}${note}\n`);
    }
  });
}

function exportBuilder(y: Argv<GlobalArgs>) {
  return nameBuilder(y)
    .option('format', { type: 'string', choices: ['csv', 'jsonl'], default: 'csv', coerce: once('format'), describe: 'CSV with a header row, or JSON lines' })
    .option('output', { type: 'string', coerce: once('output'), describe: 'write to FILE (default: stdout)' });
}

/** Writes a pool's allocated and reserved addresses as an import file, with their state, container and host: an audit snapshot. */
async function exportPool(argv: ArgumentsCamelCase<ArgsOf<typeof exportBuilder>>): Promise<void> {
  await operate(argv, `export pool ${quote(argv.name)}`, async (open, ctx) => {
    validatePoolName(argv.name, 'NAME');
    const store = await open();
    const text = formatExport(await store.listAddresses(argv.name), argv.format as MigrationFormat);
    if (argv.output === undefined) ctx.io.stdout.write(text);
    else writeFileSync(argv.output, text, { mode: 0o600 });
  });
}

/** The pool as a block of label: value lines. */
function describePool(v: PoolView): string {
  return fields([
    ['name', v.name],
    ['subnet', v.subnet],
    ['ranges', v.ranges.map((r) => (r.first === r.last ? r.first : `${r.first}-${r.last}`)).join(', ')],
    ['gateway', v.gateway ?? 'none'],
    ['excluded', v.excluded.join(', ') || 'none'],
    ['vlan', v.vlan === null ? 'none' : String(v.vlan)],
    ['routes', v.routes.map((r) => (r.gw ? `${r.dst} via ${r.gw}` : r.dst)).join(', ') || 'none'],
    ['dns servers', v.dns.nameservers?.join(', ')],
    ['dns domain', v.dns.domain],
    ['dns search', v.dns.search?.join(', ')],
    ['dns options', v.dns.options?.join(', ')],
    ['hold', v.hold === 0 ? 'none' : `${duration(v.hold)} (${v.hold}s)`],
    ['allocated', String(v.allocated)],
    ['reserved', String(v.reserved)],
    ['free', v.free],
    ['capacity', v.capacity],
    ['created', v.created],
  ]);
}

export const command = 'pool';
export const describe = 'Create, list, show and remove IP pools';

/** Registers the pool subcommands. */
export function builder(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y
    .command({ command: 'create <name>', describe: 'Create a pool', builder: createBuilder, handler: create })
    .command({ command: 'ls', describe: 'List pools with their usage', handler: list })
    .command({ command: 'show <name>', describe: 'Show a pool: ranges, gateway, routes, DNS, usage', builder: nameBuilder, handler: show })
    .command({ command: 'rm <name>', describe: 'Remove a pool', builder: rmBuilder, handler: remove })
    .command({ command: 'export <name>', describe: "Write a pool's allocated and reserved addresses (ip, owner, note, state, container, host) as CSV or JSON lines", builder: exportBuilder, handler: exportPool })
    .demandCommand(1, 'pool needs a subcommand: create, ls, show, rm or export');
}

/** Never runs: a subcommand is demanded. */
export function handler(): void {}
