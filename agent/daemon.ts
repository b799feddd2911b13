// `berth agent`: reads the config, opens the store, the Docker engine and the
// API socket, runs until SIGTERM/SIGINT, then shuts down in order: stop
// taking events, let operations in flight finish (bounded), flush events
// (bounded), close the socket and the store. Attachments stay: containers
// keep their addresses while the agent is away.
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import pino from 'pino';
import { connectRedis, openStore } from '../ipam/open-store.js';
import { parseStoreUrl, redact } from '../ipam/store-url.js';
import { HaproxyLb } from '../lb/haproxy.js';
import { KeepalivedLb } from '../lb/lvs.js';
import { Agent } from './agent.js';
import { listenApi, listenMetrics } from './api.js';
import { CniRuntime, DEFAULT_PATH } from './cni-runtime.js';
import { CniServer } from './cni-serve.js';
import type { AgentFlags } from './config.js';
import { loadAgentConfig } from './config-file.js';
import { lockStateDir } from './host-lock.js';
import { ContainerdEvents, watchStreams } from './containerd.js';
import { DockerEngine } from './docker.js';
import { EventPublisher } from './events.js';
import { StateDir } from './state.js';
import { untilStopSignal } from '../core/signals.js';

export interface AgentRunOptions {
  configFile?: string;
  flags: AgentFlags;
  env: NodeJS.ProcessEnv;
  /** resolves when the agent should stop (tests); default: SIGTERM or SIGINT */
  until?: Promise<void>;
  /** where log lines go (default stdout) */
  logDest?: pino.DestinationStream;
}

/** Runs the agent until stopped; resolves when it has shut down. */
export async function runAgent(opts: AgentRunOptions): Promise<void> {
  const cfg = loadAgentConfig(opts.configFile, opts.flags, opts.env);
  const log = pino({ level: cfg.logLevel, base: { host: cfg.hostname, pid: process.pid } }, opts.logDest ?? pino.destination({ fd: 1, sync: false }));
  const startedAt = new Date();
  const renice = () => {
    if (cfg.nice === 0) return;
    try {
      reniceThreads(cfg.nice);
    } catch (err) {
      log.warn({ nice: cfg.nice, err: (err as Error).message }, 'cannot change the agent\'s scheduling priority');
    }
  };
  renice();
  const lock = lockStateDir(cfg.stateDir);
  log.info({ store: redact(cfg.store), cniConfDir: cfg.cniConfDir, cniBinDir: cfg.cniBinDir, socket: cfg.socket, stateDir: cfg.stateDir }, 'berth agent starting');
  const warn = (m: string) => log.warn({ store: redact(cfg.store) }, m);
  const store = await openStore(cfg.store, { redisClient: 'ioredis', warn });
  const events = new EventPublisher(log);
  const loc = parseStoreUrl(cfg.store);
  let streamConn: { close(): Promise<void> } | undefined;
  if (loc.kind === 'redis' && cfg.events.stream) {
    const conn = await connectRedis(loc, 'ioredis', warn);
    streamConn = conn;
    events.addRedisStream(conn, `${loc.prefix}:${cfg.events.stream}`, cfg.events.streamMaxLen);
  }
  if (cfg.events.webhook) events.addWebhook(cfg.events.webhook);
  const docker = new DockerEngine(cfg.dockerSocket, log);
  const containerd = cfg.containerdSockets.map((socket) => new ContainerdEvents(socket, log, { namespace: cfg.containerdNamespace }));
  const runtime = new CniRuntime(cfg.cniBinDir, cfg.inProcess, cfg.pluginThreads, opts.env.PATH ? { path: opts.env.PATH } : {});
  const agent = new Agent(cfg, {
    docker,
    store,
    events,
    log,
    containerd,
    state: new StateDir(cfg.stateDir, cfg.syncState),
    runtime,
    ...(cfg.lb.services.some((s) => s.haproxy) ? { haproxy: new HaproxyLb(cfg.lb, log.child({ lb: 'haproxy' })) } : {}),
    ...(cfg.lb.services.some((s) => s.lvs) ? { keepalived: new KeepalivedLb(cfg.lb, log.child({ lb: 'keepalived' })) } : {}),
  });
  const cni = new CniServer((type, env, stdin) => runtime.runPlugin(type, env, stdin), agent.metrics, {
    parallel: cfg.cniCalls,
    timeoutMs: cfg.cniCallTimeout * 1000,
    path: opts.env.PATH ?? DEFAULT_PATH,
  });
  const server = await listenApi({ agent, store, version: agentVersion(), startedAt, cni }, cfg.socket);
  const metricsServer = cfg.metricsListen ? await listenMetrics({ agent, store }, cfg.metricsListen) : undefined;
  if (cfg.metricsListen) log.info({ metricsListen: `${cfg.metricsListen.host}:${cfg.metricsListen.port}` }, 'serving /metrics and /v1/sd over TCP');
  agent.start();
  const unwatchStreams = watchStreams(containerd, log);
  // threads made since by a thread that was not reniced (libuv's pool is made on first use)
  renice();

  await (opts.until ?? untilStopSignal().then((signal) => log.info({ signal }, 'shutting down')));
  unwatchStreams();
  // calls from now on are answered "not run": their launchers run them themselves
  const cniDone = cni.stop();
  await agent.stop();
  await cniDone;
  await runtime.close();
  await events.flush(5000);
  events.close();
  for (const srv of [server, metricsServer]) {
    if (!srv) continue;
    const closed = new Promise<void>((resolve) => srv.close(() => resolve()));
    srv.closeAllConnections();
    await closed;
  }
  await store.close().catch(() => {});
  await streamConn?.close().catch(() => {});
  lock.release();
  log.info({}, 'berth agent stopped');
  log.flush?.();
}

function agentVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * Gives every thread of this process the priority `nice`. On Linux a nice
 * value belongs to a thread: setpriority(2) for the process changes only the
 * calling thread, and a new thread takes its creator's. V8's threads and
 * libuv's pool (where the state files are written) exist before this code
 * runs, so each must be reniced, or the state writes would compete at
 * priority 0 with every runc process of a start storm.
 */
export function reniceThreads(nice: number): void {
  setPriority(0, nice);
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      setPriority(Number(tid), nice);
    } catch (err) {
      if ((err as { info?: { code?: string } }).info?.code !== 'ESRCH') throw err; // a thread that ended meanwhile
    }
  }
}
