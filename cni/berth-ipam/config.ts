// berth-ipam's config: the `ipam` section of the network config, plus the
// owner key and requested address from CNI_ARGS, args and runtimeConfig.
// Light on purpose: it runs before any store code is loaded.
import { readFileSync } from 'node:fs';
import { parseIp } from '../../core/address.js';
import { validatePoolName } from '../../ipam/pool-config.js';
import { DEFAULT_STORE, parseStoreUrl } from '../../ipam/store-url.js';
import { CNI_CODES, CniError } from '../errors.js';
import { parseLogConfig, type LogConfig } from '../log.js';
import type { Request } from '../skel.js';

export interface IpamConfig {
  /** the pools, in order: one address per family, from the first of that family with one to give */
  pools: string[];
  store: string;
  /** this host's name: recorded on allocations, so GC here releases only these */
  host: string;
  /** this host's machine identity, recorded beside its name: two hosts of one name (cloned VMs) keep apart */
  hostId?: string;
  log: LogConfig;
  /** the owner key the address sticks to */
  owner: string;
  /** requested addresses, as text (family filtering happens against the pool) */
  requested: Array<{ family: 4 | 6; hex: string; text: string }>;
}

/** CNI_ARGS keys berth plugins understand. */
export const KNOWN_ARGS = new Set(['IP', 'MAC', 'BERTH_OWNER', 'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID']);

const FIELDS = new Set(['type', 'pool', 'pools', 'store', 'host', 'hostId', 'log']);
/** pools a network may list: each is read on every call */
const MAX_POOLS = 16;
// host-local's settings: berth keeps them in the pool, not in the CNI config
const HOST_LOCAL_FIELDS = new Set(['subnet', 'ranges', 'rangeStart', 'rangeEnd', 'gateway', 'routes', 'dataDir', 'resolvConf']);

/** The ipam section of a config, or the error naming what is wrong. */
export function ipamSection(config: Record<string, unknown>): Record<string, unknown> {
  const ipam = config.ipam;
  if (!ipam || typeof ipam !== 'object' || Array.isArray(ipam)) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, 'ipam must be an object like {"type": "berth-ipam", "pool": "NAME"}');
  }
  return ipam as Record<string, unknown>;
}

/** The host's name, read from /proc: loading node:os for os.hostname() costs a plugin ~1 ms of start-up. */
function hostName(): string {
  try {
    return readFileSync('/proc/sys/kernel/hostname', 'utf8').trim() || 'localhost';
  } catch {
    return process.env.HOSTNAME || 'localhost';
  }
}

/** The machine's identity: systemd's /etc/machine-id, else D-Bus's copy; undefined where neither exists. */
export function machineId(): string | undefined {
  for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    try {
      const id = readFileSync(file, 'utf8').trim();
      if (/^[0-9a-f]{32}$/.test(id)) return id;
    } catch {
      // next
    }
  }
  return undefined;
}

/** Validates berth-ipam's config and derives owner and requested addresses. */
export function parseIpamConfig(req: Request): IpamConfig {
  const ipam = ipamSection(req.config);
  for (const key of Object.keys(ipam)) {
    if (HOST_LOCAL_FIELDS.has(key)) {
      throw new CniError(
        CNI_CODES.UNSUPPORTED_FIELD,
        `ipam.${key}: unsupported field ${JSON.stringify(key)}=${JSON.stringify(ipam[key])}: berth-ipam takes subnets, ranges, gateway and routes from the pool (berth pool create)`,
      );
    }
    if (!FIELDS.has(key)) throw new CniError(CNI_CODES.INVALID_CONFIG, `ipam.${key}: unknown field (${[...FIELDS].join(', ')})`);
  }
  const pools = poolsOf(ipam);
  const store = ipam.store === undefined ? DEFAULT_STORE : ipam.store;
  invalid(() => parseStoreUrl(store, 'ipam.store'));
  if (ipam.host !== undefined && (typeof ipam.host !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/.test(ipam.host))) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, `ipam.host must be a host name, got ${JSON.stringify(ipam.host)}`);
  }
  if (ipam.hostId !== undefined && (typeof ipam.hostId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(ipam.hostId))) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, `ipam.hostId must be 1-64 letters, digits, "_", "." or "-", got ${JSON.stringify(ipam.hostId)}`);
  }
  const hostId = (ipam.hostId as string | undefined) ?? (req.command === 'ADD' || req.command === 'GC' ? machineId() : undefined);
  return {
    pools,
    store: store as string,
    ...(hostId ? { hostId } : {}),
    host: (ipam.host as string | undefined) ?? hostName(),
    log: parseLogConfig(ipam.log, 'ipam.log'),
    owner: ownerOf(req),
    requested: requestedOf(req),
  };
}

