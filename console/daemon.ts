// `berth console`: reads the admin token, opens the store twice (one for
// pages and changes, one the change feed waits on), serves HTTP until
// SIGTERM/SIGINT, then stops the feed, closes the event streams and the
// server, and closes the stores.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { ValidationError } from '../core/errors.js';
import { openStore } from '../ipam/open-store.js';
import { redact } from '../ipam/store-url.js';
import { findUp } from '../native/index.js';
import { loadToken, Sessions } from './auth.js';
import { ChangeFeed, feedWaitMs } from '../ipam/change-feed.js';
import { PoolRecords } from '../ipam/pool-records.js';
import { consoleHandler, type Asset } from './server.js';
import { untilStopSignal } from '../core/signals.js';

export const DEFAULT_LISTEN = '127.0.0.1:8089';

export interface ConsoleOptions {
  /** ADDR:PORT (default DEFAULT_LISTEN) */
  listen?: string | undefined;
  /** the store URL, resolved (flag, BERTH_STORE, default) */
  store: string;
  tokenFile?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** hears of a problem that does not stop the console (a token file others can read) */
  warn: (message: string) => void;
  /** resolves when the console should stop (tests); default: SIGTERM or SIGINT */
  until?: Promise<void>;
  /** where log lines go (default stdout) */
  logDest?: pino.DestinationStream;
}

/** An address and port to listen on. */
export interface Listen {
  host: string;
  port: number;
}

/** Parses --listen: HOST:PORT or [IPv6]:PORT. */
export function parseListen(text: string, field = '--listen'): Listen {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new ValidationError(field, `must be ADDR:PORT, e.g. ${DEFAULT_LISTEN} or [::1]:8089, got ${JSON.stringify(text)}`);
  }
  return { host: m[1] ?? m[2]!, port };
}

/** Runs the console until stopped; resolves when it has shut down. */
export async function runConsole(opts: ConsoleOptions): Promise<void> {
  const listen = parseListen(opts.listen ?? DEFAULT_LISTEN);
  const token = loadToken(opts.tokenFile, opts.env, opts.warn);
  const waitMs = feedWaitMs(opts.store);
  const assets = loadAssets();
  const log = pino({ base: { pid: process.pid } }, opts.logDest ?? pino.destination({ fd: 1, sync: false }));
  // ioredis: a long-lived process must outlast a Redis restart or failover.
  const store = await openStore(opts.store, { redisClient: 'ioredis', warn: opts.warn });
  const follow = await openStore(opts.store, { redisClient: 'ioredis', warn: () => {} }).catch(async (err: unknown) => {
    await store.close().catch(() => {});
    throw err;
  });
  const feed = new ChangeFeed(follow, async () => (await store.listPools()).map((p) => p.conf.name), waitMs, log);
  const actor = `console@${hostname()}`;
  const records = new PoolRecords(store, feed);
  const server = createServer(consoleHandler({ store, feed, records, sessions: new Sessions(token), actor, log, assets }));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listen.port, listen.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await Promise.all([store.close(), follow.close()].map((p) => p.catch(() => {})));
    throw new Error(`failed to listen on ${listen.host}:${listen.port}: ${(err as Error).message}`);
  }
  feed.start();
  const address = server.address() as { address: string; port: number };
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  log.info({ url: `http://${host}:${address.port}/`, store: redact(opts.store), changes: token ? 'with the admin token' : 'none (read-only)', actor }, 'berth console listening');

  await (opts.until ?? untilStopSignal().then((signal) => log.info({ signal }, 'shutting down')));
  await feed.stop();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // Event streams never end by themselves.
  server.closeAllConnections();
  await closed;
  await store.close().catch(() => {});
  log.info({}, 'berth console stopped');
  log.flush?.();
}

const ASSETS: Record<string, string> = { 'console.js': 'text/javascript; charset=utf-8', 'console.css': 'text/css; charset=utf-8' };

/** The pages' script and style, read once: from console/assets beside the sources, above dist/ when built. */
function loadAssets(): Map<string, Asset> {
  const here = dirname(fileURLToPath(import.meta.url));
  const first = findUp(here, join('console', 'assets', 'console.js'));
  if (!first) throw new Error('failed to find the console assets (console/assets)');
  const dir = dirname(first);
  const out = new Map<string, Asset>();
  for (const [name, type] of Object.entries(ASSETS)) {
    const body = readFileSync(join(dir, name));
    out.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"` });
  }
  return out;
}
