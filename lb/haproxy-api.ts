// HAProxy's Runtime API (the stats socket, level admin) and master CLI, in
// non-interactive mode: one connection per command line, the answer read
// until HAProxy closes. Commands are built only from validated names and
// addresses; a line with a separator or control character is refused here
// as a last guard.
import { connect } from 'node:net';

export class HaproxyError extends Error {}

/** Sends one command line to a HAProxy CLI socket and returns the answer. */
export function haproxyCommand(socket: string, line: string, timeoutMs = 5000): Promise<string> {
  if (/[\n\r;#\0]/.test(line)) return Promise.reject(new HaproxyError(`refusing a HAProxy command with a separator or control character: ${JSON.stringify(line)}`));
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new HaproxyError(`HAProxy did not answer "${line.split(' ').slice(0, 3).join(' ')}" on ${socket} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (c: string) => (out += c));
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(new HaproxyError(`cannot reach HAProxy on ${socket}: ${err.message}`));
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.end(`${line}\n`);
  });
}

export interface ServerState {
  /** HAProxy's id of the backend (its iid) */
  backendId: number;
  /** HAProxy's server id within its backend */
  id: number;
  name: string;
  addr: string;
  port: number;
  /** 0 stopped, 1 starting, 2 running, 3 stopping */
  operational: number;
  /** bit field: 0x01/0x02/0x04 maintenance, 0x08 drain (forced) */
  admin: number;
  /** last health check: 0 unknown, 1 neutral, 2 failed, 3 passed, 4 conditionally passed */
  checkResult: number;
}

/** The runtime API of one HAProxy (its stats socket). */
export class HaproxyApi {
  constructor(
    readonly socket: string,
    private readonly timeoutMs = 5000,
  ) {}

  command(line: string): Promise<string> {
    return haproxyCommand(this.socket, line, this.timeoutMs);
  }

  /** Runs a command whose success HAProxy answers with an empty line or a known message. */
  async expectOk(line: string, ok: RegExp = /^\s*$/): Promise<void> {
    const out = await this.command(line);
    if (!ok.test(out)) throw new HaproxyError(`HAProxy refused "${line}": ${out.trim()}`);
  }

  /** The servers of a backend as "show servers state" reports them. */
  async servers(backend: string): Promise<ServerState[]> {
    const out = await this.command(`show servers state ${backend}`);
    if (/^Can't find backend/m.test(out)) throw new HaproxyError(`HAProxy has no backend ${backend}`);
    const rows: ServerState[] = [];
    for (const line of out.split('\n')) {
      if (!line || line.startsWith('#') || /^\d+$/.test(line.trim())) continue;
      // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... srv_port (column 19)
      const f = line.trim().split(/\s+/);
      if (f.length < 19) continue;
      rows.push({ backendId: Number(f[0]), id: Number(f[2]), name: f[3]!, addr: f[4]!, operational: Number(f[5]), admin: Number(f[6]), checkResult: Number(f[11]), port: Number(f[18]) });
    }
    return rows;
  }

  /**
   * Current sessions of the servers of a backend, from "show stat"; with its
   * numeric ids (HAProxy 2.6 filters by number only) just one server's line.
   */
  async sessions(backend: string, ids?: { backendId: number; id: number }): Promise<Map<string, number>> {
    const out = await this.command(ids && ids.backendId > 0 && ids.id > 0 ? `show stat ${ids.backendId} 4 ${ids.id}` : 'show stat');
    const lines = out.split('\n');
    const header = (lines[0] ?? '').replace(/^# /, '').split(',');
    const px = header.indexOf('pxname');
    const sv = header.indexOf('svname');
    const scur = header.indexOf('scur');
    const map = new Map<string, number>();
    for (const l of lines.slice(1)) {
      const f = l.split(',');
      if (f[px] !== backend || f[sv] === 'BACKEND' || f[sv] === 'FRONTEND' || !f[sv]) continue;
      map.set(f[sv]!, Number(f[scur]) || 0);
    }
    return map;
  }

  /** The worker's pid ("show info"). */
  async pid(): Promise<number> {
    const out = await this.command('show info');
    const m = /^Pid: (\d+)/m.exec(out);
    if (!m) throw new HaproxyError(`unexpected "show info" answer: ${out.slice(0, 200)}`);
    return Number(m[1]);
  }
}
