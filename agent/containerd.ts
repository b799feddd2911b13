// containerd's event stream as the agent sees it: the moment a container's
// task exists (runc has made its namespaces and its init process, which waits
// to be started), with the init's pid. Docker reports a start only after it
// has started the task and done its own bookkeeping, which in a start storm
// takes its turn with everything else dockerd does. Attaching from here gives
// the container its address that much sooner, often before its process runs
// at all.
//
// The stream is one gRPC call (server streaming) over HTTP/2 on containerd's
// unix socket, made with node:http2 and the few messages in
// containerd-wire.ts: @grpc/grpc-js and its protobuf loader would add ~12
// MiB to the agent's RSS for one call (node:http2 costs ~2). Reconnected with backoff when
// containerd restarts; while it is away the agent attaches on Docker's start
// event as before, so nothing depends on this stream but speed.
//
// The agent follows two sockets by default, and a host runs containerd at one
// of them: a socket that fails is said at debug level, and watchStreams()
// warns only when none of the streams followed is up.
import { connect as h2connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { Logger } from 'pino';
import { decodeTaskEvent, DOCKER_NAMESPACE, GrpcReader, NAMESPACE_NAME, subscribeRequest, SUBSCRIBE_PATH, type TaskEvent } from './containerd-wire.js';

export class ContainerdEvents {
  private session: ClientHttp2Session | undefined;
  private stopped = false;
  private readonly filters: string[];
  connected = false;
  /** why the stream last failed */
  lastError: string | undefined;

  /** Events of `namespace` on these topics only (containerd filters them). */
  constructor(
    readonly socketPath: string,
    private readonly log: Logger,
    opts: { namespace?: string; topics?: string[] } = {},
  ) {
    const ns = opts.namespace ?? DOCKER_NAMESPACE;
    if (!NAMESPACE_NAME.test(ns)) throw new Error(`failed to follow containerd "${socketPath}": bad namespace name ${JSON.stringify(ns)}`);
    this.filters = (opts.topics ?? ['/tasks/create', '/tasks/exit']).map((t) => `namespace==${ns},topic==${JSON.stringify(t)}`);
  }

  /** Follows task create/exit events until stop(), reconnecting with backoff. */
  watch(onEvent: (e: TaskEvent) => void): void {
    let backoff = 250;
    const retry = (why: string, livedMs: number) => {
      this.connected = false;
      this.lastError = why;
      if (this.stopped) return;
      // a stream that was up for a while starts over; one refused at once backs off
      if (livedMs > 10000) backoff = 250;
      this.log.debug({ socket: this.socketPath, why, retryMs: backoff }, 'containerd event stream unavailable');
      setTimeout(connect, backoff).unref();
      backoff = Math.min(backoff * 2, 10000);
    };
    const connect = () => {
      if (this.stopped) return;
      let failed = false;
      const began = Date.now();
      const fail = (why: string) => {
        if (failed) return;
        failed = true;
        if (this.session === session) this.session = undefined;
        session.destroy();
        retry(why, Date.now() - began);
      };
      const session = h2connect('http://localhost', { createConnection: () => netConnect(this.socketPath) });
      this.session = session;
      session.on('connect', () => {
        // containerd sends the call's headers with its first event: the connection is the news
        this.connected = true;
        this.log.info({ socket: this.socketPath }, 'containerd event stream connected');
      });
      session.on('error', (err: Error) => fail(err.message));
      session.on('goaway', () => fail('containerd sent GOAWAY'));
      session.on('close', () => fail('connection closed'));
      const req = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: SUBSCRIBE_PATH,
        [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
        [constants.HTTP2_HEADER_TE]: 'trailers',
      });
      req.end(subscribeRequest(this.filters));
      const reader = new GrpcReader();
      req.on('response', (headers) => {
        const status = Number(headers[constants.HTTP2_HEADER_STATUS]);
        // a call refused at once answers with its status in the headers ("trailers only")
        const grpcStatus = headers['grpc-status'];
        if (status !== 200 || (grpcStatus !== undefined && grpcStatus !== '0')) {
          fail(`HTTP ${status}, grpc-status ${String(grpcStatus)}: ${String(headers['grpc-message'] ?? '')}`);
        }
      });
      req.on('data', (chunk: Buffer) => {
        let messages: Buffer[];
        try {
          messages = reader.push(chunk);
        } catch (err) {
          fail(`unreadable gRPC stream: ${(err as Error).message}`);
          return;
        }
        for (const m of messages) {
          let e: TaskEvent | null;
          try {
            e = decodeTaskEvent(m);
          } catch (err) {
            this.log.warn({ err: (err as Error).message }, 'unreadable containerd event skipped');
            continue;
          }
          if (e) onEvent(e);
        }
      });
      req.on('trailers', (t) => fail(`stream ended: grpc-status ${String(t['grpc-status'])} ${String(t['grpc-message'] ?? '')}`));
      req.on('error', (err: Error) => fail(err.message));
      req.on('close', () => fail('stream closed'));
    };
    connect();
  }

  stop(): void {
    this.stopped = true;
    this.connected = false;
    this.session?.destroy();
    this.session = undefined;
  }
}

/** How long none of the streams followed may be up before the agent warns: containerd starting or restarting takes less. */
export const STREAMS_GRACE_MS = 15000;

export interface StreamsNotice {
  /** when the last stream went down (or the watch began with none up) */
  downSince: number | undefined;
  /** a warning was given for this spell */
  warned: boolean;
}

/**
 * What to say about the streams followed, from whether any is up `now`: a
 * warning once none has been up for `graceMs`, a note when one is up after
 * that warning, otherwise nothing. One socket down while another is up is
 * not a problem: a host runs containerd at one of the default places.
 */
export function streamsNotice(prev: StreamsNotice, anyUp: boolean, now: number, graceMs: number): { next: StreamsNotice; say?: 'down' | 'up' } {
  if (anyUp) return prev.warned ? { next: { downSince: undefined, warned: false }, say: 'up' } : { next: { downSince: undefined, warned: false } };
  const downSince = prev.downSince ?? now;
  if (!prev.warned && now - downSince >= graceMs) return { next: { downSince, warned: true }, say: 'down' };
  return { next: { downSince, warned: prev.warned } };
}

/** Looks at the streams every `everyMs` and logs what streamsNotice() says; returns a function that stops it. */
export function watchStreams(streams: readonly ContainerdEvents[], log: Logger, graceMs = STREAMS_GRACE_MS, everyMs = 1000): () => void {
  if (streams.length === 0) return () => {};
  let state: StreamsNotice = { downSince: Date.now(), warned: false };
  const timer = setInterval(() => {
    const { next, say } = streamsNotice(state, streams.some((s) => s.connected), Date.now(), graceMs);
    state = next;
    if (say === 'down') {
      const sockets = Object.fromEntries(streams.map((s) => [s.socketPath, s.lastError ?? 'not connected']));
      log.warn({ sockets, forMs: graceMs }, "no containerd event stream is up; attaching on Docker's start events");
    } else if (say === 'up') {
      log.info({ sockets: streams.filter((s) => s.connected).map((s) => s.socketPath) }, 'a containerd event stream is up again');
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
