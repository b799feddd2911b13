// What labels may claim on each network: the operator's policy in the agent
// config. Without one, any container may name any owner key (and so take
// another application's reserved or held address) and join any declared
// load-balancer service. Pure.
import { SERVICE_NAME } from '../lb/config.js';
import { LabelError, LABEL_LB_PREFIX, LABEL_OWNER, NETWORK_NAME, type AttachIntent } from './labels.js';

/** One network's rules: owner key patterns and service names a container on it may use. */
export interface NetworkPolicy {
  /** glob patterns ("*" any run of characters; "{name}" the container's name); absent: any owner */
  owners?: string[];
  /** service names; absent: any declared service */
  services?: string[];
}

/** By network name, "*" for every network without its own. */
export type Policy = Map<string, NetworkPolicy>;

export class PolicyError extends Error {}

/** A label the policy does not allow on the container's network. */
export class PolicyRefusal extends LabelError {}

const PATTERN = /^[A-Za-z0-9_.:/@*{}-]{1,253}$/;

/** Validates the config's `policy` object; names the field in errors. */
export function parsePolicy(raw: unknown): Policy {
  const policy: Policy = new Map();
  if (raw === undefined) return policy;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new PolicyError('policy must be an object of network names (or "*") to {"owners": [...], "services": [...]}');
  for (const [network, rules] of Object.entries(raw as Record<string, unknown>)) {
    const where = `policy.${network}`;
    if (network !== '*' && !NETWORK_NAME.test(network)) throw new PolicyError(`${where}: not a network name or "*"`);
    if (!rules || typeof rules !== 'object' || Array.isArray(rules)) throw new PolicyError(`${where} must be an object like {"owners": ["web-*"], "services": ["web"]}`);
    const r = rules as Record<string, unknown>;
    const p: NetworkPolicy = {};
    for (const key of Object.keys(r)) if (key !== 'owners' && key !== 'services') throw new PolicyError(`${where}.${key}: unknown field (owners, services)`);
    if (r.owners !== undefined) p.owners = list(r.owners, `${where}.owners`, PATTERN, 'owner key patterns ("*" and "{name}" allowed)');
    if (r.services !== undefined) p.services = list(r.services, `${where}.services`, SERVICE_NAME, 'service names');
    policy.set(network, p);
  }
  return policy;
}

function list(raw: unknown, field: string, re: RegExp, what: string): string[] {
  if (!Array.isArray(raw) || raw.some((v) => typeof v !== 'string' || !re.test(v))) throw new PolicyError(`${field} must be a list of ${what}, got ${JSON.stringify(raw)}`);
  return raw as string[];
}

/** True when `owner` matches the pattern, "{name}" standing for the container's name. */
export function ownerMatches(pattern: string, owner: string, name: string): boolean {
  const re = pattern
    .split('{name}')
    .map((part) => part.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('.*'))
    .join(name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
  return new RegExp(`^${re}$`).test(owner);
}

/**
 * Throws a PolicyRefusal naming the label a container named `name` may not
 * use on its network under `policy`: an owner key no pattern allows, or a
 * service not listed.
 */
export function checkPolicy(policy: Policy, intent: AttachIntent, name: string): void {
  const rules = policy.get(intent.network) ?? policy.get('*');
  if (!rules) return;
  const scope = policy.has(intent.network) ? `network "${intent.network}"` : `network "${intent.network}" (the "*" rules)`;
  if (rules.owners && !rules.owners.some((p) => ownerMatches(p, intent.owner, name))) {
    throw new PolicyRefusal(LABEL_OWNER, `owner ${JSON.stringify(intent.owner)} is not allowed on ${scope}: the agent's policy allows ${rules.owners.join(', ') || 'none'}`);
  }
  for (const service of Object.keys(intent.lb)) {
    if (rules.services && !rules.services.includes(service)) {
      throw new PolicyRefusal(`${LABEL_LB_PREFIX}${service}`, `service "${service}" is not allowed on ${scope}: the agent's policy allows ${rules.services.join(', ') || 'none'}`);
    }
  }
}
