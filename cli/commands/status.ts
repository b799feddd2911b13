// berth status, berth attachments: what the host agent is doing, over its socket.
import { socketBuilder, withAgent, type SocketArgs } from '../agent-client.js';
import { fields, table, writeJson } from '../output.js';

interface Status {
  version: string;
  host: string;
  pid: number;
  startedAt: string;
  ready: boolean;
  docker: string;
  containerd?: Array<{ socket: string; connected: boolean }>;
  store: string;
  attachments: number;
  adding: number;
  delQueue: number;
  problems: Array<{ name: string; network?: string; error: string }>;
  lastReconcile: { at: string; ms: number; error?: string } | null;
  rssBytes: number;
}

interface AttachmentView {
  containerId: string;
  name: string;
  network: string;
  ip: string | null;
  owner: string;
  phase: string;
  lb: Record<string, number>;
  lastError?: string;
}

function status(argv: SocketArgs): Promise<void> {
  return withAgent(argv, "get the agent's status", async (get, ctx) => {
    const s = await get<Status>('/v1/status');
    if (argv.json) return writeJson(ctx.io.stdout, s);
    let out = fields([
      ['agent', `berth ${s.version}, pid ${s.pid}, on ${s.host}, since ${s.startedAt}`],
      ['ready', s.ready ? 'yes' : 'no (first reconciliation running)'],
      ['docker', s.docker],
      ['containerd', containerdLine(s.containerd ?? [])],
      ['store', s.store],
      ['attachments', `${s.attachments} attached, ${s.adding} being added, ${s.delQueue} DEL${s.delQueue === 1 ? '' : 's'} queued`],
      ['reconciled', s.lastReconcile ? `${s.lastReconcile.at} in ${s.lastReconcile.ms} ms${s.lastReconcile.error ? ` (failed: ${s.lastReconcile.error})` : ''}` : 'not yet'],
      ['memory', `${Math.round(s.rssBytes / 1048576)} MiB RSS`],
    ]);
    if (s.problems.length > 0) {
      out += `\n${s.problems.length} labelled container${s.problems.length === 1 ? '' : 's'} not attached:\n`;
      out += table(['  NAME', 'NETWORK', 'PROBLEM'], s.problems.map((p) => [`  ${p.name}`, p.network ?? '', p.error]));
    }
    ctx.io.stdout.write(out);
  });
}

/** Which containerd streams are up: attaching at task creation needs one of them. */
function containerdLine(list: Array<{ socket: string; connected: boolean }>): string {
  if (list.length === 0) return "not followed (attaching on Docker's start events)";
  const up = list.filter((c) => c.connected);
  if (up.length === 0) return `not reachable at ${list.map((c) => c.socket).join(' or ')} (attaching on Docker's start events)`;
  return `connected at ${up.map((c) => c.socket).join(', ')} (attaching as soon as a task exists)`;
}

function attachments(argv: SocketArgs): Promise<void> {
  return withAgent(argv, 'list attachments', async (get, ctx) => {
    const list = await get<AttachmentView[]>('/v1/attachments');
    if (argv.json) return writeJson(ctx.io.stdout, list);
    if (list.length === 0) return void ctx.io.stdout.write('no attachments\n');
    ctx.io.stdout.write(
      table(
        ['NAME', 'CONTAINER', 'NETWORK', 'IP', 'OWNER', 'STATE', 'LB'],
        list.map((a) => [a.name, a.containerId.slice(0, 12), a.network, a.ip ?? '-', a.owner, a.lastError ? `${a.phase} (${a.lastError})` : a.phase, Object.entries(a.lb).map(([s, p]) => `${s}:${p}`).join(',')]),
      ),
    );
  });
}

export const statusCommand = { command: 'status', describe: "Show the host agent's state", builder: socketBuilder, handler: status };
export const attachmentsCommand = { command: 'attachments', describe: 'List the containers the host agent has attached', builder: socketBuilder, handler: attachments };
