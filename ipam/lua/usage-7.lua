-- The counters as the addresses read now: a hold past its end, which the stored
-- counters count as reserved until a change expires it, counts as free. Writes nothing.
-- KEYS: the 7 pool keys (see lib.lua)
-- ARGV: none
-- Returns {0, allocated, reserved}; {0, 0, 0} while the pool's keys are not there
-- (being created or removed: the registry says whether the pool exists)
local conf, meta = load_pool()
if not conf then return { 0, 0, 0 } end
local now = now_ms()
return { 0, meta.na, meta.nr - count_expired(meta, now) }
