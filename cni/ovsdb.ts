// berth's own OVSDB client (RFC 7047, JSON-RPC 1.0 over the ovsdb-server unix
// socket) for berth-ovs: a container port is added to an Open vSwitch bridge in
// one atomic transaction, and removed in two (find it, then delete it where it
// still is), with no ovs-vsctl subprocess. Like the RESP
// client, only node:net loads, and an idle connection does not hold the process.
//
// Over 400 lines because the OVSDB JSON-RPC client and the few transactions
// berth-ovs needs are read against RFC 7047 side by side; the values and
// operations section is short and used nowhere else.
import { connect as netConnect, type Socket } from 'node:net';

/** Where ovsdb-server listens on a Debian host. */
export const DEFAULT_OVSDB_SOCKET = '/var/run/openvswitch/db.sock';
/** The database vswitchd reads. */
export const OPEN_VSWITCH_DB = 'Open_vSwitch';
const DEFAULT_TIMEOUT_MS = 5000;
/** A reply larger than this is not from a healthy server; stops unbounded buffering. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Values and operations (RFC 7047 §5.1, §5.2)

/** A reference to an existing row. */
export type UuidRef = readonly ['uuid', string];
/** A reference to a row inserted earlier in the same transaction. */
export type NamedUuidRef = readonly ['named-uuid', string];
/** One scalar OVSDB value. */
export type OvsdbAtom = string | number | boolean | UuidRef | NamedUuidRef;
/** Any OVSDB value as it travels in JSON. */
export type OvsdbValue =
  | OvsdbAtom
  | readonly ['set', readonly OvsdbAtom[]]
  | readonly ['map', readonly (readonly [OvsdbAtom, OvsdbAtom])[]];
/** A row: column name to value. */
export type OvsdbRow = Record<string, OvsdbValue>;
/** A where clause entry: [column, function, value]. */
export type OvsdbCondition = readonly [string, '<' | '<=' | '==' | '!=' | '>=' | '>' | 'includes' | 'excludes', OvsdbValue];
/** A mutation: [column, mutator, value]. */
export type OvsdbMutation = readonly [string, '+=' | '-=' | '*=' | '/=' | '%=' | 'insert' | 'delete', OvsdbValue];
/** One operation of a transaction; builders below make the common ones. */
export type OvsdbOperation = { op: string } & Record<string, unknown>;
/** One entry of a transact reply. */
export interface OvsdbOpResult {
  uuid?: UuidRef;
  rows?: Record<string, unknown>[];
  count?: number;
  error?: string;
  details?: string;
}

/** An OVSDB set value. */
export const set = (...atoms: OvsdbAtom[]): OvsdbValue => ['set', atoms];
/** An OVSDB map value from a plain record. */
export const map = (entries: Record<string, string>): OvsdbValue => ['map', Object.entries(entries)];
/** A reference to an existing row by UUID. */
export const uuid = (id: string): UuidRef => ['uuid', id];
/** A reference to a row inserted in the same transaction under `uuid-name`. */
export const namedUuid = (name: string): NamedUuidRef => ['named-uuid', name];

