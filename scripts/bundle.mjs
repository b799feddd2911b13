// Bundles each CNI plugin into one CommonJS file, dist/bundle/NAME.cjs.
//
// A runtime starts a plugin process per call, so start-up is the plugin's
// speed. Measured on Node 20 (README, Benchmarks): resolving and reading
// dozens of module files, and Node's ESM loader itself, were most of it. In
// CommonJS output esbuild wraps each module in a lazy initializer, so code
// imported dynamically (the stores, the Redis clients) is still evaluated only
// when reached. ioredis stays out (plugins use berth's own RESP client); pino
// and ip-address are required at run time, only when a log line or an IPv6
// address needs them.
import { copyFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const plugins = ['berth-ipam', 'berth-bridge'];

await build({
  entryPoints: Object.fromEntries(plugins.map((p) => [p, `cni/${p}/run.ts`])),
  outdir: 'dist/bundle',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['ioredis'],
  // The sources are ESM and locate files next to themselves with import.meta.url.
  define: { 'import.meta.url': '__berthModuleUrl' },
  banner: { js: 'const __berthModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  sourcemap: true,
  logLevel: 'warning',
});

// The loader that runs a bundle with a V8 code cache; a new build makes old caches stale.
copyFileSync('cni/boot.cjs', 'dist/bundle/boot.cjs');
for (const p of plugins) rmSync(`dist/bundle/${p}.cjs.v8cache`, { force: true });
