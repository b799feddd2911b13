// Bulk import and export of a pool's reservations, for migrations: a team
// moving an application from VMs brings its firewall-approved addresses per
// instance as a spreadsheet or an IPAM tool's export. Two formats: CSV with
// a header row (RFC 4180 quoting) and JSON lines. Parsing, formatting and
// the import plan are pure; the command in commands/ip.ts applies the plan.
import { formatIp, parseIp } from '../core/address.js';
import type { AddressInfo } from '../ipam/model.js';
import { isAssignable, type PoolConfig } from '../ipam/pool-config.js';

export type MigrationFormat = 'csv' | 'jsonl';

/** One row of an import: an address to reserve, for an owner, with a note; `line` is where it is in the file. */
export interface ImportRow {
  line: number;
  ip: string;
  /** hex */
  hex: string;
  owner?: string;
  note?: string;
}

/** A row that cannot be applied, and why. */
export interface Conflict {
  line: number;
  ip: string;
  why: string;
}

/** The columns an import reads; an export writes these and then EXPORT_EXTRA. */
export const IMPORT_COLUMNS = ['ip', 'owner', 'note'] as const;
export const EXPORT_EXTRA = ['state', 'container', 'host'] as const;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The format of a file by its name, else by its first character ("{": JSON lines). */
export function formatOf(name: string, text: string): MigrationFormat {
  if (/\.csv$/i.test(name)) return 'csv';
  if (/\.(jsonl|ndjson|json)$/i.test(name)) return 'jsonl';
  return text.replace(/^\uFEFF/, '').trimStart().startsWith('{') ? 'jsonl' : 'csv';
}

/** CSV records (RFC 4180: quoted fields may hold commas, quotes as "" and line breaks), each with the line it starts on. */
export function parseCsv(text: string): Array<{ line: number; cells: string[] }> {
  const out: Array<{ line: number; cells: string[] }> = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let start = 1;
  let any = false;
  const s = text.replace(/^\uFEFF/, '');
  const endRecord = () => {
    cells.push(cell);
    if (any || cells.length > 1 || cells[0] !== '') out.push({ line: start, cells });
    cells = [];
    cell = '';
    any = false;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else {
        if (c === '\n') line++;
        cell += c;
      }
    } else if (c === '"' && cell === '') {
      quoted = true;
      any = true;
    } else if (c === ',') {
      cells.push(cell);
      cell = '';
      any = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && s[i + 1] === '\n') i++;
      endRecord();
      line++;
      start = line;
    } else cell += c;
  }
  if (quoted) throw new Error(`line ${start}: a quoted field is not closed`);
  if (cell !== '' || cells.length > 0 || any) endRecord();
  return out;
}

/** One CSV cell, quoted when it holds a comma, a quote or a line break. */
function csvCell(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/**
 * The rows of an import file, each checked: a valid address, an owner key
 * and a note of printable characters. Extra columns (an export's state,
 * container, host) are read past. Throws naming the line and field of the
 * first malformed row.
 */
export function parseImport(text: string, format: MigrationFormat): ImportRow[] {
  const records: Array<{ line: number; get: (k: string) => unknown }> = [];
  if (format === 'csv') {
    const csv = parseCsv(text);
    const header = csv.shift();
    if (!header) return [];
    const cols = header.cells.map((c) => c.trim().toLowerCase());
    if (!cols.includes('ip')) throw new Error(`line ${header.line}: the header must name an "ip" column (ip,owner,note), got ${JSON.stringify(header.cells.join(','))}`);
    for (const r of csv) records.push({ line: r.line, get: (k) => (cols.includes(k) ? r.cells[cols.indexOf(k)] : undefined) });
  } else {
    text.split('\n').forEach((raw, i) => {
      if (raw.trim() === '') return;
      let obj: unknown;
      try {
        obj = JSON.parse(raw);
      } catch {
        throw new Error(`line ${i + 1}: not a JSON object`);
      }
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`line ${i + 1}: not a JSON object`);
      records.push({ line: i + 1, get: (k) => (obj as Record<string, unknown>)[k] });
    });
  }
  return records.map(({ line, get }) => {
    const text = (k: string, max: number): string | undefined => {
      const v = get(k);
      if (v === undefined || v === null || v === '') return undefined;
      if (typeof v !== 'string' || v.length > max || CONTROL.test(v)) throw new Error(`line ${line}: ${k} must be at most ${max} printable characters, got ${JSON.stringify(v)}`);
      return v.trim() || undefined;
    };
    const ipText = text('ip', 64);
    if (!ipText) throw new Error(`line ${line}: ip is missing`);
    let hex: string;
    try {
      hex = parseIp(ipText, 'ip').hex;
    } catch {
      throw new Error(`line ${line}: ip must be an IPv4 or IPv6 address, got ${JSON.stringify(ipText)}`);
    }
    const row: ImportRow = { line, ip: formatIp(hex), hex };
    const owner = text('owner', 253);
    const note = text('note', 1024);
    if (owner !== undefined) row.owner = owner;
    if (note !== undefined) row.note = note;
    return row;
  });
}

