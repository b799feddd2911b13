// Talks to a running agent over its unix socket (GET only).
import { request } from 'node:http';

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
