-- CLAIM: take the next runnable task of a lane and return it whole, so the worker needs no
-- read-back. The lane's sorted set is already in run order (priority band, then fair-share
-- place: create.lua); a claim takes its head, except that
--   * tasks past their deadline are skipped and returned for the lifecycle to fail (at most
--     MAX_EXPIRED per call); ids whose session is gone or is no longer queued are dropped;
--   * a worker that holds a model (`preferred`) takes a task for it from the head's band,
--     within `window` tasks, passing the head over at most `max_passed_over` times;
--   * tasks for a model another GPU holds are left to it (gpu_affinity.lua, prepended).
-- The claimed task's place advances the band's fair-share clock (create.lua).
-- -> {task_id or false, {expired ids}, {field, value, ...} of the claimed task,
--     how many tasks were left to another GPU's model}
local pending = KEYS[1]
local processing = KEYS[2]
local gpu_ids = KEYS[3]
local fair_clock = KEYS[4]
local worker = ARGV[1]
local now = ARGV[2]                 -- epoch seconds
local session_head = ARGV[3]        -- a session key is head .. task_id .. tail
local session_tail = ARGV[4]
local preferred = ARGV[5]           -- the model the worker holds ('' = none)
local window = ARGV[6]
local max_passed_over = ARGV[7]
local band_width = ARGV[8]          -- the scores of one priority lie within one band
local gpu = ARGV[9]                 -- the claiming GPU_ID ('' off the gpu lane)
local affinity_wait = ARGV[10]      -- seconds a task waits for the GPU holding its model
local loaded_head = ARGV[11]        -- a gpu:loaded key is head .. GPU_ID .. tail
local loaded_tail = ARGV[12]
local loaded_ttl = ARGV[13]

local MAX_EXPIRED = 100
local width = tonumber(band_width)
local expired, seen, left = {}, {}, 0
local function session(id) return session_head .. id .. session_tail end
local affinity = gpu_affinity({
  gpu = gpu, worker = worker, preferred = preferred, now = tonumber(now),
  wait = tonumber(affinity_wait), gpu_ids = gpu_ids, loaded_head = loaded_head,
  loaded_tail = loaded_tail, loaded_ttl = tonumber(loaded_ttl), session = session,
})

local function runnable(id)
  local fields = redis.call('HMGET', session(id), 'status', 'deadline_at')
  if fields[1] ~= 'queued' then
    redis.call('ZREM', pending, id)
    return false
  end
  if fields[2] and fields[2] ~= '' and tonumber(now) > tonumber(fields[2]) then
    if not seen[id] then seen[id] = true; table.insert(expired, id) end
    return false
  end
  return true
end

local function advance_clock(id)
  local score = tonumber(redis.call('ZSCORE', pending, id))
  local band = string.format('%.0f', math.floor(score / width))
  local place = score % width
  if place > tonumber(redis.call('HGET', fair_clock, band) or '-1') then
    redis.call('HSET', fair_clock, band, string.format('%.0f', place))
  end
end

local function take(id)
  local s = session(id)
  advance_clock(id)
  redis.call('ZREM', pending, id)
  redis.call('HSET', s, 'status', 'processing', 'started_at', now, 'worker', worker)
  redis.call('HINCRBY', s, 'run', 1)
  redis.call('HSET', processing, id, worker)
  affinity.announce(s)
  return {id, expired, redis.call('HGETALL', s), left}
end

-- A task for the worker's model from the head's band, or nil.
local function for_preferred(head_id, head_score)
  if preferred == '' or redis.call('HGET', session(head_id), 'model_key') == preferred then
    return nil
  end
  local passed = tonumber(redis.call('HGET', session(head_id), 'passed_over') or '0')
  if passed >= tonumber(max_passed_over) then return nil end
  local band_end = head_score - (head_score % width) + width - 1
  local candidates = redis.call('ZRANGEBYSCORE', pending, head_score, band_end,
                                'LIMIT', 0, tonumber(window))
  for i = 2, #candidates do
    local id = candidates[i]
    if redis.call('HGET', session(id), 'model_key') == preferred and runnable(id) then
      redis.call('HINCRBY', session(head_id), 'passed_over', 1)
      return id
    end
  end
  return nil
end

local offset = 0
while #expired < MAX_EXPIRED do
  local head = redis.call('ZRANGE', pending, offset, offset, 'WITHSCORES')
  if #head == 0 then break end
  local head_id, head_score = head[1], tonumber(head[2])
  if seen[head_id] then
    offset = offset + 1
  elseif runnable(head_id) and affinity.elsewhere(head_id) then
    seen[head_id] = true
    left = left + 1
    if left >= tonumber(window) then break end
  elseif runnable(head_id) then
    return take(for_preferred(head_id, head_score) or head_id)
  elseif seen[head_id] then
    offset = offset + 1
  end
end
return {false, expired, {}, left}
