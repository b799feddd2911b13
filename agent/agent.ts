// The agent: attaches labelled Docker containers to CNI networks and keeps
// its state converged with Docker's after any crash.
//
// Every operation on a container goes through ensure(id), serialized per
// container: it looks at what Docker says now and what the state dir says,
// and makes them agree (attach, detach, or both after a restart whose die
// event was missed). Events, the periodic reconciliation and the DEL retries
// all call it, so there is one code path to get right.
//
// The first word on a start comes from containerd, when it has made the
// container's task (agent/containerd.ts): ensure(id, task) attaches that
// process from what Docker said of the container at its creation, without
// waiting for Docker to finish starting it and report so. Until Docker does,
// its inspect says "not running"; an attachment whose process is alive is
// then left as it is, never taken for a stopped container's.
//
// Over 400 lines because the container life cycle (event, queue, ensure,
// attach, detach, retry, reconcile) shares the records and the per-container
// queue; what to do is decided apart (decide.ts), and timing, metrics,
// announcements and re-assertion are collaborators (timing.ts, agent-
// metrics.ts, announce.ts, reassert.ts).
import type { Logger } from 'pino';
import type { ScrapeTarget } from '../ipam/hosts.js';
import type { Store } from '../ipam/model.js';
import type { AgentConfig } from './config.js';
import type { AttachmentRef, CniRuntime } from './cni-runtime.js';
import type { ContainerdEvents } from './containerd.js';
import type { TaskEvent } from './containerd-wire.js';
import { ContainerMetaCache } from './container-meta.js';
import { decide, decideAttach, readLabels, type DockerView, type ProblemFacts, type Target, type Trigger } from './decide.js';
import type { ContainerEvent, DockerEngine } from './docker.js';
import type { AttachmentEvent, EventPublisher } from './events.js';
import { agentGauges, agentMetrics } from './agent-metrics.js';
import { HostAnnouncer, scrapeTargets, serviceMembers } from './announce.js';
import { Registry } from './metrics.js';
import { loadNetworks, withDefaultStore, type NetworkList } from './netconf.js';
import { RepeatLimit } from './repeat-limit.js';
import type { HaproxyLb } from '../lb/haproxy.js';
import type { KeepalivedLb } from '../lb/lvs.js';
import type { Backend } from '../lb/render.js';
import { machineId } from '../cni/berth-ipam/config.js';
import { Reasserter, type AddressConflict } from './reassert.js';
import { isProcessOf, nsInode, ownNsInode } from './proc.js';
import { AttachTiming, type Look } from './timing.js';
import { firstIp, resultAddresses } from './result-addresses.js';
import { Slots } from './slots.js';
import { Coalesced } from '../core/coalesce.js';
import type { AttachmentRecord, StateDir } from './state.js';

const IFNAME = 'eth0';

export interface AgentDeps {
  docker: DockerEngine;
  store: Store;
  events: EventPublisher;
  log: Logger;
  /** containerd's event streams, for attaching as soon as a task exists (none: on Docker's start events only) */
  containerd?: ContainerdEvents[];
  /** the attachment records on disk */
  state: StateDir;
  /** runs the network chains (closed by whoever made it, after stop()) */
  runtime: CniRuntime;
  /** the load balancers fed with the backends, when a service uses them */
  haproxy?: HaproxyLb;
  keepalived?: KeepalivedLb;
}

/** Why a labelled container is not attached, for status and metrics. */
export interface Problem {
  containerId: string;
  name: string;
  network?: string;
  error: string;
  at: string;
  /** a failed ADD: tries so far for this process, and when the next may run (ms) */
  attempts?: number;
  retryAt?: number;
  pid?: number;
}

