// berth-ipam's handlers: fixed IPs from a berth pool. Loaded only for a valid
// request, since it brings in the store.
import { formatIp, parseCidr, parseIp } from '../../ipam/address.js';
import { isBerthError } from '../../ipam/errors.js';
import { withStore as withStoreAt } from '../../ipam/open-store.js';
import type { PoolConfig } from '../../ipam/pool-config.js';
import type { Store } from '../../ipam/model.js';
import { redact } from '../../ipam/store-url.js';
import { BERTH_CODES, CNI_CODES, CniError, toCniError } from '../errors.js';
import type { CniResult } from '../result.js';
import { validAttachments, type Plugin, type Request } from '../skel.js';
import type { IpamConfig } from './config.js';

function withStore<T>(req: Request, conf: IpamConfig, fn: (store: Store) => Promise<T>): Promise<T> {
  const warn = (m: string) => req.log.warn({ store: redact(conf.store) }, m);
  return withStoreAt(conf.store, { redisClient: 'resp', warn }, fn, (err) => isBerthError(err) || err instanceof CniError);
}

/** The IPAM result for an address of a pool: address/prefix, gateway, routes, DNS. */
export function ipamResult(pool: PoolConfig, hex: string): CniResult {
  const prefix = pool.subnet.split('/')[1];
  const ip: CniResult['ips'] = [{ address: `${formatIp(hex)}/${prefix}` }];
  if (pool.gateway) ip[0]!.gateway = formatIp(pool.gateway);
  const result: CniResult = { ips: ip };
  if (pool.routes.length > 0) result.routes = pool.routes.map((r) => (r.gw ? { dst: r.dst, gw: r.gw } : { dst: r.dst }));
  if (Object.keys(pool.dns).length > 0) result.dns = { ...pool.dns };
  return result;
}

function requestedFor(pool: PoolConfig, conf: IpamConfig): string | undefined {
  const mine = conf.requested.filter((r) => r.family === pool.family);
  if (mine.length > 1) {
    throw new CniError(CNI_CODES.INVALID_CONFIG, `berth-ipam hands out one address per pool; ${mine.map((r) => r.text).join(', ')} were requested from pool "${pool.name}"`);
  }
  return mine[0]?.hex;
}

