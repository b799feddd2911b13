// LVS: the virtual servers berth renders for keepalived, validated with
// `keepalived -t` where it is installed, replaced atomically, keepalived told
// with SIGHUP. Applying real servers directly goes through IPVS, which a
// kernel may lack (these test machines do): that is detected and said once,
// and the rendered state is kept. planIpvs is the direct-apply plan as data:
// new real servers added, gone ones set to weight 0 first (drain), deleted on
// the next pass.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { LbConfig } from './config.js';
import { Coalesced } from '../core/coalesce.js';
import { replaceFile } from './files.js';
import { renderKeepalived, type Backend } from './render.js';

export class KeepalivedError extends Error {}

export interface RealServer {
  vip: string;
  vport: number;
  protocol: 'TCP' | 'UDP';
  ip: string;
  port: number;
  weight: number;
}

export type IpvsOp = { op: 'add'; rs: RealServer } | { op: 'drain'; rs: RealServer } | { op: 'delete'; rs: RealServer };

/** Whether this kernel has IPVS. */
export function haveIpvs(): boolean {
  return existsSync('/proc/net/ip_vs');
}

/** What to do to make `current` real servers become `desired`: adds, weight-0 drains, then deletes of drained ones. */
export function planIpvs(current: RealServer[], desired: RealServer[]): IpvsOp[] {
  const key = (r: RealServer) => `${r.protocol} ${r.vip}:${r.vport} ${r.ip}:${r.port}`;
  const want = new Map(desired.map((r) => [key(r), r]));
  const have = new Map(current.map((r) => [key(r), r]));
  const ops: IpvsOp[] = [];
  for (const [k, r] of want) if (!have.has(k)) ops.push({ op: 'add', rs: r });
  for (const [k, r] of have) {
    if (want.has(k)) continue;
    ops.push(r.weight > 0 ? { op: 'drain', rs: { ...r, weight: 0 } } : { op: 'delete', rs: r });
  }
  return ops;
}

/** The real servers the config and backends call for. */
export function desiredRealServers(lb: LbConfig, backends: Backend[]): RealServer[] {
  const out: RealServer[] = [];
  for (const s of lb.services) {
    if (!s.lvs) continue;
    for (const b of backends) if (b.service === s.name && b.ip.includes(':') === s.lvs.vip.includes(':')) out.push({ vip: s.lvs.vip, vport: s.lvs.port, protocol: s.lvs.protocol, ip: b.ip, port: b.port, weight: 1 });
  }
  return out;
}

/** Validates a keepalived config with `keepalived -t`. */
export function validateKeepalived(binary: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(binary, ['-t', '-f', file, '-l', '-n'], { timeout: 30000 }, (err, stdout, stderr) => {
      if (err) reject(new KeepalivedError(`keepalived -t rejected ${file}: ${`${stderr}${stdout}`.trim().split('\n').slice(-5).join(' | ') || err.message}`));
      else resolve();
    });
  });
}

export class KeepalivedLb {
  private warned = false;
  readonly stats = { renders: 0, errors: 0 };
  lastError: string | undefined;

  constructor(
    private readonly lb: LbConfig,
    private readonly log: Logger,
  ) {}

  private next: Backend[] = [];
  private readonly applies = new Coalesced(() => this.apply(this.next));

  /** Renders, validates and replaces the virtual servers file when it changed; SIGHUPs keepalived. One at a time, the latest backends winning. */
  update(backends: Backend[]): Promise<void> {
    this.next = backends;
    return this.applies.run();
  }

  private async apply(backends: Backend[]): Promise<void> {
    const k = this.lb.keepalived!;
    try {
      const text = renderKeepalived(this.lb, backends);
      if (!this.warned && !haveIpvs()) {
        this.warned = true;
        this.log.warn({ file: k.config }, 'this kernel has no IPVS (/proc/net/ip_vs is missing): LVS services are rendered for keepalived but cannot be applied on this host');
      }
      const validate = existsSync(k.binary) ? (tmp: string) => validateKeepalived(k.binary, tmp) : undefined;
      if (!(await replaceFile(k.config, text, { ifChanged: true, ...(validate ? { validate } : {}) }))) return;
      if (!validate) this.log.warn({ binary: k.binary }, 'keepalived is not installed: the rendered config is not validated');
      this.stats.renders++;
      if (k.pidFile && existsSync(k.pidFile)) {
        const pid = Number(readFileSync(k.pidFile, 'utf8').trim());
        if (Number.isInteger(pid) && pid > 1) process.kill(pid, 'SIGHUP');
      }
      this.lastError = undefined;
    } catch (err) {
      this.stats.errors++;
      this.lastError = (err as Error).message;
      this.log.error({ err: this.lastError }, 'keepalived config not replaced');
    }
  }
}
