"""Lua scripts: each multi-key change of task state happens atomically inside Redis.

Key names reach the scripts from sop_llm.keys (as KEYS, or as a session-key head/tail pair
when a script must reach a task it only learns about while running).
"""

# -> {'created', position} | {'exists', stored idempotency value} | {'full', depth}
# KEYS: session, timeline, pending, idempotency ('' = none)
# ARGV: task_id, idem_value, idem_ttl, session_ttl, score, max_pending, timeline_json,
#       then field/value pairs for the session hash
CREATE = """
if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {'exists', existing} end
end
local depth = redis.call('ZCARD', KEYS[3])
if depth >= tonumber(ARGV[6]) then return {'full', tostring(depth)} end
if KEYS[4] ~= '' then
  redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {'created', redis.call('ZRANK', KEYS[3], ARGV[1]) + 1}
"""

# KEYS: session
# ARGV: new status, comma-separated allowed current statuses, then field/value pairs
TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {0, ''} end
if not string.find(',' .. ARGV[2] .. ',', ',' .. current .. ',', 1, true) then
  return {0, current}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], unpack(ARGV, 3))
return {1, current}
"""

# Pop the next runnable task of a lane.
# KEYS: pending, processing
# ARGV: worker, now (epoch s), session-key head, session-key tail, preferred model ('' = none),
#       scan window, max times the head may be passed over for the preferred model,
#       priority band width (scores of one priority level lie within one band)
CLAIM = """
local expired = {}
local function session(id) return ARGV[3] .. id .. ARGV[4] end
local function runnable(id)
  local s = session(id)
  local fields = redis.call('HMGET', s, 'status', 'deadline_at')
  if fields[1] ~= 'queued' then
    redis.call('ZREM', KEYS[1], id)
    return false
  end
  if fields[2] and fields[2] ~= '' and tonumber(ARGV[2]) > tonumber(fields[2]) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HSET', s, 'status', 'failed', 'finished_at', ARGV[2],
      'error', '{"code":"deadline_exceeded","message":"the task was still queued at its deadline"}')
    table.insert(expired, id)
    return false
  end
  return true
end
local function take(id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HSET', session(id), 'status', 'processing', 'started_at', ARGV[2], 'worker', ARGV[1])
  redis.call('HSET', KEYS[2], id, ARGV[1])
  return {id, expired}
end
while true do
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #head == 0 then return {false, expired} end
  local head_id, head_score = head[1], tonumber(head[2])
  if runnable(head_id) then
    if ARGV[5] ~= '' then
      local band_end = head_score - (head_score % tonumber(ARGV[8])) + tonumber(ARGV[8]) - 1
      local window = redis.call('ZRANGEBYSCORE', KEYS[1], head_score, band_end,
                                'LIMIT', 0, tonumber(ARGV[6]))
      local head_model = redis.call('HGET', session(head_id), 'model_key')
      if head_model ~= ARGV[5] then
        local passed = tonumber(redis.call('HGET', session(head_id), 'passed_over') or '0')
        if passed < tonumber(ARGV[7]) then
          for i = 2, #window do
            local id = window[i]
            if redis.call('HGET', session(id), 'model_key') == ARGV[5] and runnable(id) then
              redis.call('HINCRBY', session(head_id), 'passed_over', 1)
              return take(id)
            end
          end
        end
      end
    end
    return take(head_id)
  end
end
"""
