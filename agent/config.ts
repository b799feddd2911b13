// The agent's settings: the JSON config file (`--config`, default
// /etc/berth/agent.json) with command-line flags over it. Pure: the caller
// reads the file. Every field is validated and named in the error.
import { parseStoreUrl, resolveStoreUrl } from '../ipam/store-url.js';
import { CONTAINERD_SOCKETS, DOCKER_NAMESPACE, NAMESPACE_NAME } from './containerd-wire.js';
import { LbConfigError, parseLbConfig, type LbConfig } from '../lb/config.js';
import { parsePolicy, PolicyError, type Policy } from './policy.js';

export const DEFAULT_CONFIG_FILE = '/etc/berth/agent.json';
export const DEFAULT_SOCKET = '/run/berth/agent.sock';

export interface WebhookConfig {
  url: string;
  /** attempts per event before it is dropped (and counted) */
  retries: number;
  timeoutMs: number;
}

export interface AgentConfig {
  store: string;
  cniConfDir: string;
  cniBinDir: string[];
  dockerSocket: string;
  /** containerd sockets followed for task events (empty: attach on Docker's start events only) */
  containerdSockets: string[];
  /** Docker's namespace in containerd */
  containerdNamespace: string;
  socket: string;
  stateDir: string;
  /** this host's name: recorded on allocations and events */
  hostname: string;
  /** seconds between full reconciliations */
  reconcileInterval: number;
  /** seconds before a failed DEL is tried again (doubling up to 60) */
  retryInterval: number;
  /** run berth's own plugins in the agent instead of executing them */
  inProcess: boolean;
  /** worker threads that run berth's own plugins when inProcess (0: the agent's main thread) */
  pluginThreads: number;
  /** ADDs run at once, the rest waiting in arrival order: in a start storm a few at a time finish in order, where all at once finish all late */
  addSlots: number;
  /** CNI fast-path calls (from the plugin executables' launcher) run at once; the rest wait, never dropped */
  cniCalls: number;
  /** seconds a fast-path call may take before it is answered with CNI error 11 */
  cniCallTimeout: number;
  /** issue CNI GC for the agent's networks on each reconciliation */
  gc: boolean;
  /** fsync every state write (durable across a power loss; slow in a start storm) */
  syncState: boolean;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** scheduling priority (nice, -20..19): a start storm must not starve the agent that gives containers their IPs */
  nice: number;
  events: {
    /** Redis stream key under the store's prefix (PREFIX:events), when the store is Redis; '' turns the stream off */
    stream: string;
    /** approximate cap on the stream's length */
    streamMaxLen: number;
    webhook?: WebhookConfig;
  };
  /** load balancers and their services (lb/config.ts) */
  lb: LbConfig;
  /** what labels may claim on each network (policy.ts) */
  policy: Policy;
  /** where /metrics and /v1/sd are served over TCP, read-only, for Prometheus (absent: not at all) */
  metricsListen?: { host: string; port: number };
}

/** Flags given on the command line; undefined means "not given". */
export interface AgentFlags {
  store?: string;
  cniConfDir?: string;
  cniBinDir?: string;
  dockerSocket?: string;
  containerdSocket?: string;
  socket?: string;
  stateDir?: string;
  metricsListen?: string;
}

export class ConfigError extends Error {}

const FIELDS: Record<string, string> = {
  store: 'string',
  cniConfDir: 'string',
  cniBinDir: 'string',
  dockerSocket: 'string',
  containerdSocket: 'string',
  containerdNamespace: 'string',
  socket: 'string',
  stateDir: 'string',
  hostname: 'string',
  reconcileInterval: 'number',
  retryInterval: 'number',
  inProcess: 'boolean',
  pluginThreads: 'number',
  addSlots: 'number',
  cniCalls: 'number',
  cniCallTimeout: 'number',
  gc: 'boolean',
  syncState: 'boolean',
  logLevel: 'string',
  nice: 'number',
  events: 'object',
  lb: 'object',
  services: 'array',
  policy: 'object',
  metricsListen: 'string',
};

