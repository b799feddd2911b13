// The embedded file store where the disk is the subject: a process killed
// mid-run, a torn journal line, compaction, a crash inside compaction, a lock
// held too long, and a journal it cannot trust.
import t from 'tap';
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, copyFileSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compactionDue, FileStore, nextCompactionMark } from '../../ipam/file-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { checkPool } from '../../ipam/check.js';
import { native } from '../../native/index.js';

const WORKER = fileURLToPath(new URL('../helpers/alloc-worker.ts', import.meta.url));

async function withPool(dir: string, opts = {}): Promise<FileStore> {
  const store = new FileStore(dir, opts);
  await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.20.0.0/16', hold: 0 }));
  return store;
}

t.test('a process killed with SIGKILL mid-run loses nothing it acknowledged', async (t) => {
  const dir = t.testdir();
  const admin = await withPool(dir);
  t.teardown(() => admin.close());
  const acked = new Map<string, string>();
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, `file://${dir}`, 'p', 'k', '100000', '8'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let buffer = '';
  await new Promise<void>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop()!;
      for (const line of lines) {
        const { cid, ip } = JSON.parse(line) as { cid: string; ip: string };
        acked.set(cid, ip);
      }
      if (acked.size >= 500 && child.exitCode === null) child.kill('SIGKILL');
    });
    child.on('exit', () => resolve());
  });
  t.ok(acked.size >= 500, `${acked.size} allocations were acknowledged before the kill`);
  const store = new FileStore(dir);
  t.teardown(() => store.close());
  const listed = new Map((await store.listAddresses('p')).map((a) => [a.containerId, a.ip]));
  let lost = 0;
  for (const [cid, ip] of acked) if (listed.get(cid) !== ip) lost++;
  t.equal(lost, 0, 'every acknowledged allocation is on disk');
  t.same(checkPool(await store.snapshot('p')).findings, [], 'and the store is consistent');
  const next = await store.allocate('p', { containerId: 'after', ifname: 'eth0', owner: 'after' });
  t.notOk([...listed.values()].includes(next.ip), 'a new allocation gets a new address');
});

t.test('a torn last journal line is ignored, then cut off by the next writer', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  const a = await store.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o' });
  await store.close();
  appendFileSync(join(dir, 'journal.log'), '{"t":"put","pool":"p","a":{"0a14');
  const reader = new FileStore(dir);
  t.teardown(() => reader.close());
  t.equal((await reader.getAddress('p', a.ip)).containerId, 'c1', 'reads past the torn line');
  const b = await reader.allocate('p', { containerId: 'c2', ifname: 'eth0', owner: 'o2' });
  const journal = readFileSync(join(dir, 'journal.log'), 'utf8');
  t.ok(journal.endsWith('\n'), 'the journal ends on a whole line');
  t.notMatch(journal, /"a":\{"0a14\{/, 'the torn bytes are gone');
  t.ok(journal.split('\n').filter(Boolean).every((l) => JSON.parse(l)), 'every line parses');
  const fresh = new FileStore(dir);
  t.teardown(() => fresh.close());
  t.equal((await fresh.getAddress('p', b.ip)).containerId, 'c2');
});

t.test('compaction: the snapshot replaces the journal; a process holding older state catches up', async (t) => {
  const dir = t.testdir();
  const writer = await withPool(dir, { compactBytes: 4096 });
  const reader = new FileStore(dir);
  t.teardown(() => Promise.all([writer.close(), reader.close()]));
  t.equal((await reader.usage('p')).allocated, 0, 'the reader has loaded the state once');
  for (let i = 0; i < 200; i++) await writer.allocate('p', { containerId: `c${i}`, ifname: 'eth0', owner: `o${i}` });
  for (let i = 0; i < 200; i += 2) await writer.release('p', { containerId: `c${i}`, ifname: 'eth0' });
  const snap = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as { epoch: number };
  t.ok(snap.epoch > 0, `compacted (epoch ${snap.epoch})`);
  t.ok(readFileSync(join(dir, 'journal.log')).length < 8192, 'the journal was started anew');
  const u = await reader.usage('p');
  t.equal(u.allocated, 100, 'the reader sees every change across compactions');
  t.same(checkPool(await reader.snapshot('p')).findings, []);
});

t.test('by default the journal never grows past the snapshot (at least 64 KiB): a plugin call replays no more than that', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  t.teardown(() => store.close());
  const sizes = () => ({
    journal: readFileSync(join(dir, 'journal.log')).length,
    snapshot: (() => {
      try {
        return readFileSync(join(dir, 'snapshot.json')).length;
      } catch {
        return 0;
      }
    })(),
  });
  let biggest = 0;
  const epochs = new Set<number>();
  // a standing population, then churn: each released address stays in the snapshot (its owner is sticky)
  for (let i = 0; i < 2500; i++) {
    await store.allocate('p', { containerId: `c${i}`, ifname: 'eth0', owner: `o${i}` });
    if (i >= 300) await store.release('p', { containerId: `c${i - 300}`, ifname: 'eth0' });
    const s = sizes();
    biggest = Math.max(biggest, s.journal - Math.max(64 * 1024, s.snapshot));
    if (s.snapshot) epochs.add((JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as { epoch: number }).epoch);
  }
  const end = sizes();
  t.ok(end.snapshot > 64 * 1024, `the snapshot outgrew the 64 KiB floor (${end.snapshot} bytes)`);
  t.ok(epochs.size >= 2, `compacted more than once (epochs ${[...epochs].join(', ')})`);
  t.ok(biggest < 1024, `the journal never exceeded its limit by more than one write (by ${biggest} bytes at most)`);
  const fresh = new FileStore(dir);
  t.teardown(() => fresh.close());
  t.equal((await fresh.usage('p')).allocated, 300, 'a new process reads snapshot and journal back whole');
});

