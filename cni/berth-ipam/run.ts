// Entry of bin/berth-ipam.
import { processIO, runPlugin } from '../skel.js';
import { spec } from './spec.js';

process.exitCode = await runPlugin(spec, processIO());
