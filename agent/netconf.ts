// CNI network configurations in the agent's conf dir, found by name as
// libcni does: files ending .conflist, .conf or .json, in name order, the
// first whose network name matches. A single-plugin .conf is read as a list
// of one. The agent snapshots the list it used for ADD in its state, so a DEL
// runs with the same plugins even after the file changed or went away.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isSupported, SUPPORTED_VERSIONS } from '../cni/version.js';
import { NETWORK_NAME } from './labels.js';
import { parseJson } from './parse-json.js';

export interface NetworkList {
  cniVersion: string;
  name: string;
  /** each plugin's config as written, without cniVersion/name (added per call) */
  plugins: Array<Record<string, unknown> & { type: string }>;
  /** the file it came from */
  file: string;
}

export class NetconfError extends Error {}

/** A plugin type becomes a file name in the bin dir: no paths, nothing hidden. */
const PLUGIN_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Validates a parsed .conflist (or .conf, when `single`) from `file`. */
export function parseNetworkList(raw: unknown, file: string, single: boolean): NetworkList {
  const where = (field: string) => `${file}: ${field}`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new NetconfError(`${file}: not a JSON object`);
  const r = raw as Record<string, unknown>;
  if (!isSupported(r.cniVersion)) throw new NetconfError(where(`cniVersion ${JSON.stringify(r.cniVersion)} is not one of ${SUPPORTED_VERSIONS.join(', ')}`));
  if (typeof r.name !== 'string' || !NETWORK_NAME.test(r.name)) throw new NetconfError(where(`name must be a network name, got ${JSON.stringify(r.name)}`));
  let plugins: unknown[];
  if (single) {
    const { cniVersion: _v, name: _n, ...plugin } = r;
    plugins = [plugin];
  } else {
    if (!Array.isArray(r.plugins) || r.plugins.length === 0) throw new NetconfError(where('plugins must be a non-empty list'));
    plugins = r.plugins;
  }
  const out: NetworkList['plugins'] = plugins.map((p, i) => {
    if (!p || typeof p !== 'object' || Array.isArray(p)) throw new NetconfError(where(`plugins[${i}] must be an object`));
    const type = (p as Record<string, unknown>).type;
    if (typeof type !== 'string' || !PLUGIN_TYPE.test(type)) throw new NetconfError(where(`plugins[${i}].type must be a plugin file name, got ${JSON.stringify(type)}`));
    return p as Record<string, unknown> & { type: string };
  });
  return { cniVersion: r.cniVersion, name: r.name, plugins: out, file };
}

/** Every valid network in `dir`, by name (the first file wins); broken files are reported, not fatal. */
export function loadNetworks(dir: string): { networks: Map<string, NetworkList>; errors: string[] } {
  const networks = new Map<string, NetworkList>();
  const errors: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /\.(conflist|conf|json)$/.test(n)).sort();
  } catch (err) {
    errors.push(`${dir}: ${(err as Error).message}`);
    return { networks, errors };
  }
  for (const n of names) {
    const file = join(dir, n);
    try {
      let parsed: unknown;
      try {
        parsed = parseJson(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new NetconfError(`${file}: ${(err as Error).message}`);
      }
      // a .json file is a list when it has plugins, as libcni reads it
      const single = n.endsWith('.conf') || (n.endsWith('.json') && !(parsed && typeof parsed === 'object' && 'plugins' in parsed));
      const list = parseNetworkList(parsed, file, single);
      if (!networks.has(list.name)) networks.set(list.name, list);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  return { networks, errors };
}

/**
 * The list with `store` set in every berth-ipam section that names none:
 * the agent's store, so that a network written without one allocates from
 * the pool the agent watches, not from berth-ipam's default file store.
 */
export function withDefaultStore(list: NetworkList, store: string): NetworkList {
  const plugins = list.plugins.map((p) => {
    const ipam = p.ipam as Record<string, unknown> | undefined;
    if (!ipam || typeof ipam !== 'object' || ipam.type !== 'berth-ipam' || ipam.store !== undefined) return p;
    return { ...p, ipam: { ...ipam, store } };
  });
  return { ...list, plugins };
}

/** The berth-ipam section of a network (the agent gives one that names no store its own), if it has one. */
export function ipamOf(network: NetworkList): { pool: string; store: unknown } | undefined {
  for (const p of network.plugins) {
    const ipam = (p.type === 'berth-ipam' ? p : p.ipam) as Record<string, unknown> | undefined;
    if (ipam?.type === 'berth-ipam' && typeof ipam.pool === 'string') return { pool: ipam.pool, store: ipam.store };
  }
  return undefined;
}

/** The berth pool a network allocates from, if it is a berth-ipam network. */
export function poolOf(network: NetworkList): string | undefined {
  return ipamOf(network)?.pool;
}