/** Builders for the operations berth uses; the objects pass to transact() unchanged. */
export const op = {
  /** Inserts one row; `uuidName` lets later operations refer to it. */
  insert(table: string, row: OvsdbRow, uuidName?: string): OvsdbOperation {
    return uuidName ? { op: 'insert', table, row, 'uuid-name': uuidName } : { op: 'insert', table, row };
  },
  /** Reads matching rows (all columns when `columns` is absent). */
  select(table: string, where: readonly OvsdbCondition[], columns?: string[]): OvsdbOperation {
    return columns ? { op: 'select', table, where, columns } : { op: 'select', table, where };
  },
  /** Sets columns of matching rows. */
  update(table: string, where: readonly OvsdbCondition[], row: OvsdbRow): OvsdbOperation {
    return { op: 'update', table, where, row };
  },
  /** Changes columns of matching rows in place (e.g. adds to a set). */
  mutate(table: string, where: readonly OvsdbCondition[], mutations: readonly OvsdbMutation[]): OvsdbOperation {
    return { op: 'mutate', table, where, mutations };
  },
  /** Deletes matching rows. */
  delete(table: string, where: readonly OvsdbCondition[]): OvsdbOperation {
    return { op: 'delete', table, where };
  },
  /** Aborts the transaction unless the matching rows (on `columns`) compare `until` to `rows`; timeout 0 checks once. */
  wait(table: string, where: readonly OvsdbCondition[], columns: string[], until: '==' | '!=', rows: OvsdbRow[], timeout = 0): OvsdbOperation {
    return { op: 'wait', table, where, columns, until, rows, timeout };
  },
  /** Records a note in the database log, for whoever reads ovsdb-tool show-log. */
  comment(comment: string): OvsdbOperation {
    return { op: 'comment', comment };
  },
};

/** A set column as an array (OVSDB sends a one-element set as the bare atom). */
export function setItems(v: unknown): unknown[] {
  if (Array.isArray(v) && v[0] === 'set') return v[1] as unknown[];
  return [v];
}

/** A map column as a record of strings. */
export function mapItems(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v) && v[0] === 'map') for (const [k, val] of v[1] as [unknown, unknown][]) out[String(k)] = String(val);
  return out;
}

/** The UUID string of a ["uuid", id] value. */
export function uuidOf(v: unknown): string {
  if (Array.isArray(v) && v[0] === 'uuid' && typeof v[1] === 'string') return v[1];
  throw new TypeError(`not an OVSDB uuid: ${JSON.stringify(v)}`);
}

/** An optional scalar column (a set of 0 or 1 atoms) as the atom or undefined. */
function optional<T>(v: unknown): T | undefined {
  const items = setItems(v);
  return items.length ? (items[0] as T) : undefined;
}

// ---------------------------------------------------------------------------
// Framing

/**
 * Splits a byte stream of concatenated JSON objects or arrays, cut anywhere,
 * into whole parsed values. ovsdb-server writes values back to back with no
 * delimiter, so the only boundary is where the outermost brace closes; braces
 * inside strings (and escaped quotes) must not count. Structural characters are
 * ASCII, so scanning UTF-8 bytes is safe even when a character is split.
 */
export class JsonStreamSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(private readonly onValue: (value: unknown) => void) {}

  /** Consumes one chunk; throws on bytes that cannot start a JSON object or array. */
  feed(chunk: Buffer): void {
    let start = this.depth > 0 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.depth === 0) {
        if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
        if (c !== 0x7b && c !== 0x5b) throw new Error(`unexpected byte 0x${c.toString(16)} between JSON-RPC messages`);
        this.depth = 1;
        start = i;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) this.inString = true;
      else if (c === 0x7b || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x5d) {
        if (--this.depth === 0) {
          this.parts.push(chunk.subarray(start, i + 1));
          const text = Buffer.concat(this.parts).toString('utf8');
          this.parts = [];
          this.size = 0;
          start = -1;
          this.onValue(JSON.parse(text));
        }
      }
    }
    if (this.depth > 0 && start >= 0) {
      this.parts.push(chunk.subarray(start));
      this.size += chunk.length - start;
      if (this.size > MAX_MESSAGE_BYTES) throw new Error(`a JSON-RPC message exceeds ${MAX_MESSAGE_BYTES} bytes`);
    }
  }
}

// ---------------------------------------------------------------------------
// Errors

/** A transaction the server refused: which operation failed, and why. */
export class OvsdbTransactError extends Error {
  constructor(
    message: string,
    /** the failing operation's index; ops.length for an error found at commit (e.g. referential integrity) */
    readonly index: number,
    /** the RFC 7047 error string ("constraint violation", "timed out", ...) */
    readonly error: string,
    readonly details?: string,
  ) {
    super(message);
    this.name = 'OvsdbTransactError';
  }
}

// ---------------------------------------------------------------------------
// Client

