-- Ends a reservation (admin or hold), or unpins an allocated address.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV[1]: JSON {ip (hex), actor?}
-- Returns {0, record JSON or ''} or {negative code, details...}
local req = cjson.decode(ARGV[1])
local conf, meta, now = open_pool()
if not conf then return { E_POOL_NOT_FOUND } end

local h = req.ip
local old = get_addr(h)
if old and old.corrupt then
  save_meta(meta)
  return { E_CORRUPT, h }
end
local st = state_of(old, now)
if st == 'allocated' and old.p then
  local rec = cjson.decode(cjson.encode(old))
  rec.p = nil
  rec.n = nil
  put_record(h, old, rec, meta)
  hist(meta, now, 'unpin', h, rec, req)
  save_meta(meta)
  return { 0, cjson.encode(rec) }
end
if st ~= 'reserved' then
  save_meta(meta)
  return { E_NOT_RESERVED, h, st }
end
put_record(h, old, nil, meta)
redis.call('ZADD', K_FREE, old.u and istr(old.t) or '0', h)
hist(meta, now, 'unreserve', h, old, req)
save_meta(meta)
return { 0, '' }
