// Attachment events for other systems (a CMDB, a load balancer, an audit
// trail): every attach and detach, with container, owner, network, IP and
// host. Two sinks, both asynchronous so that they never slow an attachment:
// a Redis stream (XADD with an approximate MAXLEN) when the store is Redis,
// and an optional webhook (POST of one JSON event) with retries and backoff.
// A sink that is down keeps its events queued, up to a bound; what is
// dropped beyond it is counted and logged.
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import type { RedisConn } from '../ipam/redis-conn.js';
import type { WebhookConfig } from './config.js';

export interface AttachmentEvent {
  /** reasserted: the store had lost the address, taken again; conflict: the store gives it to someone else (detail); refused: the label policy does not allow a label (detail) */
  type: 'attached' | 'detached' | 'reasserted' | 'conflict' | 'refused';
  /** for a conflict: who the store gives the address to; for a refusal: why */
  detail?: string;
  container: string;
  name: string;
  owner: string;
  network: string;
  /** the first address */
  ip: string;
  /** every address, when there are several (dual-stack) */
  ips?: string[];
  host: string;
  time: string;
  lb?: Record<string, number>;
}

const QUEUE_LIMIT = 10000;
const WEBHOOK_PARALLEL = 8;

interface Sink {
  readonly name: string;
  /** delivers one event or throws */
  deliver(e: AttachmentEvent): Promise<void>;
  /** attempts per event (Infinity: until delivered or dropped by the bound) */
  readonly attempts: number;
  /** deliveries in flight at once, each for a different container */
  readonly parallel: number;
  /** lets go of connections when the publisher closes */
  close?(): void;
}

interface SinkState {
  sink: Sink;
  /** waiting, oldest first */
  queue: AttachmentEvent[];
  /** containers with a delivery in flight (retries included) */
  busy: Set<string>;
}

export class EventPublisher {
  private readonly sinks: SinkState[] = [];
  readonly stats = { published: 0, delivered: new Map<string, number>(), dropped: new Map<string, number>() };
  private closed = false;
  private readonly idle = new Set<() => void>();

  constructor(private readonly log: Logger) {}

  addRedisStream(conn: RedisConn, key: string, maxLen: number): void {
    this.add({
      name: 'redis-stream',
      attempts: Infinity,
      // one XADD at a time: the stream keeps the order the events happened in
      parallel: 1,
      deliver: async (e) => {
        const fields = Object.entries(e).flatMap(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
        await conn.send(['XADD', key, 'MAXLEN', '~', maxLen, '*', ...fields]);
      },
    });
  }

  /**
   * POSTs each event. Up to 8 are in flight at once, for different
   * containers: in a start storm one POST at a time let a busy receiver hold
   * the hundredth container's event for ~0.4 s behind the others. A
   * container's own events still arrive in order (its "detached" never
   * before its "attached"), retries included.
   */
  addWebhook(w: WebhookConfig): void {
    const post = webhookPoster(w);
    this.add({ name: 'webhook', attempts: w.retries, parallel: WEBHOOK_PARALLEL, deliver: (e) => post(JSON.stringify(e)), close: post.close });
  }

  private add(sink: Sink): void {
    this.sinks.push({ sink, queue: [], busy: new Set() });
    this.stats.delivered.set(sink.name, 0);
    this.stats.dropped.set(sink.name, 0);
  }

  publish(e: AttachmentEvent): void {
    this.stats.published++;
    for (const s of this.sinks) {
      if (s.queue.length >= QUEUE_LIMIT) {
        s.queue.shift();
        this.stats.dropped.set(s.sink.name, this.stats.dropped.get(s.sink.name)! + 1);
        this.log.error({ sink: s.sink.name }, 'event queue full: dropped the oldest event');
      }
      s.queue.push(e);
      this.pump(s);
    }
  }

  /** Events waiting or on their way in any sink. */
  pending(): number {
    return this.sinks.reduce((n, s) => n + s.queue.length + s.busy.size, 0);
  }

  /** Resolves once every queue is empty (or after `ms`). */
  async flush(ms: number): Promise<void> {
    if (this.pending() === 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.idle.add(done);
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.sinks) s.sink.close?.();
  }

  /**
   * Starts deliveries while the sink has room: the oldest waiting event of
   * each container with none in flight. A container's later events wait for
   * its earlier one, so they go out in order.
   */
  private pump(s: SinkState): void {
    if (this.closed) return;
    const held = new Set<string>();
    for (let i = 0; i < s.queue.length && s.busy.size < s.sink.parallel; ) {
      const e = s.queue[i]!;
      if (s.busy.has(e.container) || held.has(e.container)) {
        held.add(e.container);
        i++;
        continue;
      }
      s.queue.splice(i, 1);
      s.busy.add(e.container);
      void this.deliver(s, e).finally(() => {
        s.busy.delete(e.container);
        this.pump(s);
        if (this.pending() === 0) for (const f of [...this.idle]) (this.idle.delete(f), f());
      });
    }
  }

  /** One event, retried with backoff until delivered, out of attempts, or closed. */
  private async deliver(s: SinkState, e: AttachmentEvent): Promise<void> {
    let backoff = 100;
    for (let tries = 1; !this.closed; tries++) {
      try {
        await s.sink.deliver(e);
        this.stats.delivered.set(s.sink.name, this.stats.delivered.get(s.sink.name)! + 1);
        return;
      } catch (err) {
        if (tries >= s.sink.attempts) {
          this.stats.dropped.set(s.sink.name, this.stats.dropped.get(s.sink.name)! + 1);
          this.log.error({ sink: s.sink.name, err: (err as Error).message, containerId: e.container, tries }, 'event not delivered; giving up');
          return;
        }
        this.log.warn({ sink: s.sink.name, err: (err as Error).message, tries }, 'event delivery failed; retrying');
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(backoff * 2, 10000);
      }
    }
  }
}

/**
 * POSTs a JSON body to the webhook: settles once the receiver has answered
 * (a 2xx) or failed, at most timeoutMs after the call. node:http over
 * keep-alive connections, one per delivery in flight, rather than fetch:
 * Node loads fetch's HTTP client (undici) on its first call, ~50 ms idle and
 * far more in a start storm, when the first events go out, and every call
 * costs it more CPU. User and password in the URL go as basic auth.
 */
export function webhookPoster(w: WebhookConfig): ((body: string) => Promise<void>) & { close(): void } {
  const url = new URL(w.url);
  const tls = url.protocol === 'https:';
  const agent = tls ? new HttpsAgent({ keepAlive: true, maxSockets: WEBHOOK_PARALLEL }) : new HttpAgent({ keepAlive: true, maxSockets: WEBHOOK_PARALLEL });
  const send = tls ? httpsRequest : httpRequest;
  const post = (body: string) =>
    new Promise<void>((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'berth-agent' },
          signal: AbortSignal.timeout(w.timeoutMs),
        },
        (res) => {
          res.resume(); // the answer's body is not read, only drained
          res.on('end', () => (res.statusCode! < 300 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
          res.on('error', reject);
        },
      );
      req.on('error', (err) => reject(err.name === 'AbortError' ? new Error(`no answer within ${w.timeoutMs} ms`) : err));
      req.end(body);
    });
  return Object.assign(post, { close: () => agent.destroy() });
}
