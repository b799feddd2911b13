// npm run bench: every benchmark, each running berth and its reference side by
// side in one run. BENCH_QUICK=1 runs smaller counts; BENCH_ONLY=agent,ovs
// runs only the named ones (ipam, cni, bridge, ovs, agent, lb, migrate, console, dns).
import { benchIpam } from './ipam.js';
import { benchCni } from './cni.js';
import { benchBridge } from './bridge.js';
import { benchMigrate } from './migrate.js';
import { benchOvs } from './ovs.js';
import { benchAgent } from './agent.js';
import { benchLb } from './lb.js';
import { benchConsole } from './console.js';
import { benchDns } from './dns.js';

const quick = process.env.BENCH_QUICK === '1';
const only = new Set((process.env.BENCH_ONLY ?? '').split(',').filter(Boolean));
const started = new Date().toISOString();
console.log(`berth benchmarks, ${started}, node ${process.version}${quick ? ' (quick)' : ''}\n`);
// podman and the agent pass this environment on to the plugin processes they
// start, and these make every Node start-up slower (a CA bundle is ~50 ms):
// the per-call rows run with PATH alone, so the podman rows would not compare
const heavy = ['NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS'].filter((k) => process.env[k]);
if (heavy.length > 0) console.log(`note: ${heavy.join(' and ')} set: every plugin process podman starts pays for it; unset for figures\n`);
const benches: Array<[string, (o: { quick: boolean }) => Promise<string[]>]> = [
  ['ipam', benchIpam],
  ['cni', benchCni],
  ['bridge', benchBridge],
  ['ovs', benchOvs],
  ['agent', benchAgent],
  ['lb', benchLb],
  ['migrate', benchMigrate],
  ['console', benchConsole],
  ['dns', benchDns],
];
for (const [name, bench] of benches) {
  if (only.size > 0 && !only.has(name)) continue;
  for (const line of await bench({ quick })) console.log(line);
  console.log('');
}
process.exit(0);
