-- TRANSITION: a guarded status change and everything that follows from it, in one atomic
-- step: the side effects (timeline, counters, events, queue bookkeeping) run only if the
-- change is allowed. The run guard refuses a change based on a stale read: the task was
-- claimed again since.
-- -> {1, previous} | {0, current ('' = no such task)}
local session = KEYS[1]
local status = ARGV[1]
local allowed = ARGV[2]             -- comma-separated statuses it may change from
local effects = ARGV[3]             -- JSON list of commands
local run_seen = ARGV[4]            -- the run the caller saw
local FIELDS_FROM = 5               -- then field/value pairs for the session hash

local current = redis.call('HGET', session, 'status')
if not current then return {0, ''} end
if not string.find(',' .. allowed .. ',', ',' .. current .. ',', 1, true) then
  return {0, current}
end
if (redis.call('HGET', session, 'run') or '0') ~= run_seen then return {0, current} end
redis.call('HSET', session, 'status', status, unpack(ARGV, FIELDS_FROM))
for _, command in ipairs(cjson.decode(effects)) do redis.call(unpack(command)) end
return {1, current}