t.test('a crash between the two renames of a compaction: the stale journal is not replayed', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  for (let i = 0; i < 10; i++) await store.allocate('p', { containerId: `c${i}`, ifname: 'eth0', owner: `o${i}` });
  await store.close();
  copyFileSync(join(dir, 'journal.log'), join(dir, 'journal.old'));
  // one more allocation, and a compaction right after it
  const compacting = new FileStore(dir, { compactBytes: 1 });
  const last = await compacting.allocate('p', { containerId: 'c10', ifname: 'eth0', owner: 'o10' });
  await compacting.close();
  t.equal((JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as { epoch: number }).epoch, 1, 'compacted to epoch 1');
  // the crash: the snapshot was renamed into place, the old journal never replaced
  copyFileSync(join(dir, 'journal.old'), join(dir, 'journal.log'));
  const after = new FileStore(dir);
  t.teardown(() => after.close());
  t.equal((await after.usage('p')).allocated, 11, 'counters come from the snapshot, not rolled back by the stale journal');
  t.equal((await after.getAddress('p', last.ip)).containerId, 'c10');
  t.same(checkPool(await after.snapshot('p')).findings, []);
  const next = await after.allocate('p', { containerId: 'c11', ifname: 'eth0', owner: 'o11' });
  t.ok(next.ip > last.ip, 'the cursor was not rolled back: no address is handed out twice');
  const journal = readFileSync(join(dir, 'journal.log'), 'utf8');
  t.match(journal, /^\{"epoch":1\}\n/, 'the writer replaced the stale journal');
});

t.test('a lock held past the timeout gives STORE_UNAVAILABLE, then works once released', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir, { lockTimeout: 300 });
  t.teardown(() => store.close());
  const { flock, LOCK_EX, LOCK_UN } = native();
  const fd = openSync(join(dir, 'lock'), 'a');
  t.ok(flock(fd, LOCK_EX), 'another holder takes the lock');
  await t.rejects(store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' }), {
    code: 'STORE_UNAVAILABLE',
    message: /failed to lock store file:\/\/.*: another process held it for 300 ms/,
  });
  flock(fd, LOCK_UN);
  closeSync(fd);
  const a = await store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' });
  t.ok(a.ip, 'the store works once the lock is free');
});

