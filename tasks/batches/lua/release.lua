-- RELEASE: a batch's runner lease, let go only by the runner that holds it. -> 1 | 0
local lease = KEYS[1]
local token = ARGV[1]               -- the holder's lease token

if redis.call('GET', lease) == token then return redis.call('DEL', lease) end
return 0
