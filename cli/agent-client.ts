// Talks to a running agent over its unix socket (GET only), and the
// --socket and --config options of the commands that do.
import { request } from 'node:http';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { DEFAULT_CONFIG_FILE, DEFAULT_SOCKET } from '../agent/config.js';
import { loadAgentConfig } from '../agent/config-file.js';
import { once } from './flags.js';
import { causeOf, contextOf, reportFailure, type ArgsOf, type CliContext, type GlobalArgs } from './context.js';

/** Adds --socket and --config: where the agent listens. */
export function socketBuilder(y: Argv<GlobalArgs>) {
  return y
    .option('socket', {
      type: 'string',
      coerce: once('socket'),
      describe: `the agent's API socket (default: $BERTH_SOCKET, else the config file's "socket", else ${DEFAULT_SOCKET})`,
    })
    .option('config', {
      type: 'string',
      coerce: once('config'),
      describe: `the agent's config file, read for its "socket" (default ${DEFAULT_CONFIG_FILE}, if present)`,
    });
}
export type SocketArgs = ArgumentsCamelCase<ArgsOf<typeof socketBuilder>>;

/**
 * The agent's socket: --socket, else $BERTH_SOCKET, else the config file's
 * `socket`, else the default. A file given with --config is read even when
 * something before it wins, so a mistyped name is never passed over in
 * silence; the default file only when it decides, and only if it exists.
 */
export function resolveSocket(argv: { socket?: string | undefined; config?: string | undefined }, env: NodeJS.ProcessEnv, defaultConfig = DEFAULT_CONFIG_FILE): string {
  const given = argv.socket ?? (env.BERTH_SOCKET || undefined);
  if (argv.config === undefined && given !== undefined) return given;
  // the file alone is judged: the environment's BERTH_STORE is none of its business here
  const cfg = loadAgentConfig(argv.config, {}, {}, defaultConfig);
  return given ?? cfg.socket;
}

/**
 * Runs one exchange with the agent: `what` completes "failed to <what>:
 * <cause>"; a config file that cannot be read is reported as itself.
 */
export async function withAgent(argv: SocketArgs, what: string, fn: (get: <T>(path: string) => Promise<T>, ctx: CliContext) => Promise<void>): Promise<void> {
  const ctx = contextOf(argv);
  let socket: string;
  try {
    socket = resolveSocket(argv, ctx.io.env);
  } catch (err) {
    reportFailure(ctx, causeOf(err));
    return;
  }
  try {
    await fn((path) => agentJson(socket, path), ctx);
  } catch (err) {
    reportFailure(ctx, `failed to ${what}: ${causeOf(err)}`);
  }
}

/** GETs `path` from the agent on `socket`; anything but 200 is an error naming the agent's reason. */
export async function agentJson<T>(socket: string, path: string): Promise<T> {
  const { status, body } = await agentGet(socket, path);
  if (status !== 200) throw new Error(`the agent answered ${status}: ${typeof body === 'object' && body && 'error' in body ? String((body as { error: unknown }).error) : String(body).trim()}`);
  return body as T;
}

/** GETs `path` from the agent on `socket`; resolves with the status and parsed JSON body. */
export function agentGet(socket: string, path: string, timeoutMs = 10000): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'GET', timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: text });
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`the agent did not answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'is the agent running? (berth agent, or systemctl status berth-agent)' : err.message;
      reject(new Error(`cannot reach the agent at ${socket}: ${why}`));
    });
    req.end();
  });
}
