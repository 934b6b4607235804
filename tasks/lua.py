"""Lua scripts: each multi-key change of task state happens atomically inside Redis.

Key names reach the scripts from sop_llm.core.keys (as KEYS, or as a session-key head/tail pair
when a script must reach a task it only learns about while running).
"""

from functools import cache

from sop_llm.core.redis import get_redis


@cache
def _registered(source: str):
    return get_redis().register_script(source)


def run(source: str, *, keys: list[str], args: list, client=None):
    """Run a script by its SHA (loaded once per process; reloaded after a Redis restart)."""
    return _registered(source)(keys=keys, args=args, client=client or get_redis())


# The owner's limits are checked and charged in the same step, so they hold exactly however
# many submissions race: its open tasks (a set) and its tokens today (reserved max_tokens).
# -> {'created', position} | {'exists', stored idempotency value} | {'full', depth}
#    | {'limit', 'max_queued' | 'tokens_per_day', current amount}
# KEYS: session, timeline, pending, idempotency ('' = none), deadlines, owner's open tasks,
#       owner's tokens today
# ARGV: task_id, idem_value, idem_ttl, session_ttl, score, max_pending, timeline_json,
#       deadline_at ('' = none), max_queued ('' = none), tokens_per_day ('' = none),
#       tokens to reserve, tokens counter ttl, then field/value pairs for the session hash
CREATE = """
if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then return {'exists', existing} end
end
local depth = redis.call('ZCARD', KEYS[3])
if depth >= tonumber(ARGV[6]) then return {'full', tostring(depth)} end
local open = redis.call('SCARD', KEYS[6])
if ARGV[9] ~= '' and open >= tonumber(ARGV[9]) then
  return {'limit', 'max_queued', tostring(open)}
end
local charged = tonumber(redis.call('GET', KEYS[7]) or '0')
if ARGV[10] ~= '' and charged + tonumber(ARGV[11]) > tonumber(ARGV[10]) then
  return {'limit', 'tokens_per_day', tostring(charged)}
end
if KEYS[4] ~= '' then
  redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3])
end
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('INCRBY', KEYS[7], ARGV[11])
redis.call('EXPIRE', KEYS[7], ARGV[12])
redis.call('HSET', KEYS[1], unpack(ARGV, 13))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
if ARGV[8] ~= '' then redis.call('ZADD', KEYS[5], ARGV[8], ARGV[1]) end
redis.call('RPUSH', KEYS[2], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {'created', redis.call('ZRANK', KEYS[3], ARGV[1]) + 1}
"""

# A guarded status change and everything that follows from it, in one atomic step: the side
# effects (timeline, counters, events, queue bookkeeping) run only if the change is allowed.
# The run guard refuses a change based on a stale read: the task was claimed again since.
# -> {1, previous} | {0, current ('' = no such task)}
# KEYS: session
# ARGV: new status, comma-separated allowed current statuses, effects (JSON list of
#       commands), the run the caller saw, then field/value pairs for the session hash
TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {0, ''} end
if not string.find(',' .. ARGV[2] .. ',', ',' .. current .. ',', 1, true) then
  return {0, current}
