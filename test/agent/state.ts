// The agent's state with syncState on (agent/state.ts), read from strace: a
// record's write resolves only after its new file is fsync'd and the
// directory that names it is fsync'd after its creation, and a removal only
// after the directory is fsync'd after the unlink; one after another and
// many at once (when writes share a directory fsync).
import t from 'tap';
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
