// containerd's event stream: the wire format (protobuf fields, gRPC framing)
// against bytes written out by hand, the client against a real containerd
// (the one a private dockerd starts), and its recovery from a server that
// refuses the call, sends what it must not, or goes away; no warning while
// one of the sockets followed is up, one when none is.
import { createServer, constants } from 'node:http2';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import t from 'tap';
import { ContainerdEvents, streamsNotice, watchStreams, type StreamsNotice } from '../../agent/containerd.js';
import { decodeTaskEvent, encodeEnvelope, grpcFrame, GrpcReader, readFields, subscribeRequest, SUBSCRIBE_PATH, type TaskEvent } from '../../agent/containerd-wire.js';
import { shortDir, waitFor } from '../helpers/agent.js';
import { skipWithoutDocker, startDocker } from '../helpers/docker.js';

const quiet = pino({ level: 'silent' });

/** A logger at info whose lines are kept, parsed. */
function sink() {
  const lines: Array<{ level: number; msg: string; socket?: string; sockets?: unknown }> = [];
  return { lines, log: pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) }), warnings: () => lines.filter((l) => l.level >= 40) };
}

/** An HTTP/2 server on `path` that takes the Subscribe call and keeps it open, sending nothing. */
async function silentContainerd(path: string) {
  const server = createServer();
  const sessions = new Set<{ destroy(): void }>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc' }));
  rmSync(path, { force: true });
  await new Promise<void>((resolve) => server.listen(path, () => resolve()));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
}

t.test('wire: a SubscribeRequest, gRPC frames in any chunks, task events decoded by their fields', async (t) => {
  // field 1 (length-delimited: key 0x0a), "ab"; then "c"; behind a 5-byte gRPC prefix
  t.same([...subscribeRequest(['ab', 'c'])], [0, 0, 0, 0, 7, 0x0a, 2, 0x61, 0x62, 0x0a, 1, 0x63]);
  const long = 'x'.repeat(200); // a two-byte length: 200 = 0xc8 0x01
  t.same([...subscribeRequest([long]).subarray(5, 8)], [0x0a, 0xc8, 0x01]);

  // An Envelope written out by hand: timestamp {seconds 1, nanos 5}, namespace "moby",
  // topic "/tasks/create", event Any {type_url "t", value TaskCreate {container_id "c1", pid 300}}
  const taskCreate = [0x0a, 2, 0x63, 0x31, 0x30, 0xac, 0x02]; // field 6 varint: key 0x30, 300 = 0xac 0x02
  const any = [0x0a, 1, 0x74, 0x12, taskCreate.length, ...taskCreate];
  const topic = [...Buffer.from('/tasks/create')];
  const env = Buffer.from([0x0a, 4, 0x08, 1, 0x10, 5, 0x12, 4, ...Buffer.from('moby'), 0x1a, topic.length, ...topic, 0x22, any.length, ...any]);
  t.same(decodeTaskEvent(env), { topic: '/tasks/create', namespace: 'moby', containerId: 'c1', pid: 300, init: true, timeNano: 1000000005n });

  const exit = (id: string) =>
    decodeTaskEvent(encodeEnvelope({ topic: '/tasks/exit', namespace: 'n', timeNano: 1796000000123456789n, typeUrl: 'containerd.events.TaskExit', fields: [[1, 'c2'], [2, id], [3, 4242], [4, 137]] }));
  t.same(exit('c2'), { topic: '/tasks/exit', namespace: 'n', containerId: 'c2', pid: 4242, init: true, timeNano: 1796000000123456789n }, "the init's exit");
  t.equal(exit('exec-1')!.init, false, "a docker exec's exit is not the container's");
  t.equal(decodeTaskEvent(encodeEnvelope({ topic: '/containers/update', namespace: 'n', timeNano: 0n, typeUrl: 'x', fields: [[1, 'c']] })), null, 'other topics are none of the agent\'s business');
  // unknown fields, fixed-width ones among them, are skipped
  t.same(readFields(Buffer.from([0x0d, 1, 2, 3, 4, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x18, 7])), [{ no: 3, varint: 7n }]);

  const bad: Array<[number[], RegExp]> = [
    [[0x08], /truncated varint/],
    [[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /longer than 10 bytes/],
    [[0x0a, 5, 1], /field 1: 5 bytes announced, 1 left/],
    [[0x0b], /field 1: unsupported wire type 3/],
    [[0x00], /field number 0/],
    [[0x0d, 1], /truncated fixed-width/],
  ];
  for (const [bytes, re] of bad) t.throws(() => readFields(Buffer.from(bytes)), re, Buffer.from(bytes).toString('hex'));
  t.throws(() => decodeTaskEvent(Buffer.from([0x1a, 2, 0xc3, 0x28])), /field 3: not UTF-8/);
  t.throws(() => decodeTaskEvent(encodeEnvelope({ topic: '/tasks/create', namespace: 'n', timeNano: 0n, typeUrl: 'x', fields: [[6, 1]] })), /no container_id/);
  t.throws(() => decodeTaskEvent(Buffer.from([0x1a, 0x01])), { name: 'WireError', message: /field 3: 1 bytes announced, 0 left/ });

  // frames split anywhere, several in one chunk
  const a = grpcFrame(Buffer.from('first'));
  const b = grpcFrame(Buffer.alloc(0));
  const c = grpcFrame(Buffer.from('third message'));
  const all = Buffer.concat([a, b, c]);
  for (const cut of [1, 4, 5, 9, 10, 11, all.length - 1]) {
    const r = new GrpcReader();
    const got = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))].map((m) => m.toString());
    t.same(got, ['first', '', 'third message'], `cut at ${cut}`);
    t.equal(r.pending, 0);
  }
  const r = new GrpcReader();
  t.same(r.push(a.subarray(0, 7)), [], 'half a message waits');
  t.equal(r.pending, 7);
  t.throws(() => new GrpcReader().push(Buffer.from([1, 0, 0, 0, 0])), /compressed message/);
  t.throws(() => new GrpcReader(1024).push(Buffer.from([0, 0, 0, 8, 0])), /2048 bytes, over the 1024 accepted/);
});

