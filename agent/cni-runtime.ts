// The agent as a CNI runtime: runs a network's plugin chain the way libcni
// does. ADD runs the plugins in order, each given the previous one's result;
// DEL runs them in reverse with the cached result; CHECK in order; GC each
// with the attachments to keep. A failed ADD is undone with a DEL of the
// whole chain before the error is returned.
//
// berth's own plugins run in-process (the same runPlugin entry the
// executables use, with the same env and stdin), on worker threads when asked
// (agent/plugin-worker.ts says why); other plugins are executed from the bin
// dirs with an argument array, never a shell.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pluginOutput } from '../cni/delegate.js';
import { CNI_CODES, CniError } from '../cni/errors.js';
import { execPlugin } from '../cni/exec-plugin.js';
import { atLeast } from '../cni/version.js';
import { StoreCache } from '../ipam/open-store.js';
import type { NetworkList } from './netconf.js';
import { isOwnPlugin, ownPlugin, runOwn, warmOwn, type Output } from './own-plugins.js';
import { PluginWorkers } from './plugin-worker.js';

export interface AttachmentRef {
  containerId: string;
  ifname: string;
  /** '' when the namespace is gone (DEL only) */
  netns: string;
  /** CNI_ARGS pairs */
  args: Array<[string, string]>;
  /** capability arguments, passed as runtimeConfig to plugins that declare them */
  capabilityArgs: Record<string, unknown>;
}

export type RawResult = Record<string, unknown>;

/** The PATH plugins get when the agent was given none. */
export const DEFAULT_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

export class CniRuntime {
  private readonly workers?: PluginWorkers;
  /** the kept store connections of plugins run on this thread (no plugin threads) */
  private readonly stores?: StoreCache;

  private readonly timeoutMs: number;
  private readonly path: string;

  /**
   * `threads`: how many worker threads run berth's own plugins (0: on the
   * calling thread). Only with `inProcess`; otherwise every plugin is executed.
   * `opts.path`: the PATH plugins get (the agent passes its own, as libcni
   * does); `opts.timeoutMs`: how long an executed plugin may take.
   */
  constructor(
    private readonly binDirs: string[],
    private readonly inProcess: boolean,
    threads = 0,
    opts: { path?: string; timeoutMs?: number } = {},
  ) {
    this.path = opts.path ?? DEFAULT_PATH;
    this.timeoutMs = opts.timeoutMs ?? 60000;
    if (inProcess && threads > 0) this.workers = new PluginWorkers(threads);
    else if (inProcess) this.stores = new StoreCache(); // one Redis connection for berth-ipam, not one per call
  }

  /** Plugin calls answered by the plugin threads so far. */
  get threadCalls(): number {
    return this.workers?.answered ?? 0;
  }

  /** Stops the plugin threads (after the calls in flight, bounded) and closes the kept store connections. */
  async close(): Promise<void> {
    await this.workers?.close();
    await this.stores?.close();
  }

  /**
   * Loads the code of the berth plugins these networks use ahead of the
   * first attachment: in a start storm the first ADDs would otherwise wait
   * for module loading on a starved CPU. Plugins no network uses stay
   * unloaded (memory).
   */
  async warm(networks: Iterable<NetworkList>): Promise<void> {
    if (!this.inProcess) return;
    const types = new Set<string>();
    for (const n of networks) {
      for (const p of n.plugins) {
        types.add(p.type);
        const ipam = p.ipam as { type?: unknown } | undefined;
        if (typeof ipam?.type === 'string') types.add(ipam.type);
      }
    }
    const own = [...types].filter(isOwnPlugin);
    if (own.length === 0) return;
    await (this.workers ? this.workers.warm(own) : warmOwn(own));
  }

  /** Runs ADD through the chain; returns the final result. On failure the chain is DELeted, then the error thrown. */
  async add(list: NetworkList, att: AttachmentRef): Promise<RawResult> {
    let prev: RawResult | undefined;
    try {
      for (const plugin of list.plugins) prev = await this.call('ADD', list, plugin, att, prev);
    } catch (err) {
      await this.del(list, att, prev).catch(() => {});
      throw err;
    }
    if (!prev) throw new CniError(CNI_CODES.DECODE_FAILED, `network "${list.name}": the chain returned no result`);
    return prev;
  }