/** Builds the agent's config from the parsed file (or undefined), the flags and the environment. */
export function parseAgentConfig(file: unknown, flags: AgentFlags, env: NodeJS.ProcessEnv, hostname: string): AgentConfig {
  const f = (file ?? {}) as Record<string, unknown>;
  if (typeof f !== 'object' || Array.isArray(f) || f === null) throw new ConfigError('the agent config must be a JSON object');
  for (const [key, value] of Object.entries(f)) {
    const want = FIELDS[key];
    if (!want) throw new ConfigError(`${key}: unknown field (${Object.keys(FIELDS).join(', ')})`);
    const got = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
    if (got !== want) throw new ConfigError(`${key} must be a${want === 'array' || want === 'object' ? 'n' : ''} ${want}, got ${got}`);
  }
  const store = resolveStoreUrl(flags.store ?? (f.store as string | undefined), env);
  try {
    parseStoreUrl(store);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const path = (name: keyof AgentFlags & keyof typeof FIELDS, dflt: string): string => {
    const v = flags[name] ?? (f[name] as string | undefined) ?? dflt;
    if (!v.startsWith('/')) throw new ConfigError(`${name} must be an absolute path, got "${v}"`);
    if (v.includes('\0')) throw new ConfigError(`${name} must not contain NUL`);
    return v.replace(/\/+$/, '') || '/';
  };
  const binDirs = (flags.cniBinDir ?? (f.cniBinDir as string | undefined) ?? '/opt/cni/bin').split(':').filter(Boolean);
  if (binDirs.length === 0) throw new ConfigError('cniBinDir must name at least one directory');
  for (const d of binDirs) if (!d.startsWith('/')) throw new ConfigError(`cniBinDir entries must be absolute paths, got "${d}"`);
  const host = (f.hostname as string | undefined) ?? hostname;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/.test(host)) throw new ConfigError(`hostname must be a host name, got ${JSON.stringify(host)}`);
  const seconds = (name: string, dflt: number, min: number): number => {
    const v = (f[name] as number | undefined) ?? dflt;
    if (!Number.isFinite(v) || v < min || v > 86400) throw new ConfigError(`${name} must be between ${min} and 86400 seconds, got ${v}`);
    return v;
  };
  const level = (f.logLevel as string | undefined) ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new ConfigError(`logLevel must be one of debug, info, warn, error, got "${level}"`);
  const socket = path('socket', DEFAULT_SOCKET);
  // sun_path holds 108 bytes with its NUL; a longer path would be cut silently
  if (Buffer.byteLength(socket) > 107) throw new ConfigError(`socket must be at most 107 bytes (a unix socket path), got ${Buffer.byteLength(socket)}: ${socket}`);
  return {
    store,
    cniConfDir: path('cniConfDir', '/etc/cni/net.d'),
    cniBinDir: binDirs,
    // empty: no Docker, the agent serves CNI calls only
    dockerSocket: (flags.dockerSocket ?? (f.dockerSocket as string | undefined)) === '' ? '' : path('dockerSocket', '/var/run/docker.sock'),
    containerdSockets: containerdSocketsOf(flags.containerdSocket ?? (f.containerdSocket as string | undefined)),
    containerdNamespace: containerdNamespaceOf(f.containerdNamespace),
    socket,
    stateDir: path('stateDir', '/var/lib/berth/agent'),
    hostname: host,
    reconcileInterval: seconds('reconcileInterval', 60, 1),
    retryInterval: seconds('retryInterval', 5, 0.05),
    inProcess: (f.inProcess as boolean | undefined) ?? true,
    pluginThreads: pluginThreadsOf(f.pluginThreads),
    addSlots: addSlotsOf(f.addSlots),
    cniCalls: cniCallsOf(f.cniCalls),
    cniCallTimeout: seconds('cniCallTimeout', 60, 1),
    gc: (f.gc as boolean | undefined) ?? true,
    syncState: (f.syncState as boolean | undefined) ?? false,
    logLevel: level as AgentConfig['logLevel'],
    nice: niceOf(f.nice),
    events: parseEvents(f.events),
    lb: lbOf(f.lb, f.services),
    policy: policyOf(f.policy),
    ...listenOf(flags.metricsListen ?? (f.metricsListen as string | undefined)),
  };
}

/** "ADDR:PORT" ("[IPv6]:PORT"), or "" / absent for none. */
function listenOf(v: string | undefined): { metricsListen?: { host: string; port: number } } {
  if (v === undefined || v === '') return {};
  return { metricsListen: parseListen(v, 'metricsListen') };
}

/** An address to listen at, "ADDR:PORT" or "[IPv6]:PORT"; a ConfigError naming `field` otherwise. */
export function parseListen(v: string, field: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+|[A-Za-z0-9][A-Za-z0-9.-]*)):([0-9]{1,5})$/.exec(v);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) throw new ConfigError(`${field} must be ADDR:PORT, like 0.0.0.0:9108 or [::]:9108, got ${JSON.stringify(v)}`);
  return { host: m[1] ?? m[2]!, port };
}

