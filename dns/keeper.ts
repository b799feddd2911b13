// Keeps berth dns's zone in step with the store. The pools' records come
// from the record cache (ipam/pool-records.ts), which the change feed keeps
// current: on Redis the feed waits on the pools' history streams, on the
// file store on fs.watch, so a change is in the zone within a build of being
// written, and nothing reads every address again. The hosts' announcements
// (SRV members) are one small read, repeated every HOSTS_EVERY_MS. A build
// runs after each change (one at a time; changes during a build make one
// more), when the feed comes back after a pause, and when a hold ends; never
// sooner than BUILD_GAP_MS after the last began, so that a storm of changes
// costs a bounded share of the one thread that also answers queries.
import { current, type ServiceMember } from '../ipam/hosts.js';
import type { ChangeFeed } from '../ipam/change-feed.js';
import { isBerthError } from '../core/errors.js';
import type { Store } from '../ipam/model.js';
import type { PoolConfig } from '../ipam/pool-config.js';
import type { PoolRecords } from '../ipam/pool-records.js';
import { buildZone, type Zone, type ZoneReport } from './zone.js';

/** The hosts' announcements are read this often. */
export const HOSTS_EVERY_MS = 1000;
/** After a failed build, the next is tried this much later. */
const RETRY_MS = 1000;
/** Least time between the starts of two builds (a 4,000-name zone takes milliseconds to build). */
export const BUILD_GAP_MS = 100;

export interface KeeperLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface KeeperDeps {
  store: Store;
  feed: ChangeFeed;
  records: PoolRecords;
  log: KeeperLog;
  zone: string;
  ttl: number;
  nsAddresses: string[];
  hostsEveryMs?: number;
  now?: () => number;
}

/** What the keeper has done, for tests and the log. */
export interface KeeperStats {
  builds: number;
  failures: number;
  names: number;
  clashes: number;
}

/** The current zone, built again as the store changes (see the top of this file). */
export class ZoneKeeper {
  readonly stats: KeeperStats = { builds: 0, failures: 0, names: 0, clashes: 0 };
  private zone: Zone | undefined;
  private confs = new Map<string, PoolConfig>();
  private confsText = '';
  private members: ServiceMember[] = [];
  private membersText = '[]';
  private serial = 0;
  private building: Promise<void> | undefined;
  private again = false;
  private scheduled: NodeJS.Timeout | undefined;
  private lastBuildAt = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private hostsTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastClashes = '';
  private lastUnnamed = '';
  private hostsFailing = false;
  private readonly now: () => number;
  private readonly changeListeners = new Set<() => void>();

  constructor(private readonly deps: KeeperDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The zone to answer from; start() has built the first. */
  current(): Zone {
    if (!this.zone) throw new Error('the zone is not built yet');
    return this.zone;
  }

  /** Calls `listener` after each new zone from now on. */
  onChange(listener: () => void): void {
    this.changeListeners.add(listener);
  }

  /** The pool names for the change feed; reading them keeps the pools' configs here current. */
  readonly poolNames = async (): Promise<string[]> => {
    const list = await this.deps.store.listPools();
    const text = JSON.stringify(list.map((p) => p.conf));
    if (text !== this.confsText) {
      this.confs = new Map(list.map((p) => [p.conf.name, p.conf]));
      // a pool that comes or goes is announced by the feed; one whose config changed is not
      if (this.confsText !== '') this.requestBuild();
      this.confsText = text;
    }
    return [...this.confs.keys()];
  };

  /** Reads the pools and hosts and builds the first zone (a failure is thrown: nothing to answer from), then follows. */
  async start(): Promise<void> {
    await this.poolNames();
    await this.readHosts(true);
    await this.build();
    const { feed } = this.deps;
    feed.subscribe(
      () => this.requestBuild(),
      (live) => {
        // changes made while the feed could not read the store were never heard of
        if (live) this.requestBuild();
      },
    );
    let reading = false;
    this.hostsTimer = setInterval(() => {
      if (reading) return;
      reading = true;
      void this.readHosts(false).finally(() => (reading = false));
    }, this.deps.hostsEveryMs ?? HOSTS_EVERY_MS);
  }

  /** Stops following; the zone stays as it is. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.hostsTimer);
    clearTimeout(this.expiryTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.scheduled);
    await this.building;
  }

  /** A build soon: after the listeners of the same change (the record cache marks what changed) have run, and BUILD_GAP_MS after the last. */
  private requestBuild(): void {
    if (this.stopped || this.scheduled) return;
    const wait = Math.max(0, this.lastBuildAt + BUILD_GAP_MS - this.now());
    this.scheduled = setTimeout(() => {
      this.scheduled = undefined;
      if (this.building) {
        this.again = true;
        return;
      }
      this.building = this.buildLoop().finally(() => (this.building = undefined));
    }, wait);
  }

  private async buildLoop(): Promise<void> {
    do {
      this.again = false;
      const gap = this.lastBuildAt + BUILD_GAP_MS - this.now();
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
      this.lastBuildAt = this.now();
      try {
        await this.build();
      } catch (err) {
        this.stats.failures++;
        this.deps.log.warn({ err: (err as Error).message }, 'failed to build the zone; answering from the last one');
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => this.requestBuild(), RETRY_MS);
      }
    } while (this.again && !this.stopped);
  }