t.test('client: a call refused, a stream that breaks its framing, a server gone and back', async (t) => {
  const dir = shortDir();
  const path = join(dir, 'c.sock');
  let mode: 'refuse' | 'compressed' | 'serve' = 'refuse';
  const calls: Array<{ path: string; contentType: string; te: string; body: Buffer }> = [];
  const sessions = new Set<{ destroy(): void }>();
  const start = () => {
    const server = createServer();
    server.on('session', (s) => {
      sessions.add(s);
      s.on('close', () => sessions.delete(s));
    });
    server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        calls.push({ path: String(headers[constants.HTTP2_HEADER_PATH]), contentType: String(headers['content-type']), te: String(headers.te), body: Buffer.concat(chunks) });
        if (mode === 'refuse') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unimplemented' }, { endStream: true });
          return;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        if (mode === 'compressed') {
          stream.write(Buffer.from([1, 0, 0, 0, 1, 0]));
          return;
        }
        const ev = encodeEnvelope({ topic: '/tasks/create', namespace: 'moby', timeNano: 5n, typeUrl: 'x', fields: [[1, 'abc'], [6, 77]] });
        const frame = grpcFrame(ev);
        // in two chunks, and an unreadable message before it, which is skipped
        stream.write(grpcFrame(Buffer.from([0x1a, 0x05])));
        stream.write(frame.subarray(0, 3));
        setTimeout(() => stream.write(frame.subarray(3)), 20);
      });
    });
    rmSync(path, { force: true });
    return new Promise<typeof server>((resolve) => server.listen(path, () => resolve(server)));
  };
  const logged: string[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => logged.push(s) });
  const events: TaskEvent[] = [];
  const client = new ContainerdEvents(path, log, { namespace: 'moby' });
  t.teardown(() => client.stop());
  client.watch((e) => events.push(e));
  await waitFor('a warning that the socket is not there', () => (logged.some((l) => /containerd event stream unavailable/.test(l)) ? true : undefined));
  t.notOk(client.connected);

  let server = await start();
  await waitFor('a refused call', () => (calls.length > 0 ? true : undefined), 10000);
  t.equal(calls[0]!.path, SUBSCRIBE_PATH);
  t.equal(calls[0]!.contentType, 'application/grpc');
  t.equal(calls[0]!.te, 'trailers');
  t.same(calls[0]!.body, subscribeRequest(['namespace==moby,topic=="/tasks/create"', 'namespace==moby,topic=="/tasks/exit"']), 'both topics, in the namespace only');
  await waitFor('the refusal logged', () => (logged.some((l) => /grpc-status 12: unimplemented/.test(l)) ? true : undefined));
  mode = 'compressed';
  const n = calls.length;
  await waitFor('another try after the refusal', () => (calls.length > n ? true : undefined), 10000);
  await waitFor('the framing error logged', () => (logged.some((l) => /unreadable gRPC stream: a compressed message/.test(l)) ? true : undefined), 10000);
  mode = 'serve';
  await waitFor('a task event', () => (events.length > 0 ? true : undefined), 20000);
  t.same(events[0], { topic: '/tasks/create', namespace: 'moby', containerId: 'abc', pid: 77, init: true, timeNano: 5n });
  t.ok(logged.some((l) => /unreadable containerd event skipped/.test(l)), 'the unreadable message skipped, the stream kept');
  t.ok(client.connected);

  // the server goes away and comes back: the client reconnects and subscribes again
  const before = calls.length;
  await new Promise<void>((r) => {
    server.close(() => r());
    for (const s of sessions) s.destroy();
  });
  server = await start();
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  await waitFor('a new subscription', () => (calls.length > before ? true : undefined), 20000);
  await waitFor('its event', () => (events.length > 1 ? true : undefined), 20000);
  t.equal(events[1]!.containerId, 'abc');
  client.stop();
  t.notOk(client.connected, 'stopped');

  t.throws(() => new ContainerdEvents(path, quiet, { namespace: 'a"b' }), /bad namespace name "a\\"b"/, 'a namespace that could break out of the filter is refused');
});

