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
