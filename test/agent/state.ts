// The agent's state with syncState on (agent/state.ts), read from strace: a
// record's write resolves only after its new file is fsync'd and the
// directory that names it is fsync'd after its creation, and a removal only
// after the directory is fsync'd after the unlink; one after another and
// many at once (when writes share a directory fsync). And the records on
// disk: they survive a reload, and a newer file torn by a crash falls back
// to the one before.
import { readdirSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { StateDir } from '../../agent/state.js';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkAcks, skipWithoutStrace, straced } from '../helpers/strace.js';

const DRIVER = fileURLToPath(new URL('../helpers/state-driver.ts', import.meta.url));
const RECORDS = 6;

t.test('syncState: each save and removal resolves after the file and its directory are fsync\'d', async (t) => {
  if (skipWithoutStrace(t)) return;
  const root = t.testdir();
  const dir = join(root, 'attachments');
  const r = await straced([process.execPath, '--import', 'tsx', DRIVER, root, String(RECORDS)], { traceFile: join(root, 'state.trace') });
  t.equal(r.code, 0, `the driver ran ${r.stderr}`);
  const acks = checkAcks(r.calls, { root: dir, ackPid: r.rootPid, ack: /done (save|remove) / });
  const saves = RECORDS * 2 * 2;
  const removals = RECORDS;
  t.equal(acks.length, saves + removals, 'every save and removal reported');
  const written = new Set(acks.flatMap((a) => a.written));
  t.equal(written.size, saves, 'each save wrote a new file');
  const late: string[] = [];
  for (const a of acks) {
    const [, op, id] = /done (save|remove) (\S+?)\\n/.exec(a.text)!;
    const mine = a.unsynced.filter((u) => basename(u.path).startsWith(`${id}.`));
    // a save needs its file and its name; the unlink of the generation before it is not needed (load() keeps the newest)
    const needed = mine.filter((u) => (op === 'save' ? u.kind !== 'unlink' : true));
    if (needed.length > 0) late.push(`${op} ${id}: ${needed.map((u) => `${u.kind} ${basename(u.path)}`).join(', ')}`);
  }
  t.same(late, [], 'nothing a record needs was unsynced when its write resolved');
});

t.test('state dir: records survive a reload; a newer file torn by a crash falls back to the one before; bad files reported', async (t) => {
  const root = t.testdir();
  const dir = join(root, 'attachments');
  const s = new StateDir(root, true);
  const rec = {
    containerId: 'abc',
    name: 'web',
    ifname: 'eth0',
    intent: { network: 'n', owner: 'web', lb: {} },
    network: { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'x' }], file: '/f' },
    phase: 'adding' as const,
    pid: 1,
    nsInode: 2,
    createdAt: '',
    updatedAt: '',
    attempts: 0,
  };
  await s.save(rec);
  await s.save({ ...rec, phase: 'attached' });
  t.same(readdirSync(dir), ['abc.2.json'], 'each write is a new file; the one before is unlinked');
  writeFileSync(join(dir, 'def.json.tmp'), '{"half');
  writeFileSync(join(dir, 'zzz.json'), '{"containerId":"other"}');
  // a crash after a newer write was created and before it was whole
  writeFileSync(join(dir, 'abc.7.json'), '{"containerId":"ab');
  // and one between a write and the unlink of the one before it
  writeFileSync(join(dir, 'abc.1.json'), JSON.stringify({ ...rec, phase: 'deleting' }));
  // a first write killed before its content (the agent had not acted on it yet)
  writeFileSync(join(dir, 'e1.5.json'), '');
  // a record as berth wrote them before (ID.json)
  writeFileSync(join(dir, 'old1.json'), JSON.stringify({ ...rec, containerId: 'old1', phase: 'deleting' }));
  const again = new StateDir(root);
  const { records, errors } = again.load();
  t.same(records.map((r) => [r.containerId, r.phase]).sort(), [['abc', 'attached'], ['old1', 'deleting']], 'the newest whole generation of each record');
  t.equal(errors.length, 1, 'a record whose name does not match is reported');
  t.same(readdirSync(dir).sort(), ['abc.2.json', 'old1.json', 'zzz.json'], 'the torn, empty, older and temporary files are gone; the bad one is left for an operator');
  await again.save({ ...rec, containerId: 'old1', phase: 'attached' });
  t.ok(readdirSync(dir).includes('old1.8.json') && !readdirSync(dir).includes('old1.json'), 'new generations continue above every one seen');
  await again.remove('abc');
  await again.remove('abc'); // absent is fine
  await again.remove('old1');
  t.same(new StateDir(root).load().records, []);
  await t.rejects(s.save({ ...rec, containerId: '../x' }), /not a file name/);
  await Promise.all(Array.from({ length: 20 }, (_, i) => s.save({ ...rec, containerId: `c${i}` })));
  t.equal(new StateDir(root).load().records.length, 20, 'concurrent writes all land');
  // writes of one record land in the order they were made
  const writes = Promise.all([s.save({ ...rec, containerId: 'c0', phase: 'attached' }), s.save({ ...rec, containerId: 'c0', phase: 'deleting' })]);
  await writes;
  t.same(new StateDir(root).load().records.find((r) => r.containerId === 'c0')?.phase, 'deleting', 'the last write wins');
  t.equal(readdirSync(dir).filter((n) => n.startsWith('c0.')).length, 1, 'and one file is left of it');
});
