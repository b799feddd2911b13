-- Allocates an address to an attachment; idempotent per container id + interface.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV[1]: JSON {cid, ifname, owner, ip? (hex), actor?}
-- Returns {0, ip, gen, owner, existing (0|1)} or {negative code, details...}
local req = cjson.decode(ARGV[1])
local conf, meta = load_pool()
if not conf then return { E_POOL_NOT_FOUND } end
local now = now_ms()
expire_holds(meta, now, EXPIRE_BATCH)

local key = req.cid .. '/' .. req.ifname
local cur = redis.call('HGET', K_ATT, key)
if cur then
  local rec = get_addr(cur)
  if rec and rec.s == 'a' and rec.c == req.cid and rec.i == req.ifname then
    save_meta(meta)
    if req.ip and req.ip ~= cur then return { E_ATT_CONFLICT, key, cur, req.ip } end
    return { 0, cur, istr(rec.g or 0), rec.o or req.owner, 1 }
  end
  redis.call('HDEL', K_ATT, key)
end

local h
if req.ip then
  h = req.ip
  if not assignable(conf, h) then
    save_meta(meta)
    return { E_NOT_IN_POOL, h }
  end
  local rec = get_addr(h)
  local st = state_of(rec, now)
  if st == 'allocated' then
    save_meta(meta)
    return { E_ALLOCATED, h, rec.o or '', rec.c or '' }
  end
  if st == 'reserved' and rec.o ~= req.owner then
    save_meta(meta)
    return { E_RESERVED, h, rec.o or '' }
  end
else
  h = first_held(req.owner) or next_from_cursor(conf, meta) or oldest_free(conf)
  if not h then
    save_meta(meta)
    return { E_EXHAUSTED, istr(meta.na), istr(meta.nr) }
  end
end

local old = get_addr(h)
meta.gen = meta.gen + 1
local rec = { s = 'a', o = req.owner, c = req.cid, i = req.ifname, g = meta.gen, t = now }
-- an admin reservation for this owner comes back when the attachment goes
if old and old.s == 'r' and not old.u and old.o == req.owner then
  rec.p = 1
  rec.n = old.n
end
put_record(h, old, rec, meta)
hist(meta, now, 'allocate', h, rec, req)
save_meta(meta)
return { 0, h, istr(meta.gen), req.owner, 0 }
