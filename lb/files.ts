// The config files berth owns (haproxy.cfg, keepalived's include): replaced
// atomically, so HAProxy or keepalived never read half a file.
import { existsSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';

/**
 * Writes `text` to a temporary file beside `file`, validates it if asked,
 * and renames it over `file`. With `ifChanged`, a file that already holds
 * `text` is left alone and false is returned.
 */
export async function replaceFile(file: string, text: string, opts: { ifChanged?: boolean; validate?: (tmp: string) => Promise<void> } = {}): Promise<boolean> {
  if (opts.ifChanged && existsSync(file) && readFileSync(file, 'utf8') === text) return false;
  const tmp = `${file}.berth-tmp`;
  await writeFile(tmp, text, { mode: 0o644 });
  if (opts.validate) await opts.validate(tmp);
  await rename(tmp, file);
  return true;
}
