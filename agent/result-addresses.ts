// The addresses of a cached CNI result, as the agent shows and checks them.
import { formatIp, parseCidr } from '../core/address.js';

/** Every address of a CNI result, without prefix lengths. */
export function resultAddresses(result: Record<string, unknown> | undefined): string[] {
  const ips = (result?.ips as Array<{ address?: string }> | undefined) ?? [];
  return ips.flatMap((i) => (typeof i.address === 'string' ? [i.address.split('/')[0]!] : []));
}

/** The first address of a CNI result, without its prefix length. */
export function firstIp(result: Record<string, unknown> | undefined): string | undefined {
  const ips = (result?.ips as Array<{ address?: string }> | undefined) ?? [];
  const a = ips.find((i) => typeof i.address === 'string')?.address;
  if (!a) return undefined;
  try {
    return formatIp(parseCidr(a, 'ip', true).hex);
  } catch {
    return a.split('/')[0];
  }
}
