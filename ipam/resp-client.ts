// berth's own RESP2 client, for one-shot processes (CNI plugins, CLI), and for
// Redis Cluster everywhere: a plugin must answer within 25 ms of `node -e 0`
// and loading ioredis alone costs ~85 ms. So only node:net loads up front
// (node:tls and node:fs only for rediss://), and nothing outlives the work: no
// reconnect loop, no timer left armed once the last reply is in, and an idle
// socket does not hold the process.
//
// It follows the master: a command the server refused before running it
// (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, LOADING, BUSY; READONLY, MASTERDOWN and
// NOREPLICAS behind Sentinel or in a cluster) is sent again, to the node named
// or found afresh, until the command timeout. A command that may have run (its
// connection broke after it was written) is never sent again: the caller
// decides, since only it knows whether repeating is safe.
//
// Over 400 lines because Link, NodeConn and RespClient share the rule above on
// what may be sent again and when; split, each part would restate it. The wire
// protocol is apart (resp-protocol.ts).
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import { readPasswordFiles, type Warn } from './password-files.js';
import { commandKey, keySlot, nodeName, parseClusterNodes, parseRedirect, routingIndex, SlotMap, splitNode } from './cluster-map.js';
import {
  RedisReplyError,
  requiredReplicas,
  UnconfirmedWriteError,
  waitTimeout,
  type RedisArg,
  type RedisConn,
  type RedisLocation,
  type RedisNode,
  type RedisReply,
} from './redis-conn.js';
import { commandName, encodeCommand, RespParser, type Slot } from './resp-protocol.js';

/**
 * Loads a module only where needed (node:tls for rediss://). A require, not
 * import(): the plugin bundles run under vm.Script (cni/boot.cjs), which on
 * Node 20 has no dynamic-import hook.
 */
const lazyRequire = (id: string): unknown => createRequire(import.meta.url)(id);


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

/** How long close() waits for QUIT's reply at most. */
const QUIT_WAIT_MS = 1000;
/**
 * How long what a link learned about the replicas (the default of ?replicas)
 * is trusted: a long-lived client reads it again, so a replica added since
 * is waited for.
 */
export const TOPOLOGY_TTL_MS = 60_000;
/** First and longest pause before a refused command is sent again. */
const RETRY_PAUSE_MS = 10;
const RETRY_PAUSE_MAX_MS = 200;

/**
 * One connection: writes commands, matches replies to them in FIFO order and
 * bounds each by its deadline. Any transport failure (timeout, close, bad
 * bytes) ends it and fails every waiter: past that point the reply stream can
 * no longer be trusted to line up with the commands.
 */
