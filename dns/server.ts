// berth dns's sockets: UDP and TCP on one address and port. Each message is
// answered by answerQuery (answer.ts) from the zone current at its arrival.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { AnswerCache, TCP_MAX } from './answer.js';
import type { Zone } from './zone.js';

/** A TCP connection with no complete message for this long is closed (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 10_000;
/** TCP connections open at once; more are refused until some close. */
const TCP_MAX_CONNECTIONS = 1024;
/** Bytes of answers a TCP client may leave unread before its connection is closed. */
const TCP_MAX_BACKLOG = 1024 * 1024;
/** Kernel receive buffer asked for the UDP socket, so a burst is queued rather than dropped. */
const UDP_RECV_BUFFER = 4 * 1024 * 1024;
/** With port 0, tries for a port free for both UDP and TCP. */
const PORT_TRIES = 10;

export interface DnsServer {
  /** the port both sockets are bound to */
  port: number;
  /** messages that failed inside the answering code (a bug): answered with nothing */
  errors: number;
  close(): Promise<void>;
}

/** Binds UDP and TCP at host:port (port 0: one free for both) and answers from `zone()`. */
export async function listenDns(at: { host: string; port: number }, zone: () => Zone, onError: (err: Error) => void): Promise<DnsServer> {
  const family = isIP(at.host) === 6 ? 'udp6' : 'udp4';
  for (let attempt = 1; ; attempt++) {
    // a reply goes to the address it came from, already an IP: no lookup (dgram's default defers each send a tick through dns.lookup)
    const udp = createSocket({ type: family, recvBufferSize: UDP_RECV_BUFFER, lookup: (address, _opts, cb) => cb(null, address, family === 'udp6' ? 6 : 4) });
    const state = { errors: 0 };
    const cache = new AnswerCache();
    const answer = (msg: Buffer, transport: 'udp' | 'tcp'): Buffer | null => {
      try {
        return cache.answer(msg, zone(), transport);
      } catch (err) {
        state.errors++;
        onError(err as Error);
        return null;
      }
    };
    udp.on('message', (msg, rinfo) => {
      const out = answer(msg, 'udp');
      if (out) udp.send(out, rinfo.port, rinfo.address);
    });
    udp.on('error', (err) => onError(err));
    try {
      await bindUdp(udp, at);
    } catch (err) {
      udp.close();
      throw err;
    }
    const port = udp.address().port;
    const open = new Set<Socket>();
    const tcp = createServer((conn) => {
      open.add(conn);
      conn.on('close', () => open.delete(conn));
      serveTcp(conn, answer);
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
      udp.close();
      if (at.port === 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < PORT_TRIES) continue;
      throw err;
    }
    tcp.on('error', (err) => onError(err));
    return {
      port,
      get errors() {
        return state.errors;
      },
      close: () => closeBoth(udp, tcp, open),
    };
  }
}

function bindUdp(udp: UdpSocket, at: { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(at.port, at.host, () => {
      udp.off('error', reject);
      resolve();
    });
  });
}

/** One TCP client: messages framed by a 2-byte length (RFC 1035 4.2.2), answered in order, any number per connection. */
function serveTcp(conn: Socket, answer: (msg: Buffer, transport: 'tcp') => Buffer | null): void {
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
      const out = answer(msg, 'tcp');
      if (!out || out.length > TCP_MAX) continue;
      const framed = Buffer.allocUnsafe(2 + out.length);
      framed.writeUInt16BE(out.length, 0);
      out.copy(framed, 2);
      conn.write(framed);
      if (conn.writableLength > TCP_MAX_BACKLOG) return void conn.destroy();
    }
  });
}

async function closeBoth(udp: UdpSocket, tcp: Server, open: Set<Socket>): Promise<void> {
  const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
  // a client's open connection would hold the close until its idle timeout
  for (const c of open) c.destroy();
  await new Promise<void>((resolve) => udp.close(() => resolve()));
  await closed;
}
