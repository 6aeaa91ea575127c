#!lua flags=allow-cross-slot-keys
-- Apply one batch, atomically: check the cards' versions, write the cards the client
-- planned, count the terminals' day buckets. Layouts: features/realtime/layout.py.
--
-- KEYS: card keys (ARGV[1] of them), then terminal keys (ARGV[2] of them).
-- ARGV: ncards, nterms, lateness_us, card_ttl_ms, term_ttl_ms, day_slots,
--       commit (1 = write, 0 = check and read only),
--       card ops (28 bytes per card: mode u8, refresh_ttl u8, exists u8, pad u8,
--                 offset u32, payload start u32, payload length u32, expected trailer 12),
--       card payload (the bytes the ops point into),
--       terminal rows (16 bytes per applied transaction, in batch order:
--                      terminal index u32, day i32, time_us f64),
--       refresh_us (a key's TTL is set again when its newest event time moves into a
--                   later period of this many microseconds; 0 = on every write),
--       chain after, chain token (both '' outside a pipelined batch; the chain key is
--                 then KEYS[ncards + nterms + 1]),
--       expected state epoch ('' = not checked; else the epoch key is the last key),
--       on Redis Cluster: the number of keys, then the key names (KEYS then holds one
--       anchor key of the node: declared keys of several slots are refused with CROSSSLOT).
-- Every key is read before the first write, so a key this node does not serve (a slot
-- moved: "non local key") fails the script before it changed anything.
-- Card modes: 0 nothing to write, 1 overwrite the trailer in place with new records and
--             a new trailer (SETRANGE at offset), 2 replace the value (SET, trimmed).
-- Reply: {3, epoch found or false} if the epoch key does not hold the expected epoch (Redis
--        lost the state, or it was rebuilt: nothing was written; features/realtime/epoch.py),
--        {2} if chain after is set and the chain key does not hold it (the previous chunk
--        of a pipelined batch was not applied; nothing was written), {0, stale card
--        indices} if any card's trailer differs from the expected one (nothing written),
--        else {1, indices of terminal rows too late for their terminal, the terminal
--        values as they were before the batch...}; with a chain token the chain key is
--        then set to it.
local nc, nt = tonumber(ARGV[1]), tonumber(ARGV[2])
local late = tonumber(ARGV[3])
local card_ttl, term_ttl = ARGV[4], ARGV[5]
local slots, commit = tonumber(ARGV[6]), ARGV[7] == '1'
local ops, payload, rows, refresh_us = ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local after, token = ARGV[12] or '', ARGV[13] or ''
local epoch = ARGV[14] or ''
local NEG = -1e300
local K = KEYS
if ARGV[15] then
  K = {}
  for i = 1, tonumber(ARGV[15]) do K[i] = ARGV[15 + i] end
end
-- Constant ranges and terminal offsets are passed to redis.call as strings: Redis formats a
-- Lua number with snprintf, which cost ~12 % of this script (callgrind) when they were
-- numbers. (A card's write offset is still a number: one per written card, and turning it
-- into a string in Lua costs the same snprintf.)
local slot_offset = {}
local function slot_at(slot)
  local s = slot_offset[slot]
  if s == nil then
    s = tostring(8 + slot * 8)
    slot_offset[slot] = s
  end
  return s
end

if epoch ~= '' then
  local found = redis.call('GET', K[#K])
  if found ~= epoch then return { 3, found } end
end
if after ~= '' and redis.call('GET', K[nc + nt + 1]) ~= after then return { 2 } end

local stale = {}
for ci = 1, nc do
  local p = (ci - 1) * 28
  local expect = ''
  if string.byte(ops, p + 3) == 1 then expect = string.sub(ops, p + 17, p + 28) end
  if redis.call('GETRANGE', K[ci], '-12', '-1') ~= expect then stale[#stale + 1] = ci end
end
if #stale > 0 then return { 0, stale } end

local pre = {}
if K == KEYS then
  for s = 1, nt, 4000 do
    local part = redis.call('MGET', unpack(K, nc + s, nc + math.min(nt, s + 3999)))
    for j = 1, #part do pre[s + j - 1] = part[j] end
  end
else -- a cluster node refuses a command over keys of several slots, even in a script
  for ti = 1, nt do pre[ti] = redis.call('GET', K[nc + ti]) end
end

local tmax, tmax0, mods, late_rows = {}, {}, {}, {}
for i = 1, #rows / 16 do
  local ti, day, t = struct.unpack('<Iid', rows, (i - 1) * 16 + 1)
  local m = tmax[ti]
  if m == nil then
    m = pre[ti] and struct.unpack('<d', pre[ti]) or NEG
    tmax0[ti] = m
    mods[ti] = {}
  end
  if t >= m - late then
    local slot = day % slots
    local cell = mods[ti][slot]
    if cell == nil then
      local sd, sc = 0, 0
      if pre[ti] then sd, sc = struct.unpack('<ii', pre[ti], 9 + slot * 8) end
      cell = { sd, sc }
      mods[ti][slot] = cell
    end
    if cell[1] ~= day then cell[1], cell[2] = day, 0 end
    cell[2] = cell[2] + 1
    if t > m then m = t end
  else
    late_rows[#late_rows + 1] = i
  end
  tmax[ti] = m
end

if commit then
  for ci = 1, nc do
    local mode, ttl_flag, _, _, off, start, len = struct.unpack('<BBBBIII', ops, (ci - 1) * 28 + 1)
    if mode == 1 then
      redis.call('SETRANGE', K[ci], off, string.sub(payload, start + 1, start + len))
      if ttl_flag == 1 then redis.call('PEXPIRE', K[ci], card_ttl) end
    elseif mode == 2 then
      redis.call('SET', K[ci], string.sub(payload, start + 1, start + len), 'PX', card_ttl)
    end
  end
  for ti, cells in pairs(mods) do
    local key, tv = K[nc + ti], pre[ti]
    if next(cells) == nil then
      -- every row of this terminal was late for it: nothing changed
    elseif tv then
      -- 8-byte writes: the changed day slots, then the max time if it moved (cheaper than
      -- rewriting the value from the max time through the slot, ~260 bytes on average)
      for slot, cell in pairs(cells) do
        redis.call('SETRANGE', key, slot_at(slot), struct.pack('<ii', cell[1], cell[2]))
      end
      if tmax[ti] ~= tmax0[ti] then redis.call('SETRANGE', key, '0', struct.pack('<d', tmax[ti])) end
      local period = refresh_us > 0 and math.floor(tmax[ti] / refresh_us)
      if not period or period > math.floor(tmax0[ti] / refresh_us) then
        redis.call('PEXPIRE', key, term_ttl)
      end
    else
      local body = {}
      for slot = 0, slots - 1 do
        local cell = cells[slot]
        body[slot + 1] = cell and struct.pack('<ii', cell[1], cell[2]) or '\0\0\0\0\0\0\0\0'
      end
      redis.call('SET', key, struct.pack('<d', tmax[ti]) .. table.concat(body), 'PX', term_ttl)
    end
  end
end

if commit and token ~= '' then redis.call('SET', K[nc + nt + 1], token, 'PX', '60000') end

local reply = { 1, late_rows }
for ti = 1, nt do reply[ti + 2] = pre[ti] end
return reply
