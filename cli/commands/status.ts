// berth status, berth attachments: what the host agent is doing, over its socket.
import { socketBuilder, withAgent, type SocketArgs } from '../agent-client.js';
import { fields, table, writeJson } from '../output.js';

interface Status {
  version: string;
  host: string;
  pid: number;
  startedAt: string;
  /** what /readyz answers */
  ready: boolean;
  /** why not ready (an agent older than the CLI sends none) */
  reasons?: string[];
  docker: string;
  containerd?: Array<{ socket: string; connected: boolean }>;
  store: string;
  health?: Health;
  attachments: number;
  adding: number;
  delQueue: number;
  problems: Array<{ name: string; network?: string; error: string }>;
  attachmentErrors?: AttachmentView[];
  conflicts?: Array<{ name: string; network: string; ip: string; holder: string; since: string }>;
  lastReconcile: { at: string; ms: number; error?: string } | null;
  rssBytes: number;
  /** the CNI fast path (an agent older than the CLI sends none) */
  cniFastPath?: { served: number; running: number; waiting: number; parallel: number } | null;
}

/** agent/health.ts's HealthReport, as far as the CLI reads it. */
interface Health {
  store: { location: string; ok: boolean; ms: number; warnings?: string[] };
  docker: { socket: string; ok: boolean };
  haproxy?: { socket: string; ok: boolean; pid?: number; lastSyncError: string | null };
  keepalived?: { config: string; ok: boolean; ipvs: boolean; lastError: string | null };
}

interface AttachmentView {
  containerId: string;
  name: string;
  network: string;
  ip: string | null;
  /** every address (dual-stack: two) */
  ips?: string[];
  owner: string;
  phase: string;
  lb: Record<string, number>;
  /** failed DELs so far */
  attempts: number;
  /** the last DEL's error */
  lastError?: string;
  /** why the container is not attached (its last ADD failed, a bad label) */
  problem?: string;
}

function status(argv: SocketArgs): Promise<void> {
  return withAgent(argv, "get the agent's status", async (get, ctx) => {
    const s = await get<Status>('/v1/status');
    if (argv.json) return writeJson(ctx.io.stdout, s);
    const h = s.health;
    let out = fields([
      ['agent', `berth ${s.version}, pid ${s.pid}, on ${s.host}, since ${s.startedAt}`],
      ['ready', s.ready ? 'yes' : `no: ${(s.reasons ?? ['the first reconciliation has not finished']).join('; ')}`],
      ['docker', s.docker === 'off' ? 'off (serving CNI calls only)' : h ? `${h.docker.ok ? 'connected' : 'not connected'} at ${h.docker.socket}` : s.docker],
      ['containerd', containerdLine(s.containerd ?? [])],
      ['store', h ? `${h.store.location}: ${h.store.ok ? `answering (${h.store.ms} ms)` : 'not answering'}` : s.store],
      ['haproxy', h?.haproxy && `${h.haproxy.ok ? `answering on ${h.haproxy.socket} (worker pid ${h.haproxy.pid})` : `not answering on ${h.haproxy.socket}`}${h.haproxy.lastSyncError ? `; last sync failed: ${h.haproxy.lastSyncError}` : ''}`],
      ['keepalived', h?.keepalived && `rendering ${h.keepalived.config}${h.keepalived.ipvs ? '' : ' (no IPVS on this kernel: not applied here)'}${h.keepalived.lastError ? `; last update failed: ${oneLine(h.keepalived.lastError)}` : ''}`],
      ['attachments', `${s.attachments} attached, ${s.adding} being added, ${s.delQueue} DEL${s.delQueue === 1 ? '' : 's'} queued`],
      ['reconciled', s.lastReconcile ? `${s.lastReconcile.at} in ${s.lastReconcile.ms} ms${s.lastReconcile.error ? ` (failed: ${s.lastReconcile.error})` : ''}` : 'not yet'],
      ['cni calls', s.cniFastPath ? `${s.cniFastPath.served} served, ${s.cniFastPath.running} running, ${s.cniFastPath.waiting} waiting (at most ${s.cniFastPath.parallel} at once)` : undefined],
      ['memory', `${Math.round(s.rssBytes / 1048576)} MiB RSS`],
    ]);
    if (s.problems.length > 0) {
      out += `\n${s.problems.length} labelled container${s.problems.length === 1 ? '' : 's'} not attached:\n`;
      out += table(['  NAME', 'NETWORK', 'PROBLEM'], s.problems.map((p) => [`  ${p.name}`, p.network ?? '', oneLine(p.error)]));
    }
    const failing = s.attachmentErrors ?? [];
    if (failing.length > 0) {
      out += `\n${failing.length} attachment${failing.length === 1 ? '' : 's'} with errors:\n`;
      out += table(['  NAME', 'NETWORK', 'STATE', 'ERROR'], failing.map((a) => [`  ${a.name}`, a.network, stateCell(a), errorCell(a)]));
    }
    const warnings = h?.store.warnings ?? [];
    if (warnings.length > 0) out += `\nthe store can lose pool data:\n${warnings.map((w) => `  ${oneLine(w)}\n`).join('')}`;
    const conflicts = s.conflicts ?? [];
    if (conflicts.length > 0) {
      out += `\n${conflicts.length} address conflict${conflicts.length === 1 ? '' : 's'}: running here, given to someone else by the store:\n`;
      out += table(['  NAME', 'NETWORK', 'IP', 'STORE SAYS', 'SINCE'], conflicts.map((c) => [`  ${c.name}`, c.network, c.ip, oneLine(c.holder), c.since]));
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

/**
 * The STATE of an attachment in a table: its phase, "!" when it has an
 * error, and how many DELs have failed. Short: the errors themselves are
 * listed by berth status and kept in --json.
 */
export function stateCell(a: Pick<AttachmentView, 'phase' | 'attempts' | 'lastError' | 'problem'>): string {
  return `${a.phase}${a.lastError || a.problem ? '!' : ''}${a.attempts > 0 ? ` (retry ${a.attempts})` : ''}`;
}

function errorCell(a: AttachmentView): string {
  const parts: string[] = [];
  if (a.problem) parts.push(`not attached: ${oneLine(a.problem)}`);
  if (a.lastError) parts.push(`DEL failed: ${oneLine(a.lastError)}`);
  return parts.join('; ');
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function attachments(argv: SocketArgs): Promise<void> {
  return withAgent(argv, 'list attachments', async (get, ctx) => {
    const list = await get<AttachmentView[]>('/v1/attachments');
    if (argv.json) return writeJson(ctx.io.stdout, list);
    if (list.length === 0) return void ctx.io.stdout.write('no attachments\n');
    let out = table(
      ['NAME', 'CONTAINER', 'NETWORK', 'IP', 'OWNER', 'STATE', 'LB'],
      list.map((a) => [a.name, a.containerId.slice(0, 12), a.network, (a.ips && a.ips.length > 0 ? a.ips.join(',') : a.ip) ?? '-', a.owner, stateCell(a), Object.entries(a.lb).map(([s, p]) => `${s}:${p}`).join(',')]),
    );
    const failing = list.filter((a) => a.lastError || a.problem).length;
    if (failing > 0) out += `\n${failing} with errors (!): berth status lists them, berth attachments --json has them in full\n`;
    ctx.io.stdout.write(out);
  });
}

export const statusCommand = { command: 'status', describe: "Show the host agent's state", builder: socketBuilder, handler: status };
export const attachmentsCommand = { command: 'attachments', describe: 'List the containers the host agent has attached', builder: socketBuilder, handler: attachments };
