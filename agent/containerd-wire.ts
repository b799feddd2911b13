// The few containerd messages the agent reads, in protobuf's wire format, and
// gRPC's message framing. Pure: bytes in, values out. The agent subscribes to
// containerd's event service (containerd.services.events.v1.Events/Subscribe)
// to learn that a container's task exists, with its pid, before Docker
// reports the start; field numbers are those of containerd's events protos
// (1.x and 2.x alike):
//
//   SubscribeRequest { repeated string filters = 1; }
//   Envelope   { Timestamp timestamp = 1; string namespace = 2; string topic = 3; Any event = 4; }
//   Any        { string type_url = 1; bytes value = 2; }
//   Timestamp  { int64 seconds = 1; int32 nanos = 2; }
//   TaskCreate { string container_id = 1; ... uint32 pid = 6; }
//   TaskStart  { string container_id = 1; uint32 pid = 2; }
//   TaskExit   { string container_id = 1; string id = 2; uint32 pid = 3; uint32 exit_status = 4; ... }

export const SUBSCRIBE_PATH = '/containerd.services.events.v1.Events/Subscribe';

/** Where Docker's containerd listens: a system containerd, and the one dockerd starts itself. */
export const CONTAINERD_SOCKETS = ['/run/containerd/containerd.sock', '/var/run/docker/containerd/containerd.sock'];
/** Docker's containerd namespace unless dockerd runs with --containerd-namespace */
export const DOCKER_NAMESPACE = 'moby';
/** containerd's own rule for a namespace name (its filters then need no escaping) */
export const NAMESPACE_NAME = /^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/;

/** What the agent acts on: a task made (its init process exists, not yet running) or ended. */
export interface TaskEvent {
  topic: '/tasks/create' | '/tasks/start' | '/tasks/exit';
  namespace: string;
  containerId: string;
  /** the init process (or, for an exit, the process that exited) */
  pid: number;
  /** for /tasks/exit: the process that exited is the init (not a docker exec) */
  init: boolean;
  /** when containerd published it, ns since the epoch */
  timeNano: bigint;
}

export class WireError extends Error {
  override name = 'WireError';
}

const TOPICS = new Set<string>(['/tasks/create', '/tasks/start', '/tasks/exit']);

/** One field of a message: its number and, by wire type, a number or the bytes. */
interface Field {
  no: number;
  varint?: bigint;
  bytes?: Uint8Array;
}

/** The fields of one protobuf message, in order; fixed-width fields are skipped. */
export function readFields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= buf.length) throw new WireError('truncated varint');
      if (shift > 63n) throw new WireError('varint longer than 10 bytes');
      const b = buf[at++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
  };
  while (at < buf.length) {
    const key = varint();
    const no = Number(key >> 3n);
    const type = Number(key & 7n);
    if (no === 0) throw new WireError('field number 0');
    if (type === 0) out.push({ no, varint: varint() });
    else if (type === 2) {
      const len = Number(varint());
      if (at + len > buf.length) throw new WireError(`field ${no}: ${len} bytes announced, ${buf.length - at} left`);
      out.push({ no, bytes: buf.subarray(at, at + len) });
      at += len;
    } else if (type === 1 || type === 5) {
      at += type === 1 ? 8 : 4;
      if (at > buf.length) throw new WireError(`field ${no}: truncated fixed-width value`);
    } else throw new WireError(`field ${no}: unsupported wire type ${type}`);
  }
  return out;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function str(fields: Field[], no: number): string {
  const f = fields.findLast((x) => x.no === no);
  if (!f) return '';
  if (!f.bytes) throw new WireError(`field ${no}: a string was expected`);
  try {
    return decoder.decode(f.bytes);
  } catch {
    throw new WireError(`field ${no}: not UTF-8`);
  }
}

function u64(fields: Field[], no: number): bigint {
  const f = fields.findLast((x) => x.no === no);
  if (!f) return 0n;
  if (f.varint === undefined) throw new WireError(`field ${no}: a number was expected`);
  return f.varint;
}

function msg(fields: Field[], no: number): Field[] {
  const f = fields.findLast((x) => x.no === no);
  if (!f) return [];
  if (!f.bytes) throw new WireError(`field ${no}: a message was expected`);
  return readFields(f.bytes);
}

function varintBytes(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A SubscribeRequest with these filters (containerd ORs them), as one gRPC message. */
export function subscribeRequest(filters: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of filters) {
    const b = Buffer.from(f, 'utf8');
    parts.push(Buffer.from([0x0a, ...varintBytes(b.length)]), b);
  }
  return grpcFrame(Buffer.concat(parts));
}

/** gRPC's length-prefixed message: a flag byte (0, not compressed), the length (4 bytes, big-endian), the message. */
export function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Splits a gRPC response body, arriving in chunks of any size, into its messages. */
export class GrpcReader {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxMessage = 4 * 1024 * 1024) {}

  /** The messages completed by this chunk. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    while (this.buf.length >= 5) {
      if (this.buf[0] !== 0) throw new WireError(`a compressed message (flag ${this.buf[0]}): none was asked for`);
      const len = this.buf.readUInt32BE(1);
      if (len > this.maxMessage) throw new WireError(`a message of ${len} bytes, over the ${this.maxMessage} accepted`);
      if (this.buf.length < 5 + len) break;
      out.push(this.buf.subarray(5, 5 + len));
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }

  /** bytes of an unfinished message */
  get pending(): number {
    return this.buf.length;
  }
}

/**
 * An event Envelope as a TaskEvent, or null for a topic the agent does not
 * act on. Throws WireError for bytes that are not such a message.
 */
export function decodeTaskEvent(envelope: Uint8Array): TaskEvent | null {
  const env = readFields(envelope);
  const topic = str(env, 3);
  if (!TOPICS.has(topic)) return null;
  const ts = msg(env, 1);
  const timeNano = u64(ts, 1) * 1000000000n + (u64(ts, 2) & 0xffffffffn);
  const any = msg(env, 4);
  const ev = readFields(any.findLast((f) => f.no === 2)?.bytes ?? new Uint8Array());
  const containerId = str(ev, 1);
  if (!containerId) throw new WireError(`${topic}: no container_id`);
  const pidField = topic === '/tasks/create' ? 6 : topic === '/tasks/exit' ? 3 : 2;
  const pid = Number(u64(ev, pidField) & 0xffffffffn);
  // a TaskExit names the process: the container's id for its init, the exec id for a docker exec
  const init = topic !== '/tasks/exit' || str(ev, 2) === '' || str(ev, 2) === containerId;
  return { topic: topic as TaskEvent['topic'], namespace: str(env, 2), containerId, pid, init, timeNano };
}

/** Encodes an Envelope: for the tests (containerd is the real writer). */
export function encodeEnvelope(e: { topic: string; namespace: string; timeNano: bigint; typeUrl: string; fields: Array<[number, string | number]> }): Buffer {
  const field = (no: number, v: string | number | Buffer): Buffer => {
    if (typeof v === 'number') return Buffer.from([...varintBytes((no << 3) | 0), ...varintBytes(v)]);
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    return Buffer.concat([Buffer.from([...varintBytes((no << 3) | 2), ...varintBytes(b.length)]), b]);
  };
  const ts = Buffer.concat([field(1, Number(e.timeNano / 1000000000n)), field(2, Number(e.timeNano % 1000000000n))]);
  const value = Buffer.concat(e.fields.map(([no, v]) => field(no, v)));
  const any = Buffer.concat([field(1, e.typeUrl), field(2, value)]);
  return Buffer.concat([field(1, ts), field(2, e.namespace), field(3, e.topic), field(4, any)]);
}
