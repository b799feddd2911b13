// Entry of bin/berth-bridge.
import { processIO, runPlugin } from '../skel.js';
import { spec } from './definition.js';

void runPlugin(spec, processIO()).then((code) => {
  process.exitCode = code;
});
