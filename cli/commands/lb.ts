// berth lb show: the load-balancer services and their backends, from the agent.
import type { Argv } from 'yargs';
import { socketBuilder, withAgent, type SocketArgs } from '../agent-client.js';
import type { GlobalArgs } from '../context.js';
import { table, writeJson } from '../output.js';

interface LbView {
  services: Array<{ name: string; haproxy?: { bind: string; mode: string }; lvs?: { vip: string; port: number; protocol: string } }>;
  backends: Array<{ service: string; ip: string; port: number; container?: string }>;
  haproxy?: { servers?: Array<{ service: string; server: string; addr: string; state: string; container?: string }>; error?: string; lastError: string | null };
  keepalived?: { config: string; ipvs: boolean; lastError: string | null };
}

function show(argv: SocketArgs): Promise<void> {
  return withAgent(argv, 'show the load balancers', async (get, ctx) => {
    const v = await get<LbView>('/v1/lb');
    if (argv.json) return writeJson(ctx.io.stdout, v);
    if (v.services.length === 0) return void ctx.io.stdout.write('no load-balancer services configured (services in the agent config)\n');
    let out = table(
      ['SERVICE', 'HAPROXY', 'LVS', 'BACKENDS'],
      v.services.map((s) => [
        s.name,
        s.haproxy ? `${s.haproxy.mode} ${s.haproxy.bind}` : '-',
        s.lvs ? `${s.lvs.protocol} ${s.lvs.vip}:${s.lvs.port}` : '-',
        String(v.backends.filter((b) => b.service === s.name).length),
      ]),
    );
    if (v.haproxy?.servers) {
      out += '\n';
      out += v.haproxy.servers.length === 0 ? 'HAProxy: no servers\n' : table(['SERVICE', 'SERVER', 'ADDRESS', 'STATE', 'CONTAINER'], v.haproxy.servers.map((s) => [s.service, s.server, s.addr, s.state, (s.container ?? '').slice(0, 12)]));
    }
    if (v.haproxy?.error) out += `\nHAProxy: ${v.haproxy.error}\n`;
    else if (v.haproxy?.lastError) out += `\nHAProxy: last sync failed: ${v.haproxy.lastError}\n`;
    if (v.keepalived) {
      out += `\nLVS: virtual servers rendered to ${v.keepalived.config}${v.keepalived.ipvs ? '' : ' (this kernel has no IPVS: not applied here)'}\n`;
      if (v.keepalived.lastError) out += `LVS: last render failed: ${v.keepalived.lastError}\n`;
    }
    ctx.io.stdout.write(out);
  });
}

export const command = 'lb';
export const describe = 'Load-balancer services and backends (from the agent)';

export function builder(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command({ command: 'show', describe: 'List services and backends with their state', builder: socketBuilder, handler: show }).demandCommand(1, 'lb needs a subcommand: show');
}

export function handler(): void {}
