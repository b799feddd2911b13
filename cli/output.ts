// How the CLI prints: aligned tables and key/value blocks for people, one JSON
// document for scripts. Nothing here knows about pools.

/** Where output goes: process.stdout in production, a buffer in tests. */
export interface Sink {
  write(chunk: string): unknown;
}

/** Renders rows as columns padded to the widest cell; the last column is never padded. */
export function table(headers: readonly string[] | null, rows: readonly (readonly string[])[]): string {
  const all = headers ? [headers, ...rows] : [...rows];
  if (all.length === 0) return '';
  const columns = Math.max(...all.map((r) => r.length));
  const widths: number[] = [];
  for (let c = 0; c < columns; c++) widths.push(Math.max(...all.map((r) => (r[c] ?? '').length)));
  return all
    .map((r) => {
      const cells: string[] = [];
      for (let c = 0; c < columns; c++) {
        const cell = r[c] ?? '';
        cells.push(c === columns - 1 ? cell : cell.padEnd(widths[c]!));
      }
      return `${cells.join('  ').trimEnd()}\n`;
    })
    .join('');
}

/** Renders label/value pairs as an aligned block, leaving out empty values. */
export function fields(pairs: ReadonlyArray<readonly [string, string | undefined]>): string {
  return table(
    null,
    pairs.filter((p): p is readonly [string, string] => p[1] !== undefined && p[1] !== '').map(([k, v]) => [`${k}:`, v]),
  );
}

/** Writes one JSON document. */
export function writeJson(out: Sink, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A timestamp (ms since the epoch) as ISO 8601, or undefined when there is none. */
export function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** Seconds as a short duration for people, e.g. 90 → "1m30s", 3600 → "1h". */
export function duration(seconds: number): string {
  if (seconds === 0) return '0s';
  const units: Array<[string, number]> = [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  let rest = seconds;
  let out = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
