// Hosts re-assert what they run. The agent is the one place that knows which
// containers really hold which address on its host; the store can lose a
// record (an asynchronous replica promoted before it had it, a restore from
// an older backup). At every reconciliation each attachment is checked
// against the store: a record that is gone is taken again for the same
// attachment, and an address the store now gives someone else is a conflict,
// reported and recorded, never silently overwritten. The container keeps
// running either way. The store server's settings that can lose records are
// logged whenever they change.
//
// verdict() is the pure rule; Reasserter applies it to the agent's
// attachments through the Store.
import type { Logger } from 'pino';
import { parseIp } from '../core/address.js';
import type { AddressInfo, Store } from '../ipam/model.js';
import type { Counter } from './metrics.js';
import { ipamOf, type NetworkList } from './netconf.js';
import { resultAddresses } from './result-addresses.js';
import type { AttachmentRecord } from './state.js';

/** What to do about one attachment, given its address as the store has it. */
export type Verdict =
  | { kind: 'ok' }
  /** the store does not have it as this attachment's: take it again */
  | { kind: 'retake' }
  /** the store gives it to someone else */
  | { kind: 'conflict'; holder: string };

/**
 * The verdict for the attachment `containerId`/`ifname` of `owner` on its
 * address, read as `info`: held by the attachment, nothing to do; free, or
 * held for the same owner (its record lost after a release it never had),
 * take it again; allocated to another attachment or reserved for another
 * owner (or an admin), a conflict.
 */
export function verdict(att: { containerId: string; ifname: string; owner: string }, info: AddressInfo): Verdict {
  if (info.state === 'allocated') {
    if (info.containerId === att.containerId && info.ifname === att.ifname) return { kind: 'ok' };
    return { kind: 'conflict', holder: `allocated to ${info.containerId}/${info.ifname} (owner ${info.owner ?? 'none'}${info.host ? `, host ${info.host}` : ''})` };
  }
  if (info.state === 'free' || info.owner === att.owner) return { kind: 'retake' };
  return { kind: 'conflict', holder: `reserved for ${info.owner === undefined ? 'no one' : `owner ${info.owner}`}${info.note ? ` (${info.note})` : ''}` };
}

/** An address of an attachment that the store gives someone else. */
export interface AddressConflict {
  containerId: string;
  name: string;
  network: string;
  pool: string;
  ip: string;
  /** who the store gives it to */
  holder: string;
  since: string;
}

export interface ReasserterDeps {
  store: Store;
  /** the agent's store URL: only berth-ipam networks in it are checked */
  storeUrl: string;
  hostname: string;
  log: Logger;
  /** berth_agent_reasserted_total */
  reasserted: Counter;
  /** sends a "reasserted" or "conflict" event for the attachment */
  publish(type: 'reasserted' | 'conflict', rec: AttachmentRecord, detail?: string): void;
}

export class Reasserter {
  /** by container id: found at the last re-assertion, kept until resolved */
  readonly conflicts = new Map<string, AddressConflict>();
  /** what the store's server is set to that can lose pool data (Store.serverWarnings), as of the last check */
  warnings: string[] = [];

  constructor(private readonly d: ReasserterDeps) {}

  /**
   * Checks every attached record's addresses against the store: a lost
   * record is taken again for its attachment, an address the store gives
   * someone else is a conflict (logged, listed, sent as an event and, once,
   * recorded in the pool's history). Each check runs through `serialize`,
   * on the record as it is then.
   */
  async reassert(records: ReadonlyMap<string, AttachmentRecord>, serialize: (id: string, fn: () => Promise<void>) => Promise<void>): Promise<void> {
    const seen = new Set<string>();
    await Promise.all(
      [...records.values()]
        .filter((r) => r.phase === 'attached')
        .map((r) =>
          serialize(r.containerId, async () => {
            const rec = records.get(r.containerId);
            if (rec?.phase !== 'attached') return;
            const pool = this.ownPool(rec.network);
            if (!pool) return;
            try {
              for (const address of resultAddresses(rec.result)) await this.reassertOne(rec, pool, address, seen);
            } catch (err) {
              seen.add(rec.containerId); // not known now: a conflict found before stands
              this.d.log.warn({ containerId: rec.containerId, err: (err as Error).message }, 'failed to check the address against the store');
            }
          }),
        ),
    );
    for (const id of this.conflicts.keys()) if (!seen.has(id)) this.conflicts.delete(id);
  }

  /** Reads the store server's risky settings; each is logged when the set changes (at start, then when fixed or broken). */
  async checkServer(): Promise<void> {
    let warnings: string[];
    try {
      warnings = await this.d.store.serverWarnings();
    } catch {
      return; // the store's health says it does not answer
    }
    if (warnings.join('\n') !== this.warnings.join('\n')) {
      for (const w of warnings) this.d.log.warn({ store: this.d.store.location }, `the store can lose pool data: ${w}`);
      if (warnings.length === 0 && this.warnings.length > 0) this.d.log.info({ store: this.d.store.location }, 'the store server settings are safe now');
    }
    this.warnings = warnings;
  }

  private async reassertOne(rec: AttachmentRecord, pool: string, address: string, seen: Set<string>): Promise<void> {
    const { store, hostname } = this.d;
    const log = this.d.log.child({ containerId: rec.containerId, network: rec.network.name });
    const hex = parseIp(address, 'ip').hex;
    const att = { containerId: rec.containerId, ifname: rec.ifname, owner: rec.intent.owner };
    const v = verdict(att, await store.getAddress(pool, hex));
    if (v.kind === 'ok') return;
    const actor = `agent@${hostname}`;
    if (v.kind === 'retake') {
      try {
        await store.allocate(pool, { ...att, ip: hex, host: hostname, network: rec.network.name, actor });
        this.d.reasserted.inc({ pool });
        log.warn({ ip: address, pool }, 'the store had lost this address: taken again for its attachment');
        this.d.publish('reasserted', rec);
        return;
      } catch (err) {
        // taken meanwhile: a conflict, read as it is now
        log.warn({ ip: address, err: (err as Error).message }, 'failed to take the address again');
        return;
      }
    }
    seen.add(rec.containerId);
    const known = this.conflicts.get(rec.containerId);
    if (known?.ip === address && known.holder === v.holder) return;
    this.conflicts.set(rec.containerId, { containerId: rec.containerId, name: rec.name, network: rec.network.name, pool, ip: address, holder: v.holder, since: new Date().toISOString() });
    log.error({ ip: address, pool, holder: v.holder }, 'address conflict: this container uses an address the store gives someone else');
    const note = `in use by ${rec.containerId}/${rec.ifname} (owner ${rec.intent.owner}) on host ${hostname}, which the store has ${v.holder}`;
    await store.conflict(pool, hex, { note: note.slice(0, 1024), actor }).catch((err: Error) => log.warn({ err: err.message }, 'failed to record the conflict in the pool history'));
    this.d.publish('conflict', rec, v.holder);
  }

  /** The berth-ipam pool of a network whose store is the agent's, if it is one. */
  private ownPool(network: NetworkList): string | undefined {
    const ipam = ipamOf(network);
    return ipam?.store === this.d.storeUrl ? ipam.pool : undefined;
  }
}
