// The file store on a disk that fills up, and under a file-size limit: a
// real tmpfs of a few hundred KiB, and writer processes under RLIMIT_FSIZE
// (writes come back short, then EFBIG; Node ignores SIGXFSZ). Every answered
// ADD keeps its address, no address is answered twice, reads go on while
// changes are refused (CNI code 11, naming the file and the cause), and once
// there is room again everything works with no repair.
import t from 'tap';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FileStore } from '../../ipam/file-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { mountTmpfs, skipWithoutTmpfs } from '../helpers/tmpfs.js';

async function createPool(dir: string, opts = {}): Promise<FileStore> {
  const store = new FileStore(dir, opts);
  await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.20.0.0/16', hold: 0 }));
  return store;
}

/** Writes to `file` until the disk is full. */
function fillDisk(file: string): void {
  const fd = openSync(file, 'a');
  const chunk = Buffer.alloc(4096, 0x2e);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

t.test('reads batched with a change the full disk refuses are answered from the disk, without the lost change', async (t) => {
  if (skipWithoutTmpfs(t)) return;
  const mnt = mountTmpfs(t, '256k');
  const dir = join(mnt, 'store');
  const store = await createPool(dir);
  t.teardown(() => store.close());
  fillDisk(join(mnt, 'ballast'));
  // the journal's last page still has room: use it up
  let n = 0;
  for (;;) {
    try {
      await store.allocate('p', { containerId: `c${n}`, ifname: 'eth0', owner: `c${n}` });
      n++;
    } catch {
      break;
    }
  }
  t.ok(n > 0, `${n} allocations filled the journal's last page`);
  // one batch: a change, then reads that ran after it in memory
  const change = store.allocate('p', { containerId: 'lost', ifname: 'eth0', owner: 'lost' });
  const list = store.listAddresses('p');
  const usage = store.usage('p');
  const again = store.allocate('p', { containerId: 'c0', ifname: 'eth0', owner: 'c0' }); // idempotent: writes nothing
  await t.rejects(change, { code: 'STORE_UNAVAILABLE', message: /no space left on device/ }, 'the change is refused');
  t.same((await list).map((x) => x.containerId).sort(), Array.from({ length: n }, (_, i) => `c${i}`).sort(), 'the list is what the disk holds');
  t.equal((await usage).allocated, n, 'and so are the counters');
  t.ok((await again).ip, 'a repeated ADD that changes nothing is answered');
  rmSync(join(mnt, 'ballast'));
  t.ok((await store.allocate('p', { containerId: 'next', ifname: 'eth0', owner: 'next' })).ip, 'with room, changes are made again');
});
