// berth's own RESP2 client, for one-shot processes (CNI plugins, CLI): a plugin
// must answer within 25 ms of `node -e 0` and loading ioredis alone costs
// ~85 ms. So only node:net loads up front (node:tls and node:fs only for
// rediss://), and nothing outlives the work: no reconnect loop, no timer left
// armed once the last reply is in, and an idle socket does not hold the process.
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import { readPasswordFiles, type Warn } from './password-files.js';
import { RedisReplyError, type RedisArg, type RedisConn, type RedisLocation, type RedisReply } from './redis-conn.js';

/**
 * Loads a module only where needed (node:tls for rediss://). A require, not
 * import(): the plugin bundles run under vm.Script (cni/boot.cjs), which on
 * Node 20 has no dynamic-import hook.
 */
const lazyRequire = (id: string): unknown => createRequire(import.meta.url)(id);

type Slot = RedisReply | RedisReplyError;

/** One reply awaited on a link, in the order the commands were written. */
interface Waiter {
  /** completes "failed to <label> redis host:port: …"; names the command, never its arguments (AUTH carries a password) */
  label: string;
  /** Date.now() after which the reply is late */
  deadline: number;
  /** the bound in ms, for the message */
  limit: number;
  settle(reply: Slot): void;
  fail(err: Error): void;
}

const CR = 13;
const LF = 10;
const EMPTY = Buffer.alloc(0);
/** How long close() waits for QUIT's reply at most. */
const QUIT_WAIT_MS = 1000;

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

  constructor(private readonly onReply: (reply: Slot) => void) {}

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
      if (lf < 0) break;
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

  private push(value: Slot): void {
    let v = value;
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) {
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

function commandName(args: readonly RedisArg[]): string {
  return String(args[0] ?? '').slice(0, 32).toUpperCase();
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * One connection: writes commands, matches replies to them in FIFO order and
 * bounds each by its deadline. Any transport failure (timeout, close, bad
 * bytes) ends it and fails every waiter: past that point the reply stream can
 * no longer be trusted to line up with the commands.
 */
class Link {
  down = false;
  /** called once when the link ends */
  onDown: () => void = () => {};
  private connected = false;
  private readonly waiting: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastError: Error | undefined;

  constructor(
    private readonly socket: Socket,
    readonly addr: string,
  ) {
    const parser = new RespParser((reply) => this.reply(reply));
    socket.on('data', (chunk: Buffer) => {
      try {
        parser.feed(chunk);
      } catch (err) {
        this.fail((err as Error).message, err);
      }
    });
    socket.on('error', (err) => {
      this.lastError = err;
    });
    socket.on('close', () => {
      const err = this.lastError;
      if (!this.connected) this.fail(err ? err.message : 'connection closed', err);
      else this.fail(err ? `connection closed: ${err.message}` : 'connection closed by the server', err);
    });
  }

  /** Resolves once the socket is connected (TLS: handshake done), within the deadline. */
  connect(event: 'connect' | 'secureConnect', deadline: number, limit: number): Promise<void> {
    return new Promise((resolve, reject) => {
      // The server says nothing before it is asked, so a waiter for the
      // connection itself sits first in the queue and shares the timer.
      this.waiting.push({ label: 'connect to', deadline, limit, settle: () => resolve(), fail: reject });
      this.arm();
      this.socket.once(event, () => {
        this.connected = true;
        if (!this.down) this.reply(null);
      });
    });
  }

  /** Writes a payload; its waiters carry their deadlines. */
  send(payload: string, waiters: Waiter[]): void {
    if (this.down) {
      for (const w of waiters) w.fail(new Error(`failed to ${w.label} redis ${this.addr}: connection closed`));
      return;
    }
    if (waiters.length === 0) return;
    if (this.waiting.length === 0) this.socket.ref();
    for (const w of waiters) this.waiting.push(w);
    // Written at once: coalescing a tick's writes delays every reply by a hop
    // under load (measured with bench/ipam.ts: 4,900 pairs/s coalesced, more written at once).
    this.socket.write(payload);
    this.arm();
  }

  /** Ends the link; waiters still pending fail. */
  destroy(): void {
    this.fail('connection closed by the client');
  }

  private reply(reply: Slot): void {
    const w = this.waiting.shift();
    if (!w) {
      this.fail('protocol error: a reply to no command');
      return;
    }
    if (this.waiting.length === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      // idle: a one-shot process that forgets close() must still exit
      this.socket.unref();
    }
    w.settle(reply);
  }

  /** One timer, for the oldest waiter: commands are written in order with the same bound, so it is due first. */
  private arm(): void {
    const head = this.waiting[0];
    if (this.timer || !head) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const h = this.waiting[0];
        if (!h) return;
        if (h.deadline <= Date.now()) this.fail(`timed out after ${h.limit} ms`);
        else this.arm();
      },
      Math.max(0, head.deadline - Date.now()),
    );
    this.timer.unref(); // the socket, ref'd while replies are due, keeps the process alive
  }

  private fail(cause: string, err?: unknown): void {
    if (this.down) return;
    this.down = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.socket.destroy();
    const waiters = this.waiting.splice(0);
    this.onDown();
    for (const w of waiters) w.fail(new Error(`failed to ${w.label} redis ${this.addr}: ${cause}`, err ? { cause: err } : undefined));
  }
}

