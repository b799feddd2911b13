-- Allocates an address to an attachment; idempotent per container id + interface.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV: 1 container id, 2 interface, 3 owner, 4 requested ip (hex) or '', 5 actor or '',
--       6 host or '', 7 network or ''
-- Returns {0, ip, gen, owner, existing (0|1)} or {negative code, details...}
local req = { cid = ARGV[1], ifname = ARGV[2], owner = ARGV[3] }
if ARGV[4] ~= '' then req.ip = ARGV[4] end
if ARGV[5] ~= '' then req.actor = ARGV[5] end
local conf, meta, now = open_pool()
if not conf then return { E_POOL_NOT_FOUND } end

local key = req.cid .. '/' .. req.ifname
local cur = redis.call('HGET', K_ATT, key)
if cur then
  local rec = get_addr(cur)
  if rec and rec.corrupt then
    save_meta(meta)
    return { E_CORRUPT, cur }
  end
  if rec and rec.s == 'a' and rec.c == req.cid and rec.i == req.ifname then
    save_meta(meta)
    if req.ip and req.ip ~= cur then return { E_ATT_CONFLICT, key, cur, req.ip } end
    return { 0, cur, istr(rec.g or 0), rec.o or req.owner, 1 }
  end
  redis.call('HDEL', K_ATT, key)
end

local h
local old
local hint = {}
if req.ip then
  h = req.ip
  local refused
  old, refused = named_addr(conf, meta, h)
  if refused then return refused end
  local st = state_of(old, now)
  if st == 'allocated' then
    save_meta(meta)
    return { E_ALLOCATED, h, old.o or '', old.c or '' }
  end
  if st == 'reserved' and old.o ~= req.owner then
    save_meta(meta)
    return { E_RESERVED, h, old.o or '' }
  end
else
  h, old = first_held(req.owner)
  if not h then
    -- both of these checked that h has no record; the cursor also that it is not in the free set
    h = next_from_cursor(conf, meta)
    if h then hint.notfree = true else h = oldest_free(conf) end
  end
  if not h then
    save_meta(meta)
    return { E_EXHAUSTED, istr(meta.na), istr(meta.nr) }
  end
end

meta.gen = meta.gen + 1
local rec = { s = 'a', o = req.owner, c = req.cid, i = req.ifname, g = meta.gen, t = now }
if ARGV[6] ~= '' then rec.h = ARGV[6] end
if ARGV[7] ~= '' then rec.w = ARGV[7] end
-- an admin reservation for this owner comes back when the attachment goes
if old and old.s == 'r' and not old.u and old.o == req.owner then
  rec.p = 1
  rec.n = old.n
end
put_record(h, old, rec, meta, hint)
hist(meta, now, 'allocate', h, rec, req)
save_meta(meta)
return { 0, h, istr(meta.gen), req.owner, 0 }
