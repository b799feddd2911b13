// berth dns's sockets: UDP and TCP on one address and port. Each message is
// answered by answer.ts from the zone current at its arrival. UDP is read on
// a native thread (native/dns-udp.cc) that gives a kept answer, with the
// query's id, to the same question asked again; the rest come here. Every
// kept answer is forgotten the moment the zone changes.
import { createServer, type Server, type Socket } from 'node:net';
import { native, type UdpAnswererHandle } from '../native/index.js';
import { AnswerCache, answerKeepable, TCP_MAX } from './answer.js';
import type { Zone } from './zone.js';

/** A TCP connection with no complete message for this long is closed (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 10_000;
/** TCP connections open at once; more are refused until some close. */
const TCP_MAX_CONNECTIONS = 1024;
/** Bytes of answers a TCP client may leave unread before its connection is closed. */
const TCP_MAX_BACKLOG = 1024 * 1024;
/** With port 0, tries for a port free for both UDP and TCP. */
const PORT_TRIES = 10;

export interface DnsServer {
  /** the port both sockets are bound to */
  port: number;
  /** messages that failed inside the answering code (a bug): answered with nothing */
  errors: number;
  /** UDP queries answered from kept answers, and answered here */
  udp(): { kept: number; passed: number };
  close(): Promise<void>;
}

/** The zone to answer from, and word of each new one. */
export interface ZoneSource {
  current(): Zone;
  onChange(listener: () => void): void;
}

/** Binds UDP and TCP at host:port (port 0: one free for both) and answers from the source's current zone. */
export async function listenDns(at: { host: string; port: number }, source: ZoneSource, onError: (err: Error) => void): Promise<DnsServer> {
  const state = { errors: 0, closed: false };
  const answering = <T>(work: () => T): T | null => {
    try {
      return work();
    } catch (err) {
      state.errors++;
      onError(err as Error);
      return null;
    }
  };
  const addon = native();
  for (let attempt = 1; ; attempt++) {
    let udp: UdpAnswererHandle | undefined;
    const { handle, port } = addon.udpAnswererOpen(at.host, at.port, (query, peer) => {
      if (state.closed) return;
      const result = answering(() => answerKeepable(query, source.current(), 'udp'));
      if (!result?.out) return;
      addon.udpAnswererSend(udp!, peer, result.out);
      if (result.keep) addon.udpAnswererKeep(udp!, query, result.out);
    });
    udp = handle;
    const cache = new AnswerCache();
    const open = new Set<Socket>();
    const tcp = createServer((conn) => {
      open.add(conn);
      conn.on('close', () => open.delete(conn));
      serveTcp(conn, (msg) => answering(() => cache.answer(msg, source.current(), 'tcp')));
    });
    tcp.maxConnections = TCP_MAX_CONNECTIONS;
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, at.host, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      addon.udpAnswererClose(udp);
      if (at.port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < PORT_TRIES) continue;
      throw err;
    }
    tcp.on('error', (err) => onError(err));
    source.onChange(() => {
      if (!state.closed) addon.udpAnswererForget(udp);
    });
    return {
      port,
      get errors() {
        return state.errors;
      },
      udp: () => {
        const { kept, passed } = addon.udpAnswererStats(udp);
        return { kept, passed };
      },
      close: async () => {
        if (state.closed) return;
        state.closed = true;
        addon.udpAnswererClose(udp);
        await closeTcp(tcp, open);
      },
    };
  }
}

/** One TCP client: messages framed by a 2-byte length (RFC 1035 4.2.2), answered in order, any number per connection. */
function serveTcp(conn: Socket, answer: (msg: Buffer) => Buffer | null): void {
  let pending: Buffer = Buffer.alloc(0);
  conn.setNoDelay(true);
  conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
  conn.on('error', () => conn.destroy());
  conn.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 2) {
      const length = pending.readUInt16BE(0);
      if (pending.length < 2 + length) break;
      const msg = pending.subarray(2, 2 + length);
      pending = pending.subarray(2 + length);
      const out = answer(msg);
      if (!out || out.length > TCP_MAX) continue;
      const framed = Buffer.allocUnsafe(2 + out.length);
      framed.writeUInt16BE(out.length, 0);
      out.copy(framed, 2);
      conn.write(framed);
      if (conn.writableLength > TCP_MAX_BACKLOG) return void conn.destroy();
    }
  });
}

async function closeTcp(tcp: Server, open: Set<Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
  // a client's open connection would hold the close until its idle timeout
  for (const c of open) c.destroy();
  await closed;
}
