// An address's history as CSV for audits (RFC 4180), newest first like the page.
import { formatIp } from '../core/address.js';
import type { HistoryEntry } from '../ipam/model.js';
import { iso } from '../ipam/views.js';

export const CSV_COLUMNS = ['time', 'event', 'pool', 'ip', 'owner', 'container', 'ifname', 'generation', 'actor', 'note'] as const;

/**
 * One field: quoted when it holds a comma, quote or line break. A field a
 * spreadsheet would run as a formula (starting with = + - @, tab or CR) is
 * prefixed with "'" so that it opens as the text it is.
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The history entries of one pool as CSV, with a header line; lines end in CRLF. */
export function historyCsv(pool: string, entries: readonly HistoryEntry[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const e of entries) {
    const row = [iso(e.at)!, e.event, pool, formatIp(e.ip), e.owner ?? '', e.containerId ?? '', e.ifname ?? '', e.gen === undefined ? '' : String(e.gen), e.actor ?? '', e.note ?? ''];
    lines.push(row.map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
