-- Creates a pool's keys; idempotent for the same pool id, and wipes leftovers of an older pool of the name.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV: 1 conf JSON, 2 pool id, 3 first cursor (hex), 4 history length cap
-- Returns {0, 1} when created, {0, 0} when it already existed
if redis.call('HGET', K_POOL, 'id') == ARGV[2] then return { 0, 0 } end
redis.call('DEL', K_POOL, K_ADDR, K_ATT, K_HELD, K_EXP, K_FREE, K_HIST)
redis.call('HSET', K_POOL, 'conf', ARGV[1], 'id', ARGV[2], 'cursor', ARGV[3], 'gen', '0', 'na', '0', 'nr', '0', 'hmax', ARGV[4])
return { 0, 1 }