t.test('the notice about the streams followed: a warning only when none is up for a while', async (t) => {
  const grace = 1000;
  let st: StreamsNotice = { downSince: 0, warned: false };
  const step = (anyUp: boolean, now: number) => {
    const r = streamsNotice(st, anyUp, now, grace);
    st = r.next;
    return r.say;
  };
  t.equal(step(false, 999), undefined, 'none up, within the grace: nothing yet');
  t.equal(step(false, 1000), 'down', 'none up for the grace: a warning');
  t.equal(step(false, 5000), undefined, 'said once');
  t.equal(step(true, 5001), 'up', 'one up again: said so');
  t.equal(step(true, 6000), undefined);
  t.equal(step(false, 7000), undefined, 'down again: the grace starts over');
  t.equal(step(true, 7500), undefined, 'back within it: nothing was said, nothing to take back');
  t.equal(step(false, 8000), undefined);
  t.equal(step(false, 9000), 'down');
  st = { downSince: undefined, warned: false };
  t.equal(step(true, 0), undefined, 'up from the start: nothing to say');
});

t.test('streams followed: one socket absent while the other is up is no warning; none up is one', async (t) => {
  const dir = shortDir();
  const up = join(dir, 'up.sock');
  const absent = join(dir, 'absent.sock');
  let server = await silentContainerd(up);
  const { lines, log, warnings } = sink();
  const streams = [new ContainerdEvents(absent, log, { namespace: 'moby' }), new ContainerdEvents(up, log, { namespace: 'moby' })];
  for (const c of streams) c.watch(() => undefined);
  const unwatch = watchStreams(streams, log, 400, 50);
  t.teardown(() => {
    unwatch();
    for (const c of streams) c.stop();
    return server.close();
  });
  await waitFor('the stream up', () => (streams[1]!.connected ? true : undefined));
  await new Promise((r) => setTimeout(r, 1500)); // well past the grace, and the absent socket retried meanwhile
  t.notOk(streams[0]!.connected);
  t.same(warnings(), [], 'no warning');
  t.ok(lines.some((l) => l.msg === 'containerd event stream connected' && l.socket === up), 'the stream that is up is said, at info');

  await server.close();
  const warned = await waitFor('a warning once none is up', () => warnings().find((l) => /no containerd event stream is up/.test(l.msg)), 10000);
  t.same(Object.keys(warned.sockets as object).sort(), [absent, up].sort(), 'naming every socket followed');
  t.match((warned.sockets as Record<string, string>)[absent], /ENOENT/, 'with why each is down');
  server = await silentContainerd(up);
  await waitFor('the note that one is up again', () => (lines.some((l) => l.msg === 'a containerd event stream is up again') ? true : undefined), 20000);
  t.equal(warnings().length, 1, 'one warning in all');
});

