-- Applies guarded fixes from the consistency check (ipam/check.ts): each one
-- only if the current value is still what the check saw.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV[1]: JSON list of Fix (see ipam/model.ts)
-- Returns {0, number applied}
local fixes = cjson.decode(ARGV[1])
local conf, meta = load_pool()
if not conf then return { E_POOL_NOT_FOUND } end
local applied = 0
for _, f in ipairs(fixes) do
  local v = f.value
  if v == cjson.null then v = nil end
  if f.kind == 'att' or f.kind == 'addr' then
    local key = f.kind == 'att' and K_ATT or K_ADDR
    local cur = redis.call('HGET', key, f.key)
    local expect = f.expect
    if expect == cjson.null then expect = false end
    if cur == expect then
      if v then redis.call('HSET', key, f.key, v) else redis.call('HDEL', key, f.key) end
      applied = applied + 1
    end
  elseif f.kind == 'held' then
    if f.present then redis.call('ZADD', K_HELD, 0, f.key) else redis.call('ZREM', K_HELD, f.key) end
    applied = applied + 1
  elseif f.kind == 'expiry' or f.kind == 'free' then
    local key = f.kind == 'expiry' and K_EXP or K_FREE
    if v then redis.call('ZADD', key, istr(v), f.key) else redis.call('ZREM', key, f.key) end
    applied = applied + 1
  elseif f.kind == 'meta' and f.key == 'gen' then
    meta.gen = math.max(meta.gen, tonumber(v))
    applied = applied + 1
  elseif f.kind == 'meta' then
    local na, nr = 0, 0
    for _, raw in ipairs(redis.call('HVALS', K_ADDR)) do
      if cjson.decode(raw).s == 'a' then na = na + 1 else nr = nr + 1 end
    end
    meta.na, meta.nr = na, nr
    applied = applied + 1
  end
end
save_meta(meta)
return { 0, applied }
