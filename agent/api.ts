// The agent's HTTP API on its unix socket, for the CLI and for monitoring:
// /healthz, /readyz, /metrics (Prometheus), /v1/status, /v1/attachments,
// /v1/pools. The socket is created with mode 0600 (umask during listen),
// so only root talks to the agent.
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { Agent, Problem } from './agent.js';
import { resultAddresses } from './result-addresses.js';
import { Health, readiness, within } from './health.js';
import type { CniServer } from './cni-serve.js';
import type { Store } from '../ipam/model.js';
import { haveIpvs } from '../lb/lvs.js';
import { Gauge, Registry } from './metrics.js';

export interface ApiDeps {
  agent: Agent;
  store: Store;
  version: string;
  startedAt: Date;
  /** the CNI fast path (POST /v1/cni/PLUGIN) */
  cni?: CniServer;
}

/** Pool usage for /v1/pools and /metrics, bounded in time so a slow store never hangs a scrape. */
function poolUsage(store: Store, ms: number) {
  return within(store.listPools(), ms, `the store did not answer within ${ms} ms`);
}

// A labelled container is listed once, by what the agent holds for it: with
// an attachment record (in any phase, a failed ADD's queued undo DEL among
// them) it is an attachment, and why it is not attached rides on that record
// as `problem`; only a container without a record is among the `problems`
// ("not attached"). So no container is both "not attached" and "deleting".

/** Every attachment record, for /v1/attachments and berth attachments. */
/** The agent's metrics and, read from the store at scrape time (bounded), the pools' usage and whether the store answered. */
export async function metricsText(deps: Pick<ApiDeps, 'agent' | 'store'>): Promise<string> {
  let pools: Awaited<ReturnType<typeof poolUsage>> = [];
  let storeUp = 1;
  try {
    pools = await poolUsage(deps.store, 2000);
  } catch {
    storeUp = 0;
  }
  const scrape = new Registry();
  scrape.add(new Gauge('berth_store_up', '1 when the pool store answered this scrape', () => [[{}, storeUp]]));
  scrape.add(
    new Gauge('berth_pool_addresses', 'Addresses of each pool by state', () =>
      pools.flatMap((p) => {
        const free = BigInt(p.capacity) - BigInt(p.allocated) - BigInt(p.reserved);
        return [
          [{ pool: p.conf.name, state: 'allocated' }, p.allocated],
          [{ pool: p.conf.name, state: 'reserved' }, p.reserved],
          [{ pool: p.conf.name, state: 'free' }, Number(free)],
        ] as Array<[Record<string, string>, number]>;
      }),
    ),
  );
  return `${deps.agent.metrics.render()}${scrape.render()}`;
}

/**
 * /metrics and /v1/sd over TCP for Prometheus (`metricsListen`), read-only:
 * nothing else of the API is served there.
 */