end
if (redis.call('HGET', KEYS[1], 'run') or '0') ~= ARGV[4] then return {0, current} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], unpack(ARGV, 5))
for _, command in ipairs(cjson.decode(ARGV[3])) do redis.call(unpack(command)) end
return {1, current}
"""

# Take the next runnable task of a lane and return it whole, so the worker needs no read-back.
# Tasks past their deadline are skipped and returned for the lifecycle to fail (at most
# MAX_EXPIRED per call); ids whose session is gone or no longer queued are dropped.
# -> {task_id or false, {expired ids}, {field, value, ...} of the claimed task}
# KEYS: pending, processing
# ARGV: worker, now (epoch s), session-key head, session-key tail, preferred model ('' = none),
#       scan window, max times the head may be passed over for the preferred model,
#       priority band width (scores of one priority level lie within one band),
#       the claiming GPU_ID ('' off the gpu lane), seconds a task may wait for the worker that
#       holds its model before any worker takes it, gpu:loaded key head and tail, its TTL
# KEYS[3]: gpu:ids. Tasks for a model another live GPU holds (its gpu:loaded entry) are left to
# it; a claim by a GPU with nothing loaded announces the claimed model in its own entry, in
# the same step, so two idle GPUs never both take (and load) one model.
# Returns a 4th element: how many tasks were left to another worker's model.
CLAIM = """
local MAX_EXPIRED = 100
local expired, seen, left = {}, {}, 0
local gpu = ARGV[9]
local function loaded_key(id) return ARGV[11] .. id .. ARGV[12] end
local function models_elsewhere()
  local held = {}
  if gpu == '' then return held end
  for _, other in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    local record = other ~= gpu and redis.call('GET', loaded_key(other))
    if record then
      local ok, entry = pcall(cjson.decode, record)
      if ok and entry.name and entry.name ~= ARGV[5] then held[entry.name] = true end
    elseif other ~= gpu then
      redis.call('SREM', KEYS[3], other)
    end
  end
  return held
end
local avoid = models_elsewhere()
local function session(id) return ARGV[3] .. id .. ARGV[4] end
local function announce(s)
  local own = loaded_key(gpu)
  if gpu == '' or ARGV[5] ~= '' or redis.call('EXISTS', own) == 1 then return end
  local entry = {name = redis.call('HGET', s, 'model_key'), loading = true, owner = ARGV[1]}
  redis.call('SET', own, cjson.encode(entry), 'EX', tonumber(ARGV[13]))
  redis.call('SADD', KEYS[3], gpu)
end
local function elsewhere(id)
  if next(avoid) == nil then return false end
  local fields = redis.call('HMGET', session(id), 'model_key', 'queued_at')
  if not avoid[fields[1]] then return false end
  return tonumber(ARGV[2]) - tonumber(fields[2] or '0') < tonumber(ARGV[10])
end
local function runnable(id)
  local fields = redis.call('HMGET', session(id), 'status', 'deadline_at')
  if fields[1] ~= 'queued' then
    redis.call('ZREM', KEYS[1], id)
    return false
  end
  if fields[2] and fields[2] ~= '' and tonumber(ARGV[2]) > tonumber(fields[2]) then
    if not seen[id] then seen[id] = true; table.insert(expired, id) end
    return false
  end
  return true
end
local function take(id)
  local s = session(id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HSET', s, 'status', 'processing', 'started_at', ARGV[2], 'worker', ARGV[1])
  redis.call('HINCRBY', s, 'run', 1)
  redis.call('HSET', KEYS[2], id, ARGV[1])
  announce(s)
  return {id, expired, redis.call('HGETALL', s), left}
end
local offset = 0
while #expired < MAX_EXPIRED do
  local head = redis.call('ZRANGE', KEYS[1], offset, offset, 'WITHSCORES')
  if #head == 0 then break end
  local head_id, head_score = head[1], tonumber(head[2])
  if seen[head_id] then
    offset = offset + 1
  elseif runnable(head_id) and elsewhere(head_id) then
    seen[head_id] = true
    left = left + 1
    if left >= tonumber(ARGV[6]) then break end
  elseif runnable(head_id) then
    if ARGV[5] ~= '' and redis.call('HGET', session(head_id), 'model_key') ~= ARGV[5] then
      local passed = tonumber(redis.call('HGET', session(head_id), 'passed_over') or '0')
      if passed < tonumber(ARGV[7]) then
        local band_end = head_score - (head_score % tonumber(ARGV[8])) + tonumber(ARGV[8]) - 1
        local window = redis.call('ZRANGEBYSCORE', KEYS[1], head_score, band_end,
                                  'LIMIT', 0, tonumber(ARGV[6]))
        for i = 2, #window do
          local id = window[i]
          if redis.call('HGET', session(id), 'model_key') == ARGV[5] and runnable(id) then
            redis.call('HINCRBY', session(head_id), 'passed_over', 1)
            return take(id)
          end
        end
      end
    end
    return take(head_id)
  elseif seen[head_id] then
    offset = offset + 1
  end
end
return {false, expired, {}, left}
"""