export const plugin: Plugin<IpamConfig> = {
  async add(req, conf) {
    return withStore(req, conf, async (store) => {
      const pool = await store.getPool(conf.pool);
      const ip = requestedFor(pool, conf);
      for (const c of req.conflicts ?? []) {
        // found in use on the wire by the main plugin's probe: withdrawn from this attachment, reserved with a note
        const hex = parseIp(c.ip, 'conflict').hex;
        const note = `in use on the network by ${c.mac}: found by ${req.containerId}/${req.ifname} on ${conf.host}`;
        await store.conflict(conf.pool, hex, { containerId: req.containerId, ifname: req.ifname, note, actor: `cni@${conf.host}` });
        req.log.warn({ pool: conf.pool, ip: c.ip, mac: c.mac }, 'address in use on the network: reserved, another taken');
        if (hex === ip) {
          throw new CniError(BERTH_CODES.ADDRESS_IN_USE, `${c.ip} was requested and is in use on the network by ${c.mac}; it is now reserved with a note (berth ip show ${conf.pool} ${c.ip}) until an admin unreserves it`);
        }
      }
      const a = await store.allocate(conf.pool, {
        containerId: req.containerId,
        ifname: req.ifname,
        owner: conf.owner,
        ...(ip !== undefined ? { ip } : {}),
        host: conf.host,
        ...(conf.hostId ? { hostId: conf.hostId } : {}),
        network: String(req.config.name),
        actor: `cni@${conf.host}`,
      });
      req.log.info({ pool: conf.pool, ip: formatIp(a.ip), owner: a.owner, gen: a.gen, existing: a.existing }, 'allocated');
      return ipamResult(pool, a.ip);
    });
  },

  async del(req, conf) {
    try {
      await withStore(req, conf, async (store) => {
        const r = await store.release(conf.pool, { containerId: req.containerId, ifname: req.ifname, actor: `cni@${conf.host}` });
        if (r.released) req.log.info({ pool: conf.pool, ip: formatIp(r.ip!), state: r.state }, 'released');
      });
    } catch (err) {
      // Nothing to release from a pool that is gone: DEL succeeds, and it is no
      // fault (an ADD for a missing pool is undone by a DEL that lands here).
      if (isBerthError(err, 'POOL_NOT_FOUND')) {
        req.log.debug({ pool: conf.pool }, 'pool does not exist; nothing to release');
        return;
      }
      throw err;
    }
  },

  async check(req, conf) {
    if (!req.prevResult) throw new CniError(CNI_CODES.INVALID_CONFIG, 'CHECK needs prevResult');
    await withStore(req, conf, async (store) => {
      const pool = await store.getPool(conf.pool);
      const subnet = parseCidr(pool.subnet, 'subnet');
      const mine = (req.prevResult!.ips ?? []).filter((ip) => {
        const addr = ip.address.split('/')[0]!;
        return addr.includes(':') === (pool.family === 6) && (() => {
          try {
            const hex = parseCidr(ip.address, 'prevResult', true).hex;
            return hex >= subnet.first && hex <= subnet.last;
          } catch {
            return false;
          }
        })();
      });
      if (mine.length === 0) throw new CniError(BERTH_CODES.CHECK_FAILED, `prevResult holds no address of pool "${conf.pool}" (${pool.subnet})`);
      for (const ip of mine) {
        const hex = parseCidr(ip.address, 'prevResult', true).hex;
        const info = await store.getAddress(conf.pool, hex);
        if (info.state !== 'allocated' || info.containerId !== req.containerId || info.ifname !== req.ifname) {
          const holder = info.state === 'allocated' ? ` to container ${info.containerId} interface ${info.ifname}` : '';
          throw new CniError(BERTH_CODES.CHECK_FAILED, `${formatIp(hex)} is ${info.state}${holder}, not allocated to ${req.containerId}/${req.ifname}`);
        }
      }
    });
  },

  async gc(req, conf) {
    const valid = validAttachments(req.config);
    const network = String(req.config.name);
    const errors: string[] = [];
    const others = new Map<string, number>();
    let released = 0;
    await withStore(req, conf, async (store) => {
      let addresses;
      try {
        addresses = await store.listAddresses(conf.pool);
      } catch (err) {
        if (isBerthError(err, 'POOL_NOT_FOUND')) return;
        throw err;
      }
      for (const a of addresses) {
        if (a.state !== 'allocated' || a.host !== conf.host || a.network !== network) continue;
        // a host of the same name with another identity: not ours to collect (a record of a name alone predates identities)
        if (a.hostId !== undefined && a.hostId !== conf.hostId) {
          others.set(a.hostId, (others.get(a.hostId) ?? 0) + 1);
          continue;
        }
        if (valid.has(`${a.containerId}/${a.ifname}`)) continue;
        try {
          const r = await store.release(conf.pool, { containerId: a.containerId!, ifname: a.ifname!, gen: a.gen!, actor: `cni-gc@${conf.host}` });
          if (r.released) released++;
        } catch (err) {
          // keep going: one stuck attachment must not keep the others leaked
          errors.push(`${formatIp(a.ip)} (${a.containerId}/${a.ifname}): ${(err as Error).message}`);
        }
      }
    });
    for (const [id, n] of others) {
      req.log.warn({ pool: conf.pool, host: conf.host, hostId: id, addresses: n }, `another machine (id ${id}) also calls itself "${conf.host}": its ${n} allocations are left alone; give each host its own name`);
    }
    req.log.info({ pool: conf.pool, released, errors: errors.length }, 'gc');
    if (errors.length > 0) throw new CniError(BERTH_CODES.GC_INCOMPLETE, `gc released ${released}, failed on ${errors.length}: ${errors.join('; ')}`);
  },

  async status(req, conf) {
    try {
      await withStore(req, conf, async (store) => {
        const u = await store.usage(conf.pool);
        if (BigInt(u.allocated + u.reserved) >= BigInt(u.capacity)) {
          throw new CniError(CNI_CODES.NOT_AVAILABLE, `pool "${conf.pool}" is exhausted (${u.allocated} allocated, ${u.reserved} reserved of ${u.capacity})`);
        }
      });
    } catch (err) {
      if (err instanceof CniError) throw err;
      throw new CniError(CNI_CODES.NOT_AVAILABLE, toCniError(err).message);
    }
  },
};
