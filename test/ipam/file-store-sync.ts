// The file store's acknowledgements come after the syncs that make them
// durable, read from strace: each journal line fdatasync'd, each snapshot and
// journal written by rename fsync'd before it and its directory fsync'd after
// it, before the plugin writes its result or a process reports the change.
// A SIGKILL cannot show a missing sync (the page cache keeps the write);
// these tests do, and the first one shows the reading of the trace would.
import t from 'tap';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileStore } from '../../ipam/file-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { BIN, cniEnv } from '../helpers/cni.js';
import { checkAcks, parseTrace, skipWithoutStrace, straced } from '../helpers/strace.js';

const WORKER = fileURLToPath(new URL('../helpers/alloc-worker.ts', import.meta.url));

async function storeWithPool(dir: string): Promise<void> {
  const store = new FileStore(dir);
  await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.20.0.0/24', hold: 0 }));
  await store.close();
}

t.test('the trace reader finds a missing sync, a sync that began before the write ended, and a rename whose directory was not synced', async (t) => {
  const check = (trace: string) => checkAcks(parseTrace(trace), { root: '/s', ackPid: 10, ack: /cniVersion/ }).map((a) => a.unsynced);
  const ack = '10 write(1<pipe:[7]>, "{\\"cniVersion\\":\\"1.0.0\\"}", 22) = 22';
  t.same(check(['10 write(5</s/journal.log>, "{}\\n", 3) = 3', '10 fdatasync(5</s/journal.log>) = 0', ack].join('\n')), [[]], 'write, sync, ack: nothing unsynced');
  t.same(check(['10 write(5</s/journal.log>, "{}\\n", 3) = 3', ack].join('\n')), [[{ kind: 'data', path: '/s/journal.log' }]], 'no sync: the journal is unsynced');
  t.same(
    check(['11 fdatasync(5</s/journal.log> <unfinished ...>', '10 write(5</s/journal.log>, "{}\\n", 3) = 3', '11 <... fdatasync resumed>) = 0', ack].join('\n')),
    [[{ kind: 'data', path: '/s/journal.log' }]],
    'a sync that began before the write returned does not cover it',
  );
  t.same(
    check([
      '10 write(6</s/snapshot.json.tmp>, "{}", 2) = 2',
      '10 fsync(6</s/snapshot.json.tmp>) = 0',
      '10 rename("/s/snapshot.json.tmp", "/s/snapshot.json") = 0',
      ack,
    ].join('\n')),
    [[{ kind: 'rename', path: '/s/snapshot.json' }]],
    'a rename with no directory sync after it is unsynced',
  );
  t.same(
    check([
      '10 write(6</s/snapshot.json.tmp>, "{}", 2) = 2',
      '10 rename("/s/snapshot.json.tmp", "/s/snapshot.json") = 0',
      '10 fsync(7</s>) = 0',
      ack,
    ].join('\n')),
    [[{ kind: 'data', path: '/s/snapshot.json' }]],
    'a file renamed before it was synced carries its unsynced data to its new name',
  );
  t.same(
    check(['10 write(6</s/a.json>, "{}", 2) = 2', '10 unlink("/s/a.json") = 0', ack].join('\n')),
    [[{ kind: 'unlink', path: '/s/a.json' }]],
    'an unlink with no directory sync after it is unsynced; the data of the file it removed no longer matters',
  );
  t.same(check(['12 write(1<pipe:[7]>, "{\\"cniVersion\\"", 14) = 14'].join('\n')), [], 'a write to fd 1 by another process is not the acknowledgement');
});

t.test('berth-ipam ADD and DEL: the journal line and the history are fdatasync\'d before the result is written', async (t) => {
  if (skipWithoutStrace(t)) return;
  const dir = t.testdir();
  await storeWithPool(dir);
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n', ipam: { type: 'berth-ipam', pool: 'p', store: `file://${dir}` } });
  for (const command of ['ADD', 'DEL']) {
    const env = { PATH: process.env.PATH, BERTH_AGENT_SOCKET: '', ...cniEnv(command, 'c1') };
    const r = await straced([join(BIN, 'berth-ipam')], { traceFile: join(dir, `${command}.trace`), env, stdin: conf });
    t.equal(r.code, 0, `${command} succeeded ${r.stdout}${r.stderr}`);
    // DEL prints nothing on success: its exit status is the acknowledgement
    const acks = checkAcks(r.calls, { root: dir, ackPid: r.rootPid, ack: /cniVersion/, atExit: command === 'DEL' });
    t.equal(acks.length, 1, `${command}: one acknowledgement`);
    const last = acks[0]!;
    t.ok(last.written.includes(join(dir, 'journal.log')), `${command} appended to the journal`);
    t.ok(last.written.includes(join(dir, 'history', 'p.jsonl')), `${command} appended to the history`);
    t.same(last.unsynced, [], `${command}: nothing unsynced when acknowledged`);
  }
});

t.test('compaction after every commit: snapshot and journal are each synced, renamed, and their directory synced before each acknowledgement', async (t) => {
  if (skipWithoutStrace(t)) return;
  const dir = t.testdir();
  await storeWithPool(dir);
  const r = await straced([process.execPath, '--import', 'tsx', WORKER, `file://${dir}`, 'p', 'w', '4', '1', JSON.stringify({ compactBytes: 1 })], {
    traceFile: join(dir, 'worker.trace'),
  });
  t.equal(r.code, 0, `the worker allocated 4 addresses ${r.stderr}`);
  const acks = checkAcks(r.calls, { root: dir, ackPid: r.rootPid, ack: /\\"cid\\"/ });
  t.equal(acks.length, 4, 'four acknowledgements');
  for (const [i, a] of acks.entries()) {
    t.same(a.renamed.sort(), [join(dir, 'journal.log'), join(dir, 'snapshot.json')], `ack ${i}: snapshot and journal were replaced`);
    t.ok(a.written.includes(join(dir, 'snapshot.json.tmp')) && a.written.includes(join(dir, 'journal.log')), `ack ${i}: written`);
    t.same(a.unsynced, [], `ack ${i}: nothing unsynced`);
  }
});