if (!skipWithoutDocker(t)) t.test('client: task events of a real containerd, with the pid Docker reports', async (t) => {
  const docker = await startDocker();
  t.teardown(() => docker.stop());
  const events: TaskEvent[] = [];
  const client = new ContainerdEvents(docker.containerdSocket, quiet, { namespace: docker.containerdNamespace });
  t.teardown(() => client.stop());
  client.watch((e) => events.push(e));
  // containerd answers the call with its first event: the connection is what can be waited for
  await waitFor('connected', () => (client.connected ? true : undefined), 20000);
  const other = new ContainerdEvents(docker.containerdSocket, quiet, { namespace: 'elsewhere' });
  const elsewhere: TaskEvent[] = [];
  other.watch((e) => elsewhere.push(e));
  t.teardown(() => other.stop());
  await waitFor('the other connected', () => (other.connected ? true : undefined), 20000);

  const before = Date.now();
  const run = await docker.run(['run', '-d', '--network', 'none', docker.image, 'sleep', '3600']);
  t.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const pid = Number((await docker.run(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim());
  const created = await waitFor('/tasks/create', () => events.find((e) => e.topic === '/tasks/create' && e.containerId === id));
  const arrived = Date.now();
  t.equal(created.pid, pid, "the task's pid is the one Docker reports");
  t.equal(created.namespace, docker.containerdNamespace);
  const at = Number(created.timeNano / 1000000n);
  // the same clock: after docker run was called and before the event arrived (a few ms of rounding allowed)
  t.ok(at >= before - 5 && at <= arrived + 5, `its time (${at - before} ms after docker run was called, ${arrived - at} ms before it arrived) is in ns since the epoch`);

  t.equal((await docker.run(['exec', id, 'true'])).code, 0);
  const execExit = await waitFor("the exec's exit", () => events.find((e) => e.topic === '/tasks/exit' && e.containerId === id));
  t.equal(execExit.init, false, 'not the init');
  t.equal((await docker.run(['rm', '-f', id])).code, 0);
  const initExit = await waitFor("the init's exit", () => events.find((e) => e.topic === '/tasks/exit' && e.containerId === id && e.init));
  t.equal(initExit.pid, pid);
  t.notOk(events.some((e) => e.topic === '/tasks/start'), 'only the topics asked for');
  t.same(elsewhere, [], 'nothing from another namespace');

  // the agent's default: two sockets followed, this host's containerd at one of them
  const { log, warnings } = sink();
  const pair = [new ContainerdEvents('/nonexistent/containerd.sock', log, { namespace: docker.containerdNamespace }), new ContainerdEvents(docker.containerdSocket, log, { namespace: docker.containerdNamespace })];
  for (const c of pair) c.watch(() => undefined);
  const unwatch = watchStreams(pair, log, 500, 50);
  t.teardown(() => {
    unwatch();
    for (const c of pair) c.stop();
  });
  await waitFor('connected', () => (pair[1]!.connected ? true : undefined), 20000);
  await new Promise((r) => setTimeout(r, 1500));
  t.same(warnings(), [], 'no warning about the socket that is not there');
});
