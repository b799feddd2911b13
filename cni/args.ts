// CNI_ARGS: "K1=V1;K2=V2". Keys a plugin does not know are refused unless the
// runtime sets IgnoreUnknown=1, as the reference plugins do.
import { CNI_CODES, CniError } from './errors.js';

/** Parses CNI_ARGS, refusing malformed pairs and (without IgnoreUnknown) unknown keys. */
export function parseCniArgs(text: string | undefined, known: ReadonlySet<string>): Map<string, string> {
  const args = new Map<string, string>();
  if (!text) return args;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CNI_CODES.INVALID_ENV, `CNI_ARGS: "${pair}" is not KEY=VALUE`);
    args.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const ignore = args.get('IgnoreUnknown');
  if (ignore !== undefined && !/^(1|true|0|false)$/i.test(ignore)) {
    throw new CniError(CNI_CODES.INVALID_ENV, `CNI_ARGS: IgnoreUnknown must be 1/true or 0/false, got "${ignore}"`);
  }
  if (!/^(1|true)$/i.test(ignore ?? '')) {
    const unknown = [...args.keys()].filter((k) => k !== 'IgnoreUnknown' && !known.has(k));
    if (unknown.length > 0) {
      throw new CniError(CNI_CODES.INVALID_ENV, `CNI_ARGS: unknown keys ${unknown.join(', ')} (set IgnoreUnknown=1 to ignore them)`);
    }
  }
  return args;
}
