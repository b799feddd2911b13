// The Docker engine as the agent sees it (dockerode over the engine's unix
// socket): labelled containers, one container's details, and the stream of
// start/die/destroy events, reconnected with backoff when the engine restarts.
import { createRequire } from 'node:module';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { LABEL_NETWORK, LABEL_PREFIX } from './labels.js';

/** What the agent needs of a container that does not change while it runs. */
export interface ContainerMeta {
  id: string;
  /** without the leading "/" */
  name: string;
  /** berth's labels (berth.*) only: the rest is not the agent's business */
  labels: Record<string, string>;
  networkMode: string;
}

export interface ContainerInfo extends ContainerMeta {
  running: boolean;
  /** the init process, 0 when not running */
  pid: number;
}

export interface ContainerEvent {
  id: string;
  /**
   * kill: `docker stop` or `docker kill` signalled it; it may still run for its grace period.
   * create, rename: what the agent knows of it (its name, labels) is to be read again.
   */
  action: 'create' | 'rename' | 'start' | 'kill' | 'die' | 'destroy';
  /** when Docker says it happened, ns since the epoch */
  timeNano: bigint;
  /** for kill: the signal number Docker sent */
  signal?: number;
}

/**
 * dockerode, without the parts the agent never uses: at load time it pulls in
 * gRPC and protobuf (BuildKit sessions, for image builds) and ssh2 (ssh://
 * engines), ~11 MiB of RSS in a daemon with a 120 MiB budget. Their modules
 * are replaced by stubs that throw if ever called; if dockerode moves them,
 * it simply loads in full.
 */
function loadDockerode(): typeof Docker {
  const require = createRequire(import.meta.url);
  const Module = require('node:module') as { new (id: string): NodeJS.Module };
  for (const [pkg, rel] of [
    ['dockerode', 'lib/session.js'],
    ['docker-modem', 'lib/ssh.js'],
  ] as const) {
    try {
      const path = require.resolve(`${pkg}/${rel}`, { paths: [require.resolve('dockerode')] });
      if (require.cache[path]) continue;
      const stub = new Module(path);
      stub.filename = path;
      stub.loaded = true;
      stub.exports = () => {
        throw new Error(`${pkg}/${rel} is left out of the berth agent`);
      };
      require.cache[path] = stub;
    } catch {
      // not where expected: load dockerode as it is
    }
  }
  return require('dockerode') as typeof Docker;
}

const ACTIONS: ReadonlyArray<ContainerEvent['action']> = ['create', 'rename', 'start', 'kill', 'die', 'destroy'];

/** The berth.* labels of a container. */
export function berthLabels(labels: Record<string, string> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) if (k.startsWith(LABEL_PREFIX)) out[k] = v;
  return out;
}

/**
 * Docker as the agent sees it. An empty socket path is no Docker at all
 * (`--docker-socket ""`, a host where podman, containerd or kubelet run the
 * plugins through the CNI fast path): no container is labelled, none is
 * known, and there is no stream to be down.
 */
export class DockerEngine {
  private readonly docker?: Docker;
  /** for the event stream only: no request timeout */
  private readonly events?: Docker;
  private stream: NodeJS.ReadableStream | undefined;
  private stopped = false;
  /** the event stream is up (always true with no Docker: nothing to wait for) */
  connected: boolean;
  /** false for `--docker-socket ""` */
  readonly enabled: boolean;

  /**
   * @param timeoutMs for inspects and lists. Not for the event stream: the
   *   engine sends nothing on it while nothing happens, and a timeout there
   *   (docker-modem's is an idle timeout) dropped it after every quiet 30 s,
   *   with a full reconciliation at each reconnection.
   */
  constructor(
    socketPath: string,
    private readonly log: Logger,
    timeoutMs = 30000,
  ) {
    this.enabled = socketPath !== '';
    this.connected = !this.enabled;
    if (!this.enabled) return;
    const Dockerode = loadDockerode();
    this.docker = new Dockerode({ socketPath, timeout: timeoutMs });
    this.events = new Dockerode({ socketPath });
  }

  /** Running containers that carry berth.network. */
  async listLabelled(): Promise<Array<{ id: string; name: string }>> {
    if (!this.docker) return [];
    const list = await this.docker.listContainers({ filters: { label: [LABEL_NETWORK], status: ['running'] } });
    return list.map((c) => ({ id: c.Id, name: (c.Names?.[0] ?? c.Id).replace(/^\//, '') }));
  }

  /** One container, or null when Docker no longer knows it. */
  async inspect(id: string): Promise<ContainerInfo | null> {
    if (!this.docker) return null;
    try {
      const c = await this.docker.getContainer(id).inspect();
      return {
        id: c.Id,
        name: c.Name.replace(/^\//, ''),
        running: c.State.Running && !c.State.Restarting,
        pid: c.State.Pid,
        labels: berthLabels(c.Config.Labels),
        networkMode: c.HostConfig.NetworkMode ?? '',
      };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  /**
   * Follows container start/die/destroy events until stop(). Each time the
   * stream is (re)established it calls `resync`: events before it, or missed
   * while the engine was away, are only seen by listing.
   */
  watch(onEvent: (e: ContainerEvent) => void, resync: () => void): void {
    if (!this.events) {
      resync();
      return;
    }
    const events = this.events;
    let backoff = 250;
    const connect = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        const stream = (await events.getEvents({ filters: { type: ['container'], event: [...ACTIONS] } })) as NodeJS.ReadableStream;
        if (this.stopped) {
          // stop() came while this connection was being made: nothing may keep the process alive
          (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
          return;
        }
        this.stream = stream;
        this.connected = true;
        backoff = 250;
        resync();
        let buf = '';
        stream.on('data', (chunk: Buffer) => {
          buf += chunk.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            try {
              const e = JSON.parse(line) as { id?: string; Action?: string; status?: string; timeNano?: number; Actor?: { Attributes?: Record<string, string> } };
              const signal = Number(e.Actor?.Attributes?.signal);
              const action = (e.Action ?? e.status) as ContainerEvent['action'];
              // timeNano exceeds 2^53; the ms part is what matters
              const timeNano = /"timeNano":(\d+)/.exec(line)?.[1];
              if (e.id && ACTIONS.includes(action)) onEvent({ id: e.id, action, timeNano: timeNano ? BigInt(timeNano) : BigInt(Date.now()) * 1000000n, ...(Number.isInteger(signal) ? { signal } : {}) });
            } catch {
              this.log.warn({ line: line.slice(0, 200) }, 'unreadable Docker event');
            }
          }
        });
        const lost = (why: string) => {
          if (this.stream !== stream) return;
          this.stream = undefined;
          this.connected = false;
          if (this.stopped) return;
          this.log.warn({ why }, 'Docker event stream lost; reconnecting');
          setTimeout(() => void connect(), backoff).unref();
        };
        stream.on('end', () => lost('end'));
        stream.on('close', () => lost('close'));
        stream.on('error', (err: Error) => lost(err.message));
      } catch (err) {
        this.connected = false;
        this.log.warn({ err: (err as Error).message, retryMs: backoff }, 'cannot reach the Docker engine');
        setTimeout(() => void connect(), backoff).unref();
        backoff = Math.min(backoff * 2, 10000);
      }
    };
    void connect();
  }

  stop(): void {
    this.stopped = true;
    const s = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    this.stream = undefined;
    s?.destroy?.();
  }
}
