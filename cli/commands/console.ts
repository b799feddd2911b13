// berth console [--listen ADDR:PORT] [--token-file FILE]: the web console.
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { resolveStoreUrl } from '../../ipam/store-url.js';
import { causeOf, contextOf, reportFailure, type ArgsOf, type GlobalArgs } from '../context.js';
import { once } from '../flags.js';

function consoleBuilder(y: Argv<GlobalArgs>) {
  return y
    .option('listen', {
      type: 'string',
      coerce: once('listen'),
      describe: 'address and port to serve on, ADDR:PORT or [IPv6]:PORT (default 127.0.0.1:8089; put a TLS proxy in front for anything but loopback)',
    })
    .option('token-file', {
      type: 'string',
      coerce: once('token-file'),
      describe: 'file holding the admin token that allows changes (default: $BERTH_CONSOLE_TOKEN; with neither the console is read-only)',
    });
}

async function run(argv: ArgumentsCamelCase<ArgsOf<typeof consoleBuilder>>): Promise<void> {
  const ctx = contextOf(argv);
  try {
    const { runConsole } = await import('../../console/daemon.js');
    await runConsole({
      listen: argv.listen,
      store: resolveStoreUrl(argv.store, ctx.io.env),
      tokenFile: argv.tokenFile,
      env: ctx.io.env,
      warn: (m) => ctx.io.stderr.write(`berth: warning: ${m.replace(/\s*\n\s*/g, ' ')}\n`),
    });
  } catch (err) {
    reportFailure(ctx, `failed to run the console: ${causeOf(err)}`);
  }
}

export const command = 'console';
export const describe = 'Serve the web console: pools, maps, addresses, history and search, live; changes with the admin token';
export const builder = consoleBuilder;
export const handler = run;
