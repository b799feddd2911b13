'use strict';
// Loads a bundled CNI plugin with a V8 code cache, as v8-compile-cache does
// for older Node: Node 20 has no built-in compile cache, and compiling the
// bundle and the functions a call runs is a good part of a plugin's start-up
// (~9 ms of a file-store call). The cache sits next to the bundle
// and is written, best effort, at exit when missing or when V8 rejected it
// (another Node version); a read-only install simply runs without it.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

/** Runs the CommonJS bundle `file` as the main program. */
exports.run = function run(file) {
  const source = fs.readFileSync(file, 'utf8');
  const cacheFile = `${file}.v8cache`;
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  // No import() may run inside the bundle: Node 20 gives vm.Script no dynamic-import
  // hook without --experimental-vm-modules. Lazy loads in berth use require.
  const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      const tmp = `${cacheFile}.${process.pid}`;
      try {
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, cacheFile);
      } catch {
        try {
          fs.unlinkSync(tmp);
        } catch {
          // nothing was written
        }
      }
    });
  }
  const mod = new Module(file, module);
  mod.filename = file;
  mod.paths = Module._nodeModulePaths(path.dirname(file));
  script.runInThisContext().call(mod.exports, mod.exports, Module.createRequire(file), mod, file, path.dirname(file));
};
