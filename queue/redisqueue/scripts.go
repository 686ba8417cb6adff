package redisqueue

import (
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/scaleout/scaleout/queue"
)

// Every script touches only keys of one queue, all under the queue's hash
// tag <prefix>{<queue>}:, so each runs on one Redis Cluster slot. KEYS name
// the fixed keys of the queue; the job hashes, ready lists and unique keys
// are built from ARGV[1] (the queue's key base, which carries the same tag).
//
// Job hash fields (short names keep a small job's hash in one listpack):
//
//	t  type          p  payload       pr priority (absent = 0)
//	m  max attempts (absent = queue.DefaultMaxAttempts)
//	rt retention ms (absent = queue.DefaultRetention)
//	to timeout ms (absent = 0)
//	u  unique key    e  enqueued ms   ra run-at ms (scheduled only)
//	st state: s scheduled, r ready, a active, d done, x dead, c canceled
//	n  attempts      k  fencing token sa started ms  ed ended ms
//	le last error    r  result
//
// The scripts read the clock with TIME, so every process agrees on it.

// luaLib is prepended to every script.
var luaLib = fmt.Sprintf(`
local DEF_M, DEF_RT = %d, %d
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function wake(wk)
  if redis.call('LLEN', wk) < 64 then redis.call('RPUSH', wk, '1') end
end
local function ready(base, jk, name, wk)
  redis.call('HSET', jk, 'st', 'r')
  redis.call('HDEL', jk, 'ra')
  redis.call('RPUSH', base .. 'r' .. (redis.call('HGET', jk, 'pr') or '0'), name)
  wake(wk)
end
-- finish makes a job final: st is d, x or c.
local function finish(base, jk, name, st, now, chan, id)
  redis.call('HSET', jk, 'st', st, 'ed', now)
  redis.call('HDEL', jk, 'ra')
  local h = redis.call('HMGET', jk, 'u', 'rt')
  if h[1] then
    local uk = base .. 'u:' .. h[1]
    if redis.call('GET', uk) == name then redis.call('DEL', uk) end
  end
  local rt = tonumber(h[2]) or DEF_RT
  redis.call('PEXPIRE', jk, math.max(rt, 1))
  if st == 'x' then
    local dk = base .. 'dead'
    redis.call('ZADD', dk, now, name)
    redis.call('ZREMRANGEBYRANK', dk, 0, -100001)
  end
  redis.call('PUBLISH', chan, id)
end
-- wake_limited pushes a wake token when the queue has a concurrency bound,
-- since a lease just ended may let a blocked worker take a job.
local function wake_limited(lk, wk)
  if redis.call('HEXISTS', lk, 'c') == 1 then wake(wk) end
end
`, queue.DefaultMaxAttempts, queue.DefaultRetention.Milliseconds())

// Result codes of the scripts.
const (
	codeLost     = 0 // not the current delivery / duplicate
	codeOK       = 1
	codeCanceled = 2 // the job was canceled / not found for Cancel
	codeEnded    = 3
)

// enqueueScript stores a job and makes it ready or scheduled.
//
//	KEYS: job hash, scheduled zset, wake list, unique key (the job hash when none)
//	ARGV: base, name, type, payload, priority, max attempts, retention ms,
//	      timeout ms, run-at ms (0 for now), unique key ("" for none), unique-for ms
//
// Returns {1} or {0, name of the job holding the ID or unique key}.
var enqueueScript = redis.NewScript(luaLib + `
local base, name = ARGV[1], ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, name} end
if ARGV[10] ~= '' then
  if not redis.call('SET', KEYS[4], name, 'NX', 'PX', ARGV[11]) then
    return {0, redis.call('GET', KEYS[4]) or name}
  end
end
local now = now_ms()
local runat = tonumber(ARGV[9])
local f = {'t', ARGV[3], 'p', ARGV[4], 'e', now}
if tonumber(ARGV[6]) ~= DEF_M then f[#f+1] = 'm'; f[#f+1] = ARGV[6] end
if tonumber(ARGV[7]) ~= DEF_RT then f[#f+1] = 'rt'; f[#f+1] = ARGV[7] end
if ARGV[5] ~= '0' then f[#f+1] = 'pr'; f[#f+1] = ARGV[5] end
if ARGV[8] ~= '0' then f[#f+1] = 'to'; f[#f+1] = ARGV[8] end
if ARGV[10] ~= '' then f[#f+1] = 'u'; f[#f+1] = ARGV[10] end
if runat > now then
  f[#f+1] = 'st'; f[#f+1] = 's'; f[#f+1] = 'ra'; f[#f+1] = runat
  redis.call('HSET', KEYS[1], unpack(f))
  redis.call('ZADD', KEYS[2], runat, name)
else
  f[#f+1] = 'st'; f[#f+1] = 'r'
  redis.call('HSET', KEYS[1], unpack(f))
  redis.call('RPUSH', base .. 'r' .. ARGV[5], name)
  wake(KEYS[3])
end
return {1}
`)

