// npm run bench: every benchmark, each running berth and its reference side by
// side in one run. BENCH_QUICK=1 runs smaller counts.
import { benchIpam } from './ipam.js';
import { benchCni } from './cni.js';
import { benchBridge } from './bridge.js';
import { benchOvs } from './ovs.js';

const quick = process.env.BENCH_QUICK === '1';
const started = new Date().toISOString();
console.log(`berth benchmarks, ${started}, node ${process.version}${quick ? ' (quick)' : ''}\n`);
for (const line of await benchIpam({ quick })) console.log(line);
console.log('');
for (const line of await benchCni({ quick })) console.log(line);
console.log('');
for (const line of await benchBridge({ quick })) console.log(line);
console.log('');
for (const line of await benchOvs({ quick })) console.log(line);
process.exit(0);
