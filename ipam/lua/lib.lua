-- Shared prelude, prepended to every pool script (scripts cannot include one
-- another). It mirrors ipam/engine.ts: the same steps over the same structures.
--
-- KEYS (every pool script, one hash tag so they share a slot):
--   1 pool   HASH  id;
--                  c = "HOLD HMAX EXC RNG": hold seconds, history cap, excluded ",hex,...,",
--                      ranges "first-last,..." (the pool config as scripts read it);
--                  m = "CURSOR GEN NA NR XMIN": next address ('-' once walked), last
--                      generation, allocated, reserved, and a lower bound of the hold
--                      ends that lets most calls skip the expiry scan.
--                  Two packed fields: each reply element crossing into Lua costs more
--                  than parsing it (measured: a 9-field HMGET took 7.5 us).
--   2 addr   HASH  hex -> record JSON (see AddrRecord in ipam/model.ts)
--   3 att    HASH  "containerId/ifname" -> hex
--   4 held   ZSET  (score 0) "owner\0hex" for reserved addresses with an owner
--   5 exp    ZSET  hex scored by hold end (ms)
--   6 free   ZSET  hex scored by release time (ms): released and now free
--   7 hist   STREAM one entry per state change
local K_POOL, K_ADDR, K_ATT, K_HELD, K_EXP, K_FREE, K_HIST = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]

-- error replies: {code, details...}; mapped to BerthErrors in redis-store.ts
local E_POOL_NOT_FOUND, E_EXHAUSTED, E_NOT_IN_POOL, E_ALLOCATED, E_RESERVED = -1, -2, -3, -4, -5
local E_NOT_ALLOCATED, E_NOT_RESERVED, E_ATT_CONFLICT, E_STALE_GEN = -6, -7, -8, -9
local E_POOL_IN_USE, E_CORRUPT = -12, -13
local EXPIRE_BATCH = 16

local function istr(n)
  return string.format('%d', n)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- the next fixed-width hex address, or nil past the top