  private async build(): Promise<void> {
    const confs = [...this.confs.values()];
    const lists = await Promise.all(
      confs.map((conf) =>
        this.deps.records.list(conf.name).catch((err: unknown) => {
          // removed since the pool list was read: the feed says so, and the next build leaves it out
          if (isBerthError(err, 'POOL_NOT_FOUND')) return null;
          throw err;
        }),
      ),
    );
    const now = this.now();
    this.serial = Math.max(this.serial + 1, Math.floor(now / 1000)) >>> 0;
    const { zone, report } = buildZone({
      zone: this.deps.zone,
      ttl: this.deps.ttl,
      serial: this.serial,
      nsAddresses: this.deps.nsAddresses,
      pools: confs.flatMap((conf, i) => (lists[i] ? [{ conf, records: lists[i]! }] : [])),
      members: this.members,
      now,
    });
    const first = this.zone === undefined;
    this.zone = zone;
    for (const listener of this.changeListeners) listener();
    this.stats.builds++;
    this.stats.names = report.names;
    this.stats.clashes = report.clashes.length;
    this.tell(report, first, confs.length);
    clearTimeout(this.expiryTimer);
    if (report.nextExpiry !== undefined) {
      this.expiryTimer = setTimeout(() => this.requestBuild(), Math.max(0, report.nextExpiry - now) + 1);
      this.expiryTimer.unref();
    }
  }

  /** Logs the first build, and each change in the clashes and in the members left without a name. */
  private tell(report: ZoneReport, first: boolean, pools: number): void {
    const { log } = this.deps;
    if (first) log.info({ names: report.names, pools, members: this.members.length, serial: this.serial }, 'the zone is built');
    const clashes = JSON.stringify(report.clashes);
    if (clashes !== this.lastClashes && (report.clashes.length > 0 || this.lastClashes !== '')) {
      log.warn(
        {
          clashes: report.clashes.length,
          names: report.clashes.map((c) => ({ kind: c.kind, ...(c.pool === undefined ? {} : { pool: c.pool }), name: c.name, keeps: c.winner, others: c.others })),
        },
        report.clashes.length === 0 ? 'no name is wanted by two keys any more' : 'names wanted by two or more keys: the first keeps it, the others get it with their hash',
      );
    }
    this.lastClashes = report.clashes.length > 0 ? clashes : '';
    const unnamed = JSON.stringify(report.unnamedMembers.map((m) => `${m.service} ${m.ip}:${m.port}`));
    if (unnamed !== this.lastUnnamed && report.unnamedMembers.length > 0) {
      log.warn({ members: JSON.parse(unnamed) as string[] }, 'load-balancer members whose address has no owner in a pool are left out of SRV');
    }
    this.lastUnnamed = unnamed;
  }

  /** Reads the live hosts' members; a change makes a build. At start a failure is thrown. */
  private async readHosts(initial: boolean): Promise<void> {
    let members: ServiceMember[];
    try {
      members = current(await this.deps.store.listHosts(), this.now()).flatMap((h) => h.members);
    } catch (err) {
      if (initial) throw err;
      if (!this.hostsFailing) this.deps.log.warn({ err: (err as Error).message }, "failed to read the hosts' load-balancer members; SRV answers stay as they were");
      this.hostsFailing = true;
      return;
    }
    this.hostsFailing = false;
    const text = JSON.stringify(members);
    if (text === this.membersText) return;
    this.members = members;
    this.membersText = text;
    if (!initial) this.requestBuild();
  }
}
