// Writes agent state records with syncState on (agent/state.ts) and reports
// each write once it resolves, as the agent acts on it: one line
// "done save|remove ID" on fd 1. argv = state root, records. Each record is
// saved twice (adding, attached) and every other one removed, one after
// another; then as many again at once.
import { writeSync } from 'node:fs';
import { StateDir, type AttachmentRecord } from '../../agent/state.js';

const [root, countText] = process.argv.slice(2);
const count = Number(countText);
const state = new StateDir(root!, true);
state.load();

function record(id: string, phase: AttachmentRecord['phase']): AttachmentRecord {
  return {
    containerId: id,
    name: id,
    ifname: 'eth0',
    intent: { network: 'n', owner: id, lb: {} },
    network: { cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'x' }], file: '/f' },
    phase,
    pid: 1,
    nsInode: 2,
    createdAt: '',
    updatedAt: '',
    attempts: 0,
  } as AttachmentRecord;
}

function done(what: string): void {
  writeSync(1, `done ${what}\n`);
}

async function lifecycle(id: string, remove: boolean): Promise<void> {
  await state.save(record(id, 'adding'));
  done(`save ${id}`);
  await state.save(record(id, 'attached'));
  done(`save ${id}`);
  if (remove) {
    await state.remove(id);
    done(`remove ${id}`);
  }
}

for (let i = 0; i < count; i++) await lifecycle(`s${i}`, i % 2 === 1);
await Promise.all(Array.from({ length: count }, (_, i) => lifecycle(`p${i}`, i % 2 === 1)));