export async function listenMetrics(deps: Pick<ApiDeps, 'agent' | 'store'>, at: { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://agent').pathname;
    const answer = async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
      } else if (path === '/metrics') {
        const text = await metricsText(deps);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text);
      } else if (path === '/v1/sd') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(deps.agent.scrapeTargets())}\n`);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics and /v1/sd are served here\n');
      }
    };
    answer().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${err.message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  return server;
}

export function attachmentView(a: Agent) {
  return [...a.records.values()]
    .map((r) => {
      const problem = a.problems.get(r.containerId)?.error;
      return {
        containerId: r.containerId,
        name: r.name,
        network: r.network.name,
        ifname: r.ifname,
        ip: r.ip ?? null,
        ips: resultAddresses(r.result),
        owner: r.intent.owner,
        phase: r.phase,
        lb: r.intent.lb,
        attempts: r.attempts,
        ...(r.lastError ? { lastError: r.lastError } : {}),
        ...(problem ? { problem } : {}),
        createdAt: r.createdAt,
        updatedAt: r.updatedAt,
      };
    })
    .sort((x, y) => x.name.localeCompare(y.name));
}

/** Labelled containers the agent holds no record for and could not attach. */
function unattached(a: Agent): Problem[] {
  return [...a.problems.values()].filter((p) => !a.records.has(p.containerId));
}

/** Answers one API request. */
export async function handle(deps: ApiDeps & { health: Health }, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { agent } = deps;
  const url = new URL(req.url ?? '/', 'http://agent');
  const json = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  if (req.method === 'POST' && url.pathname.startsWith('/v1/cni/')) {
    const plugin = url.pathname.slice('/v1/cni/'.length);
    if (deps.cni) await deps.cni.handle(plugin, req, res);
    else res.writeHead(503, { 'x-berth-not-run': '1', 'content-type': 'text/plain' }).end('this agent serves no CNI calls\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' });
    res.end();
    return;
  }
  switch (url.pathname) {
    case '/healthz':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    case '/readyz': {
      const reasons = readiness(agent.ready, await deps.health.check());
      res.writeHead(reasons.length ? 503 : 200, { 'content-type': 'text/plain' });
      res.end(reasons.length ? `${reasons.join('\n')}\n` : 'ready\n');
      return;
    }
    case '/metrics':
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(await metricsText(deps));
      return;
    case '/v1/status': {
      const health = await deps.health.check();
      const reasons = readiness(agent.ready, health);
      const all = attachmentView(agent);
      json(200, {
        version: deps.version,
        host: agent.cfg.hostname,
        pid: process.pid,
        startedAt: deps.startedAt.toISOString(),
        // what /readyz answers (health.ts's readiness)
        ready: reasons.length === 0,
        reasons,
        reconciled: agent.ready,
        docker: !agent.docker.enabled ? 'off' : agent.docker.connected ? 'connected' : 'disconnected',
        containerd: agent.containerd.map((c) => ({ socket: c.socketPath, connected: c.connected })),
        store: deps.store.location,
        health,
        attachments: all.filter((a) => a.phase === 'attached').length,
        adding: all.filter((a) => a.phase === 'adding').length,
        delQueue: all.filter((a) => a.phase === 'deleting').length,
        problems: unattached(agent),
        attachmentErrors: all.filter((a) => a.lastError || a.problem),
        conflicts: [...agent.conflicts.values()],
        lastReconcile: agent.lastReconcile ?? null,
        cniFastPath: deps.cni?.view() ?? null,
        rssBytes: process.memoryUsage().rss,
      });
      return;
    }
    case '/v1/attachments':
      json(200, attachmentView(agent));
      return;
    case '/v1/lb': {
      const body: Record<string, unknown> = { services: agent.cfg.lb.services, backends: agent.backends() };
      if (agent.haproxy) {
        try {
          body.haproxy = { servers: await agent.haproxy.view(), stats: agent.haproxy.stats, lastError: agent.haproxy.lastError ?? null };
        } catch (err) {
          body.haproxy = { error: (err as Error).message, stats: agent.haproxy.stats };
        }
      }
      if (agent.keepalived) body.keepalived = { config: agent.cfg.lb.keepalived!.config, ipvs: haveIpvs(), stats: agent.keepalived.stats, lastError: agent.keepalived.lastError ?? null };
      json(200, body);
      return;
    }
    case '/v1/pools':
      try {
        json(200, await poolUsage(deps.store, 5000));
      } catch (err) {
        json(503, { error: (err as Error).message });
      }
      return;
    default:
      json(404, { error: `no such endpoint: ${url.pathname}` });
  }
}

/** Listens on `path` with mode 0600; a stale socket left by a killed agent is replaced, a live one is an error. */
export async function listenApi(deps: ApiDeps, path: string): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  try {
    if (lstatSync(path).isSocket()) {
      const alive = await new Promise<boolean>((resolve) => {
        const s = connect(path);
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
      });
      if (alive) throw new Error(`another agent is listening on ${path}`);
      unlinkSync(path);
    } else {
      throw new Error(`${path} exists and is not a socket`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const withHealth = { ...deps, health: new Health(deps.agent, deps.store) };
  const server = createServer((req, res) => {
    handle(withHealth, req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ error: err.message })}\n`);
    });
  });
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o600);
  return server;
}
