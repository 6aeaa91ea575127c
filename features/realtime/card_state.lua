#!lua flags=allow-cross-slot-keys
-- Apply one batch of transactions to card rings and terminal day buckets, atomically.
--
-- KEYS: card keys (ARGV[1] of them), then terminal keys (ARGV[2] of them).
-- ARGV: ncards, nterms, lateness_us, retention_us, card_ttl_ms, term_ttl_ms,
--       card_capacity, day_slots, commit (1 = write, 0 = read only), packed transactions.
-- A packed transaction (36 bytes): card index u16, terminal index u16, day i32,
--       then the 28-byte event record head: txid hash (8), time_us f64, amount f64, terminal hash u32.
-- Card value: next_seq u32, max_time f64, then 32-byte records (head + seq u32) in arrival order.
-- Terminal value: max_time f64, then day_slots x (day i32, count i32).
-- Reply: per-transaction info (seq u32, status u32, max_time at arrival f64), then the card
--        and terminal values as they were BEFORE the batch: the client adds the batch's own
--        records and increments (it knows them from the statuses), so Lua builds no reply.
-- Trimming (records beyond the capacity or older than the retention) is lazy: done only
-- when at least trim_chunk records can go; features never depend on it.
-- status: 0 applied, 1 duplicate (txid already in the ring), 2 too late for the card; +4 if
--        the terminal bucket was not incremented because the event was late for the terminal.
local nc, nt = tonumber(ARGV[1]), tonumber(ARGV[2])
local late, retention = tonumber(ARGV[3]), tonumber(ARGV[4])
local card_ttl, term_ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local cap, slots, commit = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9] == '1'
local args, chunk = ARGV[10], tonumber(ARGV[11])
local HDR, REC, NEG = 12, 32, -1e300

local pre = redis.call('MGET', unpack(KEYS))
local nseq, maxt, tail, dirty = {}, {}, {}, {}
local tmax, tmods = {}, {}
local info = {}

for i = 1, #args / 36 do
  local p = (i - 1) * 36 + 1
  local ci, ti, day = struct.unpack('<HHi', args, p)
  local t = struct.unpack('<d', args, p + 16)
  local txh = string.sub(args, p + 8, p + 15)
  local v = pre[ci]
  if nseq[ci] == nil then
    if v then nseq[ci], maxt[ci] = struct.unpack('<Id', v) else nseq[ci], maxt[ci] = 0, NEG end
    tail[ci] = {}
  end
  local status, seq = 0, nseq[ci]
  if v then
    local q = string.find(v, txh, HDR + 1, true)
    while q do
      if (q - HDR - 1) % REC == 0 then
        status, seq = 1, struct.unpack('<I4', v, q + 28)
        break
      end
      q = string.find(v, txh, q + 1, true)
    end
  end
  if status == 0 then
    for _, r in ipairs(tail[ci]) do
      if string.sub(r, 1, 8) == txh then
        status, seq = 1, struct.unpack('<I4', r, 29)
        break
      end
    end
  end
  local arrival_max = maxt[ci]
  if status == 0 and t < arrival_max - late then status = 2 end
  if status == 0 then
    local tl = tail[ci]
    tl[#tl + 1] = string.sub(args, p + 8, p + 35) .. struct.pack('<I4', seq)
    nseq[ci] = seq + 1
    if t > arrival_max then maxt[ci] = t end
    dirty[ci] = true
    local tv = pre[nc + ti]
    if tmax[ti] == nil then
      tmax[ti] = tv and struct.unpack('<d', tv) or NEG
      tmods[ti] = {}
    end
    if t >= tmax[ti] - late then
      local slot = day % slots
      local m = tmods[ti][slot]
      if m == nil then
        local sd, sc = 0, 0
        if tv then sd, sc = struct.unpack('<ii', tv, 9 + slot * 8) end
        m = { sd, sc }
        tmods[ti][slot] = m
      end
      if m[1] ~= day then m[1], m[2] = day, 0 end
      m[2] = m[2] + 1
      if t > tmax[ti] then tmax[ti] = t end
    else
      status = status + 4
    end
  end
  info[i] = struct.pack('<IId', seq, status, arrival_max)
end

local reply = { table.concat(info) }
for ci = 1, nc do
  local v = pre[ci]
  reply[#reply + 1] = v or ''
  if commit and dirty[ci] then
    local added = table.concat(tail[ci])
    local hdr = struct.pack('<Id', nseq[ci], maxt[ci])
    local old = v and (#v - HDR) / REC or 0
    local n = old + #added / REC
    local drop = math.max(0, n - cap)
    local thr = maxt[ci] - retention
    while drop < old and struct.unpack('<d', v, HDR + drop * REC + 9) < thr do drop = drop + 1 end
    if not v then
      redis.call('SET', KEYS[ci], hdr .. added, 'PX', card_ttl)
    elseif drop >= chunk or drop > old then
      local keep = drop <= old and string.sub(v, HDR + drop * REC + 1) or ''
      local tail_keep = drop <= old and added or string.sub(added, (drop - old) * REC + 1)
      redis.call('SET', KEYS[ci], hdr .. keep .. tail_keep, 'PX', card_ttl)
    else
      redis.call('APPEND', KEYS[ci], added)
      redis.call('SETRANGE', KEYS[ci], 0, hdr)
      redis.call('PEXPIRE', KEYS[ci], card_ttl)
    end
  end
end
for ti = 1, nt do
  local tv = pre[nc + ti]
  reply[#reply + 1] = tv or ''
  if commit and tmods[ti] ~= nil and next(tmods[ti]) ~= nil then
    local slotted = {}
    for slot, m in pairs(tmods[ti]) do slotted[#slotted + 1] = slot end
    table.sort(slotted)
    local parts, prev = { struct.pack('<d', tmax[ti]) }, 0
    local old = tv or string.rep('\0', 8 + slots * 8)
    for _, slot in ipairs(slotted) do
      parts[#parts + 1] = string.sub(old, 9 + prev * 8, 8 + slot * 8)
      parts[#parts + 1] = struct.pack('<ii', tmods[ti][slot][1], tmods[ti][slot][2])
      prev = slot + 1
    end
    parts[#parts + 1] = string.sub(old, 9 + prev * 8)
    redis.call('SET', KEYS[nc + ti], table.concat(parts), 'PX', term_ttl)
  end
end
return reply
