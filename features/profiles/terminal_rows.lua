#!lua flags=allow-cross-slot-keys
-- Write terminals' Feast rows on one node of a Redis Cluster (features/profiles/writer.py),
-- never over a newer row. KEYS: one anchor key of the node.
-- ARGV: ts field, as_of_seconds, key_ttl_seconds (0 = none), values per row, then per row:
--   the entity key and its HSET arguments. Returns the rows written.
local ts_field, as_of_s, key_ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local width = tonumber(ARGV[4])

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

local starts, keep = {}, {}
for r = 5, #ARGV, width + 1 do -- every key is read before the first write
  local old = redis.call('HGET', ARGV[r], ts_field)
  starts[#starts + 1] = r
  keep[#keep + 1] = (not old) or varint_seconds(old) <= as_of_s
end
local written = 0
for i, r in ipairs(starts) do
  if keep[i] then
    redis.call('HSET', ARGV[r], unpack(ARGV, r + 1, r + width))
    if key_ttl > 0 then redis.call('EXPIRE', ARGV[r], key_ttl) end
    written = written + 1
  end
end
return written
