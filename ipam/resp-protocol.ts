// RESP2, the Redis wire protocol: commands encoded as arrays of bulk
// strings, replies decoded from a byte stream cut anywhere. No I/O: the
// connections that carry it are resp-client.ts's.
import { RedisReplyError, type RedisArg, type RedisReply } from './redis-conn.js';

/** A reply, or the error the server answered. */
export type Slot = RedisReply | RedisReplyError;

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);
/**
 * The most bytes one reply may take. berth's largest replies are a pool's
 * records (HGETALL: ~180 bytes per address in use, so this is room for some
 * 350,000) and its history pages; a server that sends more is broken or
 * hostile, and the connection is dropped rather than buffered without end.
 */
export const MAX_REPLY_BYTES = 64 * 1024 * 1024;

/** Encodes one command as a RESP2 array of bulk strings (lengths in UTF-8 bytes). */
export function encodeCommand(args: readonly RedisArg[]): string {
  if (args.length === 0) throw new TypeError('a Redis command needs at least its name');
  let out = `*${args.length}\r\n`;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    let s: string;
    if (typeof a === 'string') s = a;
    else if (typeof a === 'number' && Number.isFinite(a)) s = String(a);
    else throw new TypeError(`argument ${i} of ${commandName(args)} is ${String(a)}, not a string or finite number`);
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }
  return out;
}

interface Frame {
  items: RedisReply[];
  left: number;
  error: RedisReplyError | null;
}

/**
 * Decodes a RESP2 byte stream fed in chunks cut anywhere, calling onReply once
 * per complete top-level reply. An error nested in an array (EXEC after a
 * failing queued command) makes the whole reply that error: RedisReply has no
 * place for it. Throws on bytes that are not RESP2; the stream is then lost.
 */
export class RespParser {
  /** bytes not yet decoded, starting at a type byte */
  private buf: Buffer = EMPTY;
  /** arrays still being filled, innermost last */
  private readonly stack: Frame[] = [];
  /** while >= 0: the length of a bulk string whose body is being gathered (without re-scanning or re-copying it per chunk) */
  private bulkLen = -1;
  private bulkParts: Buffer[] = [];
  private bulkHave = 0;
  /** bytes of the reply being decoded, so far */
  private used = 0;

  constructor(
    private readonly onReply: (reply: Slot) => void,
    private readonly maxReply = MAX_REPLY_BYTES,
  ) {}

  /** Decodes what it can of one more chunk; throws on a protocol error. */
  feed(chunk: Buffer): void {
    if (this.bulkLen >= 0) {
      this.bulkParts.push(chunk);
      this.bulkHave += chunk.length;
      const len = this.bulkLen;
      if (this.bulkHave < len + 2) return;
      const all = Buffer.concat(this.bulkParts, this.bulkHave);
      this.bulkLen = -1;
      this.bulkParts = [];
      this.bulkHave = 0;
      if (all[len] !== CR || all[len + 1] !== LF) throw new Error('protocol error: a bulk string does not end in CRLF');
      this.buf = all.subarray(len + 2);
      this.push(all.toString('utf8', 0, len));
    } else {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    }
    this.parse();
  }

  private parse(): void {
    const buf = this.buf;
    let pos = 0;
    while (pos < buf.length) {
      const lf = buf.indexOf(LF, pos);
      if (lf < 0) {
        if (this.used + buf.length - pos > this.maxReply) this.tooLarge();
        break;
      }
      this.charge(lf + 1 - pos);
      // the line after the type byte is buf[pos + 1, end)
      const end = lf - 1;
      if (end <= pos || buf[end] !== CR) throw new Error(`protocol error: malformed line "${buf.toString('latin1', pos, lf)}"`);
      const type = buf[pos];
      const start = pos + 1;
      pos = lf + 1;
      switch (type) {
        case 0x2b: // +simple string
          this.push(buf.toString('utf8', start, end));
          break;
        case 0x2d: // -error
          this.push(new RedisReplyError(buf.toString('utf8', start, end)));
          break;
        case 0x3a: // :integer
          this.push(readInteger(buf, start, end));
          break;
        case 0x24: {
          // $bulk string
          const len = readLength(buf, start, end);
          if (len >= 0) this.charge(len + 2);
          if (len < 0) {
            this.push(null);
          } else if (buf.length >= pos + len + 2) {
            if (buf[pos + len] !== CR || buf[pos + len + 1] !== LF) throw new Error('protocol error: a bulk string does not end in CRLF');
            const text = buf.toString('utf8', pos, pos + len);
            pos += len + 2;
            this.push(text);
          } else {
            const rest = buf.subarray(pos);
            this.bulkLen = len;
            this.bulkParts = [rest];
            this.bulkHave = rest.length;
            this.buf = EMPTY;
            return;
          }
          break;
        }
        case 0x2a: {
          // *array
          const n = readLength(buf, start, end);
          if (n < 0) this.push(null);
          else if (n === 0) this.push([]);
          else this.stack.push({ items: [], left: n, error: null });
          break;
        }
        default:
          throw new Error(`protocol error: unexpected reply type byte 0x${(type ?? 0).toString(16)}`);
      }
    }
    this.buf = pos >= buf.length ? EMPTY : buf.subarray(pos);
  }

  /** Counts bytes of the current reply; throws past the bound, before the bytes are awaited or kept. */
  private charge(bytes: number): void {
    this.used += bytes;
    if (this.used > this.maxReply) this.tooLarge();
  }

  private tooLarge(): never {
    throw new Error(`protocol error: a reply larger than ${this.maxReply} bytes`);
  }

  private push(value: Slot): void {
    let v = value;
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) {
        this.used = 0;
        this.onReply(v);
        return;
      }
      if (v instanceof RedisReplyError) top.error ??= v;
      else top.items.push(v);
      if (--top.left > 0) return;
      this.stack.pop();
      v = top.error ?? top.items;
    }
  }
}

function readInteger(buf: Buffer, start: number, end: number): number {
  const text = buf.toString('latin1', start, end);
  if (!/^-?\d+$/.test(text)) throw new Error(`protocol error: "${text}" is not an integer`);
  return Number(text);
}

/** A bulk or array length: -1 (null) or more. */
function readLength(buf: Buffer, start: number, end: number): number {
  const n = readInteger(buf, start, end);
  if (n < -1) throw new Error(`protocol error: length ${n}`);
  return n;
}

export function commandName(args: readonly RedisArg[]): string {
  return String(args[0] ?? '').slice(0, 32).toUpperCase();
}
