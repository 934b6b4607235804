-- MOVE: a batch's guarded status move with its `{status}_at` stamp; a final one leaves the
-- active set. -> {1, previous} | {0, current ('' = no such batch)}
local batch = KEYS[1]
local active = KEYS[2]              -- the batches not yet ended
local status = ARGV[1]
local allowed = ARGV[2]             -- comma-separated statuses it may move from
local now = ARGV[3]
local batch_id = ARGV[4]
local final = ARGV[5]               -- '1' when the new status ends the batch
local FIELDS_FROM = 6               -- then field/value pairs to set with it

local current = redis.call('HGET', batch, 'status')
if not current then return {0, ''} end
if not string.find(',' .. allowed .. ',', ',' .. current .. ',', 1, true) then
  return {0, current}
end
redis.call('HSET', batch, 'status', status, status .. '_at', now, unpack(ARGV, FIELDS_FROM))
if final == '1' then redis.call('SREM', active, batch_id) end
return {1, current}
