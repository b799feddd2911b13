// rtnetlink for the plugins, in-process, on the host and inside a
// container's network namespace: no `ip` subprocess anywhere.
//
// A netlink socket belongs to the namespace it was created in. setns(2) moves
// only the calling thread, so a socket for a container is made by switching
// the thread into its namespace, creating the socket and switching back, in
// one native call (berth_native's netlinkOpen).
//
// Each request runs on the libuv thread pool (netlinkRequest), not on the
// JavaScript thread. The kernel does the work of a request inside the
// sender's sendmsg(): deleting a veth waits there for RCU grace periods,
// and in a start storm a request first waits for the lock every link change
// on the host takes. A socket sending from the JavaScript thread would hold
// up everything else in flight there (a DEL's IPAM release, a plugin
// thread's other ADDs), so requests are sent from a native worker thread.
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { native } from '../native/index.js';
import { formatIp, parseCidr, parseIp } from '../core/address.js';
import { formatMac, parseMac, randomMac } from './mac.js';
import * as rtnl from './rtnl.js';

/** True when err is the kernel's refusal of a request with the given errno name (EEXIST, ENODEV, ...). */
export function isErrno(err: unknown, code: string): boolean {
  return err instanceof rtnl.KernelError && err.code === code;
}

/**
 * An rtnetlink socket whose requests run on the thread pool, one at a time
 * and in order (their answers share the socket).
 */
export class RtSocket {
  private seq = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly fd: number) {}

  /** Sends one request and returns the bodies of the kernel's answer (none for a plain ACK). */
  async request(type: number, body: Buffer, flags = 0): Promise<Buffer[]> {
    const [answer] = await this.batch([{ type, body, flags }]);
    if ('error' in answer!) throw answer.error;
    return answer!.bodies;
  }

  /**
   * Sends requests in one sendmsg(): the kernel runs them in order, each
   * answered, and a failed one does not stop the rest. Each takes the
   * kernel's link lock on its own, but the sender is still running when it
   * lets the lock go and can take it again at once (a mutex lets a running
   * thread take it before a woken waiter does), where separate requests
   * each wait their turn behind everyone queued for it (in a start storm,
   * up to a second apiece).
   */
  batch(requests: Array<{ type: number; body: Buffer; flags?: number }>): Promise<Array<{ bodies: Buffer[] } | { error: unknown }>> {
    const run = async () => {
      if (this.closed) throw new Error('the rtnetlink socket is closed');
      const seqs = requests.map(() => (this.seq = (this.seq % 0x7fffffff) + 1));
      const messages = Buffer.concat(requests.map((r, i) => rtnl.requestMessage(r.type, r.flags ?? 0, seqs[i]!, r.body)));
      const answer = await native().netlinkRequest(this.fd, messages);
      return requests.map((r, i) => {
        try {
          return { bodies: rtnl.answerBodies(answer, r.type, seqs[i]!) };
        } catch (error) {
          return { error };
        }
      });
    };
    const done = this.tail.then(run, run);
    this.tail = done.catch(() => {});
    return done;
  }

  /**
   * The index and MAC of link `name` in this socket's namespace, or
   * undefined. Read without the kernel's link lock (an ioctl under RCU),
   * which an RTM_GETLINK waits for: in a start storm, up to seconds.
   */
  link(name: string): { index: number; mac?: Buffer; flags?: number } | undefined {
    if (this.closed) throw new Error('the rtnetlink socket is closed');
    return native().linkByName(this.fd, name);
  }

  /** Closes the socket once the requests sent on it are answered; none may follow. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.tail.then(() => native().closeFd(this.fd));
  }
}

/** An rtnetlink socket in the namespace at `nsPath`, or in the calling thread's own when absent. */
export function rtnetlink(nsPath?: string): RtSocket {
  const { netlinkOpen } = native();
  if (!nsPath) return new RtSocket(netlinkOpen(-1));
  const target = openSync(nsPath, 'r');
  try {
    return new RtSocket(netlinkOpen(target));
  } finally {
    closeSync(target);
  }
}

export interface LinkInfo {
  index: number;
  name: string;
  kind?: string;
  master?: number;
  mtu?: number;
  up: boolean;
  mac?: string;
}

