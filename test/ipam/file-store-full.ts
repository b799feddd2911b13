// The file store on a disk that fills up, and under a file-size limit: a
// real tmpfs of a few hundred KiB, and writer processes under RLIMIT_FSIZE
// (writes come back short, then EFBIG; Node ignores SIGXFSZ). Every answered
// ADD keeps its address, no address is answered twice, reads go on while
// changes are refused (CNI code 11, naming the file and the cause), and once
// there is room again everything works with no repair.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileStore } from '../../ipam/file-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { checkPool } from '../../ipam/check.js';
import { formatIp } from '../../core/address.js';
import { BIN, cniEnv } from '../helpers/cni.js';
import { mountTmpfs, skipWithoutTmpfs } from '../helpers/tmpfs.js';

const WORKER = fileURLToPath(new URL('../helpers/alloc-worker.ts', import.meta.url));

interface Run {
  /** the exit code, or the signal that ended it */
  code: number | string | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the rest of a command under a file-size limit, as a runtime would
 * start it: without the NODE_OPTIONS tap adds to every spawn (its
 * @tapjs/processinfo hook re-raises SIGXFSZ through signal-exit, where Node
 * by itself ignores the signal and sees EFBIG).
 */
function fileSizeLimit(bytes: number): string[] {
  return ['env', '-u', 'NODE_OPTIONS', 'prlimit', `--fsize=${bytes}`, '--'];
}

/** Runs a command (under `prefix`, e.g. prlimit) to its end. */
function run(prefix: string[], command: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const argv = [...prefix, ...command];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? signal, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

interface Answers {
  /** container id -> address, for every ADD answered with one */
  acked: Map<string, string>;
  /** every address answered, with repeats */
  ips: string[];
  /** refusals: [code, message] */
  refused: Array<[string | number, string]>;
  /** warnings the processes printed */
  warnings: string[];
  /** processes that ended other than by answering every request (a crash): exit code and stderr */
  crashed: string[];
}

function answers(): Answers {
  return { acked: new Map(), ips: [], refused: [], warnings: [], crashed: [] };
}

/** Allocation worker processes (test/helpers/alloc-worker.ts), read into `into`. */
async function workers(into: Answers, prefix: string[], url: string, ids: string[], count: number, fileOptions?: object): Promise<void> {
  const runs = await Promise.all(
    ids.map((id) => run(prefix, [process.execPath, '--import', 'tsx', WORKER, url, 'p', id, String(count), '2', ...(fileOptions ? [JSON.stringify(fileOptions)] : [])])),
  );
  for (const r of runs) {
    // 0: all answered; 3: some refused (alloc-worker)
    if (r.code !== 0 && r.code !== 3) into.crashed.push(`exit ${r.code}: ${r.stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n').slice(-2000)}`);
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      const { cid, ip: hex } = JSON.parse(line) as { cid: string; ip: string };
      const ip = formatIp(hex);
      into.acked.set(cid, ip);
      into.ips.push(ip);
    }
    for (const line of r.stderr.split('\n').filter(Boolean)) {
      if (line.startsWith('{')) {
        const { code, message } = JSON.parse(line) as { code: string; message: string };
        into.refused.push([code, message]);
      } else if (/Warning: /.test(line)) {
        into.warnings.push(line);
      }
    }
  }
}

/** One berth-ipam ADD, as a runtime runs it; its answer goes into `into`. */
async function pluginAdd(into: Answers, prefix: string[], dir: string, cid: string): Promise<{ ok: boolean; code?: number; msg?: string }> {
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n', ipam: { type: 'berth-ipam', pool: 'p', store: `file://${dir}` } });
  const env = { PATH: process.env.PATH, BERTH_AGENT_SOCKET: '', ...cniEnv('ADD', cid) };
  const r = await run(prefix, [join(BIN, 'berth-ipam')], { stdin: conf, env });
  const out = JSON.parse(r.stdout) as { ips?: Array<{ address: string }>; code?: number; msg?: string };
  for (const line of r.stderr.split('\n')) if (/Warning: /.test(line)) into.warnings.push(line);
  if (r.code === 0 && out.ips) {
    const ip = out.ips[0]!.address.split('/')[0]!;
    into.acked.set(cid, ip);
    into.ips.push(ip);
    return { ok: true };
  }
  into.refused.push([out.code!, out.msg!]);
  return { ok: false, code: out.code, msg: out.msg };
}

/** bin/berth --json against the store. */
async function cli(prefix: string[], dir: string, args: string[]): Promise<{ code: Run['code']; json: unknown; stderr: string }> {
  const r = await run(prefix, [join(BIN, 'berth'), '--store', `file://${dir}`, '--json', ...args]);
  let json: unknown;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { code: r.code, json, stderr: r.stderr };
}

/** Every address the store lists as allocated, by container id, read by a CLI process (under `prefix`). */
async function listed(t: Test, prefix: string[], dir: string): Promise<Map<string, string>> {
  const r = await cli(prefix, dir, ['ip', 'ls', 'p', '--state', 'allocated']);
  t.equal(r.code, 0, `berth ip ls reads the store ${r.stderr}`);
  return new Map(((r.json ?? []) as Array<{ containerId: string; ip: string }>).map((a) => [a.containerId, a.ip]));
}

/** The store answers every ADD it acknowledged, and nothing else; no address was answered twice. */
async function holdsExactly(t: Test, prefix: string[], dir: string, a: Answers, what: string): Promise<void> {
  t.equal(new Set(a.ips).size, a.ips.length, `${what}: no address was answered twice`);
  const held = await listed(t, prefix, dir);
  const lost = [...a.acked].filter(([cid, ip]) => held.get(cid) !== ip);
  t.same(lost, [], `${what}: every answered ADD still holds its address (${a.acked.size})`);
  t.equal(held.size, a.acked.size, `${what}: and the store holds no allocation that was not answered`);
}

async function isClean(t: Test, prefix: string[], dir: string, what: string): Promise<void> {
  const r = await cli(prefix, dir, ['ipam', 'check']);
  t.equal(r.code, 0, `${what}: berth ipam check runs ${r.stderr}`);
  t.same((r.json as Array<{ findings: unknown[] }> | undefined)?.map((p) => p.findings), [[]], `${what}: berth ipam check is clean`);
}

async function createPool(dir: string, opts = {}): Promise<FileStore> {
  const store = new FileStore(dir, opts);
  await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.20.0.0/16', hold: 0 }));
  return store;
}

function epochOf(dir: string): number {
  return existsSync(join(dir, 'snapshot.json')) ? (JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8')) as { epoch: number }).epoch : 0;
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

t.test('a disk that fills while four processes and the plugin allocate: every answer holds, reads go on, and after space is freed all works', async (t) => {
  if (skipWithoutTmpfs(t)) return;
  const mnt = mountTmpfs(t, '384k');
  const dir = join(mnt, 'store');
  const ballast = join(mnt, 'ballast');
  // The store gets the other 136 KiB: its journal reaches the compaction
  // limit (64 KiB) when the new snapshot no longer fits, the case that
  // renamed a short snapshot over the good one and lost the store.
  writeFileSync(ballast, Buffer.alloc(248 * 1024));
  await (await createPool(dir)).close();
  const a = answers();
  let pluginRefused = 0;
  const plugin = async () => {
    for (let i = 0; i < 80 && pluginRefused < 3; i++) if (!(await pluginAdd(a, [], dir, `cni-${i}`)).ok) pluginRefused++;
  };
  await Promise.all([workers(a, [], `file://${dir}`, ['0', '1', '2', '3'], 200), plugin()]);
  t.comment(`full disk: ${a.acked.size} ADDs answered, ${a.refused.length} refused, ${a.warnings.filter((w) => /compact/.test(w)).length} failed compactions`);
  t.same(a.crashed, [], 'no process crashed');
  t.ok(a.acked.size > 300, `ADDs were answered until the disk was full (${a.acked.size})`);
  t.ok(a.warnings.some((w) => /failed to compact.*no space left on device/.test(w)), 'a compaction found no room (the premise of this test)');
  t.equal(pluginRefused, 3, 'the disk filled: the plugin was refused');
  const unexpected = a.refused.filter(([code, msg]) => !((code === 'STORE_UNAVAILABLE' || code === 11) && msg.includes(`"${dir}/`) && /no space left on device/.test(msg)));
  t.same(unexpected.slice(0, 3), [], 'every refusal is code 11 / STORE_UNAVAILABLE and names the file and "no space left on device"');

  // still full: the store reads, refuses changes, and has lost nothing
  await holdsExactly(t, [], dir, a, 'while full');
  await isClean(t, [], dir, 'while full');
  const refused = await pluginAdd(a, [], dir, 'while-full');
  t.equal(refused.code, 11, `an ADD now is refused with code 11: ${refused.msg}`);
  t.notOk(readdirSync(dir).some((n) => n.endsWith('.tmp')), 'no temporary file is left behind');
  const epochWhenFull = epochOf(dir);

  rmSync(ballast);
  t.ok((await pluginAdd(a, [], dir, 'after-1')).ok, 'space freed: the plugin ADDs again');
  // enough to take the journal past its next compaction mark (half the 64 KiB limit on from the last)
  await workers(a, [], `file://${dir}`, ['after'], 250);
  t.equal(a.acked.size, a.ips.length, 'no ADD refused once there is room');
  t.ok(epochOf(dir) > epochWhenFull, `compaction works again (snapshot epoch ${epochWhenFull} -> ${epochOf(dir)})`);
  await holdsExactly(t, [], dir, a, 'after space was freed');
  await isClean(t, [], dir, 'after space was freed');
});

t.test('a compaction that finds no room keeps snapshot and journal, and is tried again only once the journal has grown by half its limit', async (t) => {
  if (skipWithoutTmpfs(t)) return;
  const mnt = mountTmpfs(t, '512k');
  const dir = join(mnt, 'store');
  const LIMIT = 32 * 1024;
  // a snapshot of some size first (compacting on every commit), then a store that compacts at LIMIT
  const seed = await createPool(dir, { compactBytes: 1 });
  for (let i = 0; i < 250; i++) await seed.allocate('p', { containerId: `s${i}`, ifname: 'eth0', owner: `s${i}` });
  await seed.close();
  const store = new FileStore(dir, { compactBytes: LIMIT });
  t.teardown(() => store.close());
  const journalSize = () => statSync(join(dir, 'journal.log')).size;
  const acked = new Map<string, string>();
  let n = 0;
  const allocate = async () => {
    const cid = `c${n++}`;
    acked.set(cid, (await store.allocate('p', { containerId: cid, ifname: 'eth0', owner: cid })).ip);
  };
  while (journalSize() < LIMIT - 1024) await allocate();
  const snapshotBefore = readFileSync(join(dir, 'snapshot.json'));
  const epoch = epochOf(dir);
  t.ok(snapshotBefore.length > 16 * 1024, `the snapshot needs more than the room left below (${snapshotBefore.length} bytes)`);

  const warnings: string[] = []; // failed compactions
  const onWarning = (w: Error) => {
    if (/failed to compact/.test(w.message)) warnings.push(w.message);
  };
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  fillDisk(join(mnt, 'ballast'));
  // room for journal lines, not for a snapshot
  truncateSync(join(mnt, 'ballast'), statSync(join(mnt, 'ballast')).size - 12 * 1024);
  let afterFailure = 0;
  let refusal: Error | undefined;
  for (;;) {
    try {
      await allocate();
    } catch (err) {
      refusal = err as Error;
      break;
    }
    await new Promise((r) => setImmediate(r));
    if (warnings.length > 0) afterFailure++;
  }
  t.equal(warnings.length, 1, `one compaction was tried and failed, then none on the next ${afterFailure} commits`);
  t.ok(afterFailure >= 10, 'commits went on after the failed compaction');
  t.match(warnings[0], /no space left on device; the snapshot and journal stand, and compaction is tried again once the journal passes \d+ bytes/);
  t.match(refusal, { code: 'STORE_UNAVAILABLE', message: new RegExp(`"${dir}/journal.log": no space left on device`) }, 'then the disk was full');
  t.ok(readFileSync(join(dir, 'snapshot.json')).equals(snapshotBefore), 'the snapshot is untouched');
  t.equal(epochOf(dir), epoch);
  t.notOk(readdirSync(dir).some((f) => f.endsWith('.tmp')), 'and no temporary file is left');
  const reader = new FileStore(dir);
  t.teardown(() => reader.close());
  const held = new Map((await reader.listAddresses('p')).filter((x) => x.containerId?.startsWith('c')).map((x) => [x.containerId, x.ip]));
  t.same(held, acked, 'a new process reads every acknowledged allocation, and only those, while the disk is full');

  rmSync(join(mnt, 'ballast'));
  const journalAtFull = journalSize();
  while (epochOf(dir) === epoch) await allocate();
  await new Promise((r) => setImmediate(r));
  t.equal(warnings.length, 1, 'with room again the next compaction succeeds');
  t.ok(journalAtFull < LIMIT * 1.5, `and it came at the next mark, half the limit on (journal ${journalAtFull} bytes when full)`);
  t.same(checkPool(await reader.snapshot('p')).findings, []);
  t.equal((await reader.listAddresses('p')).length, 250 + acked.size);
});

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

t.test('under a file-size limit (RLIMIT_FSIZE) the same: short writes and EFBIG refuse changes, lose nothing, and stop mattering once lifted', async (t) => {
  const dir = join(t.testdir(), 'store');
  await (await createPool(dir)).close();
  const FSIZE = 40 * 1024;
  const limited = fileSizeLimit(FSIZE);
  const a = answers();
  // compacting at 8 KiB: the snapshot outgrows the limit before the journal does, so compactions fail too
  await workers(a, limited, `file://${dir}`, ['0', '1', '2'], 350, { compactBytes: 8192 });
  t.comment(`file-size limit: ${a.acked.size} ADDs answered, ${a.refused.length} refused; ${a.warnings.filter((w) => /compact/.test(w)).length} failed compactions`);
  t.same(a.crashed, [], 'no process crashed');
  t.ok(a.refused.length > 0 && a.acked.size > 100, `answered until the limit (${a.acked.size}), refused after (${a.refused.length})`);
  t.ok(a.warnings.some((w) => /failed to compact.*file too large/.test(w)), 'a compaction failed for the limit');
  const unexpected = a.refused.filter(([code, msg]) => !(code === 'STORE_UNAVAILABLE' && msg.includes(`"${dir}/journal.log"`) && /file too large/.test(msg)));
  t.same(unexpected.slice(0, 3), [], 'every refusal is STORE_UNAVAILABLE and names the journal and the limit');
  for (const f of ['snapshot.json', 'journal.log']) t.ok(statSync(join(dir, f)).size <= FSIZE, `${f} is within the limit`);

  await holdsExactly(t, limited, dir, a, 'under the limit');
  await isClean(t, limited, dir, 'under the limit');
  // a single line may still fit below the limit where the workers' batches of two did not
  let refused: Awaited<ReturnType<typeof pluginAdd>> = { ok: true };
  for (let i = 0; i < 5 && refused.ok; i++) refused = await pluginAdd(a, limited, dir, `limited-${i}`);
  t.equal(refused.code, 11, `the plugin under the limit is refused with code 11: ${refused.msg}`);
  t.match(refused.msg, new RegExp(`"${dir}/journal.log": file too large`));

  const refusedUnder = a.refused.length;
  t.ok((await pluginAdd(a, [], dir, 'unlimited')).ok, 'without the limit the plugin ADDs again');
  await workers(a, [], `file://${dir}`, ['after'], 50);
  t.equal(a.refused.length, refusedUnder, 'and no ADD is refused');
  await holdsExactly(t, [], dir, a, 'once lifted');
  await isClean(t, [], dir, 'once lifted');
});