// dequeueScript brings one queue up to date and leases its best ready job.
//
//	KEYS: scheduled zset, active zset, limits hash, wake list
//	ARGV: base, lease ms (0: only steps a and b), channel, queue name,
//	      backoff ms for attempt 1, 2, ...
//
// Returns {1, name, attempt, token, type, payload, max, retention, timeout,
// unique key, priority, enqueued ms} or {0, ms until something is due (-1
// for nothing)}.
var dequeueScript = redis.NewScript(luaLib + `
local base, chan, qn = ARGV[1], ARGV[3], ARGV[4]
local now = now_ms()
-- (a) due scheduled jobs become ready
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 200)
for _, name in ipairs(due) do
  redis.call('ZREM', KEYS[1], name)
  local jk = base .. 'j:' .. name
  if redis.call('HGET', jk, 'st') == 's' then ready(base, jk, name, KEYS[4]) end
end
-- (b) expired leases count as failed attempts
local nb = #ARGV - 4
local exp = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, 200)
for _, name in ipairs(exp) do
  redis.call('ZREM', KEYS[2], name)
  local jk = base .. 'j:' .. name
  local h = redis.call('HMGET', jk, 'st', 'n', 'm')
  if h[1] == 'a' then
    local n, m = tonumber(h[2]) or 0, tonumber(h[3]) or DEF_M
    redis.call('HSET', jk, 'le', 'lease expired')
    if n >= m then
      finish(base, jk, name, 'x', now, chan, qn .. '/' .. name)
    else
      local b = 0
      if nb > 0 then b = tonumber(ARGV[4 + math.max(1, math.min(n, nb))]) or 0 end
      if b > 0 then
        redis.call('HSET', jk, 'st', 's', 'ra', now + b)
        redis.call('ZADD', KEYS[1], now + b, name)
      else
        ready(base, jk, name, KEYS[4])
      end
    end
  end
end
if ARGV[2] == '0' then return {0, -1} end -- a tick: no lease
-- (c) limits
local blocked, wait = false, -1
local lim = redis.call('HMGET', KEYS[3], 'c', 'r', 'b', 'tk', 'ts')
local c, rate, tokens = tonumber(lim[1]), tonumber(lim[2]), nil
if c and c > 0 and redis.call('ZCARD', KEYS[2]) >= c then blocked = true end
if not blocked and rate and rate > 0 then
  local burst = tonumber(lim[3]) or math.max(1, math.floor(rate))
  tokens = tonumber(lim[4]) or burst
  local ts = tonumber(lim[5]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
  redis.call('HSET', KEYS[3], 'tk', tostring(tokens), 'ts', now)
  if tokens < 1 then
    blocked = true
    wait = math.ceil((1 - tokens) * 1000 / rate)
  end
end
-- (d) lease the best ready job
if not blocked then
  for pri = 9, 0, -1 do
    local rk = base .. 'r' .. pri
    local name = redis.call('LPOP', rk)
    while name do
      local jk = base .. 'j:' .. name
      if redis.call('HGET', jk, 'st') == 'r' then
        local n = redis.call('HINCRBY', jk, 'n', 1)
        local k = redis.call('HINCRBY', jk, 'k', 1)
        redis.call('HSET', jk, 'st', 'a', 'sa', now)
        redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), name)
        if tokens then redis.call('HSET', KEYS[3], 'tk', tostring(tokens - 1)) end
        local h = redis.call('HMGET', jk, 't', 'p', 'm', 'rt', 'to', 'u', 'e')
        for i = 1, 7 do if not h[i] then h[i] = '' end end
        return {1, name, n, k, h[1], h[2], h[3], h[4], h[5], h[6], pri, h[7]}
      end
      name = redis.call('LPOP', rk)
    end
  end
end
-- Nothing to lease: stale wake tokens would only wake the caller in vain.
redis.call('DEL', KEYS[4])
local s1 = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if s1[2] then
  local d = math.max(0, tonumber(s1[2]) - now)
  if wait < 0 or d < wait then wait = d end
end
local a1 = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if a1[2] then
  local d = math.max(0, tonumber(a1[2]) - now + 1)
  if wait < 0 or d < wait then wait = d end
end
return {0, wait}
`)

