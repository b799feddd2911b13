// Talks to a running agent over its unix socket (GET only), and the
// --socket option of the commands that do.
import { request } from 'node:http';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { DEFAULT_SOCKET } from '../agent/config.js';
import { once } from './flags.js';
import type { ArgsOf, GlobalArgs } from './context.js';

/** Adds --socket, the agent's API socket. */
export function socketBuilder(y: Argv<GlobalArgs>) {
  return y.option('socket', { type: 'string', coerce: once('socket'), describe: `the agent's API socket (default ${DEFAULT_SOCKET})` });
}
export type SocketArgs = ArgumentsCamelCase<ArgsOf<typeof socketBuilder>>;

/** GETs `path` from the agent named by --socket; anything but 200 is an error naming the agent's reason. */
export async function agentJson<T>(argv: SocketArgs, path: string): Promise<T> {
  const { status, body } = await agentGet(argv.socket ?? DEFAULT_SOCKET, path);
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
