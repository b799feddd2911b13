-- Creates a pool's keys; idempotent for the same pool id, and wipes leftovers of an older pool of the name.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV: 1 pool id, 2 packed config "HOLD HMAX EXC RNG", 3 first cursor (hex), 4 the pool config JSON
--       (kept with the keys: the pool's own record of itself, from which ipam check can register it again)
-- Returns {0, 1} when created, {0, 0} when it already existed
if redis.call('HGET', K_POOL, 'id') == ARGV[1] then
  redis.call('HSET', K_POOL, 'id', ARGV[1])
  return { 0, 0 }
end
redis.call('DEL', K_POOL, K_ADDR, K_ATT, K_HELD, K_EXP, K_FREE, K_HIST)
redis.call('HSET', K_POOL, 'id', ARGV[1], 'c', ARGV[2], 'm', ARGV[3] .. ' 0 0 0 9007199254740991', 'conf', ARGV[4])
return { 0, 1 }
