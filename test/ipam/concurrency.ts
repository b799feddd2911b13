// Eight processes allocating a thousand addresses each, at once, from one pool:
// no address may be handed out twice, on either store.
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openStore } from '../../ipam/open-store.js';
import { checkPool } from '../../ipam/check.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { freshStoreUrl, PROCESS_STORE_KINDS } from '../helpers/stores.js';

const WORKER = fileURLToPath(new URL('../helpers/alloc-worker.ts', import.meta.url));
const PROCESSES = 8;
const EACH = 1000;

function runWorker(url: string, id: number, inflight: number): Promise<{ code: number; lines: string[]; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', WORKER, url, 'shared', String(id), String(EACH), String(inflight)],
      { maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, lines: stdout.split('\n').filter(Boolean), stderr });
      },
    );
  });
}

for (const kind of PROCESS_STORE_KINDS) {
  t.test(`${kind}: ${PROCESSES} processes x ${EACH} allocations, no duplicate`, async (t) => {
    const url = await freshStoreUrl(t, kind);
    if (!url) return;
    const admin = await openStore(url);
    t.teardown(() => admin.close());
    await admin.createPool(buildPoolConfig({ name: 'shared', subnet: '10.64.0.0/18', hold: 0 }));

    const results = await Promise.all(Array.from({ length: PROCESSES }, (_, id) => runWorker(url, id, kind === 'redis' ? 16 : 4)));
    for (const [id, r] of results.entries()) t.equal(r.code, 0, `worker ${id} exited cleanly ${r.stderr.slice(0, 500)}`);

    const byIp = new Map<string, string>();
    let acked = 0;
    for (const r of results) {
      for (const line of r.lines) {
        const { cid, ip } = JSON.parse(line) as { cid: string; ip: string };
        acked++;
        const prev = byIp.get(ip);
        if (prev !== undefined) t.fail(`${ip} handed to both ${prev} and ${cid}`);
        byIp.set(ip, cid);
      }
    }
    t.equal(acked, PROCESSES * EACH, 'every allocation acknowledged');
    t.equal(byIp.size, PROCESSES * EACH, 'all distinct');
    const listed = await admin.listAddresses('shared');
    t.equal(listed.length, PROCESSES * EACH, 'the store holds exactly the acknowledged allocations');
    t.ok(listed.every((a) => byIp.get(a.ip) === a.containerId), 'each to the container that was told so');
    t.same(checkPool(await admin.snapshot('shared')).findings, [], 'indexes and counters agree');
    t.equal((await admin.usage('shared')).allocated, PROCESSES * EACH);
  });
}
