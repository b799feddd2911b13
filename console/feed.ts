// The console's live updates: each open page gets the change feed's changes
// (ipam/change-feed.ts) as server-sent events.
import type { ServerResponse } from 'node:http';
import type { ChangeFeed } from '../ipam/change-feed.js';

/** An event stream whose client has this much unread is ended; its page reconnects and reads afresh. */
const MAX_BACKLOG_BYTES = 1024 * 1024;
/** A comment line this often keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

/**
 * Serves one page's event stream: `change` events (of one pool, or of all
 * when pool is undefined) and `status` events saying whether the console is
 * following the store. Ends when the client goes or stop() is called.
 */
export function serveEvents(res: ServerResponse, feed: ChangeFeed, pool: string | undefined): () => void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-store',
    // nginx buffers responses unless told not to
    'X-Accel-Buffering': 'no',
  });
  const send = (event: string, data: unknown) => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    if (res.writableLength > MAX_BACKLOG_BYTES) stop();
  };
  res.write('retry: 1000\n\n');
  send('status', { live: feed.live });
  const unsubscribe = feed.subscribe(
    (c) => {
      if (pool === undefined || c.pool === pool) send('change', c);
    },
    (live) => send('status', { live }),
  );
  const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(heartbeat);
    unsubscribe();
    res.end();
  };
  res.on('close', stop);
  return stop;
}
