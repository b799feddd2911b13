// The agent against a real dockerd, a real redis-server and a real Linux
// bridge: labelled containers get a pool IP reachable from the host,
// unlabelled ones are left alone, restart keeps the IP, berth.ip is honoured,
// removal frees the address, bad labels are reported, a DEL during a Redis
// outage is queued and completed, events reach the Redis stream and a webhook.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { DockerEngine } from '../../agent/docker.js';
import { main } from '../../cli/main.js';
import { parseIp } from '../../core/address.js';
import { openStore } from '../../ipam/open-store.js';
import { agentConfig, bridgeNetwork, shortDir, startAgent, waitFor } from '../helpers/agent.js';
import { capture } from '../helpers/capture.js';
import { skipWithoutDocker, startDocker } from '../helpers/docker.js';
import { skipWithoutNetns } from '../helpers/netns.js';
import { skipWithoutRedis, startRedis } from '../helpers/redis.js';

interface Att {
  name: string;
  containerId: string;
  ip: string | null;
  phase: string;
  owner: string;
  lastError?: string;
}

if (!skipWithoutNetns(t) && !skipWithoutRedis(t) && !skipWithoutDocker(t)) t.test('the agent on a real Docker engine', async (t) => {
  const dir = t.testdir();
  const redis = await startRedis({ durable: true });
  t.teardown(() => redis.stop());
  const docker = await startDocker();
  t.teardown(() => docker.stop());
  const store = redis.freshUrl();
  const quiet = { stdout: { write: () => true }, stderr: { write: (s: string) => process.stderr.write(s) }, env: {} };
  const { netDir, bridge } = await bridgeNetwork(t, { dir, store, network: 'agentnet', pool: 'agentp', subnet: '10.210.0.0/24', gateway: '10.210.0.1', hold: 600, bridgePrefix: 'brag', storeInNetwork: false });
  // a webhook receiver: the CMDB's view of the events; every request it answered, in order
  const hooked: Array<Record<string, string>> = [];
  const answered: Array<{ status: number; body: string }> = [];
  let failNext = 2; // the first deliveries fail: the agent must retry
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (failNext-- > 0) {
        answered.push({ status: 503, body });
        res.writeHead(503).end();
        return;
      }
      answered.push({ status: 204, body });
      hooked.push(JSON.parse(body) as Record<string, string>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => hook.close(() => r())));
  const hookPort = (hook.address() as { port: number }).port;

  const agent = await startAgent(
    dir,
    agentConfig(dir, store, netDir, docker, {
      events: { webhook: { url: `http://127.0.0.1:${hookPort}/events`, retries: 5, timeoutMs: 2000 } },
      // each state write fsync'd (file and directory): the records it writes are read back below
      syncState: true,
      // the containers below may use their own name or a team/ key, and no load-balancer service, on agentnet
      policy: { agentnet: { owners: ['{name}', 'team/*'], services: [] } },
    }),
  );
  t.teardown(() => agent.kill('SIGKILL'));

  const attachments = async () => (await agent.get<Att[]>('/v1/attachments')).body;
  const reconciliations = async () => Number(/^berth_agent_reconciliations_total (\d+)$/m.exec((await agent.get<string>('/metrics')).body)?.[1]);
  /** Waits for n whole reconciliations to finish after the call (the one under way, if any, may have started before it: n >= 2 makes sure of one that did not). */
  const moreReconciliations = async (n: number) => {
    const from = await reconciliations();
    await waitFor(`${n} more reconciliations`, async () => ((await reconciliations()) >= from + n ? true : undefined));
  };
  const attachedIp = (name: string) =>
    waitFor(`${name} to be attached`, async () => (await attachments()).find((a) => a.name === name && a.phase === 'attached')?.ip ?? undefined);
  const run = async (...args: string[]) => {
    const r = await docker.run(['run', '-d', '--network', 'none', ...args, docker.image, 'sleep', '3600']);
    if (r.code !== 0) throw new Error(`docker run failed: ${r.stderr}`);
    return r.stdout.trim();
  };
  const addrsIn = async (name: string) => (await docker.run(['exec', name, 'ip', '-o', '-4', 'addr'])).stdout;
  const addressState = async (ip: string) => {
    const s = await openStore(store);
    try {
      return await s.getAddress('agentp', parseIp(ip, 'ip').hex);
    } finally {
      await s.close();
    }
  };

  t.test('a labelled container gets a pool address reachable from the host', async (t) => {
    await run('--name', 'web1', '--label', 'berth.network=agentnet');
    const ip = await attachedIp('web1');
    t.match(ip, /^10\.210\.0\.\d+$/, 'an address of the pool');
    t.match(await addrsIn('web1'), new RegExp(`eth0\\s+inet ${ip.replace(/\./g, '\\.')}/24`), 'the container has it on eth0');
    const ping = spawnSync('/bin/busybox', ['ping', '-c', '2', '-W', '2', ip], { encoding: 'utf8' });
    t.equal(ping.status, 0, `the host reaches it: ${ping.stdout}${ping.stderr}`);
    const info = await addressState(ip);
    t.equal(info.state, 'allocated', "allocated in the agent's store: the network file names none, and the agent handed its own to berth-ipam");
    t.equal(info.owner, 'web1', 'the owner defaults to the container name');
    // attached once containerd had made its task, before Docker reported the start
    const line = agent.log().split('\n').find((l) => l.includes('"msg":"attached"') && l.includes('"owner":"web1"'));
    t.match(line, /"via":"containerd"/, `attached from containerd's task event: ${line}`);
    const metrics = (await agent.get<string>('/metrics')).body;
    t.match(metrics, /berth_agent_task_to_ip_seconds_count 1\b/);
    t.match(metrics, /berth_agent_containerd_connected\{socket="[^"]+"\} 1/);
  });

  t.test('every thread of the agent runs at the nice value (-10 by default), not only the main one', async (t) => {
    const task = `/proc/${agent.pid()}/task`;
    const nices = readdirSync(task).map((tid) => {
      const stat = readFileSync(`${task}/${tid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]); // field 19, nice
    });
    t.ok(nices.length > 4, `${nices.length} threads: V8's, libuv's pool, the plugin thread`);
    t.same([...new Set(nices)], [-10], 'all at -10');
  });

  t.test('a second agent on the host is refused, even with another socket, and leaves the first one alone', async (t) => {
    const second = await startAgent(dir, { ...agentConfig(dir, store, netDir, docker), socket: join(shortDir(), 'second.sock') }).then(
      () => 'started',
      (err: Error) => err.message,
    );
    t.match(second, /the agent exited 1: .*another berth agent \(pid \d+\) holds .*agent\.lock: one agent runs per host/, 'refused, naming the holder');
    t.equal(Number(/pid (\d+)/.exec(second)?.[1]), agent.pid(), 'the first agent, by its pid');
    t.equal((await agent.get('/readyz')).status, 200, 'the first one runs on');
    t.equal(await attachedIp('web1'), (await attachments()).find((a) => a.name === 'web1')?.ip, 'and keeps its attachment');
  });

  t.test('an unlabelled container is left alone', async (t) => {
    await run('--name', 'plain');
    const startedAt = Date.parse((await docker.run(['inspect', '-f', '{{.State.StartedAt}}', 'plain'])).stdout.trim());
    t.ok(startedAt > 0, 'Docker says when it started');
    // a whole reconciliation that began after the container had started (its start is when it ended, less how long it took)
    const after = await waitFor('a reconciliation that started after the container', async () => {
      const r = (await agent.get<{ lastReconcile: { at: string; ms: number; error?: string } | null }>('/v1/status')).body.lastReconcile;
      return r && !r.error && Date.parse(r.at) - r.ms > startedAt ? r : undefined;
    });
    t.ok(after, `reconciled from ${new Date(Date.parse(after.at) - after.ms).toISOString()}, after the start at ${new Date(startedAt).toISOString()}`);
    t.notOk((await attachments()).some((a) => a.name === 'plain'), 'no attachment');
    t.notMatch(await addrsIn('plain'), /eth0/, 'no interface but lo');
  });

  t.test('docker restart keeps the address and the MAC: the host, which cached the MAC, reaches it with its first ping', async (t) => {
    const before = await attachedIp('web1');
    const macIn = async () => /link\/ether (\S+)/.exec((await docker.run(['exec', 'web1', 'ip', 'link', 'show', 'eth0'])).stdout)?.[1];
    const macBefore = await macIn();
    t.equal(spawnSync('/bin/busybox', ['ping', '-c', '1', '-W', '2', before]).status, 0, 'the host reaches it');
    t.match(spawnSync('ip', ['neigh', 'show', before], { encoding: 'utf8' }).stdout, new RegExp(`lladdr ${macBefore}`), "the host's neighbour entry holds its MAC");
    const pidBefore = (await docker.run(['inspect', '-f', '{{.State.Pid}}', 'web1'])).stdout.trim();
    const seen = await capture(t, '', bridge);
    t.equal((await docker.run(['restart', '-t', '1', 'web1'])).code, 0, 'restarted');
    const pidAfter = (await docker.run(['inspect', '-f', '{{.State.Pid}}', 'web1'])).stdout.trim();
    t.not(pidAfter, pidBefore, 'a new process, so a new namespace');
    const after = await waitFor('web1 to be attached in its new namespace', async () => ((await addrsIn('web1')).includes(before) ? before : undefined));
    t.equal(after, before, 'the same address');
    t.equal(await macIn(), macBefore, 'the same MAC');
    const ping = spawnSync('/bin/busybox', ['ping', '-c', '1', '-W', '1', before], { encoding: 'utf8' });
    t.equal(ping.status, 0, `the first ping after the restart is answered within 1 s: ${ping.stdout}${ping.stderr}`);
    const garp = new RegExp(`^${macBefore} > ff:ff:ff:ff:ff:ff, ethertype ARP .*Request who-has ${before.replace(/\./g, '\\.')} tell ${before.replace(/\./g, '\\.')},`);
    t.equal((await seen.waitForCount(garp, 3)).length, 3, 'the bridge saw it announce its address three times (the agent sends the repeats on timers)');
    await seen.stop();
    t.equal(await attachedIp('web1'), before);
  });

  t.test('berth.ip and berth.owner are honoured', async (t) => {
    await run('--name', 'fixed', '--label', 'berth.network=agentnet', '--label', 'berth.ip=10.210.0.77', '--label', 'berth.owner=team/fixed-0');
    t.equal(await attachedIp('fixed'), '10.210.0.77');
    t.equal((await addressState('10.210.0.77')).owner, 'team/fixed-0');
  });

  t.test('with syncState on, each attachment is one record on disk, as /v1/attachments shows it', async (t) => {
    const records = join(dir, 'state', 'attachments');
    const files = readdirSync(records).filter((f) => f.endsWith('.json'));
    const list = await attachments();
    t.ok(list.some((a) => a.name === 'fixed') && list.some((a) => a.name === 'web1'), 'web1 and fixed are attached');
    for (const a of list) {
      const mine = files.filter((f) => f.startsWith(`${a.containerId}.`));
      t.equal(mine.length, 1, `${a.name}: one file, its latest generation (${mine.join(', ')})`);
      const rec = JSON.parse(readFileSync(join(records, mine[0]!), 'utf8')) as Record<string, unknown>;
      t.match(rec, { containerId: a.containerId, name: a.name, phase: a.phase, ip: a.ip, intent: { owner: a.owner, network: 'agentnet' } }, `${a.name}: the record says what the agent does`);
    }
    t.equal(files.length, list.length, 'and no other record');
  });

  t.test('removing the container frees its address (held for its owner)', async (t) => {
    const ip = await attachedIp('fixed');
    t.equal((await docker.run(['rm', '-f', 'fixed'])).code, 0);
    await waitFor('the attachment to go', async () => ((await attachments()).some((a) => a.name === 'fixed') ? undefined : true));
    const info = await addressState(ip);
    t.not(info.state, 'allocated', 'no longer allocated');
    t.equal(info.state, 'reserved', 'held for the owner for the hold time');
    t.equal(info.owner, 'team/fixed-0');
  });

  t.test('labelled containers that exit at once leave no address and no interface behind', async (t) => {
    const pool = async () => (await agent.get<Array<{ conf: { name: string }; allocated: number }>>('/v1/pools')).body.find((p) => p.conf.name === 'agentp')!.allocated;
    const ports = () => readdirSync(`/sys/class/net/${bridge}/brif`).length;
    const before = { allocated: await pool(), ports: ports(), attachments: (await attachments()).length };
    // their task is made (and attached) while the process waits to be started; it exits right after
    const names = Array.from({ length: 6 }, (_, i) => `brief${i}`);
    const started = await Promise.all(names.map((n) => docker.run(['run', '-d', '--network', 'none', '--name', n, '--label', 'berth.network=agentnet', docker.image, 'true'])));
    t.same(started.map((r) => r.code), names.map(() => 0), 'all started');
    t.equal((await docker.run(['wait', ...names])).code, 0, 'and exited');
    await waitFor('none of them attached', async () => ((await attachments()).some((a) => a.name.startsWith('brief')) ? undefined : true), 60000);
    t.equal(await pool(), before.allocated, 'as many addresses allocated as before');
    // the kernel may still be taking down an exited container's namespace (and the veth in it)
    await waitFor(`${bridge}'s ports back to ${before.ports}`, () => (ports() === before.ports ? true : undefined), 20000).catch(() => undefined);
    t.equal(ports(), before.ports, `as many ports on ${bridge} as before`);
    t.equal((await attachments()).length, before.attachments);
    await docker.run(['rm', '-f', ...names]);
  });

  t.test('bad labels are reported by name and attach nothing', async (t) => {
    await run('--name', 'badip', '--label', 'berth.network=agentnet', '--label', 'berth.ip=10.210.0.999');
    await run('--name', 'nonet', '--label', 'berth.network=nosuchnet');
    const status = await waitFor('both problems', async () => {
      const s = (await agent.get<{ problems: Array<{ name: string; error: string }> }>('/v1/status')).body;
      return s.problems.length >= 2 ? s : undefined;
    });
    t.match(status.problems.find((p) => p.name === 'badip')?.error, /berth\.ip/, 'the bad label is named');
    t.match(status.problems.find((p) => p.name === 'nonet')?.error, /network "nosuchnet" is not configured/);
    t.notOk((await attachments()).some((a) => a.name === 'badip' || a.name === 'nonet'));
    let out = '';
    const code = await main(['status', '--socket', agent.socket], { stdout: { write: (s: string) => (out += s) }, stderr: quiet.stderr, env: {} });
    t.equal(code, 0, 'berth status works');
    t.match(out, /2 labelled containers not attached/);
    t.match(out, new RegExp(`containerd:\\s+connected at ${docker.containerdSocket.replace(/[.]/g, '\\.')} \\(attaching as soon as a task exists\\)`));
    await docker.run(['rm', '-f', 'badip', 'nonet']);
  });

  t.test('the label policy: an owner key or a service it does not allow gets no address and is reported', async (t) => {
    const before = (await agent.get<Array<{ conf: { name: string }; allocated: number }>>('/v1/pools')).body.find((p) => p.conf.name === 'agentp')!.allocated;
    await run('--name', 'thief', '--label', 'berth.network=agentnet', '--label', 'berth.owner=web1');
    await run('--name', 'sneaky', '--label', 'berth.network=agentnet', '--label', 'berth.lb.admin=8080');
    const status = await waitFor('both refusals', async () => {
      const st = (await agent.get<{ problems: Array<{ name: string; error: string }> }>('/v1/status')).body;
      return ['thief', 'sneaky'].every((n) => st.problems.some((p) => p.name === n)) ? st : undefined;
    });
    t.match(status.problems.find((p) => p.name === 'thief')?.error, /label berth\.owner: owner "web1" is not allowed on network "agentnet": the agent's policy allows \{name\}, team\/\*/);
    t.match(status.problems.find((p) => p.name === 'sneaky')?.error, /label berth\.lb\.admin: service "admin" is not allowed on network "agentnet"/);
    t.notOk((await attachments()).some((a) => a.name === 'thief' || a.name === 'sneaky'), 'neither attached');
    t.equal((await agent.get<Array<{ conf: { name: string }; allocated: number }>>('/v1/pools')).body.find((p) => p.conf.name === 'agentp')!.allocated, before, 'no address taken');
    t.match((await agent.get<string>('/metrics')).body, /berth_agent_policy_refusals_total\{label="berth\.owner",network="agentnet"\} 1\b/);
    const prefix = new URL(store).searchParams.get('prefix') ?? 'berth';
    await waitFor('the refusal events', () => ((redis.cli('XRANGE', `${prefix}:events`, '-', '+').match(/refused/g) ?? []).length >= 2 ? true : undefined));
    await moreReconciliations(2); // counted once, not again at the reconciliations after
    t.match((await agent.get<string>('/metrics')).body, /berth_agent_policy_refusals_total\{label="berth\.owner",network="agentnet"\} 1\b/, 'once per reason, not at every reconciliation');
    await docker.run(['rm', '-f', 'thief', 'sneaky']);
  });

  t.test('a network whose pool does not exist: the container is reported, its ADD tried again only after a backoff, and no bridge is made', async (t) => {
    const bridge = `brnp${process.pid % 10000}`;
    t.teardown(() => void spawnSync('ip', ['link', 'del', bridge]));
    writeFileSync(
      join(netDir, '20-nopool.conflist'),
      JSON.stringify({ cniVersion: '1.1.0', name: 'nopoolnet', plugins: [{ type: 'berth-bridge', bridge, isGateway: true, ipam: { type: 'berth-ipam', pool: 'nosuchpool' } }] }),
    );
    t.teardown(() => rmSync(join(netDir, '20-nopool.conflist'), { force: true }));
    const id = await run('--name', 'nopool', '--label', 'berth.network=nopoolnet');
    const tries = () =>
      agent
        .log()
        .split('\n')
        .filter((l) => l.includes('"msg":"attach failed"') && l.includes(id))
        .map((l) => (JSON.parse(l) as { time: number }).time);
    const three = await waitFor('three tries', () => (tries().length >= 3 ? tries() : undefined));
    // retryInterval 0.2 s here: the waits are at least 0.2 s, then 0.4 s (no second try on Docker's start event)
    t.ok(three[1]! - three[0]! >= 200, `the second try ${three[1]! - three[0]!} ms after the first`);
    t.ok(three[2]! - three[1]! >= 400, `the third ${three[2]! - three[1]!} ms after the second`);
    const s = (await agent.get<{ problems: Array<{ name: string; error: string; attempts?: number }> }>('/v1/status')).body;
    t.match(s.problems.find((p) => p.name === 'nopool'), { error: /pool "nosuchpool" does not exist/, attempts: Number }, 'reported with the pool named');
    t.equal(spawnSync('ip', ['link', 'show', bridge]).status, 1, 'no bridge was made for it');
    t.notMatch(agent.log(), /nothing to release/, 'the undo of the refused ADD is no warning or error');
    await docker.run(['rm', '-f', 'nopool']);
    await waitFor('its problem to go', async () => ((await agent.get<{ problems: Array<{ name: string }> }>('/v1/status')).body.problems.some((p) => p.name === 'nopool') ? undefined : true));
  });

  t.test('re-assertion: a record the store lost is taken again; an address the store gives someone else is a reported conflict', async (t) => {
    await run('--name', 'keeper', '--label', 'berth.network=agentnet');
    const ip = await attachedIp('keeper');
    const hexIp = parseIp(ip, 'ip').hex;
    const id = (await attachments()).find((a) => a.name === 'keeper')!.containerId;
    const s = await openStore(store);
    t.teardown(() => s.close());
    // lost behind the agent's back, as a failover to a replica that never had it would lose it
    await s.release('agentp', { containerId: id, ifname: 'eth0', actor: 'test' });
    t.equal((await s.getAddress('agentp', hexIp)).state, 'reserved', 'released in the store, held for its owner');
    await waitFor('the agent to take it again', async () => ((await s.getAddress('agentp', hexIp)).containerId === id && (await s.getAddress('agentp', hexIp)).state === 'allocated' ? true : undefined));
    t.match((await agent.get<string>('/metrics')).body, /berth_agent_reasserted_total\{pool="agentp"\} 1\b/, 'counted');
    t.match((await s.history('agentp', { ip: hexIp }))[0], { event: 'allocate', containerId: id, actor: /^agent@/ }, 'taken by the agent');
    // now really someone else's
    await s.release('agentp', { containerId: id, ifname: 'eth0', actor: 'test' });
    await s.unreserve('agentp', hexIp, { actor: 'test' });
    await s.allocate('agentp', { containerId: 'intruder', ifname: 'eth0', owner: 'other', ip: hexIp, actor: 'test' });
    const status = await waitFor('the conflict', async () => {
      const st = (await agent.get<{ conflicts: Array<{ name: string; ip: string; holder: string }> }>('/v1/status')).body;
      return st.conflicts.some((c) => c.name === 'keeper') ? st : undefined;
    });
    t.match(status.conflicts.find((c) => c.name === 'keeper'), { ip, holder: /allocated to intruder\/eth0 \(owner other/ });
    t.match((await agent.get<string>('/metrics')).body, /berth_agent_address_conflicts 1\b/);
    t.match(await s.getAddress('agentp', hexIp), { state: 'allocated', containerId: 'intruder' }, 'nothing silently overwritten');
    const hist = await s.history('agentp', { ip: hexIp });
    t.match(hist[0], { event: 'conflict', containerId: 'intruder', note: new RegExp(`in use by ${id}/eth0 \\(owner keeper\\)`) }, 'recorded in the history');
    await moreReconciliations(2); // the conflict is seen again at each
    t.equal((await s.history('agentp', { ip: hexIp })).filter((e) => e.event === 'conflict').length, 1, 'once, not at every reconciliation');
    t.match(await addrsIn('keeper'), new RegExp(ip.replace(/\./g, '\\.')), 'the container keeps running with its address');
    const prefix = new URL(store).searchParams.get('prefix') ?? 'berth';
    await waitFor('the events in the stream', () => (/reasserted[\s\S]*conflict/.test(redis.cli('XRANGE', `${prefix}:events`, '-', '+')) ? true : undefined));
    // resolved: the intruder goes, the keeper gets its address back
    await s.release('agentp', { containerId: 'intruder', ifname: 'eth0', actor: 'test' });
    await s.unreserve('agentp', hexIp, { actor: 'test' });
    await waitFor('the conflict to clear', async () => ((await agent.get<{ conflicts: unknown[] }>('/v1/status')).body.conflicts.length === 0 ? true : undefined));
    t.match(await s.getAddress('agentp', hexIp), { state: 'allocated', containerId: id });
    await docker.run(['rm', '-f', 'keeper']);
  });

  t.test('a DEL while Redis is down is queued and completed when it is back', async (t) => {
    await run('--name', 'outage', '--label', 'berth.network=agentnet');
    const ip = await attachedIp('outage');
    await redis.stop();
    t.equal((await docker.run(['rm', '-f', 'outage'])).code, 0);
    const queued = await waitFor('the DEL to fail and be queued', async () => (await attachments()).find((a) => a.name === 'outage' && a.phase === 'deleting' && a.lastError));
    t.ok(queued.lastError, `queued with the error: ${queued.lastError}`);
    await redis.start();
    await waitFor('the queued DEL to complete', async () => ((await attachments()).some((a) => a.name === 'outage') ? undefined : true), 60000);
    t.not((await addressState(ip)).state, 'allocated', 'the address was released, not leaked');
  });

  t.test('metrics, pools and events', async (t) => {
    const metrics = (await agent.get<string>('/metrics')).body;
    t.match(metrics, /berth_agent_attachments\{network="agentnet",phase="attached"\} 1/);
    t.match(metrics, /berth_agent_cni_duration_seconds_count\{network="agentnet",op="add"\} \d+/);
    t.match(metrics, /berth_pool_addresses\{pool="agentp",state="allocated"\} 1/);
    t.match(metrics, /berth_agent_errors_total\{network="agentnet",op="del"\} [1-9]/, 'the failed DEL was counted');
    const pools = (await agent.get<Array<{ conf: { name: string }; allocated: number }>>('/v1/pools')).body;
    t.equal(pools.find((p) => p.conf.name === 'agentp')?.allocated, 1);
    const prefix = new URL(store).searchParams.get('prefix') ?? 'berth';
    const stream = redis.cli('XRANGE', `${prefix}:events`, '-', '+');
    t.match(stream, /attached/, 'attach events in the Redis stream');
    t.match(stream, /detached/, 'detach events in the Redis stream');
    t.match(stream, /team\/fixed-0/, 'with the owner');
    const got = await waitFor('webhook deliveries', () => (hooked.some((e) => e.type === 'detached' && e.name === 'outage') ? hooked : undefined));
    const web1 = got.find((e) => e.type === 'attached' && e.name === 'web1');
    t.ok(web1, 'the webhook got web1');
    t.match(web1, { network: 'agentnet', owner: 'web1', ip: /^10\.210\.0\./ });
    // the retries: each event the receiver refused arrived later, the same event, after its refusals
    const refused = answered.filter((a) => a.status === 503);
    t.equal(refused.length, 2, 'the receiver answered 503 twice');
    for (const r of refused) {
      const last = answered.lastIndexOf(r);
      const delivered = answered.findIndex((a, i) => i > last && a.status === 204 && a.body === r.body);
      t.ok(delivered > last, `the refused ${JSON.parse(r.body).type} event of ${JSON.parse(r.body).name} was delivered after it was refused (request ${delivered + 1} of ${answered.length})`);
    }
    t.equal(new Set(answered.filter((a) => a.status === 204).map((a) => a.body)).size, answered.filter((a) => a.status === 204).length, 'and each event was delivered once');
  });

  t.test('berth attachments prints the table', async (t) => {
    let out = '';
    t.equal(await main(['attachments', '--socket', agent.socket], { stdout: { write: (s: string) => (out += s) }, stderr: quiet.stderr, env: {} }), 0);
    t.match(out, /^NAME\s+CONTAINER\s+NETWORK\s+IP/);
    t.match(out, /web1\s+[0-9a-f]{12}\s+agentnet\s+10\.210\.0\.\d+\s+web1\s+attached/);
  });

  t.test('the event stream outlives a quiet spell longer than the request timeout', async (t) => {
    // docker-modem's request timeout is an idle timeout; on the event stream it
    // dropped the connection after every quiet spell, and each reconnection
    // ran a full reconciliation
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const engine = new DockerEngine(docker.socket, log, 300);
    t.teardown(() => engine.stop());
    let resyncs = 0;
    const starts: string[] = [];
    engine.watch((e) => e.action === 'start' && starts.push(e.id), () => resyncs++);
    await waitFor('the stream', () => (engine.connected ? true : undefined));
    await new Promise((r) => setTimeout(r, 1500));
    t.equal(resyncs, 1, 'connected once, never lost');
    t.same(lines, [], 'no warning');
    t.ok((await engine.listLabelled()).length > 0, 'inspects and lists still work');
    const id = await run('--name', 'quiet1');
    await waitFor('its start event', () => (starts.includes(id) ? true : undefined));
    await docker.run(['rm', '-f', 'quiet1']);
  });

  t.test('SIGTERM shuts down cleanly and leaves attachments in place', async (t) => {
    const ip = await attachedIp('web1');
    t.equal(await agent.kill('SIGTERM'), 0, 'exits 0');
    t.match(agent.log(), /"msg":"berth agent stopped"/);
    t.notMatch(agent.log(), /\(node:\d+\) (\w+)?Warning/, 'and Node printed no warning in all its run (its log is only pino lines)');
    t.equal((await addressState(ip)).state, 'allocated', 'the container keeps its address');
    t.match(await addrsIn('web1'), new RegExp(ip.replace(/\./g, '\\.')));
  });
});