function policyOf(raw: unknown): Policy {
  try {
    return parsePolicy(raw);
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(err.message);
    throw err;
  }
}

/** not given: both of Docker's usual places (the one it does not use stays quiet); "": none; else that path */
function containerdSocketsOf(v: string | undefined): string[] {
  if (v === undefined) return [...CONTAINERD_SOCKETS];
  if (v === '') return [];
  if (!v.startsWith('/')) throw new ConfigError(`containerdSocket must be an absolute path (or "" for none), got "${v}"`);
  if (v.includes('\0')) throw new ConfigError('containerdSocket must not contain NUL');
  if (Buffer.byteLength(v) > 107) throw new ConfigError(`containerdSocket must be at most 107 bytes (a unix socket path), got ${Buffer.byteLength(v)}: ${v}`);
  return [v];
}

function containerdNamespaceOf(v: unknown): string {
  if (v === undefined) return DOCKER_NAMESPACE;
  if (typeof v !== 'string' || v.length > 76 || !NAMESPACE_NAME.test(v)) {
    throw new ConfigError(`containerdNamespace must be a containerd namespace name (letters and digits, joined by single ".", "_" or "-"; at most 76), got ${JSON.stringify(v)}`);
  }
  return v;
}

function pluginThreadsOf(v: unknown): number {
  if (v === undefined) return 1;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 16) throw new ConfigError(`pluginThreads must be an integer from 0 to 16, got ${v}`);
  return v as number;
}

function cniCallsOf(v: unknown): number {
  if (v === undefined) return 16;
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 256) throw new ConfigError(`cniCalls must be an integer from 1 to 256, got ${v}`);
  return v as number;
}

function addSlotsOf(v: unknown): number {
  if (v === undefined) return 8;
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 64) throw new ConfigError(`addSlots must be an integer from 1 to 64, got ${v}`);
  return v as number;
}

function lbOf(lb: unknown, services: unknown): LbConfig {
  try {
    return parseLbConfig(lb, services);
  } catch (err) {
    if (err instanceof LbConfigError) throw new ConfigError(err.message);
    throw err;
  }
}

function niceOf(raw: unknown): number {
  if (raw === undefined) return -10;
  if (!Number.isInteger(raw) || (raw as number) < -20 || (raw as number) > 19) throw new ConfigError(`nice must be an integer from -20 to 19, got ${JSON.stringify(raw)}`);
  return raw as number;
}

function parseEvents(raw: unknown): AgentConfig['events'] {
  const out: AgentConfig['events'] = { stream: 'events', streamMaxLen: 100000 };
  if (raw === undefined) return out;
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!['stream', 'streamMaxLen', 'webhook'].includes(key)) throw new ConfigError(`events.${key}: unknown field (stream, streamMaxLen, webhook)`);
  }
  if (r.stream !== undefined) {
    if (typeof r.stream !== 'string' || r.stream.length > 200 || /[\s\0]/.test(r.stream)) {
      throw new ConfigError('events.stream must be a Redis key without white space (or "" for none)');
    }
    out.stream = r.stream;
  }
  if (r.streamMaxLen !== undefined) {
    if (!Number.isInteger(r.streamMaxLen) || (r.streamMaxLen as number) < 1) throw new ConfigError('events.streamMaxLen must be a positive integer');
    out.streamMaxLen = r.streamMaxLen as number;
  }
  if (r.webhook !== undefined) {
    const w = r.webhook as Record<string, unknown>;
    if (!w || typeof w !== 'object' || Array.isArray(w)) throw new ConfigError('events.webhook must be an object');
    for (const key of Object.keys(w)) {
      if (!['url', 'retries', 'timeoutMs'].includes(key)) throw new ConfigError(`events.webhook.${key}: unknown field (url, retries, timeoutMs)`);
    }
    let url: URL;
    try {
      url = new URL(String(w.url));
    } catch {
      throw new ConfigError(`events.webhook.url must be an http or https URL, got ${JSON.stringify(w.url)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`events.webhook.url must be an http or https URL, got ${JSON.stringify(w.url)}`);
    const retries = w.retries ?? 8;
    if (!Number.isInteger(retries) || (retries as number) < 1 || (retries as number) > 100) throw new ConfigError('events.webhook.retries must be an integer from 1 to 100');
    const timeoutMs = w.timeoutMs ?? 5000;
    if (!Number.isInteger(timeoutMs) || (timeoutMs as number) < 100) throw new ConfigError('events.webhook.timeoutMs must be an integer of at least 100');
    out.webhook = { url: url.href, retries: retries as number, timeoutMs: timeoutMs as number };
  }
  return out;
}
