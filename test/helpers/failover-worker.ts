// A separate process that allocates from a pool until its stdin closes, while
// the test breaks the store: argv = store URL, pool, worker id, lanes,
// 'kept' (one store for the whole run, as the agent keeps one) or 'oneshot'
// (a store per ADD, as each plugin process opens one), and the client
// ('resp' or 'ioredis'). A failed ADD is tried again for the same attachment,
// as a CNI runtime does, before the lane moves on. One JSON line per
// acknowledged allocation {cid, ip, at}, so the parent knows exactly what was
// acknowledged and when; a last line {done, errors, stats}.
import { openStore } from '../../ipam/open-store.js';
import type { Store } from '../../ipam/model.js';

const [url, pool, id, lanesText, mode, client] = process.argv.slice(2) as [string, string, string, string, 'kept' | 'oneshot', 'resp' | 'ioredis'];
const TRIES = 30;
/** a pause after each answered ADD: enough ADDs to cross every moment of a failover, few enough to leave the 2 cores to the servers */
const PACE_MS = 10;
const opts = { redisClient: client };
let stopping = false;
process.stdin.on('data', () => {});
process.stdin.on('end', () => {
  stopping = true;
});
process.stdin.resume();

const errors: Record<string, number> = {};
let next = 0;
const kept: Store | undefined = mode === 'kept' ? await openStore(url, opts) : undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function allocate(cid: string): Promise<string> {
  const store = kept ?? (await openStore(url, opts));
  try {
    return (await store.allocate(pool, { containerId: cid, ifname: 'eth0', owner: cid, actor: `worker-${id}` })).ip;
  } finally {
    if (!kept) await store.close().catch(() => {});
  }
}

async function lane(): Promise<void> {
  while (!stopping) {
    const cid = `w${id}-${next++}`;
    for (let attempt = 0; attempt < TRIES && !stopping; attempt++) {
      try {
        const ip = await allocate(cid);
        process.stdout.write(`${JSON.stringify({ cid, ip, at: Date.now() })}\n`);
        await sleep(PACE_MS);
        break;
      } catch (err) {
        const e = err as { code?: string; details?: { unconfirmed?: boolean } };
        const key = e.details?.unconfirmed ? 'UNCONFIRMED' : (e.code ?? (err as Error).message.slice(0, 80));
        errors[key] = (errors[key] ?? 0) + 1;
        await sleep(20 + attempt * 10);
      }
    }
  }
}

await Promise.all(Array.from({ length: Number(lanesText) }, lane));
const stats = (kept as unknown as { conn?: { stats?: unknown } } | undefined)?.conn?.stats;
process.stdout.write(`${JSON.stringify({ done: true, errors, stats: stats ?? null })}\n`);
await kept?.close().catch(() => {});
process.exit(0);
