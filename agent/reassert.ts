// Hosts re-assert what they run. The agent is the one place that knows which
// containers really hold which address on its host; the store can lose a
// record (an asynchronous replica promoted before it had it, a restore from
// an older backup). At every reconciliation each attachment is checked
// against the store: a record that is gone is taken again for the same
// attachment, and an address the store now gives someone else is a conflict,
// reported and recorded, never silently overwritten. The container keeps
// running either way.
import type { AddressInfo } from '../ipam/model.js';

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
