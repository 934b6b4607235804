-- CREATE: store a new task and queue it, in one atomic step.
-- The owner's limits are checked and charged here, so they hold exactly however many
-- submissions race: its open tasks (a set) and its tokens today (reserved max_tokens).
-- Its place in the queue is its fair-share place (below), written to the session as `score`.
-- -> {'created', position} | {'exists', stored idempotency value} | {'full', depth}
--    | {'limit', 'max_queued' | 'tokens_per_day', current amount}
local session = KEYS[1]
local timeline = KEYS[2]
local pending = KEYS[3]
local idempotency = KEYS[4]         -- '' = no idempotency key
local deadlines = KEYS[5]
local owner_open = KEYS[6]          -- the owner's unfinished tasks
local owner_tokens = KEYS[7]        -- the owner's tokens charged today
local fair_clock = KEYS[8]          -- the lane's virtual clock, per priority band
local fair_owners = KEYS[9]         -- the owners' virtual counters, per priority band
local task_id = ARGV[1]
local idem_value = ARGV[2]
local idem_ttl = ARGV[3]
local session_ttl = ARGV[4]
local band = ARGV[5]                -- the priority's band: the lower, the sooner
local band_width = ARGV[6]
local max_pending = ARGV[7]
local timeline_entry = ARGV[8]
local deadline_at = ARGV[9]         -- '' = none
local max_queued = ARGV[10]         -- '' = no limit
local tokens_per_day = ARGV[11]     -- '' = no limit
local reserve = ARGV[12]            -- tokens reserved against tokens_per_day
local tokens_ttl = ARGV[13]
local owner = ARGV[14]
local units = ARGV[15]              -- its estimated tokens over its owner's share (>= 1)
local owners_ttl = ARGV[16]
local effects = ARGV[17]            -- a creation's counters and events: JSON list of commands
local FIELDS_FROM = 18              -- then field/value pairs for the session hash

-- Fair share (start-time fair queuing). Within a band, a task's place is the virtual time
-- at which its owner's turn comes: the later of the lane's clock (the place of the latest
-- task claimed, advanced by CLAIM) and its owner's counter (where the owner's earlier tasks
-- end, in tokens over its share); the counter then moves on by this task's units. An owner
-- that was idle starts at the clock: service older than the current backlog earns nothing.
-- A completion corrects the counter to what a task really used (tasks/fair.py), which may
-- move it back below a task of the owner's still waiting: behind that one (kept as `|last`)
-- it stays, so one owner's tasks run in their order.
local function fair_place()
  local width, base = tonumber(band_width), tonumber(band) * tonumber(band_width)
  local clock = redis.call('HGET', fair_clock, band)
  if not clock then  -- the band's first task: start behind what already waits in it
    local head = redis.call('ZRANGEBYSCORE', pending, base, base + width - 1,
                            'LIMIT', 0, 1, 'WITHSCORES')
    clock = head[2] and tonumber(head[2]) - base or 0
    redis.call('HSET', fair_clock, band, string.format('%.0f', clock))
  end
  local counter = band .. '|' .. owner
  local held = redis.call('HMGET', fair_owners, counter, counter .. '|last')
  local place = math.max(tonumber(clock), tonumber(held[1] or '0'))
  local last = held[2] and redis.call('ZSCORE', pending, held[2])
  if last then place = math.max(place, tonumber(last) - base + 1) end
  redis.call('HSET', fair_owners, counter, string.format('%.0f', place + tonumber(units)),
             counter .. '|last', task_id)
  redis.call('EXPIRE', fair_owners, owners_ttl)
  return string.format('%.0f', base + place)
end

if idempotency ~= '' then
  local existing = redis.call('GET', idempotency)
  if existing then return {'exists', existing} end
end
local depth = redis.call('ZCARD', pending)
if depth >= tonumber(max_pending) then return {'full', tostring(depth)} end
local open = redis.call('SCARD', owner_open)
if max_queued ~= '' and open >= tonumber(max_queued) then
  return {'limit', 'max_queued', tostring(open)}
end
local charged = tonumber(redis.call('GET', owner_tokens) or '0')
if tokens_per_day ~= '' and charged + tonumber(reserve) > tonumber(tokens_per_day) then
  return {'limit', 'tokens_per_day', tostring(charged)}
end
if idempotency ~= '' then
  redis.call('SET', idempotency, idem_value, 'EX', idem_ttl)
end
redis.call('SADD', owner_open, task_id)
redis.call('INCRBY', owner_tokens, reserve)
redis.call('EXPIRE', owner_tokens, tokens_ttl)
local score = fair_place()
redis.call('HSET', session, 'score', score, unpack(ARGV, FIELDS_FROM))
redis.call('EXPIRE', session, session_ttl)
redis.call('ZADD', pending, score, task_id)
if deadline_at ~= '' then redis.call('ZADD', deadlines, deadline_at, task_id) end
redis.call('RPUSH', timeline, timeline_entry)
redis.call('EXPIRE', timeline, session_ttl)
for _, command in ipairs(cjson.decode(effects)) do redis.call(unpack(command)) end
return {'created', redis.call('ZRANK', pending, task_id) + 1}
