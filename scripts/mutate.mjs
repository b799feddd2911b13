// npm run mutate: Stryker over each module of the pure core in turn (or the
// ones MUTATE lists, space- or comma-separated), then a table of the scores
// from the JSON reports in .scratch/mutation/. Exits non-zero when a run
// failed or a module scored under the break threshold (80%).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { modules } from './mutation-modules.mjs';

const BREAK = 80;
const all = Object.keys(modules);
const asked = (process.env.MUTATE ?? '').split(/[\s,]+/).filter(Boolean);
const unknown = asked.filter((m) => !all.includes(m));
if (unknown.length > 0) {
  console.error(`MUTATE names no such module: ${unknown.join(', ')} (the modules: ${all.join(', ')})`);
  process.exit(2);
}
const chosen = asked.length > 0 ? asked : all;

/** Runs Stryker on one module; resolves to its exit code (1 also when under the threshold). */
function run(name) {
  return new Promise((resolve) => {
    const child = spawn('npx', ['stryker', 'run'], { stdio: 'inherit', env: { ...process.env, BERTH_MUTATE: name } });
    child.on('error', (err) => {
      console.error(`stryker for ${name}: ${err.message}`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/**
 * The counts of one report (mutation-testing-report-schema: files -> mutants
 * with a status). The score is Stryker's: detected (killed or timed out) over
 * every valid mutant (detected, survived, no coverage); mutants that did not
 * compile or were ignored do not count.
 */
async function score(name) {
  const report = JSON.parse(await readFile(`.scratch/mutation/${name}.json`, 'utf8'));
  const n = { Killed: 0, Survived: 0, NoCoverage: 0, Timeout: 0, CompileError: 0, RuntimeError: 0, Ignored: 0 };
  for (const file of Object.values(report.files)) for (const m of file.mutants) n[m.status] = (n[m.status] ?? 0) + 1;
  const detected = n.Killed + n.Timeout;
  const valid = detected + n.Survived + n.NoCoverage;
  return { ...n, score: valid === 0 ? NaN : (100 * detected) / valid };
}

const rows = [];
let failed = false;
for (const name of chosen) {
  const started = Date.now();
  const code = await run(name);
  const minutes = (Date.now() - started) / 60_000;
  try {
    const s = await score(name);
    rows.push({ name, ...s, minutes, code });
    if (code !== 0 || !(s.score >= BREAK)) failed = true;
  } catch (err) {
    rows.push({ name, minutes, code, error: err.message });
    failed = true;
  }
}

const pad = (v, w) => String(v).padStart(w);
console.log('\nmodule        file                  killed survived  no cov timeout   score   min');
for (const r of rows) {
  const file = modules[r.name].mutate.padEnd(21);
  if (r.error) console.log(`${r.name.padEnd(13)} ${file} no report (stryker exited ${r.code}): ${r.error}`);
  else console.log(`${r.name.padEnd(13)} ${file} ${pad(r.Killed, 6)} ${pad(r.Survived, 8)} ${pad(r.NoCoverage, 7)} ${pad(r.Timeout, 7)} ${pad(r.score.toFixed(2), 6)}% ${pad(r.minutes.toFixed(1), 5)}`);
}
process.exitCode = failed ? 1 : 0;
