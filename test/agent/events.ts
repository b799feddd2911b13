// The agent's event publisher against a real HTTP receiver: webhook
// deliveries run side by side for different containers, one container's
// events arrive in the order they happened (retries included), an event out
// of attempts is dropped and counted, and flush waits for what is on its way.
import t, { type Test } from 'tap';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import pino from 'pino';
import { EventPublisher, type AttachmentEvent } from '../../agent/events.js';
import { freePort } from '../helpers/redis.js';

const quiet = pino({ level: 'silent' });

function event(type: AttachmentEvent['type'], container: string): AttachmentEvent {
  return { type, container, name: container, owner: container, network: 'net', ip: '10.0.0.2', host: 'h', time: new Date().toISOString() };
}

/** A receiver whose answer to each request is decided by `answer` (status, after a delay). */
async function receiver(t: Test, answer: (e: AttachmentEvent, n: number) => { status: number; delayMs?: number }) {
  const got: Array<{ e: AttachmentEvent; status: number }> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let n = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const e = JSON.parse(body) as AttachmentEvent;
      const a = answer(e, n++);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        got.push({ e, status: a.status });
        res.writeHead(a.status).end();
      }, a.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`, got, maxInFlight: () => maxInFlight };
}

t.test('deliveries for different containers run side by side', async (t) => {
  const r = await receiver(t, () => ({ status: 204, delayMs: 100 }));
  const p = new EventPublisher(quiet);
  p.addWebhook({ url: r.url, retries: 3, timeoutMs: 5000 });
  for (let i = 0; i < 20; i++) p.publish(event('attached', `c${i}`));
  t.equal(p.pending(), 20, 'all waiting or on their way');
  await p.flush(10000);
  t.equal(p.pending(), 0, 'flush waited for them');
  t.equal(r.got.length, 20, 'every event delivered');
  t.equal(p.stats.delivered.get('webhook'), 20);
  t.ok(r.maxInFlight() > 1, `more than one POST in flight at once (${r.maxInFlight()})`);
  t.ok(r.maxInFlight() <= 8, 'and no more than 8');
});

t.test("a container's events arrive in order, also when its first delivery is retried", async (t) => {
  let failures = 2;
  const r = await receiver(t, (e) => (e.container === 'a' && e.type === 'attached' && failures-- > 0 ? { status: 503 } : { status: 204, delayMs: 5 }));
  const p = new EventPublisher(quiet);
  p.addWebhook({ url: r.url, retries: 5, timeoutMs: 5000 });
  p.publish(event('attached', 'a'));
  p.publish(event('attached', 'b'));
  p.publish(event('detached', 'a'));
  p.publish(event('detached', 'b'));
  await p.flush(10000);
  const delivered = r.got.filter((g) => g.status === 204).map((g) => `${g.e.type}:${g.e.container}`);
  t.same(delivered.filter((d) => d.endsWith(':a')), ['attached:a', 'detached:a'], "a's events in order, after two failed tries");
  t.same(delivered.filter((d) => d.endsWith(':b')), ['attached:b', 'detached:b']);
  t.ok(delivered.indexOf('attached:b') < delivered.indexOf('attached:a'), "b did not wait for a's retries");
  t.equal(r.got.filter((g) => g.status === 503).length, 2, 'the two failures were real POSTs');
});

t.test('an event out of attempts is dropped and counted; the next one goes on', async (t) => {
  const r = await receiver(t, (e) => ({ status: e.container === 'bad' ? 500 : 204 }));
  const p = new EventPublisher(quiet);
  p.addWebhook({ url: r.url, retries: 2, timeoutMs: 5000 });
  p.publish(event('attached', 'bad'));
  p.publish(event('detached', 'bad'));
  p.publish(event('attached', 'good'));
  await p.flush(10000);
  t.equal(p.stats.dropped.get('webhook'), 2, 'both of bad\'s events, after 2 tries each');
  t.equal(r.got.filter((g) => g.e.container === 'bad').length, 4);
  t.equal(p.stats.delivered.get('webhook'), 1);
  t.same(r.got.filter((g) => g.status === 204).map((g) => g.e.container), ['good']);
});

t.test('a POST is JSON with its headers, over kept-alive connections, with the URL\'s user as basic auth', async (t) => {
  const seen: Array<{ headers: IncomingMessage['headers']; port: number }> = [];
  const server = createServer((req, res) => {
    seen.push({ headers: req.headers, port: req.socket.remotePort! });
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const p = new EventPublisher(quiet);
  t.teardown(() => p.close());
  p.addWebhook({ url: `http://cmdb:s3cret@127.0.0.1:${(server.address() as { port: number }).port}/hook`, retries: 1, timeoutMs: 5000 });
  for (const c of ['a', 'b', 'c']) {
    p.publish(event('attached', c));
    await p.flush(5000); // one after the other: each can reuse the connection
  }
  t.equal(seen.length, 3);
  t.equal(seen[0]!.headers['content-type'], 'application/json');
  t.equal(seen[0]!.headers['user-agent'], 'berth-agent');
  t.equal(seen[0]!.headers.authorization, `Basic ${Buffer.from('cmdb:s3cret').toString('base64')}`);
  t.equal(new Set(seen.map((s) => s.port)).size, 1, 'one connection for all three');
});

t.test('a receiver that does not answer in timeoutMs fails the try; out of tries, the event is dropped', async (t) => {
  const r = await receiver(t, () => ({ status: 204, delayMs: 3000 }));
  const p = new EventPublisher(quiet);
  t.teardown(() => p.close());
  p.addWebhook({ url: r.url, retries: 2, timeoutMs: 200 });
  p.publish(event('attached', 'slow'));
  await p.flush(10000);
  t.equal(p.pending(), 0, 'nothing left on its way');
  t.equal(p.stats.dropped.get('webhook'), 1, 'dropped after two tries that timed out');
  t.equal(p.stats.delivered.get('webhook'), 0);
});

t.test('a sink that is down keeps 10,000 events queued: past that the oldest waiting are dropped, counted and logged, the rest delivered once it is up', async (t) => {
  const port = await freePort(); // nothing listens there until the receiver starts below
  const lines: string[] = [];
  const p = new EventPublisher(pino({ level: 'error' }, { write: (l: string) => void lines.push(l) }));
  t.teardown(() => p.close());
  p.addWebhook({ url: `http://127.0.0.1:${port}/`, retries: 1000, timeoutMs: 5000 });
  // eight on their way (one each for eight containers), ten thousand waiting, 25 more
  const over = 25;
  const total = 8 + 10000 + over;
  for (let i = 0; i < total; i++) p.publish(event('attached', `c${i}`));
  t.equal(p.stats.dropped.get('webhook'), over, `${over} dropped`);
  t.equal(p.pending(), 8 + 10000, 'ten thousand waiting and eight on their way');
  t.equal(lines.filter((l) => /"msg":"event queue full: dropped the oldest event"/.test(l)).length, over, 'each drop logged');

  const got = new Set<string>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.add((JSON.parse(body) as AttachmentEvent).container);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  await p.flush(120000);
  t.equal(p.pending(), 0, 'all delivered once the receiver is up');
  t.equal(got.size, 8 + 10000, 'every event kept arrived');
  t.equal(p.stats.delivered.get('webhook'), 8 + 10000);
  const dropped = Array.from({ length: total }, (_, i) => `c${i}`).filter((c) => !got.has(c));
  t.same(dropped, Array.from({ length: over }, (_, i) => `c${8 + i}`), 'the dropped ones are the oldest that waited (those on their way were kept)');
});
