// A failover that loses a record, repaired by the agent: the agent's store is
// a Redis behind Sentinel, run with ?replicas=0 (the setting that lets a
// failover lose acknowledged changes); the replica is cut off, a container is
// attached (its allocation only on the master), the master is killed and the
// replica promoted without it. The agent, told by its store connection that
// it is back, re-asserts the attachment on the new master at once (the
// periodic reconciliation is an hour away here).
import t from 'tap';
import { parseIp } from '../../core/address.js';
import { openStore } from '../../ipam/open-store.js';
import { agentConfig, bridgeNetwork, startAgent, waitFor } from '../helpers/agent.js';
import { skipWithoutDocker, startDocker } from '../helpers/docker.js';
import { cut, isolate, rulesInForce, skipWithoutIptables } from '../helpers/iptables.js';
import { skipWithoutNetns } from '../helpers/netns.js';
import { skipWithoutRedis } from '../helpers/redis.js';
import { REPLICA_SOURCE, startHaRedis, until } from '../helpers/sentinel.js';

if (!skipWithoutNetns(t) && !skipWithoutRedis(t) && !skipWithoutDocker(t) && !skipWithoutIptables(t)) {
  t.test('a record lost in a Sentinel failover is taken again by the agent as soon as its store is back', async (t) => {
    const dir = t.testdir();
    const ha = await startHaRedis({ replicas: 1, downAfterMs: 1000 });
    t.teardown(() => ha.stop());
    const store = ha.sentinels.url('replicas=0&timeout=1000');
    const docker = await startDocker();
    t.teardown(() => docker.stop());
    const { netDir } = await bridgeNetwork(t, { dir, store, network: 'hanet', pool: 'hap', subnet: '10.218.0.0/24', gateway: '10.218.0.1', hold: 600, bridgePrefix: 'brha' });
    const agent = await startAgent(dir, agentConfig(dir, store, netDir, docker, { reconcileInterval: 3600 }));
    t.teardown(() => agent.kill('SIGKILL'));

    // the replica falls behind: what the master takes now is on the master alone
    const lag = cut(t, isolate(ha.master.port, REPLICA_SOURCE));
    const r = await docker.run(['run', '-d', '--network', 'none', '--name', 'kept', '--label', 'berth.network=hanet', docker.image, 'sleep', '3600']);
    t.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const ip = await waitFor('kept to be attached', async () => (await agent.get<Array<{ name: string; ip: string | null; phase: string }>>('/v1/attachments')).body.find((a) => a.name === 'kept' && a.phase === 'attached')?.ip ?? undefined);
    const hex = parseIp(ip, 'ip').hex;

    await ha.master.stop('SIGKILL');
    const promoted = await until('the sentinels to promote the replica', () => {
      const port = ha.sentinels.agreedMaster();
      return port !== undefined && port !== ha.master.port ? port : undefined;
    });
    lag.heal();
    const direct = await openStore(`redis://127.0.0.1:${promoted}/0?replicas=0`);
    t.teardown(() => direct.close());
    await waitFor('the agent to take it again on the new master', async () => {
      const a = await direct.getAddress('hap', hex);
      return a.state === 'allocated' && a.containerId === id ? true : undefined;
    }, 120000).catch((err: Error) => {
      throw new Error(`${err.message}; the agent's log ends: ${agent.log().slice(-4000)}`);
    });
    t.pass(`${ip} is allocated to kept again on the new master (:${promoted})`);
    // the new master's history of the address: the agent's allocation, and none made by the plugin before the failover
    const hist = await direct.history('hap', { ip: hex });
    t.match(hist[0], { event: 'allocate', containerId: id, actor: /^agent@/ }, 'allocated by the agent');
    t.notOk(hist.some((e) => e.event === 'allocate' && /^cni@/.test(e.actor ?? '')), 'the promoted replica never had the original allocation: it was lost, then re-taken');
    t.match(agent.log(), /the store connection is back: reconciling and re-asserting/, 'on the store coming back, not on the hourly reconciliation');
    t.match(agent.log(), /the store had lost this address: taken again for its attachment/);
    t.match((await agent.get<string>('/metrics')).body, /berth_agent_reasserted_total\{pool="hap"\} 1\b/);
    t.same(rulesInForce(), [], 'no rule left behind');
  });
}
