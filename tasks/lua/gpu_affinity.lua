-- GPU affinity, the part of CLAIM that concerns several GPU workers on one lane. It is
-- prepended to claim.lua (one script, so one atomic step) and only defines a function:
-- claim.lua calls it with named arguments.
-- Tasks for a model another live GPU holds (its gpu:loaded entry) are left to that GPU for
-- up to `wait` seconds after they were queued; a claim by a GPU with nothing loaded
-- announces the claimed model in its own entry in the same step, so two idle GPUs never both
-- take (and load) one model. Ids of GPUs whose entry lapsed leave the gpu:ids set.
-- a: {gpu ('' off the gpu lane), worker, preferred ('' = none), now, wait, gpu_ids,
--     loaded_head, loaded_tail, loaded_ttl, session (id -> its session key)}
-- -> {elsewhere(id) -> leave it to another GPU?, announce(session key)}
local function gpu_affinity(a)
  local function loaded_key(id) return a.loaded_head .. id .. a.loaded_tail end
  local avoid = {}  -- models another live GPU holds
  if a.gpu ~= '' then
    for _, other in ipairs(redis.call('SMEMBERS', a.gpu_ids)) do
      local record = other ~= a.gpu and redis.call('GET', loaded_key(other))
      if record then
        local ok, entry = pcall(cjson.decode, record)
        if ok and entry.name and entry.name ~= a.preferred then avoid[entry.name] = true end
      elseif other ~= a.gpu then
        redis.call('SREM', a.gpu_ids, other)
      end
    end
  end
  local affinity = {}
  function affinity.elsewhere(id)
    if next(avoid) == nil then return false end
    local fields = redis.call('HMGET', a.session(id), 'model_key', 'queued_at')
    if not avoid[fields[1]] then return false end
    return a.now - tonumber(fields[2] or '0') < a.wait
  end
  function affinity.announce(s)
    local own = loaded_key(a.gpu)
    if a.gpu == '' or a.preferred ~= '' or redis.call('EXISTS', own) == 1 then return end
    local entry = {name = redis.call('HGET', s, 'model_key'), loading = true, owner = a.worker}
    redis.call('SET', own, cjson.encode(entry), 'EX', a.loaded_ttl)
    redis.call('SADD', a.gpu_ids, a.gpu)
  end
  return affinity
end

