// What each host's agent runs, as it last published it to the store: its
// load-balancer backends and its Prometheus targets. Agents publish, so that
// cluster-wide readers (berth dns's SRV records, berth sd's discovery) know
// every host's members, not only one host's. Pure: the shape and its checks.

/** A backend of a load-balancer service, on some host. */
export interface ServiceMember {
  service: string;
  ip: string;
  port: number;
  owner: string;
  /** the berth pool of its address, when it has one */
  pool?: string;
  container: string;
}

/** A Prometheus target, as the agent's /v1/sd lists it. */
export interface ScrapeTarget {
  targets: string[];
  labels: Record<string, string>;
}

/** One host's announcement. */
export interface HostAnnouncement {
  host: string;
  hostId?: string;
  /** when it was published (ms) */
  at: number;
  members: ServiceMember[];
  targets: ScrapeTarget[];
}

/**
 * An announcement older than this is not listed: its agent has not
 * published for three default reconciliations, so it is gone or cut off
 * (its containers may run on, but nothing vouches for them).
 */
export const HOST_STALE_MS = 3 * 60 * 1000;

/** The key an announcement is kept under: its host, told apart from others of its name by its identity. */
export function hostKey(a: Pick<HostAnnouncement, 'host' | 'hostId'>): string {
  return a.hostId ? `${a.host}@${a.hostId}` : a.host;
}

/** Reads a stored announcement; undefined when it is not one (it is skipped, never trusted). */
export function readAnnouncement(text: string): HostAnnouncement | undefined {
  let a: unknown;
  try {
    a = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = a as Partial<HostAnnouncement>;
  if (!r || typeof r !== 'object' || typeof r.host !== 'string' || typeof r.at !== 'number' || !Array.isArray(r.members) || !Array.isArray(r.targets)) return undefined;
  const members = r.members.filter(
    (m): m is ServiceMember =>
      !!m && typeof m.service === 'string' && typeof m.ip === 'string' && Number.isInteger(m.port) && typeof m.owner === 'string' && typeof m.container === 'string',
  );
  const targets = r.targets.filter((x): x is ScrapeTarget => !!x && Array.isArray(x.targets) && x.targets.every((s) => typeof s === 'string') && !!x.labels && typeof x.labels === 'object');
  return { host: r.host, ...(typeof r.hostId === 'string' ? { hostId: r.hostId } : {}), at: r.at, members, targets };
}

/** The announcements that are current at `now`, by host key. */
export function current(all: HostAnnouncement[], now: number): HostAnnouncement[] {
  return all.filter((a) => now - a.at <= HOST_STALE_MS).sort((a, b) => hostKey(a).localeCompare(hostKey(b)));
}