export class Agent {
  readonly records = new Map<string, AttachmentRecord>();
  readonly problems = new Map<string, Problem>();
  readonly metrics = new Registry();
  private readonly state: StateDir;
  private readonly runtime: CniRuntime;
  private networks = new Map<string, NetworkList>();
  /** broken network config files, logged when new or changed and then every 10 minutes, not at every reconciliation */
  private readonly skippedConfigs = new RepeatLimit(10 * 60 * 1000);
  private readonly chains = new Map<string, Promise<void>>();
  /** name, berth labels and network mode of each container Docker reported, read once (labels never change) */
  private readonly meta: ContainerMetaCache;
  /** how long containers wait for their address: the start_to_ip and task_to_ip histograms, the "attached" line's timing */
  private readonly timing: AttachTiming;
  /** publishes what this host runs to the store */
  private readonly announcer: HostAnnouncer;
  /** checks the attachments' addresses against the store at each reconciliation */
  private readonly reasserter: Reasserter;
  /** the agent's own network namespace: never a container's to attach */
  private readonly hostNsInode = ownNsInode();
  private inflight = 0;
  private readonly addSlots: Slots;
  private drained: Array<() => void> = [];
  private gcRunning: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];
  /** one reconciliation at a time; calls during one get one more after it */
  private readonly reconciliation = new Coalesced(() => this.reconcileOnce(), () => !this.stopping);
  private stopping = false;
  /** containers signalled to stop: out of the load balancers while they finish their requests */
  private readonly stoppingIds = new Map<string, number>();
  readonly haproxy: HaproxyLb | undefined;
  readonly keepalived: KeepalivedLb | undefined;
  private readonly warnedServices = new Set<string>();
  ready = false;
  lastReconcile: { at: string; ms: number; error?: string } | undefined;

  private readonly m = agentMetrics(this.metrics);

  constructor(
    readonly cfg: AgentConfig,
    private readonly deps: AgentDeps,
  ) {
    this.state = deps.state;
    this.runtime = deps.runtime;
    this.haproxy = deps.haproxy;
    this.keepalived = deps.keepalived;
    this.addSlots = new Slots(cfg.addSlots);
    this.meta = new ContainerMetaCache(deps.docker);
    this.timing = new AttachTiming(this.m.startToIp, this.m.taskToIp);
    this.announcer = new HostAnnouncer({
      store: deps.store,
      hostname: cfg.hostname,
      hostId: machineId(),
      log: deps.log,
      current: () => ({ members: serviceMembers(this.records.values(), new Set(cfg.lb.services.map((s) => s.name)), this.stoppingIds), targets: this.scrapeTargets() }),
    });
    this.reasserter = new Reasserter({ store: deps.store, storeUrl: cfg.store, hostname: cfg.hostname, log: deps.log, reasserted: this.m.reasserted, publish: (type, rec, detail) => this.publish(type, rec, detail) });
    agentGauges(this.metrics, {
      records: () => this.records.values(),
      problems: () => this.problems.size,
      conflicts: () => this.conflicts.size,
      docker: deps.docker,
      containerd: deps.containerd ?? [],
      events: deps.events,
    });
  }

  /** by container id: addresses of attachments that the store gives someone else, as of the last re-assertion */
  get conflicts(): ReadonlyMap<string, AddressConflict> {
    return this.reasserter.conflicts;
  }

  /** what the store's server is set to that can lose pool data (Store.serverWarnings), as of the last reconciliation */
  get storeWarnings(): string[] {
    return this.reasserter.warnings;
  }

  get docker(): DockerEngine {
    return this.deps.docker;
  }

  /** containerd's event streams followed (none: attaching on Docker's start events only). */
  get containerd(): readonly ContainerdEvents[] {
    return this.deps.containerd ?? [];
  }

  /** Loads the state dir, follows Docker and starts the timers. Resolves once watching. */
  start(): void {
    const { records, errors } = this.state.load();
    for (const e of errors) this.deps.log.error({ err: e }, 'unreadable attachment record left in place');
    for (const r of records) this.records.set(r.containerId, r);
    this.deps.log.info({ attachments: records.length }, 'state loaded');
    this.reloadNetworks();
    this.runtime.warm(this.networks.values()).catch((err: Error) => this.deps.log.warn({ err: err.message }, 'failed to preload the plugins'));
    for (const c of this.deps.containerd ?? []) c.watch((e) => this.onTask(e));
    this.deps.docker.watch(
      (e) => this.onEvent(e),
      () => void this.reconcile(),
    );
    // a store that comes back, on a new master perhaps, may have lost records: re-assert at once
    this.deps.store.onReconnect?.(() => {
      this.deps.log.info({ store: this.deps.store.location }, 'the store connection is back: reconciling and re-asserting the attachments');
      void this.reconcile();
    });
    this.timers.push(setInterval(() => void this.reconcile(), this.cfg.reconcileInterval * 1000));
    this.timers.push(setInterval(() => this.retryDue(), Math.max(50, this.cfg.retryInterval * 1000)));
    for (const t of this.timers) t.unref();
  }

  /** Stops following Docker and waits (bounded) for operations in flight. Attachments stay; the runtime is left open. */
  async stop(timeoutMs = 20000): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.announcer.stop();
    this.deps.docker.stop();
    for (const c of this.deps.containerd ?? []) c.stop();
    // HAProxy: warm loops end (a server not in rotation yet stays drained, and
    // the next agent warms it again); removals in flight finish
    const haproxy = this.haproxy?.close().then(() => this.haproxy!.idle());
    const all = Promise.allSettled([...this.chains.values(), this.reconciliation.idle(), haproxy]);
    await Promise.race([all, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  /** DELs that have not succeeded yet. */
  deleteQueue(): AttachmentRecord[] {
    return [...this.records.values()].filter((r) => r.phase === 'deleting');
  }

  /** The load-balancer backends: attached containers with berth.lb.* labels, not being stopped. */
  backends(): Backend[] {
    const declared = new Set(this.cfg.lb.services.map((s) => s.name));
    const out: Backend[] = [];
    for (const r of this.records.values()) {
      if (r.phase !== 'attached' || !r.ip || this.stoppingIds.has(r.containerId)) continue;
      for (const [service, port] of Object.entries(r.intent.lb)) {
        if (declared.has(service)) out.push({ service, ip: r.ip, port, container: r.containerId });
        else if (!this.warnedServices.has(`${r.containerId}/${service}`)) {
          this.warnedServices.add(`${r.containerId}/${service}`);
          this.deps.log.warn({ containerId: r.containerId, service }, `label berth.lb.${service}: no such service in the agent config`);
        }
      }
    }
    return out;
  }

  /** Prometheus HTTP service discovery (/v1/sd): every attached container with a berth.metrics label (announce.ts). */
  scrapeTargets(): ScrapeTarget[] {
    return scrapeTargets(this.records.values(), this.cfg.hostname);
  }

  /** Hands the current backends to the load balancers (they coalesce); `full` re-reads HAProxy's state to repair drift. */
  private lbSync(full = false): void {
    this.announcer.soon();
    if (!this.haproxy && !this.keepalived) return;
    const backends = this.backends();
    if (this.haproxy) void (full ? this.haproxy.resync(backends) : this.haproxy.update(backends));
    if (this.keepalived) void this.keepalived.update(backends);
  }

  private onEvent(e: ContainerEvent): void {
    if (e.action === 'create' || e.action === 'rename') {
      // read its labels now, while nothing waits for them: its task may come any moment
      this.meta.forget(e.id);
      void this.meta.get(e.id).catch(() => undefined);
      return;
    }
    if (e.action === 'kill') {
      // docker stop/kill (TERM, KILL, INT, QUIT; not a HUP sent to reload it):
      // drain it from the load balancers while it still answers
      const stopping = e.signal === undefined || [2, 3, 9, 15].includes(e.signal);
      if (stopping && this.records.has(e.id) && !this.stoppingIds.has(e.id)) {
        this.stoppingIds.set(e.id, Date.now());
        this.lbSync();
      }
      return;
    }
    if (e.action === 'start') {
      this.stoppingIds.delete(e.id);
      this.timing.started(e.id, e.timeNano);
    }
    void this.serialize(e.id, () => this.ensure(e.id)).then(() => {
      if (e.action === 'destroy') this.meta.forget(e.id);
    });
  }

  /** containerd made a task (attach it now) or a container's init exited (look again). */
  private onTask(e: TaskEvent): void {
    if (e.topic === '/tasks/create' && e.pid > 0) {
      this.timing.taskMade(e.containerId, e.timeNano);
      void this.serialize(e.containerId, () => this.ensure(e.containerId, { pid: e.pid }));
    } else if (e.topic === '/tasks/exit' && e.init) {
      // a task that never started (its start failed) has no die event from Docker
      void this.serialize(e.containerId, () => this.ensure(e.containerId));
    }
  }

  /** Runs fn after every earlier operation on the same container. */
  private serialize(id: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(async () => {
      if (this.stopping) return;
      await this.enter();
      try {
        await fn();
      } catch (err) {
        this.deps.log.error({ containerId: id, err: (err as Error).message }, 'operation failed');
      } finally {
        this.leave();
      }
    });
    this.chains.set(id, next);
    void next.then(() => {
      if (this.chains.get(id) === next) this.chains.delete(id);
    });
    return next;
  }

  // A GC must not see an allocation whose record is not written yet: while
  // one runs, new operations wait, and it waits for those in flight.
  private async enter(): Promise<void> {
    while (this.gcRunning) await this.gcRunning;
    this.inflight++;
  }

  private leave(): void {
    this.inflight--;
    if (this.inflight === 0) for (const d of this.drained.splice(0)) d();
  }

  /**
   * Makes Docker's view of one container and the agent's agree: gathers the
   * facts, asks decide() (decide.ts) and carries out its action. `task`: the
   * process containerd has just made for it, which Docker does not report yet.
   */
  async ensure(id: string, task?: { pid: number }): Promise<void> {
    const look = this.timing.look(id);
    const rec = this.records.get(id);
    let trigger: Trigger;
    let docker: DockerView | null;
    if (task) {
      const ofContainer = isProcessOf(task.pid, id);
      trigger = { kind: 'task', pid: task.pid, ofContainer };
      // another process's task is ignored whatever Docker says: not asked
      const meta = ofContainer ? await this.meta.get(id) : null;
      docker = meta && { name: meta.name, labels: readLabels(meta.labels, meta.name, meta.networkMode, this.cfg.policy) };
      look.read('containerd');
    } else {
      const info = await this.deps.docker.inspect(id);
      if (info) this.meta.remember(info);
      trigger = { kind: 'docker' };
      docker = info && { name: info.name, labels: readLabels(info.labels, info.name, info.networkMode, this.cfg.policy), state: { running: info.running, pid: info.pid } };
      look.read('docker');
    }
    const intent = docker && 'intent' in docker.labels ? docker.labels.intent : null;
    let network = intent ? this.network(intent.network) : undefined;
    const stoppingSince = this.stoppingIds.get(id);
    let action = decide({
      now: Date.now(),
      trigger,
      docker,
      ...(rec ? { record: { phase: rec.phase, pid: rec.pid, nsInode: rec.nsInode, network: rec.network.name, pidInode: nsInode(rec.pid) } } : {}),
      ...this.problemFacts(id),
      ...(stoppingSince !== undefined ? { stoppingSince } : {}),
      pidInode: nsInode(task ? task.pid : (docker?.state?.pid ?? 0)),
      hostInode: this.hostNsInode,
      networkConfigured: network !== undefined,
      cniConfDir: this.cfg.cniConfDir,
    });
    if (action.kind === 'replace') {
      // restarted (new namespace), relabelled, half-added or a DEL still due
      if (!(await this.detach(rec!, action.why))) return;
      network = this.network(action.target.intent.network);
      action = decideAttach({ now: Date.now(), target: action.target, inode: nsInode(action.target.pid), hostInode: this.hostNsInode, ...this.problemFacts(id), networkConfigured: network !== undefined, cniConfDir: this.cfg.cniConfDir });
    }
    switch (action.kind) {
      case 'ignore':
      case 'keep':
      case 'wait-for-backoff':
        return;
      case 'readmit':
        // signalled to stop a while ago and still running (it handled the signal)
        this.stoppingIds.delete(id);
        this.lbSync();
        return;
      case 'attach':
        await this.attach(id, action.target, action.inode, network!, look);
        return;
      case 'reject':
        if (action.refusal && this.problems.get(id)?.error !== action.error) {
          // refused by the operator's policy: counted and sent once per reason
          const { label, owner, network: name } = action.refusal;
          this.m.refusals.inc({ network: name, label });
          this.deps.events.publish({ type: 'refused', detail: action.error, container: id, name: docker!.name, owner, network: name, ip: '', host: this.cfg.hostname, time: new Date().toISOString() });
        }
        this.reject({ id, name: docker!.name }, action.error, action.network);
        if (!action.detach) return;
        await this.notAttached(id, rec, 'unlabelled', false);
        return;
      case 'detach':
        await this.notAttached(id, rec, action.why, action.clearProblem);
    }
  }

  /** The container is not to be attached: its record, if any, is detached. */
  private async notAttached(id: string, rec: AttachmentRecord | undefined, why: string, clearProblem: boolean): Promise<void> {
    if (clearProblem) this.problems.delete(id);
    this.timing.forget(id);
    if (rec) await this.detach(rec, why);
  }

  /** Why the container is listed as not attached, for decide(). */
  private problemFacts(id: string): { problem?: ProblemFacts } {
    const p = this.problems.get(id);
    return p ? { problem: { error: p.error, ...(p.pid !== undefined ? { pid: p.pid } : {}), ...(p.retryAt !== undefined ? { retryAt: p.retryAt } : {}) } } : {};
  }

  /** The network `name` from the CNI config dir, read again when it is not known. */
  private network(name: string): NetworkList | undefined {
    if (!this.networks.has(name)) this.reloadNetworks();
    return this.networks.get(name);
  }

  private async attach(id: string, target: Target, inode: number, network: NetworkList, look: Look): Promise<void> {
    const { name, pid, intent } = target;
    const log = this.deps.log.child({ containerId: id, network: intent.network });
    const now = new Date().toISOString();
    const rec: AttachmentRecord = { containerId: id, name, ifname: IFNAME, intent, network, phase: 'adding', pid, nsInode: inode, createdAt: now, updatedAt: now, attempts: 0 };
    const saveTimed = look.stopwatch('saveMs');
    await this.state.save(rec);
    saveTimed();
    this.records.set(id, rec);
    const started = process.hrtime.bigint();
    const slotTimed = look.stopwatch('slotMs');
    try {
      rec.result = await this.addSlots.run(async () => {
        slotTimed();
        // the wait for a slot can be long in a start storm: the pid must still be this container's
        if (nsInode(pid) !== inode) throw new Error(`the container's process ${pid} exited before its ADD`);
        return this.runtime.add(network, this.ref(rec, `/proc/${pid}/ns/net`));
      });
    } catch (err) {
      this.m.errors.inc({ op: 'add', network: network.name });
      log.error({ err: (err as Error).message }, 'attach failed');
      this.reject({ id, name }, (err as Error).message, network.name, pid);
      // the runtime undid the chain; make that durable (and retried) like any DEL
      await this.detach(rec, 'failed');
      return;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.m.ops.observe({ op: 'add', network: network.name }, seconds);
    rec.ip = firstIp(rec.result);
    rec.phase = 'attached';
    this.problems.delete(id);
    log.info({ ip: rec.ip, owner: intent.owner, ms: Math.round(seconds * 1000), ...this.timing.attached(id, look) }, 'attached');
    // The event goes out while the record is written: the address is up now,
    // and in a start storm a small write can wait ~0.5 s on a busy disk. If the
    // agent dies before it lands, the record still says "adding", and the
    // restart detaches and attaches again (to the same address: its owner is sticky).
    const saved = this.state.save(rec);
    this.publish('attached', rec);
    this.announcer.soon();
    await saved;
    if (Object.keys(intent.lb).length > 0) this.lbSync();
  }

  /** Runs DEL for a record; true once it is gone, false when it stays queued for a retry. */
  private async detach(rec: AttachmentRecord, why: string): Promise<boolean> {
    const log = this.deps.log.child({ containerId: rec.containerId, network: rec.network.name });
    const wasAttached = rec.phase === 'attached';
    if (rec.phase !== 'deleting') {
      rec.phase = 'deleting';
      await this.state.save(rec);
      // out of the load balancers now, even if the DEL has to wait for the store
      if (wasAttached && Object.keys(rec.intent.lb).length > 0) this.lbSync();
    }
    // the namespace only while it is still the container's: a reused pid is someone else's
    const netns = rec.pid > 0 && nsInode(rec.pid) === rec.nsInode ? `/proc/${rec.pid}/ns/net` : '';
    const started = process.hrtime.bigint();
    try {
      await this.runtime.del(rec.network, this.ref(rec, netns), rec.result);
    } catch (err) {
      rec.attempts++;
      rec.lastError = (err as Error).message;
      rec.retryAt = Date.now() + this.backoffMs(rec.attempts);
      await this.state.save(rec);
      this.m.errors.inc({ op: 'del', network: rec.network.name });
      log.error({ err: rec.lastError, attempts: rec.attempts, why }, 'detach failed; queued for retry');
      return false;
    }
    this.m.ops.observe({ op: 'del', network: rec.network.name }, Number(process.hrtime.bigint() - started) / 1e9);
    await this.state.remove(rec.containerId);
    if (this.records.get(rec.containerId) === rec) this.records.delete(rec.containerId);
    log.info({ ip: rec.ip, why, attempts: rec.attempts }, 'detached');
    if (wasAttached || rec.ip) {
      this.publish('detached', rec);
      this.announcer.soon();
    }
    this.stoppingIds.delete(rec.containerId);
    this.timing.detached(rec.containerId);
    for (const service of Object.keys(rec.intent.lb)) this.warnedServices.delete(`${rec.containerId}/${service}`);
    if (Object.keys(rec.intent.lb).length > 0) this.lbSync();
    return true;
  }

  /** The wait before try `attempts` + 1 of a failed DEL or ADD: retryInterval, doubling, at most 60 s. */
  private backoffMs(attempts: number): number {
    return Math.min(60000, this.cfg.retryInterval * 1000 * 2 ** Math.min(attempts - 1, 10));
  }

  /** Runs the DELs and the failed ADDs whose wait is over. */
  private retryDue(): void {
    const now = Date.now();
    const due = [...this.deleteQueue().filter((r) => (r.retryAt ?? 0) <= now).map((r) => r.containerId), ...[...this.problems.values()].filter((p) => p.retryAt !== undefined && p.retryAt <= now).map((p) => p.containerId)];
    for (const id of new Set(due)) if (!this.chains.has(id)) void this.serialize(id, () => this.ensure(id));
  }

  /**
   * Converges every container: attaches labelled running ones without an
   * attachment, detaches attachments whose container is gone, then issues
   * CNI GC for each network the agent uses. Concurrent calls coalesce.
   */
  reconcile(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return this.reconciliation.run();
  }

  private async reconcileOnce(): Promise<void> {
    const started = Date.now();
    try {
      this.reloadNetworks();
      // only problems known before the listing can be judged by it: a container started since is not in it
      const judged = new Set(this.problems.keys());
      const running = await this.deps.docker.listLabelled();
      const ids = new Set(running.map((c) => c.id));
      for (const id of this.records.keys()) ids.add(id);
      await Promise.all([...ids].map((id) => this.serialize(id, () => this.ensure(id))));
      for (const id of judged) if (!running.some((c) => c.id === id)) this.problems.delete(id);
      if (this.cfg.gc) await this.gc();
      await this.reasserter.reassert(this.records, (id, fn) => this.serialize(id, fn));
      await this.reasserter.checkServer();
      this.lbSync(true); // a periodic resync repairs drift
      await this.announcer.now();
      this.m.reconciles.inc();
      this.lastReconcile = { at: new Date().toISOString(), ms: Date.now() - started };
      if (!this.ready) this.deps.log.info({ ms: Date.now() - started, attachments: this.records.size }, 'ready');
      this.ready = true;
    } catch (err) {
      this.lastReconcile = { at: new Date().toISOString(), ms: Date.now() - started, error: (err as Error).message };
      this.m.errors.inc({ op: 'reconcile', network: '' });
      this.deps.log.error({ err: (err as Error).message }, 'reconciliation failed');
    }
  }

  /** CNI GC of every network the agent has attachments on, keeping exactly those attachments. */
  private async gc(): Promise<void> {
    const names = new Set([...this.records.values()].map((r) => r.network.name));
    if (names.size === 0) return;
    let release!: () => void;
    this.gcRunning = new Promise((r) => (release = r));
    try {
      if (this.inflight > 0) await new Promise<void>((r) => this.drained.push(r));
      for (const name of names) {
        const list = this.networks.get(name);
        if (!list) continue;
        const valid = [...this.records.values()].filter((r) => r.network.name === name).map((r) => ({ containerID: r.containerId, ifname: r.ifname }));
        try {
          const ran = await this.runtime.gc(list, valid);
          this.m.gcs.inc({ network: name, result: ran ? 'ok' : 'unsupported' });
        } catch (err) {
          this.m.gcs.inc({ network: name, result: 'error' });
          this.deps.log.warn({ network: name, err: (err as Error).message }, 'GC failed');
        }
      }
    } finally {
      this.gcRunning = undefined;
      release();
    }
  }

  private reloadNetworks(): void {
    const { networks, errors } = loadNetworks(this.cfg.cniConfDir);
    for (const e of this.skippedConfigs.due(errors)) this.deps.log.warn({ err: e }, 'network config skipped');
    this.networks = new Map([...networks].map(([name, list]) => [name, withDefaultStore(list, this.cfg.store)]));
  }

  /**
   * Lists a labelled container that is not attached, and why. `pid`: its ADD
   * failed for that process, which is tried again only after a backoff (the
   * first word on a start, containerd's, and Docker's that follows must not
   * each run the ADD).
   */
  private reject(c: { id: string; name: string }, error: string, network?: string, pid?: number): void {
    const prev = this.problems.get(c.id);
    if (prev?.error !== error) this.deps.log.warn({ containerId: c.id, name: c.name, network, err: error }, 'container not attached');
    const p: Problem = { containerId: c.id, name: c.name, ...(network ? { network } : {}), error, at: new Date().toISOString() };
    if (pid !== undefined) {
      p.pid = pid;
      p.attempts = prev?.pid === pid ? (prev.attempts ?? 0) + 1 : 1;
      p.retryAt = Date.now() + this.backoffMs(p.attempts);
    }
    this.problems.set(c.id, p);
  }

  private ref(rec: AttachmentRecord, netns: string): AttachmentRef {
    const args: Array<[string, string]> = [['BERTH_OWNER', rec.intent.owner]];
    if (rec.intent.ip) args.push(['IP', rec.intent.ip]);
    return {
      containerId: rec.containerId,
      ifname: rec.ifname,
      netns,
      args,
      capabilityArgs: rec.intent.ip ? { ips: rec.intent.ip.split(',') } : {},
    };
  }

  private publish(type: AttachmentEvent['type'], rec: AttachmentRecord, detail?: string): void {
    this.deps.events.publish({
      type,
      ...(detail ? { detail } : {}),
      container: rec.containerId,
      name: rec.name,
      owner: rec.intent.owner,
      network: rec.network.name,
      ip: rec.ip ?? '',
      ...(resultAddresses(rec.result).length > 1 ? { ips: resultAddresses(rec.result) } : {}),
      host: this.cfg.hostname,
      time: new Date().toISOString(),
      ...(Object.keys(rec.intent.lb).length > 0 ? { lb: rec.intent.lb } : {}),
    });
  }
}