/** Link operations on one socket. */
export class Links {
  constructor(readonly sock: RtSocket) {}

  private ask(type: number, body: Buffer, flags = 0): Promise<Buffer[]> {
    return this.sock.request(type, body, flags);
  }

  /** Every link of the namespace. */
  async list(): Promise<LinkInfo[]> {
    return (await this.ask(rtnl.RTM.GETLINK, rtnl.ifinfomsg(), rtnl.NLM_F.DUMP)).map((b) => toLinkInfo(rtnl.decodeLink(b)));
  }

  /** The link of that name, if any: one RTM_GETLINK by name, not a dump of every link. */
  async byName(name: string): Promise<LinkInfo | undefined> {
    let bodies;
    try {
      bodies = await this.ask(rtnl.RTM.GETLINK, rtnl.linkByNameBody(name));
    } catch (err) {
      if (isErrno(err, 'ENODEV')) return undefined;
      throw err;
    }
    return bodies.map((b) => toLinkInfo(rtnl.decodeLink(b))).find((l) => l.name === name);
  }

  /**
   * The index and MAC of the link of that name, and whether it is up, if
   * there is one, without the kernel's link lock: where kind or master are not
   * needed (byName's RTM_GETLINK waits for the lock every link change on the
   * host takes).
   */
  lookup(name: string): { index: number; mac?: string; up: boolean } | undefined {
    const l = this.sock.link(name);
    return l && { index: l.index, ...(l.mac ? { mac: formatMac(l.mac) } : {}), up: ((l.flags ?? 0) & rtnl.IFF.UP) !== 0 };
  }

  /** Creates a link; EEXIST is thrown as the kernel's error. */
  private async create(link: rtnl.NewLink, up = false): Promise<void> {
    await this.ask(rtnl.RTM.NEWLINK, rtnl.newLinkBody(link, up), rtnl.NLM_F.CREATE | rtnl.NLM_F.EXCL);
  }

  /**
   * The bridge of that name, created (up) when missing. Creating what exists
   * is not an error, and of two plugins racing to create it both succeed.
   */
  async ensureBridge(name: string, mtu?: number): Promise<LinkInfo> {
    const existing = await this.byName(name);
    if (existing) {
      if (existing.kind !== 'bridge') throw new Error(`"${name}" exists and is not a bridge (it is ${existing.kind ?? 'a device'})`);
      if (!existing.up) await this.setUp(existing.index);
      return existing;
    }
    try {
      await this.create({ name, ...(mtu ? { mtu } : {}), kind: { name: 'bridge' } });
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err; // another plugin made it first
    }
    const made = await this.byName(name);
    if (!made || made.kind !== 'bridge') throw new Error(`"${name}" exists and is not a bridge`);
    if (!made.up) await this.setUp(made.index);
    return (await this.byName(name))!;
  }

  /**
   * A veth pair: `hostName` here, its peer `peerName` created directly in the
   * namespace open at `peerNsFd`. The host end's MAC is chosen here, as the
   * kernel would choose it (random, locally administered), and returned: the
   * end is not read back, since in a start storm every request that takes the
   * kernel's link lock (a lookup too) waits its turn, for 0.2-0.8 s at times.
   */
  async createVeth(hostName: string, peerName: string, peerNsFd: number, opts: { mtu?: number; peerMac?: string; master?: number; up?: boolean } = {}): Promise<{ hostMac: string }> {
    const mtu = opts.mtu ? { mtu: opts.mtu } : {};
    const hostMac = randomMac();
    // One queue each way, asked for: left to the kernel, a veth gets a queue
    // per CPU, cut to one just after it is registered, and cutting transmit
    // queues waits for an RCU grace period, twice per pair, while holding the
    // kernel's link lock, which every other link change and lookup on the
    // host then waits for (veth_init_queues > synchronize_rcu_expedited).
    // One queue is what a veth runs with anyway; only `ethtool -L` could have
    // raised it later.
    const peer: rtnl.NewLink = { name: peerName, netnsFd: peerNsFd, queues: 1, ...mtu, ...(opts.peerMac ? { mac: parseMac(opts.peerMac) } : {}) };
    // `up` and `master` bring the host end up on its bridge in the same
    // message: one trip through the kernel's link lock instead of three. (The
    // peer cannot come up in it: the kernel configures it before the two ends
    // are joined, and a veth end without its peer refuses to open.)
    await this.create({ name: hostName, queues: 1, ...mtu, mac: parseMac(hostMac), ...(opts.master ? { master: opts.master } : {}), kind: { name: 'veth', peer } }, opts.up);
    return { hostMac };
  }

