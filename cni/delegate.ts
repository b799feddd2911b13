// Runs the IPAM plugin named in a config, as the spec says: found through
// CNI_PATH, with the same environment and stdin, its result read back into
// the internal shape. berth-ipam, whose code is in the same bundle, runs
// in-process instead: the same handlers on the same request, one process per
// call instead of two.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { CNI_CODES, CniError } from './errors.js';
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
    const { spec } = await import('./berth-ipam/spec.js');
    const conf = spec.parse(r);
    const plugin = await spec.load();
    if (command === 'ADD') return plugin.add(r, conf);
    await plugin[({ DEL: 'del', CHECK: 'check', GC: 'gc', STATUS: 'status' } as const)[command as 'DEL']](r, conf);
    return undefined;
  }
  const dir = req.path.find((d) => existsSync(join(d, type)));
  if (!dir) throw new CniError(CNI_CODES.INVALID_CONFIG, `IPAM plugin "${type}" is not in CNI_PATH (${req.path.join(':') || 'empty'})`);
  // loaded only for a plugin of another project; a require, since bundles run without a dynamic-import hook (cni/boot.cjs)
  const { execFile } = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = execFile(join(dir, type), [], { env: { ...req.env, CNI_COMMAND: command }, maxBuffer: 4 * 1024 * 1024, timeout: 60000 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && typeof e.code === 'string') return reject(new CniError(CNI_CODES.IO_FAILURE, `failed to run IPAM plugin "${type}": ${e.message}`));
      resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end(req.stdin);
  });
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