class Link {
  down = false;
  /** no new command goes here; the link ends once the replies due are in */
  retired = false;
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
    // under load, and bench/ipam.ts does more pairs/s this way.
    this.socket.write(payload);
    this.arm();
  }

  /** Ends the link; waiters still pending fail. */
  destroy(): void {
    this.fail('connection closed by the client');
  }

  /** Takes no more commands, and ends once the replies already due are in. */
  retire(): void {
    this.retired = true;
    if (this.waiting.length === 0) this.destroy();
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
    if (this.retired && this.waiting.length === 0) this.destroy();
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

/**
 * Sends commands on one link and resolves with their replies, error replies
 * included. Rejects, with nothing written, when the arguments cannot be encoded.
 */
function request(link: Link, commands: RedisArg[][], label: string, deadline: number, limit: number): Promise<Slot[]> {
  return new Promise((resolve, reject) => {
    let payload: string;
    try {
      payload = commands.map(encodeCommand).join('');
    } catch (err) {
      reject(err);
      return;
    }
    const out: Slot[] = [];
    const settle = (r: Slot) => {
      out.push(r);
      if (out.length === commands.length) resolve(out);
    };
    link.send(
      payload,
      commands.map(() => ({ label, deadline, limit, settle, fail: reject })),
    );
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The replicas a ROLE reply lists for a master (0 for a replica), or undefined for no ROLE reply. */
function replicasOfRole(role: Slot | undefined): number | undefined {
  if (!Array.isArray(role)) return undefined;
  if (role[0] !== 'master') return 0;
  return Array.isArray(role[2]) ? role[2].length : 0;
}

/** What a link was opened with: the replicas a failover could promote in place of its server (see requiredReplicas), if known. */
interface Opened {
  link: Link;
  promotable: number | undefined;
}

/** One server's connection, opened lazily and again after it ends or is retired. */
class NodeConn {
  /** for the current link; undefined until known (a plain redis:// master is asked its ROLE by its first write) */
  promotable: number | undefined;
  /** when the current link was opened */
  openedAt = 0;
  private link: Link | null = null;
  opening: Promise<Link> | null = null;

  constructor(
    readonly name: string,
    private readonly opener: () => Promise<Opened>,
  ) {}

  /** The open link, or one opened now; concurrent callers share one attempt, and a failed attempt is not remembered. */
  ready(): Promise<Link> {
    const link = this.link;
    if (link && !link.down && !link.retired) return Promise.resolve(link);
    this.opening ??= this.open();
    return this.opening;
  }

  /** The link if it is up. */
  current(): Link | null {
    return this.link && !this.link.down ? this.link : null;
  }

  /** Sends nothing more on the current link (it ends once its replies are in): the next command opens a new one. */
  retire(): void {
    this.link?.retire();
    this.link = null;
  }

  private async open(): Promise<Link> {
    try {
      const { link, promotable } = await this.opener();
      this.promotable = promotable;
      this.openedAt = Date.now();
      this.link = link;
      link.onDown = () => {
        if (this.link === link) this.link = null;
      };
      return link;
    } finally {
      // Before any caller resumes: one that sends again from its rejection handler must start a new attempt.
      this.opening = null;
    }
  }
}

/** The one NodeConn outside a cluster: the host, or the master the sentinels name. */
const MASTER = 'master';

/** How a refused command is sent again: at once to another node, or after a pause. */
type Retry = { ask: string } | { now: true } | { pause: true };

/**
 * A RedisConn: one lazily opened connection to the master (the host, or the
 * master the sentinels name, taken only if its ROLE says master), or in a
 * cluster one per master, found through the slot map. Commands are pipelined
 * on their connection. After a failure the next command connects afresh;
 * nothing retries in the background.
 */
export class RespClient implements RedisConn {
  /** Redirections and retries followed so far (tests and the benchmark read them). */
  readonly stats = { moved: 0, ask: 0, retries: 0, mapLoads: 0, retired: 0 };
  private readonly nodes = new Map<string, NodeConn>();
  /** links being connected, so close() can cut a connection attempt short */
  private readonly opening = new Set<Link>();
  private closing: Promise<void> | null = null;
  private tlsOptions: Promise<import('node:tls').ConnectionOptions> | undefined;
  private readonly loc: RedisLocation;
  private map: SlotMap | null = null;
  private mapStale = false;
  private mapAt = 0;
  private mapLoad: Promise<SlotMap> | null = null;

  /** Reads the location's password files now; `warn` hears of one others can read. */
  constructor(loc: RedisLocation, warn?: Warn) {
    this.loc = readPasswordFiles(loc, warn);
  }

  async send(args: RedisArg[]): Promise<RedisReply> {
    const [reply] = await this.exec([args], false);
    if (reply instanceof RedisReplyError) throw reply;
    return reply!;
  }

  async pipeline(commands: RedisArg[][]): Promise<Slot[]> {
    if (commands.length === 0) return [];
    return this.exec(commands, false);
  }

  async write(args: RedisArg[]): Promise<RedisReply> {
    const [reply] = await this.exec([args], true);
    if (reply instanceof RedisReplyError) throw reply;
    return reply!;
  }

  async sendOn(lane: string, args: RedisArg[]): Promise<RedisReply> {
    if (lane === '') throw new Error('failed to send on a lane: the lane needs a name');
    const [reply] = await this.exec([args], false, lane);
    if (reply instanceof RedisReplyError) throw reply;
    return reply!;
  }

  async endLane(lane: string): Promise<void> {
    const suffix = ` ${lane}`;
    const ended = [...this.nodes].filter(([key]) => key.endsWith(suffix));
    for (const [key] of ended) this.nodes.delete(key);
    await Promise.all(ended.map(([, n]) => this.quit(n.current())));
  }

  async masters(): Promise<RedisNode[]> {
    if (!this.loc.cluster) {
      const link = await this.node(MASTER).ready();
      return [{ name: link.addr, send: (args) => this.send(args) }];
    }
    const map = await this.slotMap();
    return map.masters().map((name) => ({ name, send: (args) => this.sendTo(name, args) }));
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Replicas the sentinels know for the master, down ones included (for a client that asks sentinels itself, like ioredis). */
  async sentinelReplicas(): Promise<number> {
    const { loc } = this;
    const deadline = Date.now() + loc.connectTimeout;
    const said: string[] = [];
    for (let i = 0; i < loc.hosts.length; i++) {
      const s = loc.hosts[i]!;
      const now = Date.now();
      const share = Math.floor((deadline - now) / (loc.hosts.length - i));
      if (share <= 0) break;
      try {
        const answer = await this.askSentinel(s.host, s.port, now + share, share, true);
        if (answer) return answer.replicas;
        said.push(`sentinel ${nodeName(s.host, s.port)}: does not know master "${loc.sentinelName}"`);
      } catch (err) {
        said.push(`sentinel ${nodeName(s.host, s.port)}: ${(err as Error).message}`);
      }
    }
    throw new Error(`failed to ask the sentinels for the replicas of "${loc.sentinelName}": ${said.join('; ')}`);
  }

  private async shutdown(): Promise<void> {
    for (const link of this.opening) link.destroy();
    const nodes = [...this.nodes.values()];
    await Promise.all(nodes.map((n) => n.opening?.catch(() => {})));
    await Promise.all(nodes.map((n) => this.quit(n.current())));
  }

  private async quit(link: Link | null): Promise<void> {
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

  /**
   * Sends commands to the node they belong to and returns their replies. A
   * refusal the server gives before running anything is followed, within the
   * timeout; past it, the refusal is returned for the caller to report. With
   * `write`, WAIT follows the commands on the same link when replicas must
   * confirm, and too few confirmations throw UnconfirmedWriteError.
   */
  private async exec(commands: RedisArg[][], write: boolean, lane = ''): Promise<Slot[]> {
    const first = commandName(commands[0]!);
    const label = commands.length === 1 ? `run ${first} on` : `run a pipeline of ${commands.length} commands (${first}, …) on`;
    const deadline = Date.now() + this.loc.timeout;
    const routed = routingIndex(commands);
    let ask: string | undefined;
    let pause = RETRY_PAUSE_MS;
    for (;;) {
      if (this.closing) throw new Error(`failed to ${label} redis: the client is closed`);
      let node: NodeConn;
      let link: Link;
      try {
        node = ask !== undefined ? this.node(ask, lane) : await this.route(commands[routed]!, lane);
        // what the link knows of the replicas may be old: a change goes on a fresh link, which learns it again
        if (write && !this.loc.cluster && this.loc.replicas === undefined && node.current() && Date.now() - node.openedAt > TOPOLOGY_TTL_MS) node.retire();
        link = await node.ready();
      } catch (err) {
        if (this.closing) throw new Error(`failed to ${label} redis: the client is closed`, { cause: err });
        // Nothing was written. In a cluster the node may be failing over: a fresh map may name its successor.
        if (!this.loc.cluster || Date.now() + pause >= deadline) throw err;
        this.mapStale = true;
        ask = undefined;
        this.stats.retries++;
        await sleep(pause);
        pause = Math.min(pause * 2, RETRY_PAUSE_MAX_MS);
        continue;
      }
      const promotable = this.loc.cluster ? (this.map?.replicasOf(node.name) ?? 0) : node.promotable;
      // a plain redis:// master's replicas are read by ROLE in the first write's round trip, not on every connection
      const probe = write && this.loc.replicas === undefined && promotable === undefined;
      let required = write && !probe ? requiredReplicas(this.loc, promotable ?? 0) : 0;
      const waitMs = waitTimeout(this.loc);
      const sent = [...(ask !== undefined ? [['ASKING']] : []), ...(probe ? [['ROLE']] : []), ...commands];
      if (required > 0) sent.push(['WAIT', required, waitMs]);
      const replies = await request(link, sent, label, Date.now() + this.loc.timeout, this.loc.timeout);
      if (ask !== undefined) replies.shift();
      const role = probe ? replies.shift() : undefined;
      let waited = required > 0 ? replies.pop() : undefined;
      ask = undefined;
      const head = replies[routed];
      const retry = head instanceof RedisReplyError ? this.refused(head, node) : undefined;
      if (!retry) {
        if (write && !(head instanceof RedisReplyError)) {
          if (probe) {
            const known = replicasOfRole(role);
            if (known === undefined) {
              // the change ran, and whether a replica must hold it cannot be told: not acknowledged
              this.retire(node);
              throw new UnconfirmedWriteError(link.addr, 0, 1, 0, new Error(`cannot read ROLE (${role instanceof RedisReplyError ? role.message : JSON.stringify(role)}); allow ROLE to berth's user, or set ?replicas=N on the store URL`));
            }
            if (link === node.current()) node.promotable = known;
            required = requiredReplicas(this.loc, known);
            // the same connection: WAIT counts the replicas holding this connection's writes, the script's among them
            if (required > 0) [waited] = await request(link, [['WAIT', required, waitMs]], 'run WAIT on', Date.now() + this.loc.timeout, this.loc.timeout);
          }
          if (required > 0) this.confirm(waited, required, waitMs, node, link);
        }
        return replies;
      }
      if ('ask' in retry) ask = retry.ask;
      if (Date.now() + ('pause' in retry ? pause : 0) >= deadline) return replies;
      this.stats.retries++;
      if ('pause' in retry) {
        await sleep(pause);
        pause = Math.min(pause * 2, RETRY_PAUSE_MAX_MS);
      }
    }
  }

  /** How to follow an error reply that means the command did not run, or undefined for one that is the answer. */
  private refused(err: RedisReplyError, node: NodeConn): Retry | undefined {
    const redirect = parseRedirect(err.message);
    if (redirect) {
      if (!this.loc.cluster) return undefined;
      if (redirect.kind === 'ASK') {
        this.stats.ask++;
        return { ask: redirect.node };
      }
      this.stats.moved++;
      this.map?.moved(redirect.slot, redirect.node);
      // a slot that moved may mean a failover moved many: the next command reads the map again
      this.mapStale = true;
      return { now: true };
    }
    const code = err.message.split(' ', 1)[0];
    switch (code) {
      case 'TRYAGAIN': // a multi-key command during a slot migration
      case 'LOADING':
      case 'BUSY':
        return { pause: true };
      case 'CLUSTERDOWN':
        if (!this.loc.cluster) return undefined;
        this.mapStale = true;
        return { pause: true };
      case 'READONLY': // a demoted master
      case 'MASTERDOWN':
      case 'NOREPLICAS': // a master cut off from its replicas (min-replicas-to-write)
        if (!this.loc.cluster && !this.loc.sentinelName) return undefined;
        this.retire(node);
        return { pause: true };
      default:
        return undefined;
    }
  }

  /** Throws unless WAIT counted enough replicas; a link that cannot confirm is not used again. */
  private confirm(waited: Slot | undefined, required: number, waitMs: number, node: NodeConn, link: Link): void {
    if (typeof waited === 'number' && waited >= required) return;
    this.retire(node);
    throw new UnconfirmedWriteError(link.addr, typeof waited === 'number' ? waited : 0, required, waitMs, waited instanceof RedisReplyError ? waited : undefined);
  }

  /** The master may have moved: its link takes no more commands, and the next command finds the master again. */
  private retire(node: NodeConn): void {
    this.stats.retired++;
    node.retire();
    if (this.loc.cluster) this.mapStale = true;
  }

  private async sendTo(name: string, args: RedisArg[]): Promise<RedisReply> {
    const link = await this.node(name).ready();
    const [reply] = await request(link, [args], `run ${commandName(args)} on`, Date.now() + this.loc.timeout, this.loc.timeout);
    if (reply instanceof RedisReplyError) throw reply;
    return reply!;
  }

  /** The node a command goes to: the master, or in a cluster the master of its key's slot; on the lane's own connection to it. */
  private async route(command: RedisArg[], lane: string): Promise<NodeConn> {
    if (!this.loc.cluster) return this.node(MASTER, lane);
    const map = await this.slotMap();
    const key = commandKey(command);
    const slot = key === undefined ? undefined : keySlot(key);
    const name = slot === undefined ? map.masters()[0] : map.masterOf(slot);
    if (name === undefined) {
      this.mapStale = true;
      throw new Error(`failed to route to the redis cluster: no master serves slot ${slot ?? '(any)'}`);
    }
    return this.node(name, lane);
  }

  /** The connection to a server: the shared one, or a lane's own ("NAME LANE" in the table). */
  private node(name: string, lane = ''): NodeConn {
    const key = lane === '' ? name : `${name} ${lane}`;
    let n = this.nodes.get(key);
    if (!n) {
      const at = splitNode(name);
      n = new NodeConn(name, () => {
        const deadline = Date.now() + this.loc.connectTimeout;
        if (name === MASTER) return this.openMaster(deadline);
        if (!at) throw new Error(`failed to connect to redis: "${name}" is not host:port`);
        return this.openServer(at.host, at.port, deadline, this.loc.connectTimeout, 'plain');
      });
      this.nodes.set(key, n);
    }
    return n;
  }

  /** The slot map, read from the first node that answers when there is none yet or it is stale. */
  private async slotMap(): Promise<SlotMap> {
    if (this.map && !this.mapStale && Date.now() - this.mapAt <= TOPOLOGY_TTL_MS) return this.map;
    this.mapLoad ??= this.loadMap().finally(() => {
      this.mapLoad = null;
    });
    return this.mapLoad;
  }

  private async loadMap(): Promise<SlotMap> {
    this.stats.mapLoads++;
    const seeds = this.loc.hosts.map((h) => nodeName(h.host, h.port));
    const candidates = [...new Set([...(this.map?.masters() ?? []), ...seeds, ...(this.map?.nodes() ?? [])])];
    const deadline = Date.now() + this.loc.connectTimeout;
    const said: string[] = [];
    for (let i = 0; i < candidates.length; i++) {
      const name = candidates[i]!;
      const now = Date.now();
      // a node that does not answer may take only its share of the time left, so the others get asked
      const share = Math.floor((deadline - now) / (candidates.length - i));
      if (share <= 0) break;
      try {
        const link = await Promise.race([
          this.node(name).ready(),
          sleep(share).then(() => {
            throw new Error(`connection not ready after ${share} ms`);
          }),
        ]);
        const [text] = await request(link, [['CLUSTER', 'NODES']], 'run CLUSTER NODES on', now + share, share);
        if (text instanceof RedisReplyError) throw text;
        const map = new SlotMap(parseClusterNodes(String(text), splitNode(name)!.host));
        if (map.masters().length === 0) throw new Error('it knows no master that serves slots');
        this.map = map;
        this.mapStale = false;
        this.mapAt = Date.now();
        return map;
      } catch (err) {
        said.push(`${name}: ${(err as Error).message}`);
      }
    }
    throw new Error(`failed to read the slot map of the redis cluster (seeds ${seeds.join(', ')}): ${said.join('; ') || 'no node asked in time'}`);
  }

  /** The master: the one host, or the one the sentinels name; all within connectTimeout. */
  private async openMaster(deadline: number): Promise<Opened> {
    const { loc } = this;
    if (!loc.sentinelName) {
      const h = loc.hosts[0];
      if (!h) throw new Error('failed to connect to redis: no host given');
      return this.openServer(h.host, h.port, deadline, loc.connectTimeout, 'plain');
    }
    const said: string[] = [];
    for (let i = 0; i < loc.hosts.length; i++) {
      const s = loc.hosts[i]!;
      const sentinel = nodeName(s.host, s.port);
      const now = Date.now();
      if (now >= deadline) {
        said.push(`sentinel ${sentinel}: not asked, the ${loc.connectTimeout} ms connect timeout ran out`);
        continue;
      }
      // A sentinel that does not answer may take only its share of the time left, so the others get asked.
      const share = Math.floor((deadline - now) / (loc.hosts.length - i));
      let master: { host: string; port: number; replicas: number } | null;
      try {
        master = await this.askSentinel(s.host, s.port, now + share, share, loc.replicas === undefined);
      } catch (err) {
        said.push(`sentinel ${sentinel}: ${(err as Error).message}`);
        continue;
      }
      if (!master) {
        said.push(`sentinel ${sentinel}: does not know master "${loc.sentinelName}"`);
        continue;
      }
      try {
        const opened = await this.openServer(master.host, master.port, deadline, loc.connectTimeout, 'master');
        return { link: opened.link, promotable: loc.replicas === undefined ? master.replicas : 0 };
      } catch (err) {
        said.push(`sentinel ${sentinel} named ${nodeName(master.host, master.port)}: ${(err as Error).message}`);
      }
    }
    throw new Error(`failed to find the redis master "${loc.sentinelName}" through sentinels: ${said.join('; ')}`);
  }

  /**
   * Connects to a Redis server and runs AUTH and SELECT, and with `role`
   * 'master' ROLE (a sentinel's answer can be stale), before anything else.
   */
  private async openServer(host: string, port: number, deadline: number, limit: number, role: 'plain' | 'master'): Promise<Opened> {
    const { loc } = this;
    const link = await this.openLink(host, port, deadline, limit);
    const hello: RedisArg[][] = [];
    if (loc.password !== undefined) hello.push(loc.username ? ['AUTH', loc.username, loc.password] : ['AUTH', loc.password]);
    if (loc.db !== 0 && !loc.cluster) hello.push(['SELECT', loc.db]);
    if (role === 'master') hello.push(['ROLE']);
    if (hello.length === 0) return this.handOver(link);
    let replies: Slot[];
    try {
      replies = await request(link, hello, 'connect to', deadline, limit);
    } catch (err) {
      link.destroy();
      throw err;
    } finally {
      this.opening.delete(link);
    }
    // AUTH or SELECT refused (WRONGPASS, NOAUTH…): the server's own error, for every queued command
    const refused = replies.find((r) => r instanceof RedisReplyError);
    if (refused) {
      link.destroy();
      throw refused;
    }
    if (role === 'master') {
      const reply = replies[replies.length - 1];
      const name = Array.isArray(reply) ? reply[0] : reply;
      if (name !== 'master') {
        link.destroy();
        throw new Error(`ROLE says ${JSON.stringify(name)}, not master`);
      }
    }
    return this.handOver(link);
  }

  /** A link past its connection steps: close() no longer cuts it short, it closes it. */
  private handOver(link: Link): Opened {
    this.opening.delete(link);
    if (this.closing) {
      link.destroy();
      throw new Error('failed to connect to redis: the client is closed');
    }
    return { link, promotable: undefined };
  }

  /**
   * The master's address a sentinel gives, or null when it does not know the
   * name; with `countReplicas`, also the replicas it knows for it, down ones
   * included (SENTINEL REPLICAS), in the same round trip.
   */
  private async askSentinel(
    host: string,
    port: number,
    deadline: number,
    limit: number,
    countReplicas: boolean,
  ): Promise<{ host: string; port: number; replicas: number } | null> {
    const { loc } = this;
    const link = await this.openLink(host, port, deadline, limit);
    try {
      const ask: RedisArg[][] = [];
      if (loc.sentinelPassword !== undefined) {
        ask.push(loc.sentinelUsername ? ['AUTH', loc.sentinelUsername, loc.sentinelPassword] : ['AUTH', loc.sentinelPassword]);
      }
      ask.push(['SENTINEL', 'get-master-addr-by-name', loc.sentinelName!]);
      if (countReplicas) ask.push(['SENTINEL', 'REPLICAS', loc.sentinelName!]);
      const replies = await request(link, ask, 'connect to', deadline, limit);
      const known = countReplicas ? replies.pop() : undefined;
      const refused = replies.find((r) => r instanceof RedisReplyError);
      if (refused) throw refused;
      const addr = replies[replies.length - 1];
      if (addr === null) return null;
      const masterPort = Array.isArray(addr) ? Number(addr[1]) : NaN;
      if (!Array.isArray(addr) || typeof addr[0] !== 'string' || !Number.isInteger(masterPort) || masterPort < 1 || masterPort > 65535) {
        throw new Error(`unexpected answer ${JSON.stringify(addr)}`);
      }
      if (known instanceof RedisReplyError) throw new Error(`SENTINEL REPLICAS: ${known.message}`);
      return { host: addr[0], port: masterPort, replicas: Array.isArray(known) ? known.length : 0 };
    } finally {
      this.opening.delete(link);
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
    const link = new Link(socket, nodeName(host, port));
    // until handed over (handOver) or given up: close() cuts it short
    this.opening.add(link);
    try {
      await link.connect(this.loc.tls ? 'secureConnect' : 'connect', deadline, limit);
    } catch (err) {
      this.opening.delete(link);
      throw err;
    }
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
