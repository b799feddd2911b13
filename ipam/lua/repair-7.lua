-- Applies fixes from the consistency check (ipam/check.ts). Each is guarded:
-- applied only if the records still bear it out, since the pool may have
-- changed between the check's snapshot and this script.
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
    local sep = string.find(f.key, '\0', 1, true)
    local owner, h = string.sub(f.key, 1, sep - 1), string.sub(f.key, sep + 1)
    local rec = get_addr(h)
    local holds = rec and not rec.corrupt and rec.s == 'r' and rec.o == owner
    if f.present and holds then
      redis.call('ZADD', K_HELD, 0, f.key)
      applied = applied + 1
    elseif not f.present and not holds then
      redis.call('ZREM', K_HELD, f.key)
      applied = applied + 1
    end
  elseif f.kind == 'expiry' then
    local rec = get_addr(f.key)
    local hold = rec and not rec.corrupt and rec.s == 'r' and rec.u
    if v and hold and rec.u == v then
      redis.call('ZADD', K_EXP, istr(v), f.key)
      applied = applied + 1
    elseif not v and not hold then
      redis.call('ZREM', K_EXP, f.key)
      applied = applied + 1
    end
  elseif f.kind == 'free' then
    local used = redis.call('HEXISTS', K_ADDR, f.key) == 1
    if not v and (used or not assignable(conf, f.key)) then
      redis.call('ZREM', K_FREE, f.key)
      applied = applied + 1
    elseif v and not used then
      redis.call('ZADD', K_FREE, istr(v), f.key)
      applied = applied + 1
    end
  elseif f.kind == 'meta' and f.key == 'gen' then
    meta.gen = math.max(meta.gen, tonumber(v))
    applied = applied + 1
  elseif f.kind == 'meta' then
    local na, nr = 0, 0
    for _, raw in ipairs(redis.call('HVALS', K_ADDR)) do
      local ok, rec = pcall(cjson.decode, raw)
      if ok and type(rec) == 'table' then
        if rec.s == 'a' then na = na + 1 elseif rec.s == 'r' then nr = nr + 1 end
      end
    end
    meta.na, meta.nr = na, nr
    applied = applied + 1
  end
end
-- the expiry index may have gained entries: the lower bound must not skip them
local first = redis.call('ZRANGE', K_EXP, 0, 0, 'WITHSCORES')
meta.xmin = first[2] and tonumber(first[2]) or 9007199254740991
save_meta(meta)
return { 0, applied }