interface Pending {
  label: string;
  timer: NodeJS.Timeout;
  resolve(result: unknown): void;
  reject(err: Error): void;
}

/** A port as berth-ovs adds it. */
export interface PortSpec {
  name: string;
  /** access port on this VLAN (0-4095) */
  vlanTag?: number;
  /** trunk port carrying these VLANs */
  trunks?: number[];
  externalIds?: Record<string, string>;
}

/** An Interface row, as far as berth reads it. */
export interface InterfaceInfo {
  uuid: string;
  name: string;
  type: string;
  /** the OpenFlow port number; absent until vswitchd has opened the device, -1 when it failed */
  ofport?: number;
  /** why vswitchd could not open the device */
  error?: string;
  externalIds: Record<string, string>;
}

/** A Port row on a bridge, with its interfaces. */
export interface PortInfo {
  name: string;
  uuid: string;
  tag?: number;
  trunks: number[];
  externalIds: Record<string, string>;
  interfaces: { name: string; ofport?: number; error?: string }[];
}

/** One connection to ovsdb-server; requests may overlap, replies are matched by id. */
export class OvsdbClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed: Error | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly path: string,
    private readonly timeout: number,
  ) {
    const splitter = new JsonStreamSplitter((msg) => this.onMessage(msg));
    socket.on('data', (chunk: Buffer) => {
      try {
        splitter.feed(chunk);
      } catch (err) {
        this.fail(new Error(`bad reply: ${(err as Error).message}`));
        socket.destroy();
      }
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
    socket.unref(); // only an awaited request keeps the process alive
  }

  /** Connects to ovsdb-server's unix socket; rejects at once when nothing listens there. */
  static connect(socketPath: string = DEFAULT_OVSDB_SOCKET, opts: { timeout?: number } = {}): Promise<OvsdbClient> {
    const timeout = opts.timeout ?? DEFAULT_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const socket = netConnect({ path: socketPath });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`failed to connect to ovsdb "${socketPath}": no connection after ${timeout} ms`));
      }, timeout);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`failed to connect to ovsdb "${socketPath}": ${err.message}`));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new OvsdbClient(socket, socketPath, timeout));
      });
    });
  }

  /** Sends one JSON-RPC request and resolves with its result; rejects on an error reply, a lost connection or the timeout. */
  request(method: string, params: unknown[], label = method): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error(`failed to ${label} on ovsdb "${this.path}": ${this.closed.message}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        if (this.pending.size === 0) this.socket.unref();
        reject(new Error(`failed to ${label} on ovsdb "${this.path}": no reply within ${this.timeout} ms`));
      }, this.timeout);
      this.pending.set(id, { label, timer, resolve, reject });
      this.socket.ref();
      this.socket.write(JSON.stringify({ method, params, id }));
    });
  }

  /** Runs one atomic transaction and returns the per-operation results; rejects naming the first failing operation. */
  async transact(db: string, ops: readonly object[]): Promise<OvsdbOpResult[]> {
    const results = (await this.request('transact', [db, ...ops], `transact on database "${db}"`)) as (OvsdbOpResult | null)[];
    const i = results.findIndex((r) => r !== null && typeof r === 'object' && r.error !== undefined);
    if (i >= 0) {
      const r = results[i]!;
      const what = i < ops.length ? `operation ${i} (${describe(ops[i]!)})` : 'commit';
      const details = r.details ? `: ${r.details}` : '';
      throw new OvsdbTransactError(`failed to transact on database "${db}": ${what} failed: ${r.error}${details}`, i, r.error!, r.details);
    }
    return results as OvsdbOpResult[];
  }

  /** Adds a system interface as a new port on `bridge`, in one transaction that fails whole if the bridge is missing. */
  async addPort(bridge: string, port: PortSpec): Promise<{ portUuid: string; interfaceUuid: string }> {
    const fail = (cause: string) => new Error(`failed to add port "${port.name}" to bridge "${bridge}": ${cause}`);
    if (port.vlanTag !== undefined && port.trunks?.length) throw fail('vlanTag and trunks exclude each other');
    for (const v of [...(port.vlanTag === undefined ? [] : [port.vlanTag]), ...(port.trunks ?? [])]) {
      if (!Number.isInteger(v) || v < 0 || v > 4095) throw fail(`VLAN ${v} is not an integer in 0-4095`);
    }
    const portRow: OvsdbRow = {
      name: port.name,
      interfaces: namedUuid('iface'),
      external_ids: map(port.externalIds ?? {}),
    };
    if (port.vlanTag !== undefined) portRow['tag'] = port.vlanTag;
    if (port.trunks?.length) portRow['trunks'] = set(...port.trunks);
    const byName: OvsdbCondition[] = [['name', '==', bridge]];
    let results: OvsdbOpResult[];
    try {
      results = await this.transact(OPEN_VSWITCH_DB, [
        // Checked first so that a missing bridge aborts before anything is inserted.
        op.wait('Bridge', byName, ['name'], '==', [{ name: bridge }]),
        op.insert('Interface', { name: port.name, type: '' }, 'iface'),
        op.insert('Port', portRow, 'port'),
        op.mutate('Bridge', byName, [['ports', 'insert', set(namedUuid('port'))]]),
        op.comment(`berth: add port ${port.name} to ${bridge}`),
      ]);
    } catch (err) {
      if (err instanceof OvsdbTransactError && err.index === 0) throw fail('no such bridge');
      throw fail((err as Error).message);
    }
    // The wait already guarantees this; a zero count would mean the rows were inserted unreferenced.
    if (results[3]?.count !== 1) throw fail(`the bridge update matched ${results[3]?.count ?? 0} rows`);
    return { interfaceUuid: uuidOf(results[1]?.uuid), portUuid: uuidOf(results[2]?.uuid) };
  }

  /**
   * Removes a port from `bridge`; its Interface rows go with it (only the Port
   * refers to them, so ovsdb-server collects them). Resolves false when there
   * was no such port, so CNI DEL can repeat.
   */
  async deletePort(bridge: string, portName: string): Promise<boolean> {
    const fail = (cause: string) => new Error(`failed to delete port "${portName}" from bridge "${bridge}": ${cause}`);
    let found: OvsdbOpResult[];
    try {
      found = await this.transact(OPEN_VSWITCH_DB, [op.select('Port', [['name', '==', portName]], ['_uuid'])]);
    } catch (err) {
      throw fail((err as Error).message);
    }
    const row = found[0]?.rows?.[0];
    if (!row) return false;
    const portUuid = uuid(uuidOf(row['_uuid']));
    try {
      await this.transact(OPEN_VSWITCH_DB, [
        // The port must still be on this bridge: a name on another bridge is not ours to remove.
        op.wait('Bridge', [['name', '==', bridge], ['ports', 'includes', portUuid]], ['name'], '==', [{ name: bridge }]),
        op.mutate('Bridge', [['name', '==', bridge]], [['ports', 'delete', set(portUuid)]]),
        op.delete('Port', [['_uuid', '==', portUuid]]),
        op.comment(`berth: delete port ${portName} from ${bridge}`),
      ]);
    } catch (err) {
      if (err instanceof OvsdbTransactError && err.index === 0) throw fail('the port is not on this bridge');
      throw fail((err as Error).message);
    }
    return true;
  }

  /** The ports of `bridge` with their interfaces, read in one transaction. */
  async listPorts(bridge: string): Promise<PortInfo[]> {
    let r: OvsdbOpResult[];
    try {
      r = await this.transact(OPEN_VSWITCH_DB, [
        op.select('Bridge', [['name', '==', bridge]], ['ports']),
        op.select('Port', [], ['_uuid', 'name', 'tag', 'trunks', 'external_ids', 'interfaces']),
        op.select('Interface', [], ['_uuid', 'name', 'ofport', 'error']),
      ]);
    } catch (err) {
      throw new Error(`failed to list ports of bridge "${bridge}": ${(err as Error).message}`);
    }
    const br = r[0]?.rows?.[0];
    if (!br) throw new Error(`failed to list ports of bridge "${bridge}": no such bridge`);
    const onBridge = new Set(setItems(br['ports']).map(uuidOf));
    const ifaces = new Map((r[2]?.rows ?? []).map((row) => [uuidOf(row['_uuid']), row]));
    const ports: PortInfo[] = [];
    for (const row of r[1]?.rows ?? []) {
      const id = uuidOf(row['_uuid']);
      if (!onBridge.has(id)) continue;
      const p: PortInfo = {
        name: String(row['name']),
        uuid: id,
        trunks: setItems(row['trunks']) as number[],
        externalIds: mapItems(row['external_ids']),
        interfaces: setItems(row['interfaces']).map((ref) => {
          const i = ifaces.get(uuidOf(ref));
          const out: PortInfo['interfaces'][number] = { name: String(i?.['name'] ?? '') };
          const ofport = optional<number>(i?.['ofport']);
          const error = optional<string>(i?.['error']);
          if (ofport !== undefined) out.ofport = ofport;
          if (error !== undefined) out.error = error;
          return out;
        }),
      };
      const tag = optional<number>(row['tag']);
      if (tag !== undefined) p.tag = tag;
      ports.push(p);
    }
    return ports.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The Interface row named `name`, or null; poll it until vswitchd has assigned an ofport. */
  async getInterface(name: string): Promise<InterfaceInfo | null> {
    let r: OvsdbOpResult[];
    try {
      r = await this.transact(OPEN_VSWITCH_DB, [
        op.select('Interface', [['name', '==', name]], ['_uuid', 'name', 'type', 'ofport', 'error', 'external_ids']),
      ]);
    } catch (err) {
      throw new Error(`failed to get interface "${name}": ${(err as Error).message}`);
    }
    const row = r[0]?.rows?.[0];
    if (!row) return null;
    const info: InterfaceInfo = {
      uuid: uuidOf(row['_uuid']),
      name: String(row['name']),
      type: String(row['type']),
      externalIds: mapItems(row['external_ids']),
    };
    const ofport = optional<number>(row['ofport']);
    const error = optional<string>(row['error']);
    if (ofport !== undefined) info.ofport = ofport;
    if (error !== undefined) info.error = error;
    return info;
  }

  /** Closes the connection; requests still waiting reject. */
  close(): void {
    this.fail(new Error('connection closed by the client'));
    this.socket.destroy();
  }

  private onMessage(msg: unknown): void {
    const m = msg as { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: unknown };
    if (typeof m.method === 'string') {
      // ovsdb-server probes idle connections with echo and drops those that do not answer.
      if (m.method === 'echo') this.socket.write(JSON.stringify({ id: m.id, result: m.params ?? [], error: null }));
      return; // notifications ("update", "locked") are not used by berth
    }
    if (typeof m.id !== 'number') return;
    const p = this.pending.get(m.id);
    if (!p) return; // a reply that arrived after its timeout
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (this.pending.size === 0) this.socket.unref();
    if (m.error !== null && m.error !== undefined) {
      const e = m.error as { error?: string; details?: string } | string;
      const text = typeof e === 'string' ? e : `${e.error ?? JSON.stringify(e)}${e.details ? `: ${e.details}` : ''}`;
      p.reject(new Error(`failed to ${p.label} on ovsdb "${this.path}": ${text}`));
    } else p.resolve(m.result);
  }

  private fail(err: Error): void {
    if (!this.closed) this.closed = err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new Error(`failed to ${p.label} on ovsdb "${this.path}": ${err.message}`));
    }
  }
}

/** "insert Port", "mutate Bridge": enough to find an operation in a long transaction. */
function describe(o: object): string {
  const x = o as { op?: unknown; table?: unknown };
  return [x.op, x.table].filter((s) => typeof s === 'string').join(' ') || 'unknown';
}
