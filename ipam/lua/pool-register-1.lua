-- Registers a pool name and subnet in the cluster-wide registry, refusing a
-- taken name or an overlapping subnet in one atomic step.
-- KEYS: 1 registry HASH name -> JSON {id, f (first hex), l (last hex), conf}
-- ARGV: 1 name, 2 entry JSON
-- Returns {0} or {-10} (name taken) or {-11, other name, other subnet}
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return { -10 } end
local mine = cjson.decode(ARGV[2])
local vals = redis.call('HVALS', KEYS[1])
for _, raw in ipairs(vals) do
  local other = cjson.decode(raw)
  if #other.f == #mine.f and mine.f <= other.l and other.f <= mine.l then
    return { -11, other.conf.name, other.conf.subnet }
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return { 0 }