t.test('a corrupt journal line is reported, not skipped', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  await store.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o' });
  await store.close();
  const lines = readFileSync(join(dir, 'journal.log'), 'utf8').split('\n');
  lines.splice(2, 0, '{not json}');
  writeFileSync(join(dir, 'journal.log'), lines.join('\n'));
  const broken = new FileStore(dir);
  t.teardown(() => broken.close());
  await t.rejects(broken.listPools(), { code: 'STORE_CORRUPT', message: /journal\.log at byte \d+/ });
});

// --- regressions from the review of the store (each reproduced a real bug) ---

t.test('a lock wait that timed out releases the lock when the kernel finally grants it', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir, { lockTimeout: 200 });
  t.teardown(() => store.close());
  const { flock, LOCK_EX, LOCK_NB, LOCK_UN } = native();
  const fd = openSync(join(dir, 'lock'), 'a');
  flock(fd, LOCK_EX);
  await t.rejects(store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' }), { code: 'STORE_UNAVAILABLE' });
  flock(fd, LOCK_UN);
  await new Promise((r) => setTimeout(r, 300));
  t.ok(flock(fd, LOCK_EX | LOCK_NB), 'the idle store does not keep the lock it was granted late');
  flock(fd, LOCK_UN);
  closeSync(fd);
  t.ok((await store.allocate('p', { containerId: 'c', ifname: 'eth0', owner: 'o' })).ip, 'and works afterwards');
});

t.test('close() while an operation is queued lets it finish under the lock, then refuses new ones', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  const pending = store.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o' });
  await store.close();
  t.ok((await pending).ip, 'the queued allocation completed');
  await t.rejects(store.allocate('p', { containerId: 'c2', ifname: 'eth0', owner: 'o' }), { code: 'STORE_UNAVAILABLE', message: /closed/ });
  const again = new FileStore(dir);
  t.teardown(() => again.close());
  t.equal((await again.listAddresses('p')).length, 1, 'and it is on disk');
});

t.test('a history that cannot be written does not fail an operation that is already durable', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  t.teardown(() => store.close());
  mkdirSync(join(dir, 'history', 'p.jsonl'), { recursive: true }); // a directory where the file should be
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const a = await store.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o' });
  t.ok(a.ip, 'acknowledged');
  await new Promise((r) => setImmediate(r));
  t.match(warnings.join('\n'), /failed to write the history/, 'and the operator is warned');
  const fresh = new FileStore(dir);
  t.teardown(() => fresh.close());
  t.equal((await fresh.getAddress('p', a.ip)).containerId, 'c1');
});

t.test('counter-only repairs reach the disk', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  await store.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o' });
  await store.close();
  // counters that disagree with the records, as a bug or a hand edit would leave them
  appendFileSync(join(dir, 'journal.log'), `${JSON.stringify({ t: 'put', pool: 'p', a: {}, f: {}, m: { cursor: '0a140003', gen: 0, allocated: 7, reserved: 0 } })}\n`);
  const a = new FileStore(dir);
  t.teardown(() => a.close());
  const found = checkPool(await a.snapshot('p'));
  t.same(found.findings.map((f) => f.kind).sort(), ['counter', 'generation']);
  t.equal(await a.applyFixes('p', found.fixes), 2);
  const b = new FileStore(dir);
  t.teardown(() => b.close());
  t.same(checkPool(await b.snapshot('p')).findings, [], 'another process sees the repaired counters');
});

t.test('a tail of zeros or garbage after a crash is cut off; garbage before good lines is corruption', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  const a = await store.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o' });
  await store.close();
  appendFileSync(join(dir, 'journal.log'), Buffer.from([0, 0, 0, 10, 0, 0, 123, 10, 0]));
  const s = new FileStore(dir);
  t.teardown(() => s.close());
  t.equal((await s.getAddress('p', a.ip)).containerId, 'c1');
  await s.allocate('p', { containerId: 'c2', ifname: 'eth0', owner: 'o2' });
  t.notOk(readFileSync(join(dir, 'journal.log')).includes(0), 'the zeros are gone');
});

