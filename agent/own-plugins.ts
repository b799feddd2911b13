// berth's own plugins as code: the agent runs them through the same runPlugin
// entry as their executables, with the same env and stdin, without a process.
import type { PluginSpec } from '../cni/skel.js';
import type { StoreCache } from '../ipam/open-store.js';

export interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

const OWN_PLUGINS: Record<string, () => Promise<PluginSpec<unknown>>> = {
  'berth-bridge': async () => (await import('../cni/berth-bridge/definition.js')).spec as PluginSpec<unknown>,
  'berth-ovs': async () => (await import('../cni/berth-ovs/definition.js')).spec as PluginSpec<unknown>,
  'berth-ipam': async () => (await import('../cni/berth-ipam/definition.js')).spec as PluginSpec<unknown>,
};

/** True when `type` names one of berth's own plugins. */
export function isOwnPlugin(type: string): boolean {
  return Object.hasOwn(OWN_PLUGINS, type);
}

/** The plugin's spec; throws for a type that is not berth's. */
export function ownPlugin(type: string): Promise<PluginSpec<unknown>> {
  const load = Object.hasOwn(OWN_PLUGINS, type) ? OWN_PLUGINS[type] : undefined;
  if (!load) return Promise.reject(new Error(`"${type}" is not one of berth's plugins`));
  return load();
}

/**
 * Runs one plugin call in this thread, as its executable would; `stores`:
 * the thread's kept store connections. Its log lines go to the agent's
 * stderr, or with `captureLogs` into Output.stderr (the fast path hands them
 * to the launcher, whose stderr the runtime reads).
 */
export async function runOwn(spec: PluginSpec<unknown>, env: NodeJS.ProcessEnv, stdin: string, stores?: StoreCache, captureLogs = false): Promise<Output> {
  const { runPlugin } = await import('../cni/skel.js');
  let stdout = '';
  let stderr = '';
  const io = { env, readStdin: async () => stdin, stdout: { write: (t: string) => (stdout += t) }, longLived: true, ...(stores ? { stores } : {}) };
  const code = await runPlugin(spec, captureLogs ? { ...io, stderr: { write: (t: string) => (stderr += t) } } : io);
  return { code, stdout, stderr };
}

/** Loads the named plugins' code (and the Redis client berth-ipam uses) in this thread ahead of their first call. */
export async function warmOwn(types: string[]): Promise<void> {
  await import('../cni/skel.js');
  for (const t of types) await (await ownPlugin(t)).load();
  if (types.includes('berth-ipam')) await import('../ipam/resp-client.js');
}
