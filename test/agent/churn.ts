// The agent killed with SIGKILL in the middle of a churn of 50 containers
// (created, restarted, removed, several at a time), twice, then restarted:
// it must converge with every running container attached once, `berth ipam
// check` clean, and no address, veth or state file leaked once all are gone.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../cli/main.js';
import { formatIp } from '../../core/address.js';
import { openStore } from '../../ipam/open-store.js';
import { agentConfig, bridgeNetwork, startAgent, waitFor } from '../helpers/agent.js';
import { skipWithoutDocker, startDocker } from '../helpers/docker.js';
import { skipWithoutNetns } from '../helpers/netns.js';
import { skipWithoutRedis, startRedis } from '../helpers/redis.js';

interface Att {
  name: string;
  containerId: string;
  ip: string | null;
  phase: string;
}

const TOTAL = 50;

/** Runs fns with at most `n` at a time. */
async function limited(n: number, fns: Array<() => Promise<void>>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < fns.length) await fns[next++]!();
    }),
  );
}

if (!skipWithoutNetns(t) && !skipWithoutRedis(t) && !skipWithoutDocker(t)) t.test('kill -9 of the agent during a churn of 50 containers', async (t) => {
  const dir = t.testdir();
  const redis = await startRedis({ durable: true });
  t.teardown(() => redis.stop());
  const docker = await startDocker();
  t.teardown(() => docker.stop());
  const store = redis.freshUrl();
  const io = { stdout: { write: () => true }, stderr: { write: (s: string) => process.stderr.write(s) }, env: {} };
  const { netDir, bridge } = await bridgeNetwork(t, { dir, store, network: 'churn', pool: 'churn', subnet: '10.211.0.0/24', gateway: '10.211.0.1', hold: 0, bridgePrefix: 'brch' });
  const stateDir = join(dir, 'state');
  const agent = await startAgent(dir, agentConfig(dir, store, netDir, docker));
  t.teardown(() => agent.kill('SIGKILL'));
  const must = async (args: string[]) => {
    const r = await docker.run(args);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };

  // churn: create all 50 (4 at a time); each fifth is restarted, every other one removed
  const names = Array.from({ length: TOTAL }, (_, i) => `c${i}`);
  let created = 0;
  const killer = (async () => {
    await waitFor('a third of the containers', () => (created >= TOTAL / 3 ? true : undefined), 120000);
    await agent.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 500)); // churn goes on while it is dead
    await agent.restart();
    await waitFor('two thirds of the containers', () => (created >= (2 * TOTAL) / 3 ? true : undefined), 120000);
    await agent.kill('SIGKILL');
    await agent.restart();
  })();
  await limited(
    4,
    names.map((name, i) => async () => {
      await must(['run', '-d', '--network', 'none', '--name', name, '--label', 'berth.network=churn', docker.image, 'sleep', '3600']);
      created++;
      if (i % 5 === 0) await must(['restart', '-t', '0', name]);
      if (i % 2 === 1) await must(['rm', '-f', name]);
    }),
  );
  await killer;
  const running = names.filter((_, i) => i % 2 === 0);
  t.equal(running.length, 25);

  const attachments = async () => (await agent.get<Att[]>('/v1/attachments')).body;
  const converged = await waitFor(
    'the agent to converge',
    async () => {
      const list = await attachments();
      const ok = list.length === running.length && list.every((a) => a.phase === 'attached') && running.every((n) => list.some((a) => a.name === n));
      return ok ? list : undefined;
    },
    120000,
  );
  t.equal(converged.length, running.length, 'one attachment per running container');
  const ips = converged.map((a) => a.ip);
  t.equal(new Set(ips).size, ips.length, 'no address given twice');

  let checkOut = '';
  const checkCode = await main(['--store', store, 'ipam', 'check', 'churn'], { ...io, stdout: { write: (s: string) => (checkOut += s) } });
  t.equal(checkCode, 0, `berth ipam check is clean: ${checkOut}`);

  const s = await openStore(store);
  t.teardown(() => s.close());
  const allocated = (await s.listAddresses('churn')).filter((a) => a.state === 'allocated');
  t.same(allocated.map((a) => formatIp(a.ip)).sort(), [...ips].sort(), 'exactly the running containers hold addresses');
  for (const a of converged) {
    const rec = allocated.find((x) => formatIp(x.ip) === a.ip);
    t.equal(rec?.containerId, a.containerId, `${a.name}'s address is allocated to it`);
  }
  const inside = await Promise.all(running.map(async (n) => (await docker.run(['exec', n, 'ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout));
  running.forEach((n, i) => {
    const ip = converged.find((a) => a.name === n)!.ip!;
    t.match(inside[i], new RegExp(`inet ${ip.replace(/\./g, '\\.')}/24`), `${n} has ${ip} on eth0`);
  });
  const ports = () => spawnSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  t.equal(ports().length, running.length, 'one veth on the bridge per running container');

  // all gone: nothing may be left
  await must(['rm', '-f', ...running]);
  await waitFor('every attachment to go', async () => ((await attachments()).length === 0 ? true : undefined), 60000);
  t.equal((await s.listAddresses('churn')).filter((a) => a.state === 'allocated').length, 0, 'no address left allocated');
  t.equal(ports().length, 0, 'no veth left on the bridge');
  t.same(readdirSync(join(stateDir, 'attachments')), [], 'no attachment record left');
  checkOut = '';
  t.equal(await main(['--store', store, 'ipam', 'check', 'churn'], { ...io, stdout: { write: (s: string) => (checkOut += s) } }), 0, `still clean: ${checkOut}`);
});
