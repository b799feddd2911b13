// The plugin runtime, like the reference skel: it reads the CNI_* variables
// and the stdin config, validates them, negotiates the version, calls the
// plugin's handler and writes its result (or the error) in the requested
// version. env, stdin and stdout are injected, so it is tested in-process.
//
// Start-up is lean: this module loads nothing heavy, and the plugin's own code
// (stores, netlink) is imported only once the request is known to be valid.
import type { StoreCache } from '../ipam/open-store.js';
import { fstatSync, readFileSync, writeSync } from 'node:fs';
import { parseCniArgs } from './args.js';
import { CNI_CODES, CniError, toCniError } from './errors.js';
import { lazyLogger, type LogConfig, type LogSink, type Logger } from './log.js';
import { formatResult, parsePrevResult, type CniResult } from './result.js';
import { atLeast, isSupported, LATEST_VERSION, SUPPORTED_VERSIONS } from './version.js';

export type Command = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS';
const COMMANDS = new Set<string>(['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION']);

/** One validated invocation. */
export interface Request {
  command: Command;
  /** '' for GC and STATUS */
  containerId: string;
  /** '' for GC and STATUS, and for a DEL whose namespace is gone */
  netns: string;
  ifname: string;
  args: Map<string, string>;
  /** CNI_PATH, split */
  path: string[];
  /** the whole stdin config */
  config: Record<string, unknown>;
  /** the stdin text, for delegating to another plugin */
  stdin: string;
  /** the CNI_* environment, for delegating */
  env: NodeJS.ProcessEnv;
  version: string;
  prevResult?: CniResult;
  log: Logger;
  /** the process lives on after answering (the agent): work may go on in it after the answer, on timers */
  longLived?: boolean;
  /** stores kept open across calls by a long-lived process (the agent's plugin threads) */
  stores?: StoreCache;
  /** berth-ipam ADD from a berth main plugin, in-process only: addresses its probe found in use on the wire */
  conflicts?: Array<{ ip: string; mac: string }>;
}

/** A plugin's handlers; C is its validated config. */
export interface Plugin<C> {
  add(req: Request, conf: C): Promise<CniResult>;
  del(req: Request, conf: C): Promise<void>;
  check(req: Request, conf: C): Promise<void>;
  gc(req: Request, conf: C): Promise<void>;
  status(req: Request, conf: C): Promise<void>;
}

export interface PluginSpec<C> {
  /** the executable's name, for logs */
  name: string;
  /** CNI_ARGS keys the plugin understands */
  knownArgs: ReadonlySet<string>;
  /** where the plugin's log settings are in its config */
  logConfig(config: Record<string, unknown>): LogConfig;
  /** validates the plugin's own config (light: runs before load) */
  parse(req: Request): C;
  /** imports the plugin's code: called only for a valid request */
  load(): Promise<Plugin<C>>;
}

