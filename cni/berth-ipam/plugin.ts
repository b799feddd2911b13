// berth-ipam's handlers: fixed IPs from a berth pool. Loaded only for a valid
// request, since it brings in the store.
import { formatIp, parseCidr, parseIp } from '../../core/address.js';
import { isBerthError } from '../../core/errors.js';
import { withStore as withStoreAt } from '../../ipam/open-store.js';
import type { PoolConfig } from '../../ipam/pool-config.js';
import type { Allocation, Store } from '../../ipam/model.js';
import { redact } from '../../ipam/store-url.js';
import { BERTH_CODES, CNI_CODES, CniError, toCniError } from '../errors.js';
import type { CniResult } from '../result.js';
import { validAttachments, type Plugin, type Request } from '../skel.js';
import type { IpamConfig } from './config.js';
import { inSubnet, mergeResults, planFamilies, type FamilyPlan } from './pools.js';

function withStore<T>(req: Request, conf: IpamConfig, fn: (store: Store) => Promise<T>): Promise<T> {
  const warn = (m: string) => req.log.warn({ store: redact(conf.store) }, m);
  return withStoreAt(conf.store, { redisClient: 'resp', warn }, fn, (err) => isBerthError(err) || err instanceof CniError, req.stores);
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

/** The network's pools, read from the store, in the order the config lists them. */
function poolsOf(store: Store, conf: IpamConfig): Promise<PoolConfig[]> {
  return Promise.all(conf.pools.map((name) => store.getPool(name)));
}

/**
 * Allocates one address of a family: from its pools in order, the next one
 * when a pool is exhausted (an address asked for comes only from the pools
 * holding it).
 */
async function allocateFamily(store: Store, req: Request, conf: IpamConfig, plan: FamilyPlan): Promise<{ pool: PoolConfig; allocation: Allocation }> {
  for (const [i, pool] of plan.pools.entries()) {
    try {
      const allocation = await store.allocate(pool.name, {
        containerId: req.containerId,
        ifname: req.ifname,
        owner: conf.owner,
        ...(plan.ip !== undefined ? { ip: plan.ip } : {}),
        host: conf.host,
        ...(conf.hostId ? { hostId: conf.hostId } : {}),
        network: String(req.config.name),
        actor: `cni@${conf.host}`,
      });
      return { pool, allocation };
    } catch (err) {
      if (isBerthError(err, 'POOL_EXHAUSTED') && i + 1 < plan.pools.length) {
        req.log.info({ pool: pool.name, next: plan.pools[i + 1]!.name }, 'pool exhausted: taking the next');
        continue;
      }
      throw err;
    }
  }
  throw new Error('unreachable: a family plan has at least one pool');
}

export const plugin: Plugin<IpamConfig> = {
  async add(req, conf) {
    return withStore(req, conf, async (store) => {
      const pools = await poolsOf(store, conf);
      const plans = planFamilies(pools, conf.requested);
      for (const c of req.conflicts ?? []) {
        // found in use on the wire by the main plugin's probe: withdrawn from this attachment, reserved with a note
        const hex = parseIp(c.ip, 'conflict').hex;
        const pool = pools.find((p) => inSubnet(p, hex));
        if (!pool) continue;
        const note = `in use on the network by ${c.mac}: found by ${req.containerId}/${req.ifname} on ${conf.host}`;
        await store.conflict(pool.name, hex, { containerId: req.containerId, ifname: req.ifname, note, actor: `cni@${conf.host}` });
        req.log.warn({ pool: pool.name, ip: c.ip, mac: c.mac }, 'address in use on the network: reserved, another taken');
        if (plans.some((p) => p.ip === hex)) {
          throw new CniError(BERTH_CODES.ADDRESS_IN_USE, `${c.ip} was requested and is in use on the network by ${c.mac}; it is now reserved with a note (berth ip show ${pool.name} ${c.ip}) until an admin unreserves it`);
        }
      }
      // both families, or neither: what this call allocated is released when a later family fails
      const got: Array<{ pool: PoolConfig; allocation: Allocation }> = [];
      try {
        for (const plan of plans) got.push(await allocateFamily(store, req, conf, plan));
      } catch (err) {
        for (const g of got.filter((x) => !x.allocation.existing)) {
          await store
            .release(g.pool.name, { containerId: req.containerId, ifname: req.ifname, gen: g.allocation.gen, actor: `cni@${conf.host}` })
            .catch((e: Error) => req.log.error({ pool: g.pool.name, err: e.message }, 'failed to release the address of a failed ADD'));
        }
        throw err;
      }
      for (const { pool, allocation: a } of got) {
        req.log.info({ pool: pool.name, ip: formatIp(a.ip), owner: a.owner, gen: a.gen, existing: a.existing }, 'allocated');
      }
      return mergeResults(got.map((g) => ipamResult(g.pool, g.allocation.ip)));
    });
  },

  async del(req, conf) {
    await withStore(req, conf, async (store) => {
      // every pool of the list: the attachment may hold an address of any of them
      await Promise.all(
        conf.pools.map(async (pool) => {
          try {
            const r = await store.release(pool, { containerId: req.containerId, ifname: req.ifname, actor: `cni@${conf.host}` });
            if (r.released) req.log.info({ pool, ip: formatIp(r.ip!), state: r.state }, 'released');
          } catch (err) {
            // Nothing to release from a pool that is gone: DEL succeeds, and it is no
            // fault (an ADD for a missing pool is undone by a DEL that lands here).
            if (!isBerthError(err, 'POOL_NOT_FOUND')) throw err;
            req.log.debug({ pool }, 'pool does not exist; nothing to release');
          }
        }),
      );
    });
  },

  async check(req, conf) {
    if (!req.prevResult) throw new CniError(CNI_CODES.INVALID_CONFIG, 'CHECK needs prevResult');
    await withStore(req, conf, async (store) => {
      const pools = await poolsOf(store, conf);
      const mine = (req.prevResult!.ips ?? []).flatMap((ip) => {
        let hex: string;
        try {
          hex = parseCidr(ip.address, 'prevResult', true).hex;
        } catch {
          return [];
        }
        const pool = pools.find((p) => inSubnet(p, hex));
        return pool ? [{ pool, hex }] : [];
      });
      if (mine.length === 0) throw new CniError(BERTH_CODES.CHECK_FAILED, `prevResult holds no address of ${pools.map((p) => `pool "${p.name}" (${p.subnet})`).join(' or ')}`);
      for (const { pool, hex } of mine) {
        const info = await store.getAddress(pool.name, hex);
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
      for (const pool of conf.pools) {
        let addresses;
        try {
          addresses = await store.listAddresses(pool);
        } catch (err) {
          if (isBerthError(err, 'POOL_NOT_FOUND')) continue;
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
            const r = await store.release(pool, { containerId: a.containerId!, ifname: a.ifname!, gen: a.gen!, actor: `cni-gc@${conf.host}` });
            if (r.released) released++;
          } catch (err) {
            // keep going: one stuck attachment must not keep the others leaked
            errors.push(`${formatIp(a.ip)} (${a.containerId}/${a.ifname}): ${(err as Error).message}`);
          }
        }
      }
    });
    for (const [id, n] of others) {
      req.log.warn({ pools: conf.pools, host: conf.host, hostId: id, addresses: n }, `another machine (id ${id}) also calls itself "${conf.host}": its ${n} allocations are left alone; give each host its own name`);
    }
    req.log.info({ pools: conf.pools, released, errors: errors.length }, 'gc');
    if (errors.length > 0) throw new CniError(BERTH_CODES.GC_INCOMPLETE, `gc released ${released}, failed on ${errors.length}: ${errors.join('; ')}`);
  },

  async status(req, conf) {
    try {
      await withStore(req, conf, async (store) => {
        // ADD would fail when every pool of a family is exhausted
        const usage = await Promise.all(conf.pools.map((name) => store.usage(name)));
        for (const family of new Set(usage.map((u) => u.conf.family))) {
          const mine = usage.filter((u) => u.conf.family === family);
          if (mine.every((u) => BigInt(u.allocated + u.reserved) >= BigInt(u.capacity))) {
            const what = mine.map((u) => `pool "${u.conf.name}" (${u.allocated} allocated, ${u.reserved} reserved of ${u.capacity})`).join(', ');
            throw new CniError(CNI_CODES.NOT_AVAILABLE, `no IPv${family} address left: ${what} ${mine.length === 1 ? 'is' : 'are'} exhausted`);
          }
        }
      });
    } catch (err) {
      if (err instanceof CniError) throw err;
      throw new CniError(CNI_CODES.NOT_AVAILABLE, toCniError(err).message);
    }
  },
};
