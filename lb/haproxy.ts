// Keeps a running HAProxy's backends equal to the containers behind them.
//
// Membership changes go through the Runtime API, with no reload:
//   scale-out  add server (in maintenance) -> enable health -> drain (checks
//              run, no traffic) -> first passed check -> ready (traffic);
//   scale-in   drain -> wait until its sessions end (bounded) -> maint ->
//              shutdown sessions -> del server. Runs in the background, so a
//              slow drain never holds up other changes.
// Topology changes (a service appears, goes or changes) re-render the whole
// config, validate it with `haproxy -c`, replace it atomically and reload the
// master (its workers hand the listening sockets over: no refused
// connection). The file always lists the current servers too, so a reload
// keeps them. Updates are coalesced: sync() runs one at a time and once more
// if anything changed meanwhile. A warming server whose check fails is checked
// again with bounded backoff for as long as it is wanted (lb/recheck.ts).
//
// Over 400 lines because one HAProxy backend's life (Runtime API commands, the
// file written for reloads, warming with rechecks, drift repair) shares the
// view of which servers are in which state; the rendering (render.ts), the
// recheck schedule (recheck.ts) and the Runtime API client (haproxy-api.ts) are apart.
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { LbConfig, Service } from './config.js';
import { Coalesced } from '../core/coalesce.js';
import { replaceFile } from './files.js';
import { HaproxyApi, haproxyCommand, HaproxyError, type ServerState } from './haproxy-api.js';
import { recheckDelay } from './recheck.js';
import { proxyName, renderHaproxy, serverAddr, serverKeywords, serverName, type Backend } from './render.js';

const ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20 | 0x40;
const ADMIN_DRAIN = 0x08;
const CHECK_PASSED = 3;
/** HAProxy's own check result is read at most this often (listing a big backend costs tens of ms), and at most once per check interval. */
const HAPROXY_READ_MS = 1000;

interface Warming {
  /** the loop: ends once the server is in rotation, unwanted, draining or gone, or on close() */
  task: Promise<void>;
  /** resolves when the loop ends or warmTimeoutMs has passed: what idle() and warmed() wait for */
  settled: Promise<void>;
  /** warmTimeoutMs has passed and the loop goes on in the background */
  late: boolean;
  stop: AbortController;
}

export interface ServerView {
  service: string;
  server: string;
  addr: string;
  state: 'ready' | 'warming' | 'draining' | 'down' | 'maint';
  container?: string;
}

/** Validates a config file with `haproxy -c`; rejects with HAProxy's own message. */
export function validateHaproxy(binary: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['-c', '-f', file], { timeout: 60000 }, (err, stdout, stderr) => {
      if (err) reject(new HaproxyError(`haproxy -c rejected ${file}: ${`${stderr}${stdout}`.trim().split('\n').slice(-5).join(' | ') || err.message}`));
      else resolve();
    });
  });
}

export class HaproxyLb {
  readonly api: HaproxyApi;
  private desired: Backend[] = [];
  private readonly syncs = new Coalesced(() => this.syncGuarded());
  private topology: string | undefined;
  private reloadPending = false;
  private readonly draining = new Map<string, Promise<void>>();
  private readonly warming = new Map<string, Warming>();
  private closed = false;
  /** per backend: the servers HAProxy has, as read and then changed by berth */
  private model: Map<string, Map<string, ServerState>> | undefined;
  private readonly fileWrites = new Coalesced(() => this.writeFile());
  readonly stats = { added: 0, removed: 0, reloads: 0, errors: 0 };
  lastError: string | undefined;

  constructor(
    private readonly lb: LbConfig,
    private readonly log: Logger,
    /** ms that idle() and warmed() wait for a new server's first passed check; after that it is still checked, in the background */
    private readonly warmTimeoutMs = 30000,
  ) {
    this.api = new HaproxyApi(lb.haproxy!.socket);
  }

  private services(): Service[] {
    return this.lb.services.filter((s) => s.haproxy);
  }

  /** Sets the backends HAProxy should have and syncs (coalesced). Resolves when a sync covering it is done. */
  update(backends: Backend[]): Promise<void> {
    const known = new Set(this.services().map((s) => s.name));
    this.desired = backends.filter((b) => known.has(b.service));
    return this.sync();
  }

  sync(): Promise<void> {
    return this.syncs.run();
  }

  private async syncGuarded(): Promise<void> {
    try {
      await this.syncOnce();
      this.lastError = undefined;
    } catch (err) {
      this.stats.errors++;
      this.lastError = (err as Error).message;
      this.log.error({ err: this.lastError }, 'HAProxy sync failed');
    }
  }