/** `pool` (one) or `pools` (a list, in order), not both. */
function poolsOf(ipam: Record<string, unknown>): string[] {
  if (ipam.pool !== undefined && ipam.pools !== undefined) throw new CniError(CNI_CODES.INVALID_CONFIG, 'ipam.pool and ipam.pools: give one of them (pools lists pools in order)');
  if (ipam.pools === undefined) return [invalid(() => validatePoolName(ipam.pool, 'ipam.pool'))];
  if (!Array.isArray(ipam.pools) || ipam.pools.length === 0 || ipam.pools.length > MAX_POOLS) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, `ipam.pools must be a list of 1 to ${MAX_POOLS} pool names, like ["v4-a", "v4-b", "v6-a"], got ${JSON.stringify(ipam.pools)}`);
  }
  const pools = ipam.pools.map((name, i) => invalid(() => validatePoolName(name, `ipam.pools[${i}]`)));
  const twice = pools.find((name, i) => pools.indexOf(name) !== i);
  if (twice) throw new CniError(CNI_CODES.INVALID_CONFIG, `ipam.pools lists "${twice}" twice`);
  return pools;
}

/**
 * The owner key, first found: BERTH_OWNER, args.cni.owner, K8S namespace/name,
 * K8S name alone (podman sends only K8S_POD_NAME, the container's name: so
 * `podman run --name web1` gets web1's address back), the container id.
 */
export function ownerOf(req: Request): string {
  const argsCni = cniArgsSection(req.config);
  let owner: unknown;
  let field = '';
  if (req.args.has('BERTH_OWNER')) [owner, field] = [req.args.get('BERTH_OWNER'), 'CNI_ARGS BERTH_OWNER'];
  else if (argsCni?.owner !== undefined) [owner, field] = [argsCni.owner, 'args.cni.owner'];
  else if (req.args.has('K8S_POD_NAMESPACE') && req.args.has('K8S_POD_NAME')) {
    [owner, field] = [`${req.args.get('K8S_POD_NAMESPACE')}/${req.args.get('K8S_POD_NAME')}`, 'CNI_ARGS K8S_POD_NAMESPACE/K8S_POD_NAME'];
  } else if (req.args.has('K8S_POD_NAME')) [owner, field] = [req.args.get('K8S_POD_NAME'), 'CNI_ARGS K8S_POD_NAME'];
  else return req.containerId;
  // eslint-disable-next-line no-control-regex
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 253 || /[\u0000-\u001f\u007f]/.test(owner)) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, `${field}: the owner must be 1-253 printable characters, got ${JSON.stringify(owner)}`);
  }
  return owner;
}

/** Requested addresses from runtimeConfig.ips, CNI_ARGS IP=, and args.cni.ips. */
export function requestedOf(req: Request): IpamConfig['requested'] {
  const out: IpamConfig['requested'] = [];
  const add = (value: unknown, field: string) => {
    if (typeof value !== 'string') throw new CniError(CNI_CODES.INVALID_CONFIG, `${field} must be an IP address, got ${JSON.stringify(value)}`);
    const text = value.split('/')[0]!;
    const ip = invalid(() => parseIp(text, field));
    if (!out.some((r) => r.hex === ip.hex)) out.push({ ...ip, text });
  };
  const rc = req.config.runtimeConfig as { ips?: unknown } | undefined;
  if (rc?.ips !== undefined) {
    if (!Array.isArray(rc.ips)) throw new CniError(CNI_CODES.INVALID_CONFIG, 'runtimeConfig.ips must be a list');
    rc.ips.forEach((v, i) => add(v, `runtimeConfig.ips[${i}]`));
  }
  const ipArg = req.args.get('IP');
  if (ipArg) ipArg.split(',').forEach((v, i) => add(v.trim(), `CNI_ARGS IP[${i}]`));
  const argsCni = cniArgsSection(req.config);
  if (argsCni?.ips !== undefined) {
    if (!Array.isArray(argsCni.ips)) throw new CniError(CNI_CODES.INVALID_CONFIG, 'args.cni.ips must be a list');
    argsCni.ips.forEach((v, i) => add(v, `args.cni.ips[${i}]`));
  }
  return out;
}

function cniArgsSection(config: Record<string, unknown>): Record<string, unknown> | undefined {
  const args = config.args as { cni?: unknown } | undefined;
  return args && typeof args.cni === 'object' && args.cni !== null ? (args.cni as Record<string, unknown>) : undefined;
}

/** Runs a validation from ipam/ and turns its ValidationError into CNI code 7. */
function invalid<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, (err as Error).message);
  }
}
