-- Removes a pool's keys; refuses while addresses are allocated unless forced.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV: 1 "1" to force, 2 pool id ('' for any)
-- Returns {0, allocated} or {negative code, details...}
local conf, meta = load_pool()
if conf then
  if ARGV[2] ~= '' and redis.call('HGET', K_POOL, 'id') ~= ARGV[2] then return { 0, 0 } end
  if meta.na > 0 and ARGV[1] ~= '1' then return { E_POOL_IN_USE, istr(meta.na) } end
end
redis.call('DEL', K_POOL, K_ADDR, K_ATT, K_HELD, K_EXP, K_FREE, K_HIST)
return { 0, meta and istr(meta.na) or '0' }
