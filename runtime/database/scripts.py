"""The Lua scripts that keep a record, the id index and the field indexes consistent.

Each write is one script, so Redis applies it whole or not at all; a script checks everything
that can fail before its first write, because Redis does not roll a script back. Values are
JSON text that the scripts pass through untouched (Lua numbers are doubles, so decoding and
re-encoding would damage large integers and floats); only `vkey` looks inside, to build the
same index key as dbcodec.value_key.

Writes take a token: a retried command (redis-py retries after a lost connection) finds the
token's `done:` key and returns the first result instead of applying the write twice. A caller
may give its own token (`database.set`'s `token`): a chat command delivered again after its
runtime died writes under the same tokens as the first time. The key lives ten minutes, longer
than any command is redelivered (delivery.max_age).

Keys of a collection all start with `<prefix>{<collection>}:` (ARGV[1], "base"): `r:<id>`
records, `ids` the id index, `seq` the id counter, `meta` the declared indexes (field →
building|ready), `i:<field>` one index per field, `done:<token>` retry guards.
"""

from __future__ import annotations

PRELUDE = r"""
local SEP = '\0\0'

local function numhex(x)
  if x == 0 then x = 0 end
  local s = struct.pack('>d', x)
  local neg = string.byte(s, 1) >= 128
  local out = {}
  for i = 1, 8 do
    local b = string.byte(s, i)
    if neg then b = 255 - b elseif i == 1 then b = b + 128 end
    out[i] = string.format('%02x', b)
  end
  return table.concat(out)
end

local function vkey(text)
  if not text then return '0' end
  local c = string.sub(text, 1, 1)
  if c == 'n' then return '1' end
  if c == 'f' then return '2' end
  if c == 't' then return '3' end
  if c == '"' then return '5' .. (string.gsub(cjson.decode(text), '%z', '\0\1')) end
  if c == '[' then return '6' end
  if c == '{' then return '7' end
  return '4' .. numhex(tonumber(text))
end

local function rawid(k)
  if string.sub(k, 1, 1) == 'i' then return string.match(k, '^i0*(%d+)$') end
  return string.sub(k, 2)
end

local function hset(key, args)
  for i = 1, #args, 1000 do
    redis.call('HSET', key, unpack(args, i, math.min(i + 999, #args)))
  end
end

local function values(rec, fields)
  if #fields == 0 then return {} end
  return redis.call('HMGET', rec, unpack(fields))
end

local function reindex(base, fields, idkey, before, after)
  for j, f in ipairs(fields) do
    local key = base .. 'i:' .. f
    local a = before and (vkey(before[j]) .. SEP .. idkey)
    local b = after and (vkey(after[j]) .. SEP .. idkey)
    if a ~= b then
      if a then redis.call('ZREM', key, a) end
      if b then redis.call('ZADD', key, 0, b) end
    end
  end
end
"""

# KEYS: ids, meta, seq. ARGV: base, token, idkey ('' = allocate), raw id, id JSON, field, value...
SET = (
    PRELUDE
    + r"""
local base, token = ARGV[1], ARGV[2]
local done = base .. 'done:' .. token
if token ~= '' then
  local prior = redis.call('GET', done)
  if prior then return prior end
end
local idkey, raw, idjson = ARGV[3], ARGV[4], ARGV[5]
local rec = base .. 'r:' .. raw
if idkey == '' then
  -- Skip numbers a caller already used as explicit ids.
  repeat
    local n = redis.call('INCR', KEYS[3])
    raw = string.format('%d', n)
    idkey = 'i' .. string.format('%016d', n)
    rec = base .. 'r:' .. raw
  until redis.call('EXISTS', rec) == 0
  idjson = raw
end
local fields = redis.call('HKEYS', KEYS[2])
if #fields > 0 then
  local new = {}
  for i = 6, #ARGV, 2 do new[ARGV[i]] = ARGV[i + 1] end
  local after = {}
  for j, f in ipairs(fields) do after[j] = new[f] or false end
  local before = nil
  if redis.call('EXISTS', rec) == 1 then before = values(rec, fields) end
  reindex(base, fields, idkey, before, after)
end
redis.call('DEL', rec)
local args = {'id', idjson}
for i = 6, #ARGV do args[#args + 1] = ARGV[i] end
hset(rec, args)
redis.call('ZADD', KEYS[1], 0, idkey)
if token ~= '' then redis.call('SET', done, idkey, 'EX', 600) end
return idkey
"""
)

