// When a warming HAProxy server (added, checks running, no traffic yet) is
// checked again after a failed check. Pure.

/** The wait after the first failed check, in ms. */
export const RECHECK_FIRST_MS = 50;
/** The longest wait, whatever the service's check interval. */
export const RECHECK_MAX_MS = 5000;

/**
 * The wait in ms before the next check, after `failed` failed checks in a row
 * (1, 2, …): 50 ms, doubled each time, never longer than the service's check
 * interval nor 5 s. A backend that starts answering is thus seen within one
 * interval (5 s at most), and one that stays down is checked, once the waits
 * reach the cap, as often as HAProxy checks it itself (every 5 s when
 * HAProxy's interval is longer).
 */
export function recheckDelay(failed: number, intervalMs: number): number {
  const cap = Math.max(RECHECK_FIRST_MS, Math.min(intervalMs, RECHECK_MAX_MS));
  return Math.min(RECHECK_FIRST_MS * 2 ** (Math.max(failed, 1) - 1), cap);
}
