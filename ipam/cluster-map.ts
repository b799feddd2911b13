// Redis Cluster routing, pure: the slot of a key, the key a command is routed
// by, and the slot map read from CLUSTER NODES. berth's client (resp-client.ts)
// keeps one of these and follows MOVED/ASK with it.

export const SLOTS = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16/XMODEM of the bytes, the hash Redis Cluster uses. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The slot of a key, as CLUSTER KEYSLOT computes it: only a non-empty {hash tag} is hashed when there is one. */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % SLOTS;
  }
  return crc16(bytes) % SLOTS;
}

/** Commands berth sends that name no key: routed to any master, or to the node of the pipeline's keyed command. */
const KEYLESS = new Set([
  'ASKING',
  'AUTH',
  'CLIENT',
  'CLUSTER',
  'CONFIG',
  'DBSIZE',
  'DISCARD',
  'ECHO',
  'EXEC',
  'FLUSHALL',
  'FLUSHDB',
  'INFO',
  'KEYS',
  'MULTI',
  'PING',
  'QUIT',
  'ROLE',
  'SCAN',
  'SCRIPT',
  'SELECT',
  'SENTINEL',
  'TIME',
  'WAIT',
]);

/** The key a command is routed by, or undefined for a command that names none. */
export function commandKey(args: readonly (string | number)[]): string | undefined {
  const name = String(args[0] ?? '').toUpperCase();
  if (name === 'EVAL' || name === 'EVALSHA' || name === 'EVAL_RO' || name === 'EVALSHA_RO' || name === 'FCALL' || name === 'FCALL_RO') {
    return Number(args[2]) > 0 && args[3] !== undefined ? String(args[3]) : undefined;
  }
  if (name === 'MEMORY' || name === 'OBJECT') return args[2] === undefined ? undefined : String(args[2]);
  // XREAD [COUNT n] [BLOCK ms] STREAMS key… id…: the options come before the keys
  if (name === 'XREAD' || name === 'XREADGROUP') {
    const at = args.findIndex((a, i) => i > 0 && String(a).toUpperCase() === 'STREAMS');
    return at < 0 || args[at + 1] === undefined ? undefined : String(args[at + 1]);
  }
  if (KEYLESS.has(name) || args[1] === undefined) return undefined;
  return String(args[1]);
}

/** The index of the command a pipeline is routed by: its first keyed one, else 0. */
export function routingIndex(commands: readonly (readonly (string | number)[])[]): number {
  const i = commands.findIndex((c) => commandKey(c) !== undefined);
  return i < 0 ? 0 : i;
}

/** "host:port", IPv6 hosts in brackets. */
export function nodeName(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Splits "host:port" or "[v6]:port" or a bare "v6:port" (as MOVED and CLUSTER NODES print it). */
export function splitNode(text: string): { host: string; port: number } | undefined {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return undefined;
  const port = Number(text.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: text.slice(0, colon).replace(/^\[|\]$/g, ''), port };
}

/** A redirection a cluster node answered with instead of running the command. */
export function parseRedirect(message: string): { kind: 'MOVED' | 'ASK'; slot: number; node: string } | undefined {
  const m = /^(MOVED|ASK) (\d+) (\S+)$/.exec(message);
  if (!m) return undefined;
  const at = splitNode(m[3]!);
  if (!at) return undefined;
  return { kind: m[1] as 'MOVED' | 'ASK', slot: Number(m[2]), node: nodeName(at.host, at.port) };
}

export interface ClusterNode {
  id: string;
  /** host:port */
  name: string;
  master: boolean;
  /** flagged fail or fail? by the node asked */
  failed: boolean;
  /** the master's id, for a replica */
  masterId?: string;
  slots: Array<[number, number]>;
}

/**
 * Parses CLUSTER NODES. `askedHost` stands in for the empty address a node
 * that was never told its own may print for itself.
 */
export function parseClusterNodes(text: string, askedHost: string): ClusterNode[] {
  const nodes: ClusterNode[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const [id, addr, flagText, masterId] = f as [string, string, string, string];
    const flags = new Set(flagText.split(','));
    if (flags.has('noaddr') || flags.has('handshake')) continue;
    const at = splitNode(addr.split('@')[0]!.split(',')[0]!.replace(/^:/, `${askedHost}:`));
    if (!at) continue;
    const slots: Array<[number, number]> = [];
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue; // a slot being migrated or imported: still served by this node
      const [a, b] = s.split('-');
      const first = Number(a);
      const last = b === undefined ? first : Number(b);
      if (Number.isInteger(first) && Number.isInteger(last) && first >= 0 && last < SLOTS && first <= last) slots.push([first, last]);
    }
    const node: ClusterNode = {
      id,
      name: nodeName(at.host, at.port),
      master: flags.has('master'),
      failed: flags.has('fail') || flags.has('fail?'),
      slots,
    };
    if (masterId !== '-') node.masterId = masterId;
    nodes.push(node);
  }
  return nodes;
}

/** Which master serves each slot, and how many replicas each master has. */
export class SlotMap {
  private readonly owner: Array<string | undefined> = new Array(SLOTS);
  private readonly replicas = new Map<string, number>();
  private readonly all: string[];

  constructor(nodes: ClusterNode[]) {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    for (const n of nodes) {
      if (!n.master) continue;
      for (const [first, last] of n.slots) for (let s = first; s <= last; s++) this.owner[s] = n.name;
    }
    for (const n of nodes) {
      if (n.master || n.masterId === undefined) continue;
      const master = byId.get(n.masterId);
      // a replica counts while the cluster knows it, even failed: a failover may still promote it once it is back
      if (master) this.replicas.set(master.name, (this.replicas.get(master.name) ?? 0) + 1);
    }
    this.all = nodes.map((n) => n.name);
  }

  /** The master serving a slot, if any does. */
  masterOf(slot: number): string | undefined {
    return this.owner[slot];
  }

  /** Replicas the cluster knows for a master. */
  replicasOf(name: string): number {
    return this.replicas.get(name) ?? 0;
  }

  /** Masters that serve at least one slot, in address order. */
  masters(): string[] {
    return [...new Set(this.owner.filter((o): o is string => o !== undefined))].sort();
  }

  /** Every node the map names, masters and replicas: where to ask for a fresh map. */
  nodes(): string[] {
    return [...this.all];
  }

  /** True when every slot has a master. */
  complete(): boolean {
    for (let s = 0; s < SLOTS; s++) if (this.owner[s] === undefined) return false;
    return true;
  }

  /** Records a MOVED answer: the slot is now served by node. */
  moved(slot: number, node: string): void {
    this.owner[slot] = node;
  }
}
