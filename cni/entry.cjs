'use strict';
// The Node side of berth's CNI plugins: the launcher (native/launcher.c) runs
// `node cni/entry.cjs PLUGIN` when no agent serves the call. It runs the
// plugin's bundle with a V8 code cache (cni/boot.cjs): start-up is its speed.
const path = require('node:path');

const PLUGINS = ['berth-bridge', 'berth-ovs', 'berth-ipam'];
const plugin = process.argv[2];
const bundle = path.join(__dirname, '../dist/bundle');

/** A CNI error on stdout, as the plugin prints one: the runtime shows its message to the operator. */
function fail(msg) {
  process.stdout.write(`${JSON.stringify({ cniVersion: '1.0.0', code: 999, msg })}\n`);
  process.exitCode = 1;
}

if (!PLUGINS.includes(plugin)) {
  fail(`cni/entry.cjs runs ${PLUGINS.join(', ')}, not ${JSON.stringify(plugin)}`);
} else {
  try {
    require(`${bundle}/boot.cjs`).run(`${bundle}/${plugin}.cjs`);
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND' && err.code !== 'ENOENT') throw err;
    fail(`${plugin} cannot find its build at ${bundle} (link the plugin into the CNI bin dir instead of copying it, and run "npm ci" in the berth directory)`);
  }
}
