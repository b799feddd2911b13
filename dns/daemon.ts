// `berth dns`: checks the flags, opens the store twice (one for reads, one
// the change feed waits on), builds the zone, serves UDP and TCP until
// SIGTERM/SIGINT, then stops following, closes the sockets and the stores.
import { setFlagsFromString } from 'node:v8';
import pino from 'pino';
import { ChangeFeed, feedWaitMs } from '../ipam/change-feed.js';
import { openStore } from '../ipam/open-store.js';
import { PoolRecords } from '../ipam/pool-records.js';
import { redact } from '../ipam/store-url.js';
import { dnsSettings, type DnsFlags } from './config.js';
import { ZoneKeeper } from './keeper.js';
import { listenDns } from './server.js';
import { untilStopSignal } from '../core/signals.js';

export interface DnsOptions extends DnsFlags {
  /** the store URL, resolved (flag, BERTH_STORE, default) */
  store: string;
  /** hears of a problem that does not stop the server (a password file others can read) */
  warn: (message: string) => void;
  /** resolves when the server should stop (tests); default: SIGTERM or SIGINT */
  until?: Promise<void>;
  /** where log lines go (default stdout) */
  logDest?: pino.DestinationStream;
  /** called once it answers, with the port it is bound to */
  onListening?: (port: number) => void;
}

/** Runs berth dns until stopped; resolves when it has shut down. */
export async function runDns(opts: DnsOptions): Promise<void> {
  // bin/berth starts Node with the agent's memory flags; every query allocates, and under them the server answered ~25% fewer queries per second (npm run bench). V8 applies these from the next collection on.
  setFlagsFromString('--no-optimize-for-size');
  setFlagsFromString('--max-semi-space-size=16');
  const settings = dnsSettings(opts);
  const log = pino({ base: { pid: process.pid } }, opts.logDest ?? pino.destination({ fd: 1, sync: false }));
  // ioredis: a long-lived process must outlast a Redis restart or failover.
  const store = await openStore(opts.store, { redisClient: 'ioredis', warn: opts.warn });
  const follow = await openStore(opts.store, { redisClient: 'ioredis', warn: () => {} }).catch(async (err: unknown) => {
    await store.close().catch(() => {});
    throw err;
  });
  const closeStores = () => Promise.all([store.close(), follow.close()].map((p) => p.catch(() => {})));
  // the feed lists the pools through the keeper, which keeps their configs; it calls only once started, after both exist
  const feed: ChangeFeed = new ChangeFeed(follow, () => keeper.poolNames(), feedWaitMs(opts.store), log, "the zone's updates");
  const records = new PoolRecords(store, feed, Date.now, Infinity);
  // the server's own address is the apex's A/AAAA, unless it listens on every address
  const nsAddresses = settings.host === '0.0.0.0' || settings.host === '::' ? [] : [settings.host];
  const keeper = new ZoneKeeper({ store, feed, records, log, zone: settings.zone, ttl: settings.ttl, nsAddresses });
  try {
    await keeper.start();
  } catch (err) {
    await keeper.stop();
    await closeStores();
    // the store's own messages name it
    throw new Error(`failed to read the pools: ${(err as Error).message}`);
  }
  feed.start();
  let server;
  try {
    server = await listenDns(settings, keeper, (err) => log.error({ err: err.message }, 'failed to answer a query'));
  } catch (err) {
    await feed.stop();
    await keeper.stop();
    await closeStores();
    throw new Error(`failed to listen on ${settings.host}:${settings.port}: ${(err as Error).message}`);
  }
  log.info({ listen: `${settings.host.includes(':') ? `[${settings.host}]` : settings.host}:${server.port}`, zone: settings.zone, ttl: settings.ttl, store: redact(opts.store) }, 'berth dns answering');
  opts.onListening?.(server.port);

  await (opts.until ?? untilStopSignal().then((signal) => log.info({ signal }, 'shutting down')));
  await server.close();
  await feed.stop();
  await keeper.stop();
  await store.close().catch(() => {});
  log.info({}, 'berth dns stopped');
  log.flush?.();
}
