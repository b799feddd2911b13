-- Records that an address was found in use on the wire by someone the pool
-- does not know (engine.ts conflict): an allocation of the attachment that
-- found it is withdrawn, the address reserved for no one with the note;
-- otherwise the history alone records it.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV[1]: JSON {ip (hex), containerId?, ifname?, note, actor?}
-- Returns {0, record JSON or ''} or {negative code, details...}
local req = cjson.decode(ARGV[1])
local conf, meta, now = open_pool()
if not conf then return { E_POOL_NOT_FOUND } end

local h = req.ip
local old, refused = named_addr(conf, meta, h)
if refused then return refused end
local mine = req.containerId and old and old.s == 'a' and old.c == req.containerId and old.i == req.ifname
if not mine then
  hist(meta, now, 'conflict', h, old or {}, req)
  save_meta(meta)
  return { 0, old and cjson.encode(old) or '' }
end
local rec = { s = 'r', t = now, n = req.note }
put_record(h, old, rec, meta)
hist(meta, now, 'conflict', h, old, req)
save_meta(meta)
return { 0, cjson.encode(rec) }
