// berth sd: Prometheus HTTP service discovery of every labelled container in
// the cluster, read from the store (sd/server.ts).
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { parseListen } from '../../agent/config.js';
import { openStore } from '../../ipam/open-store.js';
import { redact, resolveStoreUrl } from '../../ipam/store-url.js';
import { causeOf, contextOf, reportFailure, type ArgsOf, type GlobalArgs } from '../context.js';
import { once } from '../flags.js';
import { untilStopSignal } from '../../core/signals.js';

export const DEFAULT_SD_LISTEN = '127.0.0.1:9109';

function sdBuilder(y: Argv<GlobalArgs>) {
  return y.option('listen', { type: 'string', coerce: once('listen'), describe: `where to serve /v1/sd (default ${DEFAULT_SD_LISTEN})` });
}

async function run(argv: ArgumentsCamelCase<ArgsOf<typeof sdBuilder>>): Promise<void> {
  const ctx = contextOf(argv);
  try {
    const at = parseListen(argv.listen ?? DEFAULT_SD_LISTEN, '--listen');
    const url = resolveStoreUrl(argv.store, ctx.io.env);
    const store = await openStore(url, { redisClient: 'ioredis', warn: (m) => ctx.io.stderr.write(`berth: warning: ${m}\n`) });
    const { listenSd } = await import('../../sd/server.js');
    const server = await listenSd(store, at);
    ctx.io.stderr.write(`berth sd: serving /v1/sd from ${redact(url)} at http://${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}\n`);
    await untilStopSignal();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await store.close();
  } catch (err) {
    reportFailure(ctx, `failed to serve service discovery: ${causeOf(err)}`);
  }
}

export const command = 'sd';
export const describe = 'Serve Prometheus service discovery of every labelled container in the cluster, from the store';
export const builder = sdBuilder;
export const handler = run;
