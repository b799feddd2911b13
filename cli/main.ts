// The admin CLI. main() takes argv and the process's streams and environment
// and returns the exit code, so tests run it in-process; bin/berth is the
// only place that touches the real process.
import os from 'node:os';
import yargs, { type Argv } from 'yargs';
import { DEFAULT_STORE } from '../ipam/store-url.js';
import * as agent from './commands/agent.js';
import * as consoleCommand from './commands/console.js';
import * as dns from './commands/dns.js';
import * as install from './commands/install.js';
import * as ip from './commands/ip.js';
import * as ipam from './commands/ipam.js';
import * as lb from './commands/lb.js';
import * as pool from './commands/pool.js';
import * as sd from './commands/sd.js';
import { attachmentsCommand, statusCommand } from './commands/status.js';
import { causeOf, reportFailure, USAGE_EXIT, type CliContext, type CliIo } from './context.js';
import { once } from './flags.js';

/** A mistake in the command line itself, as yargs reports it. */
class UsageError extends Error {}

/** A command module; each types its own arguments, which yargs cannot check across modules. */
interface CommandSpec {
  command: string;
  describe: string;
  builder(y: Argv<never>): Argv<unknown>;
  handler(argv: never): unknown;
}

const COMMANDS: CommandSpec[] = [pool, ip, ipam, agent, statusCommand, attachmentsCommand, lb, install, sd, consoleCommand, dns];

/** Runs the CLI on argv (without node and script) and returns the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  const ctx: CliContext = { io, actor: actorOf(io.env), exitCode: 0 };
  let output = '';
  const parser = yargs()
    .scriptName('berth')
    .usage('$0 <command> [options]\n\nFixed IPs for containers from a cluster-wide pool.')
    .option('store', {
      type: 'string',
      global: true,
      coerce: once('store'),
      describe: `where pool state lives: file:///DIR, redis://…, rediss://…, redis+sentinel://… (default: $BERTH_STORE, else ${DEFAULT_STORE})`,
    })
    .option('json', { type: 'boolean', global: true, describe: 'print one JSON document instead of text' });
  for (const c of COMMANDS) parser.command(c.command, c.describe, c.builder as never, c.handler as never);
  parser
    .demandCommand(1, `a command is required: ${COMMANDS.map((c) => c.command).join(', ')}`)
    .strict()
    .help()
    .alias('help', 'h')
    .group(['store', 'json', 'help'], 'Global options:')
    .version(false)
    // Messages must not depend on the caller's LANG, and the env is injected.
    .detectLocale(false)
    .wrap(Math.min(110, terminalWidth(io)))
    .fail((msg, err) => {
      // Throwing stops yargs from going on to run the handler.
      throw new UsageError(msg || (err ? err.message : 'invalid command line'));
    });
  try {
    // The parse callback makes yargs hand back help text instead of printing it.
    await parser.parseAsync(argv, { ctx }, (_err, _argv, out) => {
      output = out;
    });
  } catch (err) {
    if (err instanceof UsageError) reportFailure(ctx, `${causeOf(err)} (see "${helpCommand(argv)}")`, USAGE_EXIT);
    // Anything else is a bug; still one line, no stack.
    else reportFailure(ctx, causeOf(err));
    return ctx.exitCode;
  }
  if (output) io.stdout.write(`${output}\n`);
  return ctx.exitCode;
}

/** Who the pool history says acted. */
function actorOf(env: NodeJS.ProcessEnv): string {
  let user: string;
  try {
    user = os.userInfo().username;
  } catch {
    // A uid without a passwd entry, as in many containers.
    user = env.USER || env.LOGNAME || 'unknown';
  }
  return `cli:${user}@${os.hostname()}`;
}

/** Where to look for help: the command's own help when one was named. */
function helpCommand(argv: string[]): string {
  // Option values (a store URL) can come first, so look for a known name rather than the first word.
  const named = argv.find((a) => COMMANDS.some((c) => c.command === a));
  return named ? `berth ${named} --help` : 'berth --help';
}

function terminalWidth(io: CliIo): number {
  const columns = (io.stdout as { columns?: unknown }).columns;
  return typeof columns === 'number' && columns > 40 ? columns : 100;
}
