-- SKIP: lines that will never run (the batch was cancelled or expired before they were
-- enqueued), written as error lines in one step with the cursor that says they are handled;
-- a second runner with a stale cursor writes nothing. -> 1 | 0
local batch = KEYS[1]
local error_file = KEYS[2]          -- the error file's content
local cursor = ARGV[1]              -- the cursor the runner read
local new_cursor = ARGV[2]          -- the cursor past these lines
local count = ARGV[3]
local lines = ARGV[4]

if (redis.call('HGET', batch, 'cursor') or '0') ~= cursor then return 0 end
redis.call('APPEND', error_file, lines)
redis.call('HINCRBY', batch, 'failed', count)
redis.call('HSET', batch, 'cursor', new_cursor)
return 1
