// The agent's Redis client (ioredis, through the store) against a real
// redis-server that stops answering (SIGSTOP): every call fails within the
// store's timeout, none before it, and the same client answers again once the
// server does (SIGCONT), with what was written before still there.
import t from 'tap';
import { openStore } from '../../ipam/open-store.js';
import { buildPoolConfig } from '../../ipam/pool-config.js';
import { skipWithoutRedis, startRedis } from '../helpers/redis.js';

if (!skipWithoutRedis(t)) {
  t.test('ioredis: a Redis that stops answering fails each call within timeout, then the same client recovers', async (t) => {
    const server = await startRedis();
    t.teardown(async () => {
      server.signal('SIGCONT'); // a stopped redis-server would not end on SIGTERM
      await server.stop();
    });
    const store = await openStore(`${server.freshUrl()}&timeout=500`, { redisClient: 'ioredis' });
    t.teardown(() => store.close());
    await store.createPool(buildPoolConfig({ name: 'p', subnet: '10.7.0.0/24', hold: 0 }));
    const first = await store.allocate('p', { containerId: 'c1', ifname: 'eth0', owner: 'o1' });

    server.signal('SIGSTOP');
    try {
      const started = Date.now();
      // a read, a Lua script, and both at once: none may hang
      const calls = Promise.allSettled([
        store.listPools(),
        store.allocate('p', { containerId: 'c2', ifname: 'eth0', owner: 'o2' }),
        store.usage('p'),
      ]);
      const hung = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10000).unref());
      const settled = await Promise.race([calls, hung]);
      const took = Date.now() - started;
      if (settled === 'hung') {
        t.fail('the calls were still pending after 10 s: a hang');
        return;
      }
      for (const r of settled) t.match(r, { status: 'rejected', reason: { code: 'STORE_UNAVAILABLE', message: /timed out/i } }, 'STORE_UNAVAILABLE: timed out');
      t.ok(took >= 450, `not before the 500 ms timeout (${took} ms)`);
      t.ok(took < 3000, `nor much after it: bounded, not a hang (${took} ms)`);
      const again = Date.now();
      await t.rejects(store.listPools(), { code: 'STORE_UNAVAILABLE' }, 'a call while it is still stopped fails too');
      t.ok(Date.now() - again < 3000, 'as bounded');
    } finally {
      server.signal('SIGCONT');
    }
    t.same((await store.listPools()).map((p) => p.conf.name), ['p'], 'answering again: the same client recovers');
    t.match(await store.getAddress('p', first.ip), { state: 'allocated', containerId: 'c1' }, 'what was written before is there');
    const after = await store.allocate('p', { containerId: 'c3', ifname: 'eth0', owner: 'o3' });
    t.not(after.ip, first.ip, 'and it allocates again');
  });
}
