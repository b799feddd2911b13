// What the agent depends on, looked at now: the store and HAProxy's admin
// socket are asked (each bounded in time, so a store that hangs cannot hang
// /readyz or `berth status`), Docker's and containerd's event streams and
// keepalived's last update are read. readiness() turns that into the reasons
// the agent is not ready; it is pure.
import type { Store } from '../ipam/model.js';
import { HaproxyApi } from '../lb/haproxy-api.js';
import { haveIpvs } from '../lb/lvs.js';
import type { Agent } from './agent.js';

/** How long a check waits for the store or HAProxy. */
export const CHECK_TIMEOUT_MS = 2000;

export interface HealthReport {
  store: { location: string; ok: boolean; ms: number; error?: string; warnings?: string[] };
  /** the event stream: the agent learns of starts and stops through it */
  docker: { socket: string; ok: boolean };
  /** optional streams (they make attaching faster): ok when one is up, or none is followed */
  containerd: { ok: boolean; sockets: Array<{ socket: string; connected: boolean; lastError?: string }> };
  haproxy?: { socket: string; ok: boolean; ms: number; pid?: number; error?: string; lastSyncError: string | null };
  /** nothing to ask: its last render, validation and SIGHUP (shown, not a readiness reason) */
  keepalived?: { config: string; ok: boolean; ipvs: boolean; lastError: string | null };
}

/**
 * Why the agent is not ready, empty when it is: the first reconciliation not
 * done, or what it drives out of reach: Docker's events, the store, HAProxy's
 * runtime API. Not containerd (without its stream the agent attaches on
 * Docker's events) and not keepalived: the agent only writes it a file, and
 * `keepalived -t` also rejects a file that is merely empty of real servers.
 */
export function readiness(reconciled: boolean, h: HealthReport): string[] {
  const reasons: string[] = [];
  if (!reconciled) reasons.push('the first reconciliation has not finished');
  if (!h.docker.ok) reasons.push(`the Docker event stream is down (${h.docker.socket})`);
  if (!h.store.ok) reasons.push(`the store does not answer: ${h.store.error}`);
  if (h.haproxy && !h.haproxy.ok) reasons.push(`HAProxy does not answer: ${h.haproxy.error}`);
  return reasons;
}

/** `p`, or a rejection with `message` once `ms` have passed. */
export async function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Checks the agent's dependencies; concurrent checks share one. */
export class Health {
  private running: Promise<HealthReport> | undefined;
  /**
   * a store call still pending from an earlier check: waited on again, so a
   * store that hangs is asked one question at a time; one pending for ten
   * checks' time is given up on, so a call that never settles cannot pin the
   * answer once the store is back
   */
  private storeCall: { promise: Promise<unknown>; at: number } | undefined;
  private readonly haproxyApi: HaproxyApi | undefined;

  constructor(
    private readonly agent: Agent,
    private readonly store: Store,
    private readonly timeoutMs = CHECK_TIMEOUT_MS,
  ) {
    if (agent.haproxy) this.haproxyApi = new HaproxyApi(agent.haproxy.api.socket, timeoutMs);
  }

  /** The dependencies' health now. */
  check(): Promise<HealthReport> {
    this.running ??= this.checkOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async checkOnce(): Promise<HealthReport> {
    const { agent } = this;
    const [store, haproxy] = await Promise.all([this.checkStore(), this.checkHaproxy()]);
    const sockets = agent.containerd.map((c) => ({ socket: c.socketPath, connected: c.connected, ...(c.lastError && !c.connected ? { lastError: c.lastError } : {}) }));
    const report: HealthReport = {
      store: agent.storeWarnings.length > 0 ? { ...store, warnings: agent.storeWarnings } : store,
      docker: { socket: agent.cfg.dockerSocket, ok: agent.docker.connected },
      containerd: { ok: sockets.length === 0 || sockets.some((s) => s.connected), sockets },
    };
    if (haproxy) report.haproxy = haproxy;
    if (agent.keepalived) {
      const lastError = agent.keepalived.lastError ?? null;
      report.keepalived = { config: agent.cfg.lb.keepalived!.config, ok: lastError === null, ipvs: haveIpvs(), lastError };
    }
    return report;
  }

  private async checkStore(): Promise<HealthReport['store']> {
    const location = this.store.location;
    const started = Date.now();
    if (!this.storeCall || started - this.storeCall.at > 10 * this.timeoutMs) {
      const call = {
        at: started,
        promise: this.store.listPools().finally(() => {
          if (this.storeCall === call) this.storeCall = undefined;
        }),
      };
      this.storeCall = call;
    }
    try {
      await within(this.storeCall.promise, this.timeoutMs, `store ${location} did not answer within ${this.timeoutMs} ms`);
      return { location, ok: true, ms: Date.now() - started };
    } catch (err) {
      const message = (err as Error).message;
      return { location, ok: false, ms: Date.now() - started, error: message.includes(location) ? message : `store ${location}: ${message}` };
    }
  }

  private async checkHaproxy(): Promise<HealthReport['haproxy']> {
    const lb = this.agent.haproxy;
    if (!lb || !this.haproxyApi) return undefined;
    const socket = this.haproxyApi.socket;
    const lastSyncError = lb.lastError ?? null;
    const started = Date.now();
    try {
      const pid = await this.haproxyApi.pid();
      return { socket, ok: true, ms: Date.now() - started, pid, lastSyncError };
    } catch (err) {
      return { socket, ok: false, ms: Date.now() - started, error: (err as Error).message, lastSyncError };
    }
  }
}
