// The modules `npm run mutate` covers: the pure core, each with the unit
// tests that exercise it. stryker.config.mjs reads one of them (named by
// BERTH_MUTATE); scripts/mutate.mjs runs them in turn.

/** module -> the file mutated and the test files run against each mutant */
export const modules = {
  engine: { mutate: 'ipam/engine.ts', tests: ['test/ipam/engine.ts'] },
  address: { mutate: 'core/address.ts', tests: ['test/core/address.ts'] },
  'pool-config': { mutate: 'ipam/pool-config.ts', tests: ['test/ipam/pool-config.ts'] },
  rtnl: { mutate: 'cni/rtnl.ts', tests: ['test/cni/rtnl.ts'] },
  result: { mutate: 'cni/result.ts', tests: ['test/cni/result.ts'] },
  render: { mutate: 'lb/render.ts', tests: ['test/lb/render.ts'] },
  labels: { mutate: 'agent/labels.ts', tests: ['test/agent/labels.ts'] },
};
