// Runs the IPAM plugin named in a config, as the spec says: found through
// CNI_PATH, with the same environment and stdin, its result read back into
// the internal shape. berth-ipam, whose code is in the same bundle, runs
// in-process instead: the same handlers on the same request, one process per
// call instead of two.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CNI_CODES, CniError } from './errors.js';
import { execPlugin } from './exec-plugin.js';
import { parsePrevResult, type CniResult } from './result.js';
import type { Command, Request } from './skel.js';

/**
 * Runs `command` of IPAM plugin `type` for this request; ADD returns its
 * result. `conflicts`, for berth-ipam only: addresses found in use on the
 * wire, withdrawn from the attachment before it is given another.
 */
export async function delegateIpam(req: Request, type: string, command: Command, conflicts?: Request['conflicts']): Promise<CniResult | undefined> {
  const r: Request = { ...req, command, ...(conflicts ? { conflicts } : {}) };
  if (type === 'berth-ipam') {
    const { spec } = await import('./berth-ipam/definition.js');
    const conf = spec.parse(r);
    const plugin = await spec.load();
    if (command === 'ADD') return plugin.add(r, conf);
    await plugin[({ DEL: 'del', CHECK: 'check', GC: 'gc', STATUS: 'status' } as const)[command as 'DEL']](r, conf);
    return undefined;
  }
  const dir = req.path.find((d) => existsSync(join(d, type)));
  if (!dir) throw new CniError(CNI_CODES.INVALID_CONFIG, `IPAM plugin "${type}" is not in CNI_PATH (${req.path.join(':') || 'empty'})`);
  const out = await execPlugin(join(dir, type), `IPAM plugin "${type}"`, { ...req.env, CNI_COMMAND: command }, req.stdin, { timeoutMs: 60000 });
  const parsed = pluginOutput(out, `IPAM plugin "${type}"`);
  if (command !== 'ADD') return undefined;
  if (!parsed) throw new CniError(CNI_CODES.DECODE_FAILED, `IPAM plugin "${type}" printed no result`);
  return parsePrevResult(parsed);
}

/**
 * What a plugin process printed, read as the spec says: on success its JSON
 * result (if any), on failure its error object turned into a CniError whose
 * message starts with `who`. A plugin that printed no error object fails
 * with its exit code and the start of its stderr.
 */
export function pluginOutput(out: { code: number; stdout: string; stderr: string }, who: string): Record<string, unknown> | undefined {
  let parsed: Record<string, unknown> | undefined;
  try {
    parsed = out.stdout.trim() ? (JSON.parse(out.stdout) as Record<string, unknown>) : undefined;
  } catch {
    parsed = undefined;
  }
  if (out.code !== 0) {
    const code = typeof parsed?.code === 'number' ? parsed.code : CNI_CODES.IO_FAILURE;
    const msg = typeof parsed?.msg === 'string' ? parsed.msg : `exited ${out.code}: ${out.stderr.trim().slice(0, 500)}`;
    throw new CniError(code, `${who}: ${msg}`);
  }
  return parsed;
}