/** Sends commands on one link and resolves with their replies, error replies included. */
function request(link: Link, commands: RedisArg[][], label: string, deadline: number, limit: number): Promise<Slot[]> {
  return new Promise((resolve, reject) => {
    const out: Slot[] = [];
    const settle = (r: Slot) => {
      out.push(r);
      if (out.length === commands.length) resolve(out);
    };
    link.send(
      commands.map(encodeCommand).join(''),
      commands.map(() => ({ label, deadline, limit, settle, fail: reject })),
    );
  });
}

/**
 * A RedisConn on one lazily opened connection, commands pipelined on it.
 * After a failure the next command connects afresh, once; nothing retries in
 * the background. Sentinel: asks each sentinel in turn for the master, and
 * takes it only if its ROLE says master.
 */
export class RespClient implements RedisConn {
  private link: Link | null = null;
  /** commands waiting for the connection being opened */
  private queue: Array<{ payload: string; waiters: Waiter[] }> = [];
  private connecting: Promise<void> | null = null;
  /** links being opened, so close() can cut a connection attempt short */
  private readonly opening = new Set<Link>();
  private closing: Promise<void> | null = null;
  private tlsOptions: Promise<import('node:tls').ConnectionOptions> | undefined;
  private readonly loc: RedisLocation;

  /** Reads the location's password files now; `warn` hears of one others can read. */
  constructor(loc: RedisLocation, warn?: Warn) {
    this.loc = readPasswordFiles(loc, warn);
  }

  send(args: RedisArg[]): Promise<RedisReply> {
    return new Promise((resolve, reject) => {
      let payload: string;
      try {
        payload = encodeCommand(args);
      } catch (err) {
        reject(err);
        return;
      }
      this.dispatch(payload, [
        {
          label: `run ${commandName(args)} on`,
          deadline: 0,
          limit: 0,
          settle: (r) => (r instanceof RedisReplyError ? reject(r) : resolve(r)),
          fail: reject,
        },
      ]);
    });
  }

