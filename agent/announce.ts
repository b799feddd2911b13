// What this host runs, published to the store for cluster-wide readers
// (berth dns's SRV records, berth sd): the backends of the declared
// load-balancer services and the Prometheus targets. Published a second
// after the last change, so a start storm is one write, and at every
// reconciliation.
import type { Logger } from 'pino';
import type { ScrapeTarget, ServiceMember } from '../ipam/hosts.js';
import type { Store } from '../ipam/model.js';
import { poolOf } from './netconf.js';
import type { AttachmentRecord } from './state.js';

/** How long after a change the host is announced: changes within it are one write. */
const ANNOUNCE_DELAY_MS = 1000;

/**
 * Prometheus HTTP service discovery: every attached container with a
 * berth.metrics label, as a target at its berth address, labelled with its
 * owner, network, pool, host and services. Always the full list.
 */
export function scrapeTargets(records: Iterable<AttachmentRecord>, hostname: string): ScrapeTarget[] {
  const out: ScrapeTarget[] = [];
  for (const r of [...records].sort((a, b) => a.name.localeCompare(b.name))) {
    const m = r.intent.metrics;
    if (r.phase !== 'attached' || !r.ip || !m) continue;
    const target = r.ip.includes(':') ? `[${r.ip}]:${m.port}` : `${r.ip}:${m.port}`;
    const labels: Record<string, string> = {
      __metrics_path__: m.path,
      owner: r.intent.owner,
      network: r.network.name,
      pool: poolOf(r.network) ?? '',
      host: hostname,
      service: Object.keys(r.intent.lb).sort().join(','),
      container: r.name,
    };
    out.push({ targets: [target], labels });
  }
  return out;
}

/** The backends of the declared services, as the load balancers have them: attached, not being stopped. */
export function serviceMembers(records: Iterable<AttachmentRecord>, declared: ReadonlySet<string>, stopping: ReadonlyMap<string, unknown>): ServiceMember[] {
  return [...records]
    .filter((r) => r.phase === 'attached' && r.ip && !stopping.has(r.containerId))
    .flatMap((r) =>
      Object.entries(r.intent.lb)
        .filter(([service]) => declared.has(service))
        .map(([service, port]) => ({ service, ip: r.ip!, port, owner: r.intent.owner, container: r.name, ...(poolOf(r.network) ? { pool: poolOf(r.network)! } : {}) })),
    );
}

export interface AnnouncerDeps {
  store: Store;
  hostname: string;
  /** this machine's identity, published beside the host name (as berth-ipam records it) */
  hostId: string | undefined;
  log: Logger;
  /** what the host runs now */
  current(): { members: ServiceMember[]; targets: ScrapeTarget[] };
}

/** Publishes what this host runs to the store. */
export class HostAnnouncer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly d: AnnouncerDeps) {}

  /** Publishes ANNOUNCE_DELAY_MS from now, unless a publication is due already. */
  soon(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.now();
    }, ANNOUNCE_DELAY_MS);
    this.timer.unref();
  }

  /** Publishes now; a failure is logged, and the next reconciliation tries again. */
  async now(): Promise<void> {
    const { store, hostname, hostId } = this.d;
    try {
      await store.publishHost({ host: hostname, ...(hostId ? { hostId } : {}), at: Date.now(), ...this.d.current() });
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, 'failed to publish what this host runs to the store; the next reconciliation tries again');
    }
  }

  /** No more delayed publications. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
