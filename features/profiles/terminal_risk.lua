#!lua flags=allow-cross-slot-keys
-- Apply fraud labels to terminal day buckets and rewrite the terminals' Feast rows, atomically.
-- KEYS, per terminal i (1-based): [3i-2] tx day buckets (hash day -> count),
--   [3i-1] fraud state (hash 't:<transaction_id>' -> day, 'd:<day>' -> count, 'last' -> event us),
--   [3i] the terminal's Feast entity hash.
-- ARGV: as_of_us, as_of_seconds, delay_days, key_ttl_seconds (0 = none), ts field,
--   n_windows, windows (ascending)..., feature fields (counts, shares, days_since)...,
--   n_labels, then per label: terminal index, transaction_id, event day, event us.
--   On a Redis Cluster, after the labels: 'rows', the number of keys, then the keys (two per
--   terminal: tx day buckets, fraud state; KEYS holds one anchor key of the node): the
--   rows are computed for every terminal and returned, not written (the Feast entity key
--   has no hash tag and lives on another node: features/profiles/writer.py writes it).
-- Returns {rows_written, applied flag per label (1 new, 0 duplicate)}, and in 'rows'
-- mode then one HSET argument list per terminal.
local DAY_US = 86400000000
local NONE = 365.0
local as_of_us = tonumber(ARGV[1])
local as_of_s = tonumber(ARGV[2])
local delay = tonumber(ARGV[3])
local key_ttl = tonumber(ARGV[4])
local ts_field = ARGV[5]
local nw = tonumber(ARGV[6])
local windows = {}
for j = 1, nw do windows[j] = tonumber(ARGV[6 + j]) end
local fields = {}
for j = 1, 2 * nw + 1 do fields[j] = ARGV[6 + nw + j] end
local p = 8 + 3 * nw
local n_labels = tonumber(ARGV[p])
local K, per, rows_mode = KEYS, 3, false
local q = p + 4 * n_labels + 1
if ARGV[q] == 'rows' then
  K, per, rows_mode = {}, 2, true
  for i = 1, tonumber(ARGV[q + 1]) do K[i] = ARGV[q + 1 + i] end
  for i = 1, #K do redis.call('EXISTS', K[i]) end -- a key not served here fails before a write
end

local result = {0}
for i = 1, n_labels do
  local a = p + 4 * (i - 1)
  local state = K[per * tonumber(ARGV[a + 1]) - per + 2]
  if redis.call('HSETNX', state, 't:' .. ARGV[a + 2], ARGV[a + 3]) == 1 then
    redis.call('HINCRBY', state, 'd:' .. ARGV[a + 3], 1)
    local last = redis.call('HGET', state, 'last')
    if (not last) or tonumber(ARGV[a + 4]) > tonumber(last) then
      redis.call('HSET', state, 'last', ARGV[a + 4])
    end
    result[#result + 1] = 1
  else
    result[#result + 1] = 0
  end
end

local function varint_seconds(raw)
  local n, mul = 0, 1
  for k = 2, #raw do
    local b = string.byte(raw, k)
    n = n + (b % 128) * mul
    if b < 128 then return n end
    mul = mul * 128
  end
  return n
end

local function timestamp_bytes(seconds)
  local out = {string.char(8)}
  local n = seconds
  while n >= 128 do
    out[#out + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = string.char(n)
  return table.concat(out)
end

local hi = math.floor(as_of_us / DAY_US) - delay
local maxw = windows[nw]
local tx_days, fraud_days = {}, {}
for k = 1, maxw do
  tx_days[k] = tostring(hi - k)
  fraud_days[k] = 'd:' .. tostring(hi - k)
end
local ts_bytes = timestamp_bytes(as_of_s)

for i = 1, #K / per do
  local entity, old = nil, nil
  if not rows_mode then
    entity = K[3 * i]
    old = redis.call('HGET', entity, ts_field)
  end
  if (not old) or varint_seconds(old) <= as_of_s then
    local base = per * (i - 1)
    local txv = redis.call('HMGET', K[base + 1], unpack(tx_days))
    local frv = redis.call('HMGET', K[base + 2], unpack(fraud_days))
    local last = redis.call('HGET', K[base + 2], 'last')
    local cum_tx, cum_fr = {}, {}
    local s_tx, s_fr = 0, 0
    for k = 1, maxw do
      s_tx = s_tx + (tonumber(txv[k]) or 0)
      s_fr = s_fr + (tonumber(frv[k]) or 0)
      cum_tx[k], cum_fr[k] = s_tx, s_fr
    end
    local args = {}
    for j = 1, nw do
      local count = cum_fr[windows[j]]
      local n = cum_tx[windows[j]]
      local share = 0.0
      if n > 0 then share = count / n end
      args[#args + 1] = fields[j]
      args[#args + 1] = struct.pack('<Bf', 0x35, count)
      args[#args + 1] = fields[nw + j]
      args[#args + 1] = struct.pack('<Bf', 0x35, share)
    end
    local days = NONE
    if last then days = math.min((as_of_us - tonumber(last)) / DAY_US, NONE) end
    args[#args + 1] = fields[2 * nw + 1]
    args[#args + 1] = struct.pack('<Bf', 0x35, days)
    args[#args + 1] = ts_field
    args[#args + 1] = ts_bytes
    if rows_mode then
      result[1 + n_labels + i] = args
    else
      redis.call('HSET', entity, unpack(args))
      if key_ttl > 0 then redis.call('EXPIRE', entity, key_ttl) end
      result[1] = result[1] + 1
    end
  end
end
return result
