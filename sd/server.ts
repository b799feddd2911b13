// berth sd: Prometheus HTTP service discovery for the whole cluster, from
// the store: every host's agent publishes its targets (ipam/hosts.ts), and
// one Prometheus finds every container labelled berth.metrics through this
// one endpoint. Read-only; the list is read from the store at each request
// (a scrape of the list every few seconds is one read of one key).
import { createServer, type Server } from 'node:http';
import { current, type ScrapeTarget } from '../ipam/hosts.js';
import type { Store } from '../ipam/model.js';

/** Every live host's targets, each with its host label, ordered by host then target. */
export async function clusterTargets(store: Store, now = Date.now()): Promise<ScrapeTarget[]> {
  return current(await store.listHosts(), now).flatMap((h) =>
    h.targets.map((x) => ({ targets: x.targets, labels: { ...x.labels, host: x.labels.host ?? h.host } })),
  );
}

/** Serves /v1/sd (the cluster's targets) and /healthz at `at`. */
export async function listenSd(store: Store, at: { host: string; port: number }): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://sd').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path !== '/v1/sd') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('only /v1/sd and /healthz are served here\n');
    clusterTargets(store).then(
      (list) => res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(list)}\n`),
      // Prometheus keeps the last good list when a refresh fails: better than an empty one
      (err: Error) => res.writeHead(503, { 'content-type': 'text/plain' }).end(`the store did not answer: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  return server;
}
