// A separate process that allocates from a pool: argv = store URL, pool,
// worker id, count, in flight, and optionally FileStore options as JSON (a
// file:// URL only). Prints one JSON line per acknowledged allocation, so the
// parent knows exactly what was acknowledged.
import { openStore } from '../../ipam/open-store.js';
import { FileStore } from '../../ipam/file-store.js';
import { fileURLToPath } from 'node:url';

const [url, pool, id, countText, inflightText, fileOptions] = process.argv.slice(2);
const count = Number(countText);
const inflight = Number(inflightText);
const store = fileOptions ? new FileStore(fileURLToPath(url!), JSON.parse(fileOptions)) : await openStore(url!);
let next = 0;
let failures = 0;

async function lane(): Promise<void> {
  while (next < count) {
    const i = next++;
    const cid = `w${id}-${i}`;
    try {
      const a = await store.allocate(pool!, { containerId: cid, ifname: 'eth0', owner: cid, actor: `worker-${id}` });
      process.stdout.write(`${JSON.stringify({ cid, ip: a.ip, gen: a.gen })}\n`);
    } catch (err) {
      failures++;
      process.stderr.write(`${JSON.stringify({ cid, code: (err as { code?: string }).code, message: (err as Error).message })}\n`);
    }
  }
}

await Promise.all(Array.from({ length: inflight }, lane));
await store.close();
process.exitCode = failures > 0 ? 3 : 0;