local function inc(h)
  local i = #h
  while i > 0 do
    local c = string.byte(h, i)
    if c ~= 102 then -- 'f'
      local n = (c == 57) and 'a' or string.char(c + 1) -- '9' -> 'a'
      return string.sub(h, 1, i - 1) .. n .. string.rep('0', #h - i)
    end
    i = i - 1
  end
  return nil
end

local function load_pool()
  local v = redis.call('HMGET', K_POOL, 'c', 'm')
  if not v[1] then return nil end
  local hold, hmax, exc, rng = string.match(v[1], '^(%d+) (%d+) (%S+) (%S+)$')
  local ranges = {}
  for first, last in string.gmatch(rng, '(%x+)-(%x+)') do ranges[#ranges + 1] = { first, last } end
  local cursor, gen, na, nr, xmin = string.match(v[2], '^(%S+) (%d+) (%d+) (%d+) (%d+)$')
  if cursor == '-' then cursor = '' end
  return { ranges = ranges, exc = exc, hold = tonumber(hold) },
    { cursor = cursor, gen = tonumber(gen), na = tonumber(na), nr = tonumber(nr), hmax = hmax, xmin = tonumber(xmin), raw = v[2] }
end

-- writes the counters back, even unchanged: every change script ends here, so
-- each of its answers, an idempotent repeat or a refusal included, comes after a
-- write of its own. WAIT counts the replicas that hold a connection's last write,
-- and that write follows, in the replication stream, everything the answer was
-- read from (another connection's change whose own WAIT failed, say).
local function save_meta(meta)
  local m = string.format('%s %d %d %d %d', meta.cursor == '' and '-' or meta.cursor, meta.gen, meta.na, meta.nr, meta.xmin)
  redis.call('HSET', K_POOL, 'm', m)
  meta.raw = m
end

local function is_excluded(conf, h)
  return string.find(conf.exc, ',' .. h .. ',', 1, true) ~= nil
end

local function assignable(conf, h)
  if is_excluded(conf, h) then return false end
  for _, r in ipairs(conf.ranges) do
    if #h == #r[1] and h >= r[1] and h <= r[2] then return true end
  end
  return false
end

-- the record of an address: nil when free, { corrupt = true } when it cannot be
-- read (callers stop before writing anything and report E_CORRUPT)
local function get_addr(h)
  local v = redis.call('HGET', K_ADDR, h)
  if not v then return nil end
  local ok, rec = pcall(cjson.decode, v)
  if not ok or type(rec) ~= 'table' or (rec.s ~= 'a' and rec.s ~= 'r') or type(rec.t) ~= 'number' then
    return { corrupt = true }
  end
  return rec
end

-- the record of an address an operation names: nil and an error answer for
-- one outside the pool's assignable addresses or one that cannot be read
-- (the counters are saved first: every change script writes, see WAIT)
local function named_addr(conf, meta, h)
  if not assignable(conf, h) then
    save_meta(meta)
    return nil, { E_NOT_IN_POOL, h }
  end
  local rec = get_addr(h)
  if rec and rec.corrupt then
    save_meta(meta)
    return nil, { E_CORRUPT, h }
  end
  return rec
end

local function state_of(rec, now)
  if not rec then return 'free' end
  if rec.s == 'a' then return 'allocated' end
  if rec.u and rec.u <= now then return 'free' end
  return 'reserved'
end

local function att_key(rec)
  return (rec.c or '') .. '/' .. (rec.i or '')
end

local function held_key(owner, h)
  return owner .. '\0' .. h
end

-- moves an address from one record to another, keeping every index and counter in step;
-- hint.att: the caller saw the attachment index point here; hint.notfree: nor is it in the free set
local function put_record(h, old, rec, meta, hint)
  hint = hint or {}
  if old then
    if old.s == 'a' then
      meta.na = meta.na - 1
      local k = att_key(old)
      if hint.att or redis.call('HGET', K_ATT, k) == h then redis.call('HDEL', K_ATT, k) end
    else
      meta.nr = meta.nr - 1
      if old.o then redis.call('ZREM', K_HELD, held_key(old.o, h)) end
      if old.u then redis.call('ZREM', K_EXP, h) end
    end
  end
  if rec then
    if rec.s == 'a' then
      meta.na = meta.na + 1
      redis.call('HSET', K_ATT, att_key(rec), h)
    else
      meta.nr = meta.nr + 1
      if rec.o then redis.call('ZADD', K_HELD, 0, held_key(rec.o, h)) end
      if rec.u then
        redis.call('ZADD', K_EXP, istr(rec.u), h)
        if rec.u < meta.xmin then meta.xmin = rec.u end
      end
    end
    if not old and not hint.notfree then redis.call('ZREM', K_FREE, h) end
    redis.call('HSET', K_ADDR, h, cjson.encode(rec))
  else
    redis.call('HDEL', K_ADDR, h)
  end
end

local function hist(meta, now, event, h, rec, req)
  local f = { 'at', istr(now), 'ev', event, 'ip', h }
  local function add(k, v)
    if v ~= nil and v ~= cjson.null then
      f[#f + 1] = k
      f[#f + 1] = type(v) == 'number' and istr(v) or v
    end
  end
  add('o', rec.o)
  add('c', rec.c)
  add('i', rec.i)
  add('g', rec.g)
  add('a', req.actor)
  add('n', req.note or rec.n)
  redis.call('XADD', K_HIST, 'MAXLEN', '~', meta.hmax, '*', unpack(f))
end

-- turns up to `limit` ended holds into free addresses
local function expire_holds(meta, now, limit)
  if now < meta.xmin then return end
  local hs = redis.call('ZRANGEBYSCORE', K_EXP, '-inf', istr(now), 'LIMIT', 0, limit)
  for _, h in ipairs(hs) do
    local rec = get_addr(h)
    if rec and rec.corrupt then
      -- left for an operator: berth ipam check reports it
    elseif rec and rec.s == 'r' and rec.u and rec.u > now then
      -- the index disagrees with a live hold: index it at its real end
      redis.call('ZADD', K_EXP, istr(rec.u), h)
    elseif not rec or rec.s ~= 'r' or not rec.u then
      redis.call('ZREM', K_EXP, h)
    else
      put_record(h, rec, nil, meta)
      redis.call('ZADD', K_FREE, istr(rec.t), h)
      hist(meta, now, 'expire', h, rec, {})
    end
  end
  local first = redis.call('ZRANGE', K_EXP, 0, 0, 'WITHSCORES')
  meta.xmin = first[2] and tonumber(first[2]) or 9007199254740991
end

-- how many holds end at or before now
local function count_expired(meta, now)
  if now < meta.xmin then return 0 end
  return redis.call('ZCOUNT', K_EXP, '-inf', istr(now))
end

-- every pool script opens so: the pool (nil when it does not exist), its
-- counters, the time, and ended holds already turned free
local function open_pool()
  local conf, meta = load_pool()
  if not conf then return nil end
  local now = now_ms()
  expire_holds(meta, now, EXPIRE_BATCH)
  return conf, meta, now
end

-- the lowest address reserved for owner, and its record; index entries that
-- the record does not bear out are dropped on the way
local function first_held(owner)
  while true do
    local r = redis.call('ZRANGEBYLEX', K_HELD, '[' .. owner .. '\0', '[' .. owner .. '\0\255', 'LIMIT', 0, 1)
    if not r[1] then return nil end
    local h = string.sub(r[1], #owner + 2)
    local rec = (#h == 8 or #h == 32) and get_addr(h) or nil
    if rec and rec.corrupt then return nil end
    if rec and rec.s == 'r' and rec.o == owner then return h, rec end
    redis.call('ZREM', K_HELD, r[1])
  end
end

local function next_from_cursor(conf, meta)
  local cur = meta.cursor
  while cur and cur ~= '' do
    local range = nil
    for _, r in ipairs(conf.ranges) do
      if #cur == #r[2] and cur <= r[2] then
        range = r
        break
      end
    end
    if not range then break end
    if cur < range[1] then cur = range[1] end
    local cand = cur
    cur = inc(cur)
    if not is_excluded(conf, cand) and redis.call('HEXISTS', K_ADDR, cand) == 0 and not redis.call('ZSCORE', K_FREE, cand) then
      meta.cursor = cur or ''
      return cand
    end
  end
  meta.cursor = ''
  return nil
end

local function oldest_free(conf)
  while true do
    local h = redis.call('ZRANGE', K_FREE, 0, 0)[1]
    if not h then return nil end
    if redis.call('HEXISTS', K_ADDR, h) == 0 and assignable(conf, h) then return h end
    redis.call('ZREM', K_FREE, h)
  end
end