t.test('a deleted lock file: processes still exclude each other on the new one', async (t) => {
  const dir = t.testdir();
  const a = await withPool(dir, { lockTimeout: 300 });
  t.teardown(() => a.close());
  await a.allocate('p', { containerId: 'c0', ifname: 'eth0', owner: 'o0' }); // a holds an fd on the old lock inode
  rmSync(join(dir, 'lock'));
  const { flock, LOCK_EX, LOCK_UN } = native();
  const fd = openSync(join(dir, 'lock'), 'a'); // another process, on the new inode
  flock(fd, LOCK_EX);
  await t.rejects(a.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o1' }), { code: 'STORE_UNAVAILABLE' }, 'a waits for the holder of the new lock file');
  flock(fd, LOCK_UN);
  closeSync(fd);
  await new Promise((r) => setTimeout(r, 100));
  t.ok((await a.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o1' })).ip);
});

t.test('a short write (file size limit) is reported, and nothing acknowledged is lost or given twice', async (t) => {
  const dir = t.testdir();
  const admin = await withPool(dir);
  await admin.close();
  const acked = new Map<string, string>();
  // env -u: tap adds NODE_OPTIONS to every spawn, and its hook re-raises SIGXFSZ, which Node by itself ignores
  const child = spawn('env', ['-u', 'NODE_OPTIONS', 'bash', '-c', 'ulimit -f 16; exec "$0" --import tsx "$@"', process.execPath, WORKER, `file://${dir}`, 'p', 's', '5000', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = await new Promise<number | string | null>((r) => child.on('exit', (c, s) => r(c ?? s)));
  t.equal(exit, 3, 'the worker was refused, not killed (SIGXFSZ)');
  for (const line of out.split('\n').filter(Boolean)) {
    const { cid, ip } = JSON.parse(line) as { cid: string; ip: string };
    acked.set(cid, ip);
  }
  t.ok(acked.size > 0 && acked.size < 5000, `${acked.size} acknowledged before the limit`);
  t.match(err, /STORE_UNAVAILABLE.*journal\.log\\": file too large/, 'the failure was reported, naming the journal and the cause');
  const s = new FileStore(dir);
  t.teardown(() => s.close());
  const listed = new Map((await s.listAddresses('p')).map((a) => [a.containerId, a.ip]));
  let lost = 0;
  for (const [cid, ip] of acked) if (listed.get(cid) !== ip) lost++;
  t.equal(lost, 0, 'every acknowledged allocation is there');
  t.equal(new Set(listed.values()).size, listed.size, 'no address twice');
});

t.test('compaction is due when an append passes the limit, then again at each half of the limit more', async (t) => {
  const L = 64 * 1024;
  t.notOk(compactionDue(100, L, L), 'reaching the limit is not passing it');
  t.ok(compactionDue(L - 10, L + 10, L), 'passing it');
  t.notOk(compactionDue(L + 10, L + 400, L), 'after a failed compaction, the next commits are not');
  t.notOk(compactionDue(L + 10, L + L / 2, L), 'nor at half the limit more');
  t.ok(compactionDue(L + L / 2 - 5, L + L / 2 + 5, L), 'past it, it is due again');
  t.ok(compactionDue(L - 5, 3 * L, L), 'an append across several marks is due once');
  t.ok(compactionDue(20, 200, 1) && compactionDue(200, 400, 1), 'a limit of one byte: after every append');
  t.equal(nextCompactionMark(100, L), L);
  t.equal(nextCompactionMark(L + 10, L), L + L / 2);
  t.equal(nextCompactionMark(L + L / 2, L), L + L / 2, 'a journal at a mark is due once past it');
  let attempts = 0;
  let commits = 0;
  for (let size = 1000; size + 190 <= 10 * L; size += 190, commits++) if (compactionDue(size, size + 190, L)) attempts++;
  t.equal(attempts, 18, `a journal growing to ten times the limit while every compaction fails: 18 attempts (the limit, then every half limit), not ${commits}`);
});

t.test('a process holding state does not append to a journal that a compaction left behind its snapshot', async (t) => {
  const dir = t.testdir();
  const a = await withPool(dir);
  await a.allocate('p', { containerId: 'a0', ifname: 'eth0', owner: 'a0' });
  const b = new FileStore(dir);
  t.teardown(() => b.close());
  await b.allocate('p', { containerId: 'b0', ifname: 'eth0', owner: 'b0' }); // b has the journal open and its state in memory
  await a.close();
  linkSync(join(dir, 'journal.log'), join(dir, 'journal.keep'));
  const compacting = new FileStore(dir, { compactBytes: 1 });
  await compacting.allocate('p', { containerId: 'a1', ifname: 'eth0', owner: 'a1' });
  await compacting.close();
  // a compaction that renamed its snapshot in but could not replace the journal: the same journal file, one epoch behind
  renameSync(join(dir, 'journal.keep'), join(dir, 'journal.log'));
  const b1 = await b.allocate('p', { containerId: 'b1', ifname: 'eth0', owner: 'b1' });
  const fresh = new FileStore(dir);
  t.teardown(() => fresh.close());
  t.equal((await fresh.getAddress('p', b1.ip)).containerId, 'b1', "b's allocation after the compaction is on disk");
  t.equal((await fresh.listAddresses('p')).length, 4, 'with every other one');
  t.same(checkPool(await fresh.snapshot('p')).findings, []);
});

t.test('a history line torn by a crash does not swallow the next one', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  t.teardown(() => store.close());
  await store.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o1' });
  appendFileSync(join(dir, 'history', 'p.jsonl'), '{"at":1,"event":"alloc');
  await store.allocate('p', { containerId: 'c2', ifname: 'eth0', owner: 'o2' });
  t.same((await store.history('p')).map((h) => h.containerId), ['c2', 'c1'], 'both entries read back; the torn one is skipped');
});

t.test('reads write nothing: a store whose journal is gone is read from its snapshot, and the next change makes a journal', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir, { compactBytes: 1 });
  const a = await store.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o1' });
  await store.close();
  rmSync(join(dir, 'journal.log'));
  const reader = new FileStore(dir);
  t.teardown(() => reader.close());
  t.equal((await reader.getAddress('p', a.ip)).containerId, 'c1');
  t.notOk(existsSync(join(dir, 'journal.log')), 'the read made no journal');
  const b = await reader.allocate('p', { containerId: 'c2', ifname: 'eth0', owner: 'o2' });
  t.match(readFileSync(join(dir, 'journal.log'), 'utf8'), /^\{"epoch":\d+\}\n\{"t":"put"/, 'the change did');
  const fresh = new FileStore(dir);
  t.teardown(() => fresh.close());
  t.equal((await fresh.getAddress('p', b.ip)).containerId, 'c2');
});

t.test('historyAfter reads on across a rotation of the history file, a pool removed and made again, and a line still being written', async (t) => {
  const dir = t.testdir();
  const store = await withPool(dir);
  t.teardown(() => store.close());
  const file = join(dir, 'history', 'p.jsonl');
  const alloc = (cid: string) => store.allocate('p', { containerId: cid, ifname: 'eth0', owner: cid });
  const owners = (tail: { entries: Array<{ owner?: string }> }) => tail.entries.map((e) => e.owner);
  await alloc('c0');
  let tail = await store.historyAfter(['p'], {}, 0);

  await alloc('c1');
  // rotation as the store does it past HISTORY_ROTATE_BYTES: rename, then the next append makes a new file
  renameSync(file, `${file}.1`);
  tail = await store.historyAfter(['p'], tail.cursor, 0);
  t.same(owners(tail), ['c1'], 'the rest of the rotated file');
  await alloc('c2');
  tail = await store.historyAfter(['p'], tail.cursor, 0);
  t.same(owners(tail), ['c2'], 'then the new file from its start');

  await alloc('c3');
  renameSync(file, `${file}.1`);
  await alloc('c4');
  tail = await store.historyAfter(['p'], tail.cursor, 0);
  t.same(owners(tail), ['c3', 'c4'], 'a rotation between two reads loses nothing');

  appendFileSync(file, '{"at":1,"event":"allocate","ip":"0a140000","owner":"half');
  tail = await store.historyAfter(['p'], tail.cursor, 0);
  t.same(owners(tail), [], 'a line without its newline is not taken yet');

  await store.removePool('p', { force: true });
  await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.20.0.0/16', hold: 0 }));
  await alloc('c5');
  tail = await store.historyAfter(['p'], tail.cursor, 0);
  t.same(owners(tail), ['c5'], "a pool made again is read from its history's start");
});
