// The agent config (agent/config.ts): defaults, flags over the file, and every bad field named.
import t from 'tap';
import { parseAgentConfig } from '../../agent/config.js';

t.test('agent config: defaults, flags over the file, every bad field named', async (t) => {
  const c = parseAgentConfig(undefined, {}, {}, 'host1');
  t.match(c, {
    store: 'file:///var/lib/berth',
    cniConfDir: '/etc/cni/net.d',
    cniBinDir: ['/opt/cni/bin'],
    dockerSocket: '/var/run/docker.sock',
    socket: '/run/berth/agent.sock',
    stateDir: '/var/lib/berth/agent',
    hostname: 'host1',
    inProcess: true,
    pluginThreads: 1,
    addSlots: 8,
    nice: -10,
    events: { stream: 'events' },
  });
  t.equal(parseAgentConfig(undefined, {}, { BERTH_STORE: 'redis://r:6379/0' }, 'h').store, 'redis://r:6379/0', 'BERTH_STORE');
  const f = parseAgentConfig({ store: 'redis://a:1/0', cniBinDir: '/a:/b', socket: '/x/s.sock' }, { store: 'redis://b:2/0', socket: '/y/s.sock' }, {}, 'h');
  t.equal(f.store, 'redis://b:2/0', 'the flag wins over the file');
  t.equal(f.socket, '/y/s.sock');
  t.equal(parseAgentConfig({ addSlots: 4 }, {}, {}, 'h').addSlots, 4);
  t.same(f.cniBinDir, ['/a', '/b']);
  const bad: Array<[unknown, RegExp]> = [
    [{ sockett: '/x' }, /sockett: unknown field/],
    [{ socket: 3 }, /socket must be a string, got number/],
    [{ stateDir: 'relative' }, /stateDir must be an absolute path/],
    [{ store: 'http://x' }, /store/],
    [{ reconcileInterval: 0 }, /reconcileInterval must be between 1 and 86400/],
    [{ logLevel: 'loud' }, /logLevel must be one of/],
    [{ nice: -21 }, /nice must be an integer from -20 to 19/],
    [{ nice: 1.5 }, /nice must be an integer/],
    [{ pluginThreads: 17 }, /pluginThreads must be an integer from 0 to 16, got 17/],
    [{ pluginThreads: '2' }, /pluginThreads must be a number, got string/],
    [{ addSlots: 0 }, /addSlots must be an integer from 1 to 64, got 0/],
    [{ addSlots: 2.5 }, /addSlots must be an integer from 1 to 64, got 2.5/],
    [{ addSlots: '8' }, /addSlots must be a number, got string/],
    [{ hostname: 'a b' }, /hostname must be a host name/],
    [{ events: { webhook: { url: 'ftp://x' } } }, /events\.webhook\.url must be an http or https URL/],
    [{ events: { webhook: { url: 'http://x', retries: 0 } } }, /events\.webhook\.retries/],
    [{ events: { stream: 'a b' } }, /events\.stream/],
    [{ events: { nope: 1 } }, /events\.nope: unknown field/],
    [[], /must be a JSON object/],
  ];
  for (const [file, re] of bad) t.throws(() => parseAgentConfig(file, {}, {}, 'h'), re, JSON.stringify(file));
  t.throws(() => parseAgentConfig({}, { cniBinDir: 'rel' }, {}, 'h'), /cniBinDir entries must be absolute/);
  t.throws(() => parseAgentConfig({}, { socket: `/${'x'.repeat(110)}` }, {}, 'h'), /socket must be at most 107 bytes/);
  // containerd: both of Docker's usual sockets unless told; "" for none; the flag over the file
  t.same(c.containerdSockets, ['/run/containerd/containerd.sock', '/var/run/docker/containerd/containerd.sock']);
  t.equal(c.containerdNamespace, 'moby');
  t.same(parseAgentConfig({ containerdSocket: '' }, {}, {}, 'h').containerdSockets, [], '"" turns the stream off');
  t.same(parseAgentConfig({ containerdSocket: '/a/c.sock' }, { containerdSocket: '/b/c.sock' }, {}, 'h').containerdSockets, ['/b/c.sock']);
  t.equal(parseAgentConfig({ containerdNamespace: 'berth-test.1' }, {}, {}, 'h').containerdNamespace, 'berth-test.1');
  t.throws(() => parseAgentConfig({ containerdSocket: 'c.sock' }, {}, {}, 'h'), /containerdSocket must be an absolute path \(or "" for none\), got "c.sock"/);
  t.throws(() => parseAgentConfig({}, { containerdSocket: `/${'x'.repeat(110)}` }, {}, 'h'), /containerdSocket must be at most 107 bytes/);
  for (const ns of ['a b', 'a"b', '-a', 'a..b', '', 'x'.repeat(77)]) {
    t.throws(() => parseAgentConfig({ containerdNamespace: ns }, {}, {}, 'h'), /containerdNamespace must be a containerd namespace name/, JSON.stringify(ns));
  }
  t.throws(() => parseAgentConfig({ containerdNamespace: 5 }, {}, {}, 'h'), /containerdNamespace must be a string, got number/);
});

t.test('no Docker: dockerSocket "" from the flag or the file; the fast-path bounds checked', async (t) => {
  t.equal(parseAgentConfig(undefined, { dockerSocket: '' }, {}, 'h').dockerSocket, '');
  t.equal(parseAgentConfig({ dockerSocket: '' }, {}, {}, 'h').dockerSocket, '');
  t.equal(parseAgentConfig({ dockerSocket: '' }, { dockerSocket: '/run/d.sock' }, {}, 'h').dockerSocket, '/run/d.sock', 'the flag wins');
  t.throws(() => parseAgentConfig(undefined, { dockerSocket: 'docker.sock' }, {}, 'h'), /dockerSocket must be an absolute path/);
  t.match(parseAgentConfig(undefined, {}, {}, 'h'), { cniCalls: 16, cniCallTimeout: 60 });
  for (const bad of [0, 257, 1.5, '8']) t.throws(() => parseAgentConfig({ cniCalls: bad }, {}, {}, 'h'), /cniCalls/, String(bad));
  t.throws(() => parseAgentConfig({ cniCallTimeout: 0 }, {}, {}, 'h'), /cniCallTimeout must be between 1 and 86400 seconds/);
});