// ackScript ends a delivery's job successfully.
//
//	KEYS: job hash, active zset, limits hash, wake list
//	ARGV: base, name, token, result, channel, id
var ackScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'k')
if h[1] ~= 'a' or h[2] ~= ARGV[3] then return 0 end
local now = now_ms()
local dl = redis.call('ZSCORE', KEYS[2], ARGV[2])
if not dl or tonumber(dl) < now then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'r', ARGV[4])
redis.call('HDEL', KEYS[1], 'le')
finish(ARGV[1], KEYS[1], ARGV[2], 'd', now, ARGV[5], ARGV[6])
wake_limited(KEYS[3], KEYS[4])
return 1
`)

// failScript records a failed attempt: retry after the backoff, or dead.
//
//	KEYS: job hash, active zset, scheduled zset, limits hash, wake list
//	ARGV: base, name, token, error text, permanent (1/0), backoff ms, channel, id
var failScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'k', 'n', 'm')
if h[1] ~= 'a' or h[2] ~= ARGV[3] then return 0 end
local now = now_ms()
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'le', ARGV[4])
if ARGV[5] == '1' or (tonumber(h[3]) or 0) >= (tonumber(h[4]) or DEF_M) then
  finish(ARGV[1], KEYS[1], ARGV[2], 'x', now, ARGV[7], ARGV[8])
else
  local b = tonumber(ARGV[6])
  if b > 0 then
    redis.call('HSET', KEYS[1], 'st', 's', 'ra', now + b)
    redis.call('ZADD', KEYS[3], now + b, ARGV[2])
  else
    ready(ARGV[1], KEYS[1], ARGV[2], KEYS[5])
  end
end
wake_limited(KEYS[4], KEYS[5])
return 1
`)

// extendScript renews a lease.
//
//	KEYS: job hash, active zset
//	ARGV: name, token, lease ms
var extendScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'k')
if h[2] ~= ARGV[2] then return 0 end
if h[1] == 'c' then return 2 end
if h[1] ~= 'a' then return 0 end
local now = now_ms()
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return 1
`)

// releaseScript gives a leased job back without counting the attempt.
//
//	KEYS: job hash, active zset, wake list
//	ARGV: base, name, token
var releaseScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'k')
if h[1] ~= 'a' or h[2] ~= ARGV[3] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'n', -1)
ready(ARGV[1], KEYS[1], ARGV[2], KEYS[3])
return 1
`)

// cancelScript cancels a waiting or running job.
//
//	KEYS: job hash, scheduled zset, active zset, limits hash, wake list
//	ARGV: base, name, channel, id
//
// Returns 1 canceled, 2 not found, 3 already ended.
var cancelScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'pr')
local st = h[1]
if not st then return 2 end
if st == 'd' or st == 'x' or st == 'c' then return 3 end
if st == 'r' then
  redis.call('LREM', ARGV[1] .. 'r' .. (h[2] or '0'), 1, ARGV[2])
elseif st == 's' then
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif st == 'a' then
  redis.call('ZREM', KEYS[3], ARGV[2])
  wake_limited(KEYS[4], KEYS[5])
end
finish(ARGV[1], KEYS[1], ARGV[2], 'c', now_ms(), ARGV[3], ARGV[4])
return 1
`)

// requeueScript makes a dead job ready again with fresh attempts.
//
//	KEYS: job hash, wake list
//	ARGV: base, name
//
// Returns 1, or 2 when there is no such dead job.
var requeueScript = redis.NewScript(luaLib + `
if redis.call('HGET', KEYS[1], 'st') ~= 'x' then return 2 end
redis.call('ZREM', ARGV[1] .. 'dead', ARGV[2])
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[1], 'n', 0)
redis.call('HDEL', KEYS[1], 'ed')
ready(ARGV[1], KEYS[1], ARGV[2], KEYS[2])
return 1
`)
