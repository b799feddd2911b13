// The master SIGKILLed under Sentinel while ADDs run from several processes,
// its replicas behind (their replication link cut for a moment first: the lag
// that a crash turns into loss). No ADD that was answered may lose its address
// and no address may be answered twice. The control runs the same with
// ?replicas=0 and must lose answered ADDs, or the test could not fail.
import t, { type Test } from 'tap';
import { errorCounts, failoverWorkers, reconcile } from '../helpers/failover.js';
import { cut, isolate, rulesInForce, skipWithoutIptables } from '../helpers/iptables.js';
import { skipWithoutRedis } from '../helpers/redis.js';
import { REPLICA_SOURCE, startHaRedis, until } from '../helpers/sentinel.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scenario(t: Test, query: string) {
  const ha = await startHaRedis({ replicas: 2 });
  t.teardown(() => ha.stop());
  const url = ha.sentinels.url(`timeout=1000${query}`);
  const workers = await failoverWorkers(url, '10.60.0.0/16');
  // the replicas fall behind: the master's changes stop reaching them
  const lag = cut(t, isolate(ha.master.port, REPLICA_SOURCE));
  const cutAt = Date.now();
  await sleep(1500);
  const killedAt = Date.now();
  await ha.master.stop('SIGKILL');
  const promoted = await until('the sentinels to promote a replica', () => {
    const port = ha.sentinels.agreedMaster();
    return port !== undefined && port !== ha.master.port ? port : undefined;
  });
  const promotedAt = Date.now();
  // healed only now: the dead master's kernel still retransmits what it had sent, and would let the replicas catch up
  lag.heal();
  await workers.acked(60, promotedAt);
  const followed = await workers.followed(promotedAt);
  const ends = await workers.stop();
  const r = await reconcile(url, 'p', workers.acks);
  const between = workers.acks.filter((a) => a.at >= cutAt && a.at < killedAt).length;
  return { r, ends, between, promoted, followed, acks: workers.acks.length, firstAfter: Math.min(...workers.acks.filter((a) => a.at > killedAt).map((a) => a.at)) - killedAt };
}

if (!skipWithoutRedis(t) && !skipWithoutIptables(t)) {
  t.test('SIGKILL of a lagging master: replicas=1 (the default) loses no answered ADD and answers none twice', async (t) => {
    const { r, ends, between, promoted, followed, acks, firstAfter } = await scenario(t, '');
    const errors = errorCounts(ends);
    t.comment(`${acks} ADDs answered, ${between} while the replicas lagged; first after the kill in ${firstAfter} ms (new master :${promoted}); errors ${JSON.stringify(errors)}`);
    t.same(r.lost.slice(0, 5), [], `no answered ADD lost (${r.lost.length})`);
    t.same(r.duplicates.slice(0, 5), [], `no address answered twice (${r.duplicates.length})`);
    t.same(r.findings, [], 'the pool is consistent');
    t.ok(followed.every((n) => n > 0), `every client followed the new master: kept, one-shot, the agent's (${followed.join(', ')} ADDs after)`);
    t.ok((errors.UNCONFIRMED ?? 0) > 0, 'while the replicas lagged, changes were refused as unconfirmed, not answered');
    t.ok(ends.every((e) => Object.keys(e.errors).every((k) => k === 'UNCONFIRMED' || k === 'STORE_UNAVAILABLE')), 'every failure was CNI 11: try again later');
  });

  t.test('control: the same with ?replicas=0 loses answered ADDs', async (t) => {
    const { r, between, acks } = await scenario(t, '&replicas=0');
    t.comment(`${acks} ADDs answered, ${between} while the replicas lagged; ${r.lost.length} lost, ${r.duplicates.length} answered twice`);
    t.ok(between > 0, 'ADDs were answered while the replicas lagged');
    t.ok(r.lost.length > 0, `answered ADDs were lost (${r.lost.length}): the assertion of the test above can fail`);
  });

  t.test('no rule is left behind', async (t) => {
    t.same(rulesInForce(), []);
  });
}
