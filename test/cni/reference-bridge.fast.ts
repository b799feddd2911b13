// reference-bridge.ts's tests, run again with every plugin call through the agent (the CNI fast path).
import { onFastPath } from '../helpers/fast-path.js';

await onFastPath(() => import('./reference-bridge.js'));