  /** Servers warming for less than warmTimeoutMs: the ones idle() and warmed() wait for. */
  private warmingOnTime(): Array<Promise<void>> {
    return [...this.warming.values()].filter((w) => !w.late).map((w) => w.settled);
  }

  /** Waits until nothing is draining or being written, and every warming server is in rotation or warming for warmTimeoutMs already (tests, shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      const warming = this.warmingOnTime();
      if (!this.syncs.busy && !this.fileWrites.busy && this.draining.size === 0 && warming.length === 0) return;
      await Promise.all([this.syncs.idle(), this.fileWrites.idle(), ...this.draining.values(), ...warming]);
    }
  }

  /** Waits until every added server is in rotation or warming for warmTimeoutMs already. */
  async warmed(): Promise<void> {
    for (;;) {
      const warming = this.warmingOnTime();
      if (!this.syncs.busy && warming.length === 0) return;
      await Promise.all([this.syncs.idle(), ...warming]);
    }
  }

  /**
   * Stops warming (shutdown): servers not in rotation yet stay drained, and a
   * later sync of a new HaproxyLb warms them again; no warming starts after
   * this. Syncs and drains go on. Resolves once every warm loop has ended.
   */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.warming.values()];
    for (const w of all) w.stop.abort();
    await Promise.all(all.map((w) => w.task));
  }

  /** Re-reads every server from HAProxy on the next sync (periodic drift repair) and syncs. */
  resync(backends: Backend[]): Promise<void> {
    this.model = undefined;
    return this.update(backends);
  }

  private async syncOnce(): Promise<void> {
    const h = this.lb.haproxy!;
    const desired = this.desired;
    const topology = renderHaproxy(this.lb, []);
    if (this.topology === undefined) {
      // first sync: reload only if the running config is not ours for these services
      const current = existsSync(h.config) ? readFileSync(h.config, 'utf8') : '';
      if (stripServers(current) === stripServers(topology)) this.topology = topology;
    }
    if (this.topology !== topology || this.reloadPending) {
      // pending until the reload succeeds: a failed one is tried again
      this.reloadPending = true;
      await this.replaceConfig(renderHaproxy(this.lb, desired));
      this.reloadPending = false;
      this.topology = topology;
      this.model = undefined;
      return;
    }
    // HAProxy's servers as last read, kept up to date by every command since:
    // listing thousands of servers costs tens of ms, a change must not
    let model = this.model;
    if (!model) {
      model = new Map<string, Map<string, ServerState>>();
      for (const s of this.services()) {
        const backend = proxyName(s.name);
        try {
          model.set(backend, new Map((await this.api.servers(backend)).map((a) => [a.name, a])));
        } catch (err) {
          // the file is ours but the running HAProxy is not on it (a reload that
          // never happened, say an agent killed between rename and reload)
          if (/has no backend/.test((err as Error).message)) this.reloadPending = true;
          throw err;
        }
      }
      this.model = model;
    }
    for (const s of this.services()) {
      const backend = proxyName(s.name);
      const have = model.get(backend)!;
      const want = new Map(desired.filter((b) => b.service === s.name).map((b) => [serverName(b), b]));
      const busy = (name: string) => this.draining.has(`${backend}/${name}`) || this.warming.has(`${backend}/${name}`);
      const adds = [...want].filter(([name]) => !have.has(name) && !busy(name));
      await Promise.all(adds.map(([, b]) => this.addServer(s, b, have)));
      for (const [name, st] of have) {
        const b = want.get(name);
        if (!b) this.removeServer(backend, st, have);
        else if (busy(name)) continue;
        else if (st.admin & ADMIN_MAINT) await this.readmit(s, b, st, have);
        else if (st.admin & ADMIN_DRAIN) this.warm(s, b, have);
      }
    }
    // (a reload renders the file anew anyway)
    this.scheduleFileWrite();
  }

  /** The file follows the running state; rendering thousands of servers is not on the path of the change itself. */
  private scheduleFileWrite(): void {
    void this.fileWrites.run();
  }

  private async writeFile(): Promise<void> {
    // a little later: a burst of changes is written once, and rendering a
    // big config does not hold up the commands of the change itself
    await new Promise((r) => setTimeout(r, 100));
    try {
      await replaceFile(this.lb.haproxy!.config, renderHaproxy(this.lb, this.desired), { ifChanged: true });
    } catch (err) {
      this.stats.errors++;
      this.log.error({ err: (err as Error).message }, 'failed to write the HAProxy config file');
    }
  }

  private async addServer(s: Service, b: Backend, have: Map<string, ServerState>): Promise<void> {
    const backend = proxyName(s.name);
    const name = serverName(b);
    const api = this.api;
    try {
      await api.expectOk(`add server ${backend}/${name} ${serverAddr(b)} ${serverKeywords(s)}`, /New server registered/);
    } catch (err) {
      this.model = undefined; // HAProxy knows something the model does not: read it all on the next sync
      throw err;
    }
    const st: ServerState = { backendId: 0, id: 0, name, addr: b.ip, port: b.port, operational: 0, admin: 0x01, checkResult: 0 };
    have.set(name, st);
    this.stats.added++;
    this.log.info({ service: s.name, server: name, addr: serverAddr(b), containerId: b.container }, 'backend added; waiting for its first passed check');
    await this.startWarming(s, b, st, have);
  }

  /** A wanted server found in maintenance (a half-done add or removal): back to warming. */
  private async readmit(s: Service, b: Backend, st: ServerState, have: Map<string, ServerState>): Promise<void> {
    this.log.info({ backend: proxyName(s.name), server: st.name }, 'backend found in maintenance while wanted; warming it again');
    await this.startWarming(s, b, st, have);
  }

  /** From maintenance into drain (checks run, traffic does not), then in rotation once a check passes. */
  private async startWarming(s: Service, b: Backend, st: ServerState, have: Map<string, ServerState>): Promise<void> {
    const backend = proxyName(s.name);
    await this.api.expectOk(`enable health ${backend}/${st.name}`);
    await this.api.expectOk(`set server ${backend}/${st.name} state drain`);
    st.admin = ADMIN_DRAIN;
    this.warm(s, b, have);
  }

  /** Whether the server `name` of `backend` is among the backends HAProxy should have. */
  private wanted(backend: string, name: string): boolean {
    return this.desired.some((b) => proxyName(b.service) === backend && serverName(b) === name);
  }

  /**
   * Lets a warming server take traffic once a health check has passed:
   * the same check made from here (at once; HAProxy's first check only comes
   * after its interval) or HAProxy's own. A failed check is made again after
   * recheckDelay(), for as long as the server is wanted, not draining, and
   * close() has not been called. In the background: a backend that is slow
   * to come up holds up nothing else.
   */
  private warm(s: Service, b: Backend, have: Map<string, ServerState>): void {
    const backend = proxyName(s.name);
    const name = serverName(b);
    const key = `${backend}/${name}`;
    if (this.warming.has(key) || this.closed) return;
    const interval = s.haproxy!.check.interval;
    const stop = new AbortController();
    let settle!: () => void;
    const w = { settled: new Promise<void>((r) => (settle = r)), late: false, stop } as Warming;
    // in the map before the loop starts: a loop that ends at once must find its entry to delete
    this.warming.set(key, w);
    const deadline = setTimeout(() => {
      w.late = true;
      settle();
      this.log.warn({ backend, server: name, recheckMs: recheckDelay(Infinity, interval) }, 'backend has not passed a health check yet; it stays out of rotation and is checked again until it passes');
    }, this.warmTimeoutMs);
    const cancelled = () => stop.signal.aborted || !this.wanted(backend, name) || this.draining.has(key);
    let gone = false;
    w.task = (async () => {
      let failed = 0;
      let readAt = Date.now() + Math.max(interval, HAPROXY_READ_MS);
      try {
        for (;;) {
          if (cancelled()) return;
          if (await probe(s, b, 2000, stop.signal)) break;
          failed++;
          if (Date.now() >= readAt) {
            readAt = Date.now() + Math.max(interval, HAPROXY_READ_MS);
            const st = (await this.api.servers(backend)).find((x) => x.name === name);
            if (!st) {
              gone = true;
              return;
            }
            if (st.checkResult === CHECK_PASSED) break;
          }
          await sleep(recheckDelay(failed, interval), undefined, { signal: stop.signal }).catch(() => undefined);
        }
        if (cancelled()) return;
        await this.api.expectOk(`set server ${key} state ready`);
        const st = have.get(name);
        if (st) st.admin = 0;
        this.log.info({ backend, server: name, failedChecks: failed }, 'backend in rotation');
      } catch (err) {
        this.stats.errors++;
        this.model = undefined;
        this.log.error({ backend, server: name, err: (err as Error).message }, 'failed to put a backend in rotation; the next sync retries');
      } finally {
        clearTimeout(deadline);
        settle();
        this.warming.delete(key);
        // deleted from HAProxy behind berth's back while still wanted: read HAProxy anew and add it
        if (gone && !this.closed && this.wanted(backend, name)) {
          this.model = undefined;
          void this.sync();
        }
      }
    })();
  }

  private removeServer(backend: string, st: ServerState, have: Map<string, ServerState>): void {
    const key = `${backend}/${st.name}`;
    if (this.draining.has(key)) return;
    const task = (async () => {
      const api = this.api;
      try {
        // it is no longer wanted: its warm loop stops at once
        const w = this.warming.get(key);
        w?.stop.abort();
        await w?.task;
        if (!(st.admin & ADMIN_MAINT)) {
          await api.expectOk(`set server ${key} state drain`);
          const ids = st.id > 0 ? st : (await api.servers(backend)).find((x) => x.name === st.name);
          const deadline = Date.now() + this.lb.haproxy!.drainTimeout * 1000;
          for (;;) {
            const sessions = (await api.sessions(backend, ids)).get(st.name);
            if (sessions === undefined) throw new HaproxyError(`HAProxy reports no sessions line for ${key}`);
            if (sessions === 0 || Date.now() >= deadline) break;
            await new Promise((r) => setTimeout(r, 50));
          }
          await api.expectOk(`set server ${key} state maint`);
        }
        await api.expectOk(`shutdown sessions server ${key}`);
        for (let i = 0; ; i++) {
          const out = await api.command(`del server ${key}`);
          if (/Server deleted/.test(out)) break;
          if (i >= 40) throw new HaproxyError(`del server ${key}: ${out.trim()}`);
          await new Promise((r) => setTimeout(r, 50)); // sessions still closing
        }
        if (have.get(st.name) === st) have.delete(st.name);
        this.model?.get(backend)?.delete(st.name); // a resync meanwhile may have read it back
        this.stats.removed++;
        this.log.info({ backend, server: st.name }, 'backend drained and removed');
      } catch (err) {
        this.stats.errors++;
        this.model = undefined;
        this.log.error({ backend, server: st.name, err: (err as Error).message }, 'failed to remove a backend; the next sync retries');
      } finally {
        this.draining.delete(key);
        // wanted again while it drained (a container back on the same address): read HAProxy anew and add it
        if (this.wanted(backend, st.name)) {
          this.model = undefined;
          void this.sync();
        }
      }
    })();
    this.draining.set(key, task);
  }

  /** Validates, replaces and reloads; waits for the new worker to answer. */
  private async replaceConfig(text: string): Promise<void> {
    const h = this.lb.haproxy!;
    await replaceFile(h.config, text, { validate: (tmp) => validateHaproxy(h.binary, tmp) });
    const before = await this.api.pid().catch(() => 0);
    await haproxyCommand(h.masterSocket, 'reload', 10000);
    const deadline = Date.now() + 30000;
    for (;;) {
      const now = await this.api.pid().catch(() => 0);
      if (now !== 0 && now !== before) break;
      if (Date.now() > deadline) throw new HaproxyError('HAProxy did not start a new worker within 30 s of the reload');
      await new Promise((r) => setTimeout(r, 25));
    }
    this.stats.reloads++;
    this.log.info({ services: this.services().map((s) => s.name) }, 'HAProxy config replaced and reloaded');
  }

  /** What `berth lb show` lists. */
  async view(): Promise<ServerView[]> {
    const out: ServerView[] = [];
    const containers = new Map(this.desired.map((b) => [`${proxyName(b.service)}/${serverName(b)}`, b.container]));
    for (const s of this.services()) {
      const backend = proxyName(s.name);
      for (const a of await this.api.servers(backend)) {
        const key = `${backend}/${a.name}`;
        const state: ServerView['state'] = a.admin & ADMIN_MAINT ? 'maint' : a.admin & ADMIN_DRAIN ? (this.draining.has(key) ? 'draining' : 'warming') : a.operational === 0 ? 'down' : 'ready';
        const c = containers.get(key);
        out.push({ service: s.name, server: a.name, addr: `${a.addr}:${a.port}`, state, ...(c ? { container: c } : {}) });
      }
    }
    return out;
  }
}

/** The service's health check, made from this host: an HTTP GET of the check path (2xx/3xx passes, as in HAProxy) or a TCP connect; an abort fails it at once. */
export function probe(s: Service, b: Backend, timeoutMs = 2000, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const path = s.haproxy!.check.path;
    if (path) {
      const req = httpRequest({ host: b.ip, port: b.port, path, method: 'GET', timeout: timeoutMs, agent: false, signal }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
      return;
    }
    const sock = netConnect({ host: b.ip, port: b.port, timeout: timeoutMs, signal });
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('timeout', () => (sock.destroy(), resolve(false)));
    sock.once('error', () => resolve(false));
  });
}

/** A config without its server lines: what decides whether a reload is needed. */
function stripServers(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s+server /.test(l))
    .join('\n');
}
