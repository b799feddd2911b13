// Bundles each CNI plugin into one CommonJS file, dist/bundle/NAME.cjs.
//
// A runtime starts a plugin process per call, so start-up is the plugin's
// speed. On Node 20, resolving and reading dozens of module files, and
// Node's ESM loader itself, are most of it (docs/performance.md). In
// CommonJS output esbuild wraps each module in a lazy initializer, so code
// imported dynamically (the stores, the Redis clients) is still evaluated only
// when reached. ioredis stays out (plugins use berth's own RESP client); pino
// and ip-address are required at run time, only when a log line or an IPv6
// address needs them.
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const plugins = ['berth-ipam', 'berth-bridge', 'berth-ovs'];

await build({
  entryPoints: Object.fromEntries(plugins.map((p) => [p, `cni/${p}/main.ts`])),
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

// cni/boot.cjs runs a bundle under vm.Script, which on Node 20 has no
// dynamic-import hook: an import() left in a bundle would fail at run time
// (it did, for rediss://). Lazy loads must be require()s.
for (const p of plugins) {
  const code = readFileSync(`dist/bundle/${p}.cjs`, 'utf8');
  const at = code.search(/[^\w.$]import\(/);
  if (at >= 0) throw new Error(`dist/bundle/${p}.cjs has an import() (near: ${code.slice(at, at + 60)}); use require for lazy loads`);
}