export interface PluginIO {
  env: NodeJS.ProcessEnv;
  readStdin(): Promise<string>;
  stdout: { write(text: string): unknown };
  /** where log lines go when no log file is configured (default fd 2) */
  stderr?: LogSink;
  /** the process lives on after this call (the agent), see Request.longLived */
  longLived?: boolean;
  /** see Request.stores */
  stores?: StoreCache;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Runs one plugin invocation; returns the exit code. */
export async function runPlugin<C>(spec: PluginSpec<C>, io: PluginIO): Promise<number> {
  let version = LATEST_VERSION;
  try {
    const command = io.env.CNI_COMMAND ?? '';
    if (!COMMANDS.has(command)) {
      throw new CniError(CNI_CODES.INVALID_ENV, command ? `CNI_COMMAND "${command}" is not one of ADD, DEL, CHECK, GC, STATUS, VERSION` : 'CNI_COMMAND is not set');
    }
    const stdin = await io.readStdin();
    if (command === 'VERSION') {
      // As the reference plugins answer it: berth's latest version, whatever the
      // config (if any) says. The bin/ scripts answer the same from /bin/sh.
      io.stdout.write(`${versionAnswer()}\n`);
      return 0;
    }
    const asked = (safeParse(stdin) as { cniVersion?: unknown } | undefined)?.cniVersion;
    if (isSupported(asked)) version = asked; // errors from here on speak the config's version
    const req = parseRequest(spec, command as Command, io.env, stdin, io.stderr ?? 2);
    version = req.version;
    if (io.longLived) req.longLived = true;
    if (io.stores) req.stores = io.stores;
    req.log.debug({ args: Object.fromEntries(req.args), netns: req.netns || undefined }, `${req.command} request`);
    const conf = spec.parse(req);
    const plugin = await spec.load();
    const started = process.hrtime.bigint();
    if (req.command === 'ADD') {
      const result = await plugin.add(req, conf);
      io.stdout.write(`${JSON.stringify(formatResult(result, version))}\n`);
    } else {
      await plugin[({ DEL: 'del', CHECK: 'check', GC: 'gc', STATUS: 'status' } as const)[req.command]](req, conf);
    }
    req.log.debug({ ms: Number(process.hrtime.bigint() - started) / 1e6 }, `${req.command} done`);
    return 0;
  } catch (err) {
    const e = toCniError(err);
    const out: Record<string, unknown> = { cniVersion: version, code: e.code, msg: e.message };
    if (e.details !== undefined) out.details = e.details;
    io.stdout.write(`${JSON.stringify(out)}\n`);
    return 1;
  }
}

/** The VERSION answer, as one JSON line's text. */
export function versionAnswer(): string {
  return JSON.stringify({ cniVersion: LATEST_VERSION, supportedVersions: SUPPORTED_VERSIONS });
}

/** Validates the environment and the config of one invocation. */
export function parseRequest<C>(spec: PluginSpec<C>, command: Command, env: NodeJS.ProcessEnv, stdin: string, stderr: LogSink = 2): Request {
  const config = safeParse(stdin);
  if (config === undefined) throw new CniError(CNI_CODES.DECODE_FAILED, 'failed to decode the network configuration: stdin is not JSON');
  if (!config || typeof config !== 'object' || Array.isArray(config)) {
    throw new CniError(CNI_CODES.DECODE_FAILED, 'failed to decode the network configuration: stdin is not a JSON object');
  }
  const conf = config as Record<string, unknown>;
  if (!isSupported(conf.cniVersion)) {
    throw new CniError(
      CNI_CODES.INCOMPATIBLE_VERSION,
      `incompatible CNI version ${JSON.stringify(conf.cniVersion)}: berth supports ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  const version = conf.cniVersion;
  if (typeof conf.name !== 'string' || !NAME.test(conf.name)) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, `name must start with a letter or digit, then letters, digits, "_", "." or "-"; got ${JSON.stringify(conf.name)}`);
  }
  if (command === 'CHECK' && !atLeast(version, '0.4.0')) {
    throw new CniError(CNI_CODES.INCOMPATIBLE_VERSION, `CHECK needs cniVersion 0.4.0 or later, the config says ${version}`);
  }
  if ((command === 'GC' || command === 'STATUS') && !atLeast(version, '1.1.0')) {
    throw new CniError(CNI_CODES.INCOMPATIBLE_VERSION, `${command} needs cniVersion 1.1.0 or later, the config says ${version}`);
  }
  const perAttachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const containerId = perAttachment ? required(env, 'CNI_CONTAINERID') : '';
  if (perAttachment && !NAME.test(containerId)) {
    throw new CniError(CNI_CODES.INVALID_ENV, `CNI_CONTAINERID must start with a letter or digit, then letters, digits, "_", "." or "-"; got "${containerId}"`);
  }
  const netns = command === 'DEL' ? (env.CNI_NETNS ?? '') : perAttachment ? required(env, 'CNI_NETNS') : '';
  if (netns !== '' && !netns.startsWith('/')) throw new CniError(CNI_CODES.INVALID_ENV, `CNI_NETNS must be an absolute path, got "${netns}"`);
  const ifname = perAttachment ? required(env, 'CNI_IFNAME') : '';
  if (perAttachment) validateIfname(ifname, 'CNI_IFNAME');
  const args = parseCniArgs(env.CNI_ARGS, spec.knownArgs);
  const log = lazyLogger(spec.logConfig(conf), { plugin: spec.name, cmd: command, containerId: containerId || undefined, ifname: ifname || undefined, network: conf.name }, stderr);
  const req: Request = {
    command,
    containerId,
    netns,
    ifname,
    args,
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
    config: conf,
    stdin,
    env,
    version,
    log,
  };
  if (conf.prevResult !== undefined) req.prevResult = parsePrevResult(conf.prevResult);
  return req;
}

/** An interface name the kernel accepts: 1-15 bytes, no "/", ":" or white space, not "." or "..". */
export function validateIfname(name: string, field: string, code: number = CNI_CODES.INVALID_ENV): void {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes > 15 || /[/:\s]/.test(name) || name === '.' || name === '..') {
    throw new CniError(code, `${field} "${name}" is not a valid interface name (1-15 bytes, no "/", ":" or white space)`);
  }
}

/** The attachments a GC must keep: cni.dev/valid-attachments and the older cni.dev/attachments. */
export function validAttachments(config: Record<string, unknown>): Set<string> {
  const out = new Set<string>();
  for (const field of ['cni.dev/valid-attachments', 'cni.dev/attachments']) {
    const list = config[field];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new CniError(CNI_CODES.INVALID_CONFIG, `${field} must be a list`);
    list.forEach((a, i) => {
      if (!a || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
        throw new CniError(CNI_CODES.INVALID_CONFIG, `${field}[${i}] must be {"containerID": "...", "ifname": "..."}`);
      }
      out.add(`${a.containerID}/${a.ifname}`);
    });
  }
  return out;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new CniError(CNI_CODES.INVALID_ENV, `${name} is not set`);
  return value;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The IO of a real process. stdin and stdout are read and written with plain
 * fd calls: touching process.stdin or process.stdout loads Node's stream and
 * net machinery, ~10 ms of a plugin's start-up.
 */
export function processIO(): PluginIO {
  return {
    env: process.env,
    readStdin: async () => {
      // A terminal has no config to read (VERSION may be run by hand); a pipe or file is read to its end.
      const st = fstatSync(0);
      if (st.isCharacterDevice()) return '';
      return readFileSync(0, 'utf8');
    },
    stdout: { write: (text: string) => writeSync(1, text) },
  };
}
