// npm run mutate: Stryker over the pure core, one module per run, each with
// only the unit tests that mirror it, so a run takes minutes rather than
// every test file for every mutant. BERTH_MUTATE names the module (the npm
// script runs them all in turn; MUTATE="engine labels" runs some).
// Reports go to .scratch/mutation/<module>.{json,html}.

import { modules } from './scripts/mutation-modules.mjs';

const name = process.env.BERTH_MUTATE ?? '';
const mod = modules[name];
if (!mod) throw new Error(`BERTH_MUTATE must name one of ${Object.keys(modules).join(', ')}; got ${JSON.stringify(name)}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'tap',
  plugins: ['@stryker-mutator/tap-runner'],
  mutate: [mod.mutate],
  tap: {
    testFiles: mod.tests,
    // each test file runs as `node -r <stryker's hook> --import tsx FILE`, as tap runs it
    nodeArgs: ['--import', 'tsx'],
  },
  // the runner reports per test file: a mutant runs only against the files that reach it
  coverageAnalysis: 'perTest',
  concurrency: 2,
  // generous: on a busy 2-core machine a fresh node + tsx alone can take
  // seconds, and a mutant that only ran slowly must not count as killed
  timeoutMS: 30000,
  // a module under 80% fails the run
  thresholds: { high: 90, low: 80, break: 80 },
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: `.scratch/mutation/${name}.json` },
  htmlReporter: { fileName: `.scratch/mutation/${name}.html` },
  tempDirName: '.scratch/stryker-tmp',
  // the sandbox needs the sources and tests, not the builds
  ignorePatterns: ['dist', 'build', '.scratch', '.tap', 'docs', 'deploy'],
  cleanTempDir: true,
};
