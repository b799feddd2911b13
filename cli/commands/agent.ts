// berth agent [--config FILE] [--cni-conf-dir DIR] ...: the per-host daemon.
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { ConfigError } from '../../agent/config.js';
import { causeOf, contextOf, reportFailure, type ArgsOf, type GlobalArgs } from '../context.js';
import { once, onceOrNone } from '../flags.js';

function agentBuilder(y: Argv<GlobalArgs>) {
  return y
    .option('config', { type: 'string', coerce: once('config'), describe: 'JSON config file (default /etc/berth/agent.json, if present)' })
    .option('cni-conf-dir', { type: 'string', coerce: once('cni-conf-dir'), describe: 'where CNI network configs are (default /etc/cni/net.d)' })
    .option('cni-bin-dir', { type: 'string', coerce: once('cni-bin-dir'), describe: 'where CNI plugins are, DIR[:DIR] (default /opt/cni/bin)' })
    .option('docker-socket', { type: 'string', coerce: onceOrNone('docker-socket'), describe: 'the Docker engine\'s socket (default /var/run/docker.sock; "" for none: the agent serves CNI calls only)' })
    .option('containerd-socket', {
      type: 'string',
      coerce: onceOrNone('containerd-socket'),
      describe: "containerd's socket, followed to attach a container as soon as its task exists (default: /run/containerd/containerd.sock and /var/run/docker/containerd/containerd.sock; \"\" for none)",
    })
    .option('socket', { type: 'string', coerce: once('socket'), describe: "the agent's API socket, root only (default /run/berth/agent.sock)" })
    .option('state-dir', { type: 'string', coerce: once('state-dir'), describe: 'where attachments are recorded (default /var/lib/berth/agent)' })
    .option('metrics-listen', { type: 'string', coerce: once('metrics-listen'), describe: 'serve /metrics and /v1/sd (Prometheus service discovery) over TCP at ADDR:PORT, read-only (default: off)' });
}

async function run(argv: ArgumentsCamelCase<ArgsOf<typeof agentBuilder>>): Promise<void> {
  const ctx = contextOf(argv);
  try {
    const { runAgent } = await import('../../agent/daemon.js');
    await runAgent({
      ...(argv.config !== undefined ? { configFile: argv.config } : {}),
      flags: {
        store: argv.store,
        cniConfDir: argv.cniConfDir,
        cniBinDir: argv.cniBinDir,
        dockerSocket: argv.dockerSocket,
        containerdSocket: argv.containerdSocket,
        socket: argv.socket,
        stateDir: argv.stateDir,
        metricsListen: argv.metricsListen,
      },
      env: ctx.io.env,
    });
  } catch (err) {
    reportFailure(ctx, err instanceof ConfigError ? causeOf(err) : `agent failed: ${causeOf(err)}`);
  }
}

export const command = 'agent';
export const describe = 'Run the host agent: network labelled Docker containers (berth.network=NAME)';
export const builder = agentBuilder;
export const handler = run;