  /** Brings a link up. */
  async setUp(index: number): Promise<void> {
    await this.ask(rtnl.RTM.SETLINK, rtnl.setLinkBody(index, { flags: rtnl.IFF.UP, change: rtnl.IFF.UP }));
  }

  /** Attaches a link to a bridge. */
  async setMaster(index: number, master: number): Promise<void> {
    await this.ask(rtnl.RTM.SETLINK, rtnl.setLinkBody(index, { master }));
  }

  /** Deletes a link (its veth peer goes with it); a link already gone is fine. */
  async delete(index: number): Promise<void> {
    await this.deleted(rtnl.ifinfomsg({ index }));
  }

  /**
   * Deletes the link of that name, if any: one request, where a lookup and
   * a delete would be two trips through the kernel's link lock.
   */
  async deleteByName(name: string): Promise<void> {
    await this.deleted(rtnl.linkByNameBody(name));
  }

  private async deleted(body: Buffer): Promise<void> {
    try {
      await this.ask(rtnl.RTM.DELLINK, body);
    } catch (err) {
      if (!isErrno(err, 'ENODEV')) throw err;
    }
  }

  /** Adds "ADDR/PREFIX" to a link; an address already there is fine. */
  async addAddress(index: number, cidr: string): Promise<void> {
    const c = parseCidr(cidr, 'address', true);
    try {
      await this.ask(rtnl.RTM.NEWADDR, rtnl.newAddressBody({ family: c.family, prefix: c.prefix, index, address: Buffer.from(c.hex, 'hex') }), rtnl.NLM_F.CREATE | rtnl.NLM_F.EXCL);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
  }

  /**
   * A container's interface made ready in one batch (RtSocket.batch): its
   * MAC when given (set while it is down), its addresses, then up, then its
   * routes, in that order, each already there being fine. The first failure
   * is thrown, naming what failed.
   */
  async configure(index: number, want: { mac?: string; addresses: string[]; routes: Array<{ dst: string; gw?: string }> }): Promise<void> {
    const steps: Array<{ what: string; type: number; body: Buffer; flags?: number }> = [];
    if (want.mac) steps.push({ what: `set MAC ${want.mac}`, type: rtnl.RTM.SETLINK, body: rtnl.setLinkBody(index, { mac: parseMac(want.mac) }) });
    for (const cidr of want.addresses) {
      const c = parseCidr(cidr, 'address', true);
      steps.push({ what: `add ${cidr}`, type: rtnl.RTM.NEWADDR, body: rtnl.newAddressBody({ family: c.family, prefix: c.prefix, index, address: Buffer.from(c.hex, 'hex') }), flags: rtnl.NLM_F.CREATE | rtnl.NLM_F.EXCL });
    }
    steps.push({ what: 'bring it up', type: rtnl.RTM.SETLINK, body: rtnl.setLinkBody(index, { flags: rtnl.IFF.UP, change: rtnl.IFF.UP }) });
    for (const r of want.routes) {
      steps.push({ what: `add route ${r.dst}${r.gw ? ` via ${r.gw}` : ''}`, type: rtnl.RTM.NEWROUTE, body: routeBody(r.dst, r.gw, index), flags: rtnl.NLM_F.CREATE | rtnl.NLM_F.EXCL });
    }
    const answers = await this.sock.batch(steps);
    answers.forEach((a, i) => {
      if ('error' in a && (steps[i]!.type === rtnl.RTM.SETLINK || !isErrno(a.error, 'EEXIST'))) {
        throw new Error(`failed to ${steps[i]!.what}: ${(a.error as Error).message}`, { cause: a.error });
      }
    });
  }

  /** The addresses on a link, as "ADDR/PREFIX"; of one family when given. */
  async addresses(index: number, family?: 4 | 6): Promise<string[]> {
    return (await this.ask(rtnl.RTM.GETADDR, rtnl.dumpBody('address', family), rtnl.NLM_F.DUMP))
      .map(rtnl.decodeAddress)
      .filter((a) => a.index === index && a.address && (!family || a.family === family))
      .map((a) => `${formatIp(a.address!.toString('hex'))}/${a.prefix}`);
  }

  /** The 802.1Q sub-interface `name` of link `master` for VLAN `id`, created when missing. */
  async ensureVlan(name: string, master: string, id: number, mtu?: number): Promise<LinkInfo> {
    const existing = await this.byName(name);
    if (existing) {
      if (existing.kind !== 'vlan') throw new Error(`"${name}" exists and is not a VLAN sub-interface`);
      return existing;
    }
    const parent = await this.byName(master);
    if (!parent) throw new Error(`master "${master}" does not exist`);
    try {
      await this.create({ name, link: parent.index, ...(mtu ? { mtu } : {}), kind: { name: 'vlan', id } });
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    return (await this.byName(name))!;
  }

  /** Sets promiscuous mode on a link. */
  async setPromisc(index: number, on: boolean): Promise<void> {
    await this.ask(rtnl.RTM.SETLINK, rtnl.setLinkBody(index, { flags: on ? rtnl.IFF.PROMISC : 0, change: rtnl.IFF.PROMISC }));
  }

  /** The main table's routes, as {dst CIDR, gw, oif}. */
  async routes(): Promise<Array<{ dst: string; gw?: string; oif?: number }>> {
    return (await this.ask(rtnl.RTM.GETROUTE, rtnl.dumpBody('route'), rtnl.NLM_F.DUMP))
      .map(rtnl.decodeRoute)
      .filter((m) => m.table === rtnl.RT_TABLE_MAIN)
      .map((m) => {
        const zero = m.family === 4 ? '00000000' : '0'.repeat(32);
        const dst = m.dst ? m.dst.toString('hex') : zero;
        const r: { dst: string; gw?: string; oif?: number } = { dst: `${formatIp(dst.padEnd(zero.length, '0'))}/${m.prefix}` };
        if (m.gateway) r.gw = formatIp(m.gateway.toString('hex'));
        if (m.oif !== undefined) r.oif = m.oif;
        return r;
      });
  }

  /** Closes the socket. */
  close(): void {
    this.sock.close();
  }
}

function routeBody(dst: string, gw: string | undefined, index: number): Buffer {
  const c = parseCidr(dst, 'route.dst');
  return rtnl.newRouteBody({
    family: c.family,
    prefix: c.prefix,
    dst: Buffer.from(c.first, 'hex'),
    ...(gw ? { gateway: Buffer.from(parseIp(gw, 'route.gw').hex, 'hex') } : {}),
    oif: index,
  });
}

function toLinkInfo(m: rtnl.Link): LinkInfo {
  const info: LinkInfo = { index: m.index, name: m.name, up: Boolean(m.flags & rtnl.IFF.UP) };
  if (m.kind) info.kind = m.kind;
  if (m.master !== undefined) info.master = m.master;
  if (m.mtu !== undefined) info.mtu = m.mtu;
  if (m.mac) info.mac = formatMac(m.mac);
  return info;
}

/**
 * The bridge `name` of this host, up, as sysfs shows it; undefined when it is
 * missing, down or not a bridge. sysfs answers without the kernel's link lock,
 * which an RTM_GETLINK takes. It shows the network namespace it was mounted
 * in, the host's for a CNI plugin and for the agent; the name is an
 * interface name, validated.
 */
export function hostBridgeUp(name: string): LinkInfo | undefined {
  const dir = `/sys/class/net/${name}`;
  try {
    if (!existsSync(`${dir}/bridge`)) return undefined;
    const read = (attr: string) => readFileSync(`${dir}/${attr}`, 'latin1').trim();
    const up = (Number(read('flags')) & rtnl.IFF.UP) !== 0;
    if (!up) return undefined;
    return { index: Number(read('ifindex')), name, kind: 'bridge', up, mtu: Number(read('mtu')), mac: read('address') };
  } catch {
    return undefined; // gone meanwhile: the caller asks netlink
  }
}
