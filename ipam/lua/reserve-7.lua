-- An admin reservation, optionally for an owner; reserving an allocated address for its owner pins it.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV[1]: JSON {ip (hex), owner?, note?, actor?}
-- Returns {0, record JSON} or {negative code, details...}
local req = cjson.decode(ARGV[1])
local conf, meta, now = open_pool()
if not conf then return { E_POOL_NOT_FOUND } end

local h = req.ip
local old, refused = named_addr(conf, meta, h)
if refused then return refused end
local rec
if state_of(old, now) == 'allocated' then
  if not req.owner or req.owner ~= old.o then
    save_meta(meta)
    return { E_ALLOCATED, h, old.o or '', old.c or '' }
  end
  rec = cjson.decode(cjson.encode(old))
  rec.p = 1
  if req.note then rec.n = req.note end
  put_record(h, old, rec, meta)
  hist(meta, now, 'pin', h, rec, req)
else
  rec = { s = 'r', t = now, o = req.owner, n = req.note }
  put_record(h, old, rec, meta)
  hist(meta, now, 'reserve', h, rec, req)
end
save_meta(meta)
return { 0, cjson.encode(rec) }