/**
 * What an import would do to a pool: the rows to reserve, the conflicts
 * (an address outside the pool or among its network, broadcast and gateway,
 * one allocated to or reserved for another owner, one listed twice), and the
 * rows already in place (reserved for the same owner with the same note).
 */
export function planImport(pool: PoolConfig, rows: ImportRow[], current: AddressInfo[]): { apply: ImportRow[]; conflicts: Conflict[]; unchanged: ImportRow[] } {
  const byIp = new Map(current.map((a) => [a.ip, a]));
  const seen = new Map<string, number>();
  const apply: ImportRow[] = [];
  const conflicts: Conflict[] = [];
  const unchanged: ImportRow[] = [];
  for (const r of rows) {
    const first = seen.get(r.hex);
    if (first !== undefined) {
      conflicts.push({ line: r.line, ip: r.ip, why: `listed twice (first on line ${first})` });
      continue;
    }
    seen.set(r.hex, r.line);
    if (!isAssignable(pool, r.hex)) {
      conflicts.push({ line: r.line, ip: r.ip, why: `not an assignable address of pool "${pool.name}" (${pool.subnet}: outside its ranges, or its network, broadcast or gateway)` });
      continue;
    }
    const a = byIp.get(r.hex);
    if (a && a.state === 'allocated' && a.owner !== r.owner) {
      conflicts.push({ line: r.line, ip: r.ip, why: `allocated to ${a.owner ?? 'no owner'} (container ${a.containerId})` });
      continue;
    }
    if (a && a.state === 'reserved' && a.owner !== undefined && a.owner !== r.owner) {
      conflicts.push({ line: r.line, ip: r.ip, why: `reserved for ${a.owner}` });
      continue;
    }
    if (a && a.state === 'reserved' && a.owner === r.owner && a.until === undefined && (a.note ?? undefined) === r.note) {
      unchanged.push(r);
      continue;
    }
    apply.push(r);
  }
  return { apply, conflicts, unchanged };
}

/** A pool's non-free addresses as an export: the import's columns, then state, container and host. */
export function formatExport(addresses: AddressInfo[], format: MigrationFormat): string {
  const rows = addresses
    .filter((a) => a.state !== 'free')
    .map((a) => ({ ip: formatIp(a.ip), owner: a.owner ?? '', note: a.note ?? '', state: a.state, container: a.containerId ?? '', host: a.host ?? '' }));
  if (format === 'jsonl') {
    return rows.map((r) => `${JSON.stringify(Object.fromEntries(Object.entries(r).filter(([, v]) => v !== '')))}\n`).join('');
  }
  const cols = [...IMPORT_COLUMNS, ...EXPORT_EXTRA];
  return [cols.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].map((l) => `${l}\n`).join('');
}
