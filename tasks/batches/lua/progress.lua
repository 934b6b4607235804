-- PROGRESS: once every line is accounted for (written to the output or error file), an
-- in_progress batch moves to finalizing here, once; a cancelling one is reported so that its
-- caller ends it. -> the status to finish from, or ''
local batch = KEYS[1]
local now = ARGV[1]

local b = redis.call('HMGET', batch, 'status', 'total', 'completed', 'failed', 'enqueue_done')
if b[5] ~= '1' then return '' end
if tonumber(b[3] or '0') + tonumber(b[4] or '0') < tonumber(b[2] or '0') then return '' end
if b[1] == 'in_progress' then
  redis.call('HSET', batch, 'status', 'finalizing', 'finalizing_at', now)
  return 'finalizing'
end
if b[1] == 'finalizing' or b[1] == 'cancelling' then return b[1] end
return ''
