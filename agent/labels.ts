// What a container's Docker labels ask of the agent (CONTRACT.md), validated:
// a label's value reaches CNI_ARGS, the pool and load-balancer configs, so
// nothing outside these shapes gets through. Pure.
import { formatIp, parseIp } from '../core/address.js';
import { SERVICE_NAME } from '../lb/config.js';

/** every label the agent reads starts with this */
export const LABEL_PREFIX = 'berth.';
export const LABEL_NETWORK = 'berth.network';
export const LABEL_OWNER = 'berth.owner';
export const LABEL_IP = 'berth.ip';
export const LABEL_LB_PREFIX = 'berth.lb.';
export const LABEL_METRICS = 'berth.metrics';

/** The same shape CNI requires of a network name. */
export const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** Owner keys travel in CNI_ARGS (";" and "=" separate there) and are stored: no white space or separators. */
const OWNER = /^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,252}$/;

export interface AttachIntent {
  network: string;
  owner: string;
  /** requested address, normalized text form: one, or an IPv4 and an IPv6 one joined by "," */
  ip?: string;
  /** load-balancer service name -> backend port */
  lb: Record<string, number>;
  /** where Prometheus scrapes it, at its berth address (berth.metrics=PORT[/PATH]) */
  metrics?: { port: number; path: string };
}

export class LabelError extends Error {
  constructor(
    readonly label: string,
    message: string,
  ) {
    super(`label ${label}: ${message}`);
  }
}

/**
 * Reads the labels of a container named `name` (Docker's name, without the
 * leading "/"). Returns null when the container is not berth's (no
 * berth.network label); throws LabelError naming the first bad label.
 */
export function parseLabels(labels: Record<string, string> | null | undefined, name: string): AttachIntent | null {
  const l = labels ?? {};
  const network = l[LABEL_NETWORK];
  if (network === undefined) return null;
  if (!NETWORK_NAME.test(network)) throw new LabelError(LABEL_NETWORK, `must be a CNI network name (letters, digits, "_", ".", "-"), got ${JSON.stringify(network)}`);
  const owner = l[LABEL_OWNER] ?? name;
  if (!OWNER.test(owner)) {
    const which = l[LABEL_OWNER] === undefined ? 'the container name (the default owner)' : LABEL_OWNER;
    throw new LabelError(LABEL_OWNER, `${which} must be 1-253 letters, digits or "_.:/@-", starting with a letter or digit; got ${JSON.stringify(owner)}`);
  }
  const intent: AttachIntent = { network, owner, lb: {} };
  if (l[LABEL_IP] !== undefined) {
    // one address, or one of each family (dual-stack), normalized
    const ips = l[LABEL_IP].split(',').map((text) => {
      try {
        return parseIp(text.trim(), LABEL_IP);
      } catch {
        throw new LabelError(LABEL_IP, `must be an IPv4 or IPv6 address, or one of each separated by ",", got ${JSON.stringify(l[LABEL_IP])}`);
      }
    });
    if (ips.length > 2 || new Set(ips.map((ip) => ip.family)).size !== ips.length) {
      throw new LabelError(LABEL_IP, `takes at most one IPv4 and one IPv6 address, got ${JSON.stringify(l[LABEL_IP])}`);
    }
    intent.ip = ips.map((ip) => formatIp(ip.hex)).join(',');
  }
  if (l[LABEL_METRICS] !== undefined) {
    const m = /^([0-9]{1,5})(\/[A-Za-z0-9/_.~-]{0,200})?$/.exec(l[LABEL_METRICS]);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) {
      throw new LabelError(LABEL_METRICS, `must be PORT or PORT/PATH (a port from 1 to 65535, a path of letters, digits and "/_.~-"), got ${JSON.stringify(l[LABEL_METRICS])}`);
    }
    intent.metrics = { port: Number(m[1]), path: m[2] ?? '/metrics' };
  }
  for (const [key, value] of Object.entries(l)) {
    if (!key.startsWith(LABEL_LB_PREFIX)) continue;
    const service = key.slice(LABEL_LB_PREFIX.length);
    if (!SERVICE_NAME.test(service)) throw new LabelError(key, `the service name must be 1-63 letters, digits, "_" or "-", starting with a letter or digit`);
    if (!/^[0-9]{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw new LabelError(key, `must be a port from 1 to 65535, got ${JSON.stringify(value)}`);
    intent.lb[service] = Number(value);
  }
  return intent;
}