# KEYS: meta. ARGV: base, token, raw id, idkey, n (count of data items), data field, value...,
# then inc field, amount... Returns the record after the update, or nil when there is none.
UPDATE = (
    PRELUDE
    + r"""
local base, token, idkey = ARGV[1], ARGV[2], ARGV[4]
local rec = base .. 'r:' .. ARGV[3]
if redis.call('EXISTS', rec) == 0 then return false end
local done = base .. 'done:' .. token
if token ~= '' and redis.call('EXISTS', done) == 1 then return redis.call('HGETALL', rec) end
local INT = '^%-?%d+$'
local function add(cur, amount)
  if cur and not string.match(cur, '^%-?%d') then return nil, 'the stored value is not a number' end
  local a, b = 0, tonumber(amount)
  if cur then a = tonumber(cur) end
  local r = a + b
  if (not cur or string.match(cur, INT)) and string.match(amount, INT) then
    if math.abs(a) >= 9007199254740992 or math.abs(r) >= 9007199254740992 then
      return nil, 'integers are added exactly only below 2^53'
    end
    return string.format('%d', r)
  end
  if r ~= r or r == math.huge or r == -math.huge then return nil, 'the result is not finite' end
  local s = string.format('%.17g', r)
  if not string.find(s, '[%.eEn]') then s = s .. '.0' end
  return s
end
local last = 5 + tonumber(ARGV[5])
local args = {}
for i = 6, last do args[#args + 1] = ARGV[i] end
for i = last + 1, #ARGV, 2 do
  local r, err = add(redis.call('HGET', rec, ARGV[i]), ARGV[i + 1])
  if not r then return redis.error_reply('ROSEY-INVALID inc.' .. ARGV[i] .. ': ' .. err) end
  args[#args + 1] = ARGV[i]
  args[#args + 1] = r
end
local fields = redis.call('HKEYS', KEYS[1])
local before = values(rec, fields)
if #args > 0 then hset(rec, args) end
if #fields > 0 then reindex(base, fields, idkey, before, values(rec, fields)) end
if token ~= '' then redis.call('SET', done, '1', 'EX', 600) end
return redis.call('HGETALL', rec)
"""
)

# KEYS: ids, meta. ARGV: base, token, raw id, idkey. Returns 1 when a record was deleted.
DELETE = (
    PRELUDE
    + r"""
local base, token, idkey = ARGV[1], ARGV[2], ARGV[4]
local done = base .. 'done:' .. token
if token ~= '' then
  local prior = redis.call('GET', done)
  if prior then return tonumber(prior) end
end
local rec = base .. 'r:' .. ARGV[3]
if redis.call('EXISTS', rec) == 0 then return 0 end
local fields = redis.call('HKEYS', KEYS[2])
if #fields > 0 then reindex(base, fields, idkey, values(rec, fields), nil) end
redis.call('DEL', rec)
redis.call('ZREM', KEYS[1], idkey)
if token ~= '' then redis.call('SET', done, '1', 'EX', 600) end
return 1
"""
)

# KEYS: the sorted set to walk (ids or i:<field>), meta. ARGV: base, field ('' for ids), min,
# max, reverse ('1'/'0'), offset, limit. Returns {count, record, record, ...}.
PAGE = (
    PRELUDE
    + r"""
local base, field = ARGV[1], ARGV[2]
if field ~= '' and redis.call('HGET', KEYS[2], field) ~= 'ready' then
  return redis.error_reply('ROSEY-STALE ' .. field)
end
local count = redis.call('ZLEXCOUNT', KEYS[1], ARGV[3], ARGV[4])
local out = {count}
local offset, limit = tonumber(ARGV[6]), tonumber(ARGV[7])
if limit > 0 and count > offset then
  local members
  if ARGV[5] == '1' then
    members = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[4], ARGV[3], 'LIMIT', offset, limit)
  else
    members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[3], ARGV[4], 'LIMIT', offset, limit)
  end
  for _, m in ipairs(members) do
    local k = m
    if field ~= '' then k = string.sub(m, string.find(m, SEP, 1, true) + 2) end
    out[#out + 1] = redis.call('HGETALL', base .. 'r:' .. rawid(k))
  end
end
return out
"""
)

# KEYS: i:<field>. ARGV: base, field, idkey... Indexes records written before the index existed.
BACKFILL = (
    PRELUDE
    + r"""
local base, field = ARGV[1], ARGV[2]
for i = 3, #ARGV do
  local k = ARGV[i]
  local rec = base .. 'r:' .. rawid(k)
  if redis.call('EXISTS', rec) == 1 then
    redis.call('ZADD', KEYS[1], 0, vkey(redis.call('HGET', rec, field)) .. SEP .. k)
  end
end
return #ARGV - 2
"""
)
