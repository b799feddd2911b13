// berth dns [--listen ADDR:PORT] [--zone ZONE] [--ttl SECONDS]: the
// authoritative DNS server for the pools' names (dns/).
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { resolveStoreUrl } from '../../ipam/store-url.js';
import { causeOf, contextOf, reportFailure, type ArgsOf, type GlobalArgs } from '../context.js';
import { once } from '../flags.js';

function dnsBuilder(y: Argv<GlobalArgs>) {
  return y
    .option('listen', { type: 'string', coerce: once('listen'), describe: 'address and port for UDP and TCP, IPV4:PORT or [IPV6]:PORT (default 127.0.0.1:53)' })
    .option('zone', { type: 'string', coerce: once('zone'), describe: 'the zone it is authoritative for: OWNER.POOL.ZONE, _SERVICE._tcp.ZONE (default berth.)' })
    .option('ttl', { type: 'string', coerce: once('ttl'), describe: 'seconds resolvers may keep an answer, a negative one too (default 5)' });
}

async function run(argv: ArgumentsCamelCase<ArgsOf<typeof dnsBuilder>>): Promise<void> {
  const ctx = contextOf(argv);
  try {
    // checked before anything loads, so a bad flag fails at once
    const { dnsSettings } = await import('../../dns/config.js');
    dnsSettings(argv);
    const { runDns } = await import('../../dns/daemon.js');
    await runDns({
      listen: argv.listen,
      zone: argv.zone,
      ttl: argv.ttl,
      store: resolveStoreUrl(argv.store, ctx.io.env),
      warn: (m) => ctx.io.stderr.write(`berth: warning: ${m.replace(/\s*\n\s*/g, ' ')}\n`),
    });
  } catch (err) {
    reportFailure(ctx, `failed to serve DNS: ${causeOf(err)}`);
  }
}

export const command = 'dns';
export const describe = "Serve the pools' names over DNS: OWNER.POOL.ZONE, PTR for their addresses, SRV for load-balancer services";
export const builder = dnsBuilder;
export const handler = run;
