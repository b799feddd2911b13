-- Releases by attachment (idempotent) or by address; a stale generation is refused.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV: 1 container id, 2 interface (both '' to release by address), 3 ip (hex) or '',
--       4 generation the caller expects or '', 5 actor or ''
-- Returns {0, 0} when nothing was held, {0, 1, ip, state}, or {negative code, details...}
local req = {}
if ARGV[1] ~= '' then
  req.cid = ARGV[1]
  req.ifname = ARGV[2]
else
  req.ip = ARGV[3]
end
if ARGV[4] ~= '' then req.gen = tonumber(ARGV[4]) end
if ARGV[5] ~= '' then req.actor = ARGV[5] end
local conf, meta, now = open_pool()
if not conf then return { E_POOL_NOT_FOUND } end

local h, key
if req.cid then
  key = req.cid .. '/' .. req.ifname
  h = redis.call('HGET', K_ATT, key)
  if not h then
    save_meta(meta)
    return { 0, 0 }
  end
else
  h = req.ip
end
local rec = get_addr(h)
if rec and rec.corrupt then
  save_meta(meta)
  return { E_CORRUPT, h }
end
if not rec or rec.s ~= 'a' or (key and att_key(rec) ~= key) then
  save_meta(meta)
  if key then
    redis.call('HDEL', K_ATT, key)
    return { 0, 0 }
  end
  return { E_NOT_ALLOCATED, h, state_of(rec, now) }
end
if req.gen and rec.g ~= req.gen then
  save_meta(meta)
  return { E_STALE_GEN, h, istr(rec.g or 0), istr(req.gen) }
end

local nxt = nil
if rec.p then
  nxt = { s = 'r', t = now, o = rec.o, n = rec.n }
elseif conf.hold > 0 and rec.o then
  nxt = { s = 'r', o = rec.o, c = rec.c, g = rec.g, t = now, u = now + conf.hold * 1000 }
end
put_record(h, rec, nxt, meta, { att = key ~= nil })
if not nxt then redis.call('ZADD', K_FREE, istr(now), h) end
hist(meta, now, 'release', h, rec, req)
save_meta(meta)
return { 0, 1, h, nxt and 'reserved' or 'free' }
