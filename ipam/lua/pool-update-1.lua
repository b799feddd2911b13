-- Replaces a registry entry if it still belongs to the given pool id: marks a
-- pool ready after its keys exist, or removing before they go (see redis-store.ts).
-- KEYS: 1 registry HASH name -> JSON {id, f, l, conf, st?, at?}
-- ARGV: 1 name, 2 pool id, 3 new entry JSON (same id)
-- Returns {0, 1} when replaced, {0, 0} when the entry is absent or another pool's
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw or cjson.decode(raw).id ~= ARGV[2] then return { 0, 0 } end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return { 0, 1 }
