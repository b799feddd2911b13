// Reads the agent's config file, for `berth agent` and for the CLI commands
// that find the agent through it. Kept apart from the agent itself, so that
// `berth status` loads the parsing and nothing else.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { ConfigError, DEFAULT_CONFIG_FILE, parseAgentConfig, type AgentConfig, type AgentFlags } from './config.js';
import { parseJson } from './parse-json.js';

/**
 * The config from `file` (else `defaultFile`, only if it exists) with
 * `flags` over it. A file named explicitly must exist; every error names the file.
 */
export function loadAgentConfig(file: string | undefined, flags: AgentFlags, env: NodeJS.ProcessEnv, defaultFile = DEFAULT_CONFIG_FILE): AgentConfig {
  const path = file ?? defaultFile;
  let raw: unknown;
  try {
    raw = parseJson(readFileSync(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && file === undefined) raw = undefined;
    else throw new ConfigError(`failed to read the agent config "${path}": ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    return parseAgentConfig(raw, flags, env, hostname());
  } catch (err) {
    // name the file only when there was one: a bad flag is not the file's fault
    throw new ConfigError(raw === undefined ? (err as Error).message : `failed to read the agent config "${path}": ${(err as Error).message}`);
  }
}