  /** Runs DEL through the chain in reverse. Every plugin runs even if one fails; the first error is thrown. */
  async del(list: NetworkList, att: AttachmentRef, cached: RawResult | undefined): Promise<void> {
    const prev = atLeast(list.cniVersion, '0.4.0') ? cached : undefined;
    let first: unknown;
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.call('DEL', list, plugin, att, prev);
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  }

  /** Runs CHECK through the chain with the cached result. */
  async check(list: NetworkList, att: AttachmentRef, cached: RawResult): Promise<void> {
    if (!atLeast(list.cniVersion, '0.4.0')) return;
    for (const plugin of list.plugins) await this.call('CHECK', list, plugin, att, cached);
  }

  /** Runs GC on every plugin of the list, keeping `valid`. Needs cniVersion 1.1.0; older lists are skipped (false). */
  async gc(list: NetworkList, valid: Array<{ containerID: string; ifname: string }>): Promise<boolean> {
    if (!atLeast(list.cniVersion, '1.1.0')) return false;
    const att: AttachmentRef = { containerId: '', ifname: '', netns: '', args: [], capabilityArgs: {} };
    let first: unknown;
    for (const plugin of list.plugins) {
      try {
        await this.call('GC', list, { ...plugin, 'cni.dev/valid-attachments': valid }, att, undefined);
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
    return true;
  }

  /**
   * Runs one of berth's own plugins with a runtime's environment and stdin,
   * as its process would (the CNI fast path, cni-serve.ts): on the plugin
   * threads or this one, with their kept store connections.
   */
  async runPlugin(type: string, env: NodeJS.ProcessEnv, stdin: string): Promise<Output> {
    if (!isOwnPlugin(type)) throw new CniError(CNI_CODES.INVALID_CONFIG, `"${type}" is not one of berth's plugins`);
    return this.runOwnPlugin(type, env, stdin, true);
  }

  /** One of berth's own plugins on the plugin threads, or on this thread with its kept store connections. */
  private async runOwnPlugin(type: string, env: NodeJS.ProcessEnv, stdin: string, captureLogs: boolean): Promise<Output> {
    return this.workers ? this.workers.run({ type, env, stdin, captureLogs }) : runOwn(await ownPlugin(type), env, stdin, this.stores, captureLogs);
  }

  private async call(command: string, list: NetworkList, plugin: NetworkList['plugins'][number], att: AttachmentRef, prev: RawResult | undefined): Promise<RawResult | undefined> {
    const conf: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
    const caps = plugin.capabilities as Record<string, unknown> | undefined;
    if (caps && typeof caps === 'object') {
      const runtimeConfig: Record<string, unknown> = {};
      for (const [cap, value] of Object.entries(att.capabilityArgs)) if (caps[cap] === true) runtimeConfig[cap] = value;
      if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
    }
    if (prev !== undefined) conf.prevResult = prev;
    const env: NodeJS.ProcessEnv = {
      CNI_COMMAND: command,
      CNI_PATH: this.binDirs.join(':'),
      PATH: this.path,
      // a plugin the agent executes runs itself: its launcher must not hand the call back
      BERTH_AGENT_SOCKET: '',
    };
    if (command !== 'GC') {
      env.CNI_CONTAINERID = att.containerId;
      env.CNI_NETNS = att.netns;
      env.CNI_IFNAME = att.ifname;
      env.CNI_ARGS = [['IgnoreUnknown', '1'], ...att.args].map(([k, v]) => `${k}=${v}`).join(';');
    }
    const stdin = JSON.stringify(conf);
    const own = this.inProcess && isOwnPlugin(plugin.type);
    // the agent's own attachments log to its stderr (captureLogs false)
    const out = own ? await this.runOwnPlugin(plugin.type, env, stdin, false) : await this.exec(plugin.type, env, stdin);
    const parsed = pluginOutput(out, `${plugin.type} ${command}`);
    if (command !== 'ADD') return undefined;
    if (!parsed) throw new CniError(CNI_CODES.DECODE_FAILED, `${plugin.type} ADD printed no result`);
    return parsed;
  }

  private exec(type: string, env: NodeJS.ProcessEnv, stdin: string): Promise<Output> {
    const dir = this.binDirs.find((d) => existsSync(join(d, type)));
    if (!dir) return Promise.reject(new CniError(CNI_CODES.INVALID_CONFIG, `plugin "${type}" is not in ${this.binDirs.join(':')}`));
    return execPlugin(join(dir, type), `plugin "${type}"`, env, stdin, { timeoutMs: this.timeoutMs });
  }
}
