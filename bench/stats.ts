import { spawnSync } from 'node:child_process';

// Summaries of timed samples, shared by the benchmarks.

/** The p-th percentile (0-100) of samples sorted ascending. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Mean, p50 and p95 of samples in ms. */
export function summarize(ms: number[]): { mean: number; p50: number; p95: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  return { mean: sorted.reduce((a, b) => a + b, 0) / sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
}

/** Runs a process to its end and returns its wall time in ms; throws with its output when it fails. */
export function timeProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, input = ''): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, input, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
  return ms;
}
