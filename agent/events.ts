// Attachment events for other systems (a CMDB, a load balancer, an audit
// trail): every attach and detach, with container, owner, network, IP and
// host. Two sinks, both asynchronous so that they never slow an attachment:
// a Redis stream (XADD with an approximate MAXLEN) when the store is Redis,
// and an optional webhook (POST of one JSON event) with retries and backoff.
// A sink that is down keeps its events queued, up to a bound; what is
// dropped beyond it is counted and logged.
import type { Logger } from 'pino';
import type { RedisConn } from '../ipam/redis-conn.js';
import type { WebhookConfig } from './config.js';

export interface AttachmentEvent {
  type: 'attached' | 'detached';
  container: string;
  name: string;
  owner: string;
  network: string;
  ip: string;
  host: string;
  time: string;
  lb?: Record<string, number>;
}

const QUEUE_LIMIT = 10000;

interface Sink {
  readonly name: string;
  /** delivers one event or throws */
  deliver(e: AttachmentEvent): Promise<void>;
  /** attempts per event (Infinity: until delivered or dropped by the bound) */
  readonly attempts: number;
}

export class EventPublisher {
  private readonly sinks: Array<{ sink: Sink; queue: Array<{ e: AttachmentEvent; tries: number }>; running: boolean }> = [];
  readonly stats = { published: 0, delivered: new Map<string, number>(), dropped: new Map<string, number>() };
  private closed = false;
  private readonly idle = new Set<() => void>();

  constructor(private readonly log: Logger) {}

  addRedisStream(conn: RedisConn, key: string, maxLen: number): void {
    this.add({
      name: 'redis-stream',
      attempts: Infinity,
      deliver: async (e) => {
        const fields = Object.entries(e).flatMap(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
        await conn.send(['XADD', key, 'MAXLEN', '~', maxLen, '*', ...fields]);
      },
    });
  }

  addWebhook(w: WebhookConfig): void {
    this.add({
      name: 'webhook',
      attempts: w.retries,
      deliver: async (e) => {
        const res = await fetch(w.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'berth-agent' },
          body: JSON.stringify(e),
          signal: AbortSignal.timeout(w.timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.status >= 300) throw new Error(`HTTP ${res.status}`);
      },
    });
  }

  private add(sink: Sink): void {
    this.sinks.push({ sink, queue: [], running: false });
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
      s.queue.push({ e, tries: 0 });
      if (!s.running) void this.drain(s);
    }
  }

  /** Events waiting in any sink. */
  pending(): number {
    return this.sinks.reduce((n, s) => n + s.queue.length, 0);
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
  }

  private async drain(s: (typeof this.sinks)[number]): Promise<void> {
    s.running = true;
    let backoff = 100;
    while (s.queue.length > 0 && !this.closed) {
      const head = s.queue[0]!;
      try {
        await s.sink.deliver(head.e);
        // publish() may have dropped it (queue full) while it was on its way
        if (s.queue[0] === head) s.queue.shift();
        this.stats.delivered.set(s.sink.name, this.stats.delivered.get(s.sink.name)! + 1);
        backoff = 100;
      } catch (err) {
        head.tries++;
        if (head.tries >= s.sink.attempts) {
          if (s.queue[0] === head) s.queue.shift();
          this.stats.dropped.set(s.sink.name, this.stats.dropped.get(s.sink.name)! + 1);
          this.log.error({ sink: s.sink.name, err: (err as Error).message, containerId: head.e.container, tries: head.tries }, 'event not delivered; giving up');
          continue;
        }
        this.log.warn({ sink: s.sink.name, err: (err as Error).message, tries: head.tries }, 'event delivery failed; retrying');
        await new Promise((r) => setTimeout(r, backoff).unref());
        backoff = Math.min(backoff * 2, 10000);
      }
    }
    s.running = false;
    if (this.pending() === 0) for (const f of [...this.idle]) (this.idle.delete(f), f());
  }
}
