-- Removes a registry entry if it still belongs to the given pool id.
-- KEYS: 1 registry HASH
-- ARGV: 1 name, 2 pool id ('' for any)
-- Returns {0, 1} when removed, {0, 0} when absent or another pool's
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return { 0, 0 } end
if ARGV[2] ~= '' and cjson.decode(raw).id ~= ARGV[2] then return { 0, 0 } end
redis.call('HDEL', KEYS[1], ARGV[1])
return { 0, 1 }