  pipeline(commands: RedisArg[][]): Promise<Slot[]> {
    if (commands.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      let payload: string;
      try {
        payload = commands.map(encodeCommand).join('');
      } catch (err) {
        reject(err);
        return;
      }
      const out = new Array<Slot>(commands.length);
      let left = commands.length;
      const first = commandName(commands[0]!);
      const label = commands.length === 1 ? `run ${first} on` : `run a pipeline of ${commands.length} commands (${first}, …) on`;
      this.dispatch(
        payload,
        commands.map((_, i) => ({
          label,
          deadline: 0,
          limit: 0,
          settle: (r: Slot) => {
            out[i] = r;
            if (--left === 0) resolve(out);
          },
          fail: reject,
        })),
      );
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    for (const link of this.opening) link.destroy();
    await this.connecting;
    const link = this.link;
    this.link = null;
    if (!link || link.down) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      const bound = Math.min(this.loc.timeout, QUIT_WAIT_MS);
      timer = setTimeout(resolve, bound);
      link.send(encodeCommand(['QUIT']), [{ label: 'run QUIT on', deadline: Date.now() + bound, limit: bound, settle: () => resolve(), fail: () => resolve() }]);
    });
    clearTimeout(timer);
    link.destroy();
  }

  private dispatch(payload: string, waiters: Waiter[]): void {
    if (this.closing) {
      const err = new Error(`failed to ${waiters[0]!.label} redis: the client is closed`);
      for (const w of waiters) w.fail(err);
      return;
    }
    if (this.link && !this.link.down) {
      const deadline = Date.now() + this.loc.timeout;
      for (const w of waiters) {
        w.deadline = deadline;
        w.limit = this.loc.timeout;
      }
      this.link.send(payload, waiters);
      return;
    }
    this.queue.push({ payload, waiters });
    this.connecting ??= this.connect();
  }

  /** Opens the connection and writes the queued commands, or fails them all with why it could not. */
  private async connect(): Promise<void> {
    let link: Link | null = null;
    let error: Error | null = null;
    try {
      link = await this.open();
    } catch (err) {
      error = err as Error;
    }
    this.opening.clear();
    // Before any waiter settles: a command sent from a rejection handler must start a new attempt, not wait on this one.
    this.connecting = null;
    const queued = this.queue.splice(0);
    if (this.closing) {
      link?.destroy();
      link = null;
      error = new Error('failed to connect to redis: the client is closed');
    }
    if (!link) {
      for (const q of queued) for (const w of q.waiters) w.fail(error!);
      return;
    }
    const current = link;
    this.link = current;
    current.onDown = () => {
      if (this.link === current) this.link = null;
    };
    const deadline = Date.now() + this.loc.timeout;
    const waiters: Waiter[] = [];
    for (const q of queued) {
      for (const w of q.waiters) {
        w.deadline = deadline;
        w.limit = this.loc.timeout;
        waiters.push(w);
      }
    }
    current.send(queued.map((q) => q.payload).join(''), waiters);
  }

  /** The connection to use: the one host, or the master the sentinels name; all within connectTimeout. */
  private async open(): Promise<Link> {
    const { loc } = this;
    const deadline = Date.now() + loc.connectTimeout;
    if (!loc.sentinelName) {
      const h = loc.hosts[0];
      if (!h) throw new Error('failed to connect to redis: no host given');
      return this.openServer(h.host, h.port, deadline, loc.connectTimeout, false);
    }
    const said: string[] = [];
    for (let i = 0; i < loc.hosts.length; i++) {
      const s = loc.hosts[i]!;
      const sentinel = hostPort(s.host, s.port);
      const now = Date.now();
      if (now >= deadline) {
        said.push(`sentinel ${sentinel}: not asked, the ${loc.connectTimeout} ms connect timeout ran out`);
        continue;
      }
      // A sentinel that does not answer may take only its share of the time left, so the others get asked.
      const share = Math.floor((deadline - now) / (loc.hosts.length - i));
      let master: { host: string; port: number } | null;
      try {
        master = await this.askSentinel(s.host, s.port, now + share, share);
      } catch (err) {
        said.push(`sentinel ${sentinel}: ${(err as Error).message}`);
        continue;
      }
      if (!master) {
        said.push(`sentinel ${sentinel}: does not know master "${loc.sentinelName}"`);
        continue;
      }
      try {
        return await this.openServer(master.host, master.port, deadline, loc.connectTimeout, true);
      } catch (err) {
        said.push(`sentinel ${sentinel} named ${hostPort(master.host, master.port)}: ${(err as Error).message}`);
      }
    }
    throw new Error(`failed to find the redis master "${loc.sentinelName}" through sentinels: ${said.join('; ')}`);
  }

  /** Connects to a Redis server and runs AUTH, SELECT (and ROLE, for a master named by a sentinel) before anything else. */
  private async openServer(host: string, port: number, deadline: number, limit: number, checkRole: boolean): Promise<Link> {
    const { loc } = this;
    const link = await this.openLink(host, port, deadline, limit);
    const hello: RedisArg[][] = [];
    if (loc.password !== undefined) hello.push(loc.username ? ['AUTH', loc.username, loc.password] : ['AUTH', loc.password]);
    if (loc.db !== 0) hello.push(['SELECT', loc.db]);
    if (checkRole) hello.push(['ROLE']);
    if (hello.length === 0) return link;
    let replies: Slot[];
    try {
      replies = await request(link, hello, 'connect to', deadline, limit);
    } catch (err) {
      link.destroy();
      throw err;
    }
    // AUTH or SELECT refused (WRONGPASS, NOAUTH…): the server's own error, for every queued command
    const refused = replies.find((r) => r instanceof RedisReplyError);
    if (refused) {
      link.destroy();
      throw refused;
    }
    if (checkRole) {
      const role = replies[replies.length - 1];
      const name = Array.isArray(role) ? role[0] : role;
      if (name !== 'master') {
        link.destroy();
        throw new Error(`ROLE says ${JSON.stringify(name)}, not master`);
      }
    }
    return link;
  }

  /** The master's address a sentinel gives, or null when it does not know the name. */
  private async askSentinel(host: string, port: number, deadline: number, limit: number): Promise<{ host: string; port: number } | null> {
    const { loc } = this;
    const link = await this.openLink(host, port, deadline, limit);
    try {
      const ask: RedisArg[][] = [];
      if (loc.sentinelPassword !== undefined) {
        ask.push(loc.sentinelUsername ? ['AUTH', loc.sentinelUsername, loc.sentinelPassword] : ['AUTH', loc.sentinelPassword]);
      }
      ask.push(['SENTINEL', 'get-master-addr-by-name', loc.sentinelName!]);
      const replies = await request(link, ask, 'connect to', deadline, limit);
      const refused = replies.find((r) => r instanceof RedisReplyError);
      if (refused) throw refused;
      const addr = replies[replies.length - 1];
      if (addr === null) return null;
      const masterPort = Array.isArray(addr) ? Number(addr[1]) : NaN;
      if (!Array.isArray(addr) || typeof addr[0] !== 'string' || !Number.isInteger(masterPort) || masterPort < 1 || masterPort > 65535) {
        throw new Error(`unexpected answer ${JSON.stringify(addr)}`);
      }
      return { host: addr[0], port: masterPort };
    } finally {
      link.destroy();
    }
  }

  /** A connected link to host:port, plain or TLS as the location says. */
  private async openLink(host: string, port: number, deadline: number, limit: number): Promise<Link> {
    let socket: Socket;
    if (this.loc.tls) {
      const tls = lazyRequire('node:tls') as typeof import('node:tls');
      const options = await (this.tlsOptions ??= this.readTlsFiles().catch((err: unknown) => {
        this.tlsOptions = undefined; // the files may be in place next time
        throw err;
      }));
      if (this.closing) throw new Error('failed to connect to redis: the client is closed');
      // SNI takes a host name only (Node warns on an IP); verification then uses the host
      const sni = this.loc.servername ?? host;
      socket = tls.connect({ ...options, host, port, servername: isIP(sni) ? undefined : sni });
    } else {
      if (this.closing) throw new Error('failed to connect to redis: the client is closed');
      socket = netConnect({ host, port });
    }
    socket.setNoDelay(true);
    const link = new Link(socket, hostPort(host, port));
    this.opening.add(link);
    await link.connect(this.loc.tls ? 'secureConnect' : 'connect', deadline, limit);
    return link;
  }

  private async readTlsFiles(): Promise<import('node:tls').ConnectionOptions> {
    const { readFileSync } = lazyRequire('node:fs') as typeof import('node:fs');
    const options: import('node:tls').ConnectionOptions = {};
    for (const what of ['ca', 'cert', 'key'] as const) {
      const path = this.loc[what];
      if (path === undefined) continue;
      try {
        options[what] = readFileSync(path);
      } catch (err) {
        throw new Error(`failed to read the TLS ${what} file "${path}": ${(err as Error).message}`, { cause: err });
      }
    }
    return options;
  }
}
