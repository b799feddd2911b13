// The CNI fast path, the agent's side: a plugin executable (native/launcher.c)
// hands its call to the agent over the API socket, and the agent runs berth's
// plugin in-process, on its plugin threads with their warm store
// connections, with the same environment and stdin the process would have.
//
// The rules it keeps:
// - A call is checked as strictly as a plugin process checks it: the same
//   runPlugin entry, with only the CNI_* variables a runtime sets.
// - At most `parallel` calls run at once; the rest wait their turn, never
//   dropped (a burst must not take the agent's memory past its budget).
// - Each call is answered within `timeoutMs`: past it, CNI error 11 (the
//   call may still finish; ADD and DEL are idempotent, and the runtime
//   repeats them).
// - An agent that is stopping answers "not run" (X-Berth-Not-Run), and the
//   launcher runs the call itself: nothing is run twice, nothing is lost.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CNI_CODES } from '../cni/errors.js';
import type { Output } from './own-plugins.js';
import { Counter, Gauge, Histogram, LATENCY_BUCKETS, type Registry } from './metrics.js';
import { within } from './health.js';
import { Slots } from './slots.js';

/** The plugins the fast path serves. */
export const FAST_PATH_PLUGINS = new Set(['berth-bridge', 'berth-ovs', 'berth-ipam']);
/** The environment a launcher passes on, as headers X-NAME. */
const PASSED = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'] as const;
const MAX_BODY = 16 << 20;

/** Decodes a header value the launcher percent-encoded; undefined when it is malformed. */
export function decodeHeader(v: string): string | undefined {
  try {
    return decodeURIComponent(v);
  } catch {
    return undefined;
  }
}

/** The call's environment from the launcher's headers: the CNI_* variables, nothing else, and the agent's PATH, `path`. */
export function callEnv(headers: IncomingMessage['headers'], path: string): NodeJS.ProcessEnv | string {
  const env: NodeJS.ProcessEnv = { PATH: path };
  for (const name of PASSED) {
    const raw = headers[`x-${name.toLowerCase()}`];
    if (raw === undefined) continue;
    if (Array.isArray(raw)) return `${name} is given twice`;
    const v = decodeHeader(raw);
    if (v === undefined) return `${name} is not percent-encoded right`;
    env[name] = v;
  }
  return env;
}

/** Runs CNI calls handed over by launchers (see the head of this file). */
export class CniServer {
  private readonly slots: Slots;
  private stopping = false;
  private readonly m;

  constructor(
    private readonly run: (type: string, env: NodeJS.ProcessEnv, stdin: string) => Promise<Output>,
    metrics: Registry,
    /** `path`: the PATH the plugins get (the agent's own) */
    private readonly opts: { parallel: number; timeoutMs: number; path: string },
  ) {
    this.slots = new Slots(opts.parallel);
    this.m = {
      calls: metrics.add(new Counter('berth_agent_cni_calls_total', 'CNI calls the fast path served, by plugin, command and result (ok, or the CNI error code)')),
      seconds: metrics.add(new Histogram('berth_agent_cni_call_seconds', 'Time from a fast-path call reaching the agent to its answer, waiting for a slot included', LATENCY_BUCKETS)),
    };
    metrics.add(new Gauge('berth_agent_cni_calls_peak', 'The most fast-path calls that ran at once since the agent started (at most cniCalls)', () => [[{}, this.peak]]));
    metrics.add(new Gauge('berth_agent_cni_calls_in_flight', 'Fast-path calls running, and waiting for a slot', () => [[{ state: 'running' }, this.slots.busy], [{ state: 'waiting' }, this.slots.waiting]]));
  }

  /** Calls served so far, running now and waiting now (berth status). */
  view(): { served: number; running: number; waiting: number; parallel: number } {
    return { served: this.served, running: this.slots.busy, waiting: this.slots.waiting, parallel: this.opts.parallel };
  }

  private served = 0;
  private peak = 0;

  /** From now on calls are answered "not run", for the launcher to run them itself; resolves when those in flight are done. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.slots.idle();
  }

  /** Answers POST /v1/cni/PLUGIN. */
  async handle(plugin: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    if (this.stopping || !FAST_PATH_PLUGINS.has(plugin)) {
      res.writeHead(503, { 'x-berth-not-run': '1', 'content-type': 'text/plain' }).end(this.stopping ? 'the agent is stopping\n' : `no fast path for "${plugin}"\n`);
      return;
    }
    const env = callEnv(req.headers, this.opts.path);
    const body = await readBody(req, MAX_BODY);
    if (typeof env === 'string' || body === undefined) {
      answer(res, 1, cniError(CNI_CODES.INVALID_ENV, typeof env === 'string' ? `berth agent: ${env}` : 'berth agent: the network config is larger than 16 MiB'));
      return;
    }
    const command = env.CNI_COMMAND ?? '';
    let out: Output;
    try {
      out = await this.slots.run(() => {
        this.peak = Math.max(this.peak, this.slots.busy);
        return within(this.run(plugin, env, body), this.opts.timeoutMs, `the call did not finish within ${this.opts.timeoutMs} ms; try again`);
      });
    } catch (err) {
      out = { code: 1, stdout: cniError(CNI_CODES.TRY_AGAIN_LATER, `berth agent: ${(err as Error).message}`), stderr: '' };
    }
    this.served++;
    this.m.calls.inc({ plugin, command, result: out.code === 0 ? 'ok' : String(errorCode(out.stdout)) });
    this.m.seconds.observe({ plugin, command }, Number(process.hrtime.bigint() - started) / 1e9);
    answer(res, out.code, out.stdout, out.stderr);
  }
}

/**
 * The plugin's exit code, and its stdout then its stderr (its logs) as the
 * body, X-Berth-Stdout-Length bytes of stdout first; with the whole length,
 * never chunked: the launcher passes the body on as it comes.
 */
function answer(res: ServerResponse, code: number, stdout: string, stderr = ''): void {
  const out = Buffer.from(stdout);
  const body = stderr ? Buffer.concat([out, Buffer.from(stderr)]) : out;
  res.writeHead(200, { 'x-berth-exit': String(code), 'x-berth-stdout-length': String(out.length), 'content-type': 'application/json', 'content-length': body.length }).end(body);
}

function cniError(code: number, msg: string): string {
  return `${JSON.stringify({ cniVersion: '1.0.0', code, msg })}\n`;
}

function errorCode(stdout: string): number | string {
  try {
    return (JSON.parse(stdout) as { code?: number }).code ?? 'error';
  } catch {
    return 'error';
  }
}

/** The whole body as text, or undefined past `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.destroy();
        resolve(undefined);
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
