// The agent's own metrics: the counters and histograms it updates, and the
// gauges read at scrape time from what it holds. Names and help texts are
// what dashboards and tests read (deploy/grafana-dashboard.json).
import type { ContainerdEvents } from './containerd.js';
import type { EventPublisher } from './events.js';
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, type Registry } from './metrics.js';
import type { AttachmentRecord } from './state.js';

/** Registers the metrics the agent updates. */
export function agentMetrics(registry: Registry) {
  return {
    ops: registry.add(new Histogram('berth_agent_cni_duration_seconds', 'Time to run a network chain, by operation', LATENCY_BUCKETS)),
    startToIp: registry.add(new Histogram('berth_agent_start_to_ip_seconds', "From Docker's start event to the container's address being up (0: up before Docker reported the start)", LATENCY_BUCKETS)),
    taskToIp: registry.add(new Histogram('berth_agent_task_to_ip_seconds', "From containerd's task create (the container's process made, not yet started) to its address being up", LATENCY_BUCKETS)),
    errors: registry.add(new Counter('berth_agent_errors_total', 'Failed operations, by operation')),
    reconciles: registry.add(new Counter('berth_agent_reconciliations_total', 'Full reconciliations run')),
    gcs: registry.add(new Counter('berth_agent_gc_total', 'CNI GC runs, by network and result')),
    refusals: registry.add(new Counter('berth_agent_policy_refusals_total', "Containers refused by the agent's label policy, by network and label")),
    reasserted: registry.add(new Counter('berth_agent_reasserted_total', 'Addresses the store had lost and the agent took again for their attachment, by pool')),
  };
}

export type AgentMetrics = ReturnType<typeof agentMetrics>;

/** What the gauges read at scrape time. */
export interface GaugeSources {
  records(): Iterable<AttachmentRecord>;
  problems(): number;
  conflicts(): number;
  docker: { readonly connected: boolean };
  containerd: readonly ContainerdEvents[];
  events: EventPublisher;
}

/** Registers the gauges read at scrape time. */
export function agentGauges(registry: Registry, s: GaugeSources): void {
  registry.add(
    new Gauge('berth_agent_attachments', 'Attachments tracked, by network and phase', () => {
      const counts = new Map<string, number>();
      for (const r of s.records()) {
        const k = `${r.network.name}\0${r.phase}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
      return [...counts].map(([k, n]) => {
        const [network, phase] = k.split('\0') as [string, string];
        return [{ network, phase }, n];
      });
    }),
  );
  registry.add(new Gauge('berth_agent_del_queue', 'DELs waiting to be retried', () => [[{}, [...s.records()].filter((r) => r.phase === 'deleting').length]]));
  registry.add(new Gauge('berth_agent_rejected_containers', 'Labelled containers that cannot be attached', () => [[{}, s.problems()]]));
  registry.add(new Gauge('berth_agent_address_conflicts', 'Attached containers whose address the store gives someone else', () => [[{}, s.conflicts()]]));
  registry.add(new Gauge('berth_agent_docker_connected', '1 while the Docker event stream is up', () => [[{}, s.docker.connected ? 1 : 0]]));
  registry.add(new Gauge('berth_agent_containerd_connected', "1 while containerd's event stream is up, by socket", () => s.containerd.map((c) => [{ socket: c.socketPath }, c.connected ? 1 : 0])));
  registry.add(new Gauge('berth_agent_events_pending', 'Attachment events waiting for delivery, all sinks', () => [[{}, s.events.pending()]]));
  registry.add(new Gauge('berth_agent_events_dropped', 'Attachment events given up on, by sink', () => [...s.events.stats.dropped].map(([sink, n]) => [{ sink }, n])));
}
