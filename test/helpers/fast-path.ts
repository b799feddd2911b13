// Runs a test file's tests again on the CNI fast path: a berth agent with no
// Docker is started for the file, and BERTH_AGENT_SOCKET names it for every
// plugin the tests run (runCni, podman and the reference plugins pass the
// environment on). A last test checks that the agent did serve the calls, so
// a fast path that silently fell back to Node fails.
import { join } from 'node:path';
import t from 'tap';
import { shortDir, startAgent, type AgentProcess } from './agent.js';
import { BIN } from './cni.js';

/** The fast-path calls the agent has served (berth_agent_cni_calls_total), those with every label given ('plugin="berth-ipam",result="ok"', in any order), or all. */
export async function cniCallsServed(agent: AgentProcess, labels = ''): Promise<number> {
  const { body } = await agent.get<string>('/metrics');
  const want = labels ? labels.split(',') : [];
  return String(body)
    .split('\n')
    .filter((l) => l.startsWith('berth_agent_cni_calls_total{') && want.every((w) => l.includes(w)))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

/** Starts the agent, points the plugins at it, then loads the tests (`load`: an import of the test file). */
export async function onFastPath(load: () => Promise<unknown>): Promise<void> {
  const dir = shortDir();
  const agent = await startAgent(dir, {
    store: `file://${join(dir, 'store')}`,
    cniConfDir: join(dir, 'net.d'),
    cniBinDir: BIN.replace(/\/$/, ''),
    dockerSocket: '',
    containerdSocket: '',
    socket: join(dir, 'agent.sock'),
    stateDir: join(dir, 'state'),
  });
  process.env.BERTH_AGENT_SOCKET = agent.socket;
  await load();
  t.test('the calls above went through the agent (the fast path), not Node', async (t) => {
    const served = await cniCallsServed(agent);
    t.ok(served > 0, `the agent served ${served} calls`);
  });
  t.teardown(() => agent.kill('SIGTERM'));
}
