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
//	h  headers, a JSON object of strings (absent = none; jobs stored
//	   before headers existed have none)
//	st state: s scheduled, r ready, a active, d done, x dead, c canceled
//	n  attempts      k  fencing token sa started ms  ed ended ms
//	le last error    r  result
//	sn the nonce of the last settling call (Ack, Fail, Release, Snooze,
//	   AckThen, Cancel, Requeue) that took effect: go-redis runs a command again
//	   when its connection broke (MaxRetries), and so does the Queue after a
//	   transient error (redisha.Retry), so a script may run twice for one
//	   call, and the second run, finding its own nonce, reports the first
//	   one's success instead of a lost lease; it also writes the field
//	   again, so that a WAIT after it (Config.WaitReplicas) covers the
//	   first run's write
//	dq the nonce of the Dequeue call that leased the job (see below)
//
// Dequeue records: a Dequeue call carries a nonce, and the script that
// leases a job for it also sets <base>dq:<nonce> to "<token>:<name>"
// (expiring with the lease, at most dqTTL ms; settling the job deletes
// it). A run again of the call's script (a lost reply) finds the record
// and answers the same delivery instead of leasing a second job. A call
// that fails (its context ended, its reply lost for good) runs
// giveBackScript with its nonce: the job the record names, still leased
// under the record's token, goes back to the head of its ready list
// without counting the attempt, and the record becomes a tombstone "-"
// (for tombTTL ms), so that the call's script, should it reach Redis only
// now (a request overtaken by the call's failure), leases nothing.
//
// The scripts read the clock with TIME wherever a time is compared with
// another process's (run-at, lease deadlines, the token bucket), so every
// process agrees on it. The informational enqueued time 'e' of a job is
// the enqueuing client's clock instead, which spares Enqueue a TIME.
//
// Wake tokens: a Dequeue that finds nothing to lease sets the queue's
// sleepers key <base>sl (expiring in sleepTTL ms, longer than any block)
// before it blocks on the wake list. Enqueue pushes a wake token only while
// that key exists, so a busy queue whose workers never block pays nothing
// for waking; every other path that makes a job ready pushes one always.

// sleepTTL is how long, in ms, the sleepers key outlives the last Dequeue
// that found nothing; Dequeue blocks for at most a second at a time.
const sleepTTL = 3000

// dqTTL bounds, in ms, how long a Dequeue record lives (it lives no longer
// than the lease it records): a call that leased a job is long over by
// then. tombTTL is how long the tombstone of a given-back call lives, far
// longer than a request can wait in a socket buffer (as the key that
// unblocks a canceled BLPOP).
const (
	dqTTL   = 60000
	tombTTL = 10000
)

// luaLib is prepended to the scripts that use it.
var luaLib = fmt.Sprintf(`
local DEF_M, DEF_RT, DQ_TTL, TOMB_TTL = %d, %d, %d, %d
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function wake(wk)
  if redis.call('LLEN', wk) < 64 then redis.call('RPUSH', wk, '1') end
end
local function ready(base, jk, name, wk, now)
  redis.call('HSET', jk, 'st', 'r', 'rs', now)
  redis.call('HDEL', jk, 'ra')
  redis.call('RPUSH', base .. 'r' .. (redis.call('HGET', jk, 'pr') or '0'), name)
  wake(wk)
end
-- unique_done frees a job's unique key u when it still holds it.
local function unique_done(base, name, u)
  if u then
    local uk = base .. 'u:' .. u
    if redis.call('GET', uk) == name then redis.call('DEL', uk) end
  end
end
-- finish makes a job final: st is d, x or c.
local function finish(base, jk, name, st, now, chan, id)
  redis.call('HSET', jk, 'st', st, 'ed', now)
  redis.call('HDEL', jk, 'ra')
  local h = redis.call('HMGET', jk, 'u', 'rt')
  unique_done(base, name, h[1])
  local rt = math.max(tonumber(h[2]) or DEF_RT, 1)
  redis.call('PEXPIRE', jk, rt)
  if st == 'x' then
    local dk = base .. 'dead'
    redis.call('ZADD', dk, now, name)
    redis.call('ZADD', base .. 'deadx', now + rt, name)
    redis.call('ZREMRANGEBYRANK', dk, 0, -100001)
  elseif st == 'c' then
    redis.call('HINCRBY', base .. 'stat', 'c', 1)
  end
  redis.call('PUBLISH', chan, id)
end
-- prune_dead drops from the dead set up to n jobs whose retention has
-- passed (by the deadx index), so that its size counts the dead jobs.
local function prune_dead(base, now, n)
  local dx = base .. 'deadx'
  local exp = redis.call('ZRANGEBYSCORE', dx, '-inf', now, 'LIMIT', 0, n)
  for _, name in ipairs(exp) do
    if redis.call('HGET', base .. 'j:' .. name, 'st') ~= 'x' then
      redis.call('ZREM', dx, name)
      redis.call('ZREM', base .. 'dead', name)
    end
  end
end
-- requeue makes the dead job name ready with fresh attempts.
local function requeue(base, jk, name, wk, now)
  redis.call('ZREM', base .. 'dead', name)
  redis.call('ZREM', base .. 'deadx', name)
  redis.call('PERSIST', jk)
  redis.call('HSET', jk, 'n', 0)
  redis.call('HDEL', jk, 'ed')
  ready(base, jk, name, wk, now)
end
-- drop_dq deletes the record of the Dequeue call that leased the job.
local function drop_dq(base, jk)
  local v = redis.call('HGET', jk, 'dq')
  if v then
    redis.call('DEL', base .. 'dq:' .. v)
    redis.call('HDEL', jk, 'dq')
  end
end
-- dq_record returns the token and name a Dequeue record holds.
local function dq_record(rec)
  local sep = string.find(rec, ':', 1, true)
  return string.sub(rec, 1, sep - 1), string.sub(rec, sep + 1)
end
-- wake_limited pushes a wake token when the queue has a concurrency bound,
-- since a lease just ended may let a blocked worker take a job.
local function wake_limited(lk, wk)
  if redis.call('HEXISTS', lk, 'c') == 1 then wake(wk) end
end
`, queue.DefaultMaxAttempts, queue.DefaultRetention.Milliseconds(), dqTTL, tombTTL)

// Result codes of the scripts.
const (
	codeLost     = 0 // not the current delivery / duplicate
	codeOK       = 1
	codeCanceled = 2 // the job was canceled / not found for Cancel
	codeEnded    = 3
	codeExists   = 4 // enqueue: the same job is stored under the ID (a retry)
)

// enqueueScript stores jobs of one queue, each atomically on its own, and
// makes each ready or scheduled.
//
//	KEYS: scheduled zset, wake list
//	ARGV: base, then per job: name, priority, run-at ms (0 for now),
//	      unique key ("" for none), unique-for ms, count of hash items f,
//	      type, payload, enqueued ms, then the f optional hash items
//	      (field, value, ...: those of m, rt, pr, to, u that differ from
//	      their defaults)
//
// Returns one item per job: 1 (enqueued), 4 (its ID already holds a job of
// the same type and payload: a retry, which stores nothing), or the name
// of the job holding its ID (with another type or payload) or its unique
// key.
var enqueueScript = redis.NewScript(`
local base = ARGV[1]
local out, i, now, ready, nready = {}, 2, nil, {}, 0
while i <= #ARGV do
  local name, pri, runat, u = ARGV[i], ARGV[i+1], tonumber(ARGV[i+2]), ARGV[i+3]
  local s, e = i + 9, i + 8 + tonumber(ARGV[i+5])
  local ty, pl, en = ARGV[i+6], ARGV[i+7], ARGV[i+8]
  i = e + 1
  local jk = base .. 'j:' .. name
  local res = 1
  local held = redis.call('HMGET', jk, 't', 'p')
  if held[1] or held[2] then
    if held[1] ~= ty or held[2] ~= pl then
      res = name
    else
      -- The same job again (a retry): a write all the same, so that a
      -- WAIT after it covers the first run's.
      redis.call('HSET', jk, 't', ty)
      res = 4
    end
  elseif u ~= '' and not redis.call('SET', base .. 'u:' .. u, name, 'NX', 'PX', ARGV[s-5]) then
    res = redis.call('GET', base .. 'u:' .. u) or name
  else
    if runat > 0 and not now then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    if runat > 0 and runat > now then
      redis.call('HSET', jk, 'st', 's', 'ra', runat, 't', ty, 'p', pl, 'e', en, unpack(ARGV, s, e))
      redis.call('ZADD', KEYS[1], runat, name)
    else
      redis.call('HSET', jk, 'st', 'r', 't', ty, 'p', pl, 'e', en, unpack(ARGV, s, e))
      local l = ready[pri]
      if not l then l = {}; ready[pri] = l end
      l[#l+1] = name
      nready = nready + 1
    end
  end
  out[#out+1] = res
end
-- The ready jobs go to their lists in order, one RPUSH per priority.
for pri, l in pairs(ready) do
  for j = 1, #l, 1000 do
    redis.call('RPUSH', base .. 'r' .. pri, unpack(l, j, math.min(j + 999, #l)))
  end
end
if nready > 0 and redis.call('EXISTS', base .. 'sl') == 1 then
  local n = math.min(nready, 64 - redis.call('LLEN', KEYS[2]))
  for _ = 1, n do redis.call('RPUSH', KEYS[2], '1') end
end
return out
`)

// dequeueScript brings one queue up to date and leases its best ready job.
//
//	KEYS: scheduled zset, active zset, limits hash, wake list
//	ARGV: base, lease ms (0: only steps a and b), channel, queue name,
//	      backoff ms for attempt 1, 2, ... joined by commas, the call's
//	      nonce (its Dequeue record)
//
// Returns {1, name, attempt, token, type, payload, max, retention, timeout,
// unique key, priority, enqueued ms, headers} or {0, ms until something is due (-1
// for nothing)}.
// dequeueBody is the body of dequeueScript and ackDequeueScript: with
// base, chan, qn and now set, ARGV[BO] the backoffs (ms for attempt 1, 2,
// ... joined by commas), ACKED whether a lease just ended and DQN the
// call's nonce.
var dequeueBody = tickBody + leaseBody

// tickBody brings a queue up to date: due scheduled jobs become ready and
// expired leases count as failed attempts. It needs base, chan, qn, now
// and ARGV[BO] set, and KEYS: scheduled zset, active zset, limits hash,
// wake list.
var tickBody = `-- (a) due scheduled jobs become ready
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 200)
for _, name in ipairs(due) do
  redis.call('ZREM', KEYS[1], name)
  local jk = base .. 'j:' .. name
  if redis.call('HGET', jk, 'st') == 's' then ready(base, jk, name, KEYS[4], now) end
end
-- (b) expired leases count as failed attempts
local bs = nil
local exp = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, 200)
for _, name in ipairs(exp) do
  redis.call('ZREM', KEYS[2], name)
  local jk = base .. 'j:' .. name
  local h = redis.call('HMGET', jk, 'st', 'n', 'm')
  if h[1] == 'a' then
    local n, m = tonumber(h[2]) or 0, tonumber(h[3]) or DEF_M
    drop_dq(base, jk)
    redis.call('HSET', jk, 'le', 'lease expired')
    if n >= m then
      finish(base, jk, name, 'x', now, chan, qn .. '~' .. name)
    else
      if not bs then
        bs = {}
        for v in string.gmatch(ARGV[BO], '[^,]+') do bs[#bs+1] = tonumber(v) or 0 end
      end
      local b = 0
      if #bs > 0 then b = bs[math.max(1, math.min(n, #bs))] end
      if b > 0 then
        redis.call('HSET', jk, 'st', 's', 'ra', now + b)
        redis.call('ZADD', KEYS[1], now + b, name)
      else
        ready(base, jk, name, KEYS[4], now)
      end
    end
  end
end
`

// leaseBody is the part of dequeueBody after tickBody: a lease.
var leaseBody = `if ARGV[2] == '0' then return {0, -1} end -- a tick: no lease
-- A run again of a call (DQN) that leased a job answers the same delivery;
-- a call given back leases nothing.
local dqk = base .. 'dq:' .. DQN
local rec = redis.call('GET', dqk)
if rec == '-' then return {0, -1} end
if rec then
  local k, name = dq_record(rec)
  local jk = base .. 'j:' .. name
  local h = redis.call('HMGET', jk, 'st', 'n', 'k', 't', 'p', 'm', 'rt', 'to', 'u', 'e', 'h', 'pr')
  if h[1] == 'a' and h[3] == k then
    redis.call('HSET', jk, 'dq', DQN) -- a write, so that a WAIT after it covers the lease
    for i = 4, 11 do if not h[i] then h[i] = '' end end
    return {1, name, tonumber(h[2]), tonumber(k), h[4], h[5], h[6], h[7], h[8], h[9], tonumber(h[12]) or 0, h[10], h[11]}
  end
end
-- (c) limits
local blocked, wait = false, -1
local lim = redis.call('HMGET', KEYS[3], 'c', 'r', 'b', 'tk', 'ts', 'p')
local c, rate, tokens = tonumber(lim[1]), tonumber(lim[2]), nil
if lim[6] then blocked = true end -- paused: Resume pushes wake tokens
-- A lease just ended may let a blocked worker take a job.
if ACKED and lim[1] then wake(KEYS[4]) end
if not blocked and c and c > 0 and redis.call('ZCARD', KEYS[2]) >= c then blocked = true end
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
-- (d) lease the best ready job; one EXISTS tells whether any list above
-- priority 0 holds a job.
if not blocked then
  local top = 0
  if redis.call('EXISTS', base .. 'r9', base .. 'r8', base .. 'r7', base .. 'r6', base .. 'r5',
      base .. 'r4', base .. 'r3', base .. 'r2', base .. 'r1') > 0 then top = 9 end
  for pri = top, 0, -1 do
    local rk = base .. 'r' .. pri
    local name = redis.call('LPOP', rk)
    while name do
      local jk = base .. 'j:' .. name
      local h = redis.call('HMGET', jk, 'st', 'n', 'k', 't', 'p', 'm', 'rt', 'to', 'u', 'e', 'h')
      if h[1] == 'r' then
        local n, k = (tonumber(h[2]) or 0) + 1, (tonumber(h[3]) or 0) + 1
        redis.call('HSET', jk, 'st', 'a', 'sa', now, 'n', n, 'k', k, 'dq', DQN)
        redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), name)
        redis.call('SET', dqk, k .. ':' .. name, 'PX', math.min(tonumber(ARGV[2]), DQ_TTL))
        if tokens then redis.call('HSET', KEYS[3], 'tk', tostring(tokens - 1)) end
        for i = 4, 11 do if not h[i] then h[i] = '' end end
        return {1, name, n, k, h[4], h[5], h[6], h[7], h[8], h[9], pri, h[10], h[11]}
      end
      name = redis.call('LPOP', rk)
    end
  end
end
-- Nothing to lease: stale wake tokens would only wake the caller in vain;
-- mark the queue as having sleepers so Enqueue wakes them.
redis.call('DEL', KEYS[4])
redis.call('SET', base .. 'sl', '1', 'PX', ` + fmt.Sprint(sleepTTL) + `)
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
`

var dequeueScript = redis.NewScript(luaLib + `
local base, chan, qn, BO, ACKED, DQN = ARGV[1], ARGV[3], ARGV[4], 5, false, ARGV[6]
local now = now_ms()
` + dequeueBody)

// ackDequeueScript acks a delivery as ackScript does, then leases the
// next job of its queue as dequeueScript does.
//
//	KEYS: scheduled zset, active zset, limits hash, wake list, job hash
//	ARGV: base, lease ms, channel, queue name, name, token, result, id,
//	      backoff ms for attempt 1, 2, ... joined by commas, nonce (of
//	      the ack and of the Dequeue record)
//
// Returns {-1} when the delivery is not current (nothing leased), else
// what dequeueScript returns. A run again of a call whose ack took effect
// (its nonce) answers as dequeueScript does for a run again.
var ackDequeueScript = redis.NewScript(luaLib + `
local base, chan, qn, BO, ACKED, DQN = ARGV[1], ARGV[3], ARGV[4], 9, true, ARGV[10]
local jk, name = KEYS[5], ARGV[5]
local h = redis.call('HMGET', jk, 'st', 'k', 'u', 'rt', 'le', 'sn')
local now = now_ms()
if h[6] ~= ARGV[10] then
  if h[1] ~= 'a' or h[2] ~= ARGV[6] then return {-1} end
  local dl = redis.call('ZSCORE', KEYS[2], name)
  if not dl or tonumber(dl) < now then return {-1} end
  redis.call('ZREM', KEYS[2], name)
  drop_dq(base, jk)
  redis.call('HSET', jk, 'r', ARGV[7], 'st', 'd', 'ed', now, 'sn', ARGV[10])
  redis.call('HINCRBY', base .. 'stat', 'd', 1)
  if h[5] then redis.call('HDEL', jk, 'le') end
  unique_done(base, name, h[3])
  redis.call('PEXPIRE', jk, math.max(tonumber(h[4]) or DEF_RT, 1))
  redis.call('PUBLISH', chan, ARGV[8])
end
` + dequeueBody)

// ackScript ends a delivery's job successfully. An active job has no 'ra'.
//
//	KEYS: job hash, active zset, limits hash, wake list
//	ARGV: base, name, token, result, channel, id, nonce
var ackScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'k', 'u', 'rt', 'le', 'sn')
if h[6] == ARGV[7] then redis.call('HSET', KEYS[1], 'sn', ARGV[7]); return 1 end
if h[1] ~= 'a' or h[2] ~= ARGV[3] then return 0 end
local now = now_ms()
local dl = redis.call('ZSCORE', KEYS[2], ARGV[2])
if not dl or tonumber(dl) < now then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
drop_dq(ARGV[1], KEYS[1])
redis.call('HSET', KEYS[1], 'r', ARGV[4], 'st', 'd', 'ed', now, 'sn', ARGV[7])
redis.call('HINCRBY', ARGV[1] .. 'stat', 'd', 1)
if h[5] then redis.call('HDEL', KEYS[1], 'le') end
unique_done(ARGV[1], ARGV[2], h[3])
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(h[4]) or DEF_RT, 1))
redis.call('PUBLISH', ARGV[5], ARGV[6])
wake_limited(KEYS[3], KEYS[4])
return 1
`)

// failScript records a failed attempt: retry after the backoff, or dead.
//
//	KEYS: job hash, active zset, scheduled zset, limits hash, wake list
//	ARGV: base, name, token, error text, permanent (1/0), backoff ms, channel, id, nonce
var failScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'k', 'n', 'm', 'sn')
if h[5] == ARGV[9] then redis.call('HSET', KEYS[1], 'sn', ARGV[9]); return 1 end
if h[1] ~= 'a' or h[2] ~= ARGV[3] then return 0 end
local now = now_ms()
redis.call('ZREM', KEYS[2], ARGV[2])
drop_dq(ARGV[1], KEYS[1])
redis.call('HSET', KEYS[1], 'le', ARGV[4], 'sn', ARGV[9])
if ARGV[5] == '1' or (tonumber(h[3]) or 0) >= (tonumber(h[4]) or DEF_M) then
  finish(ARGV[1], KEYS[1], ARGV[2], 'x', now, ARGV[7], ARGV[8])
else
  local b = tonumber(ARGV[6])
  if b > 0 then
    redis.call('HSET', KEYS[1], 'st', 's', 'ra', now + b)
    redis.call('ZADD', KEYS[3], now + b, ARGV[2])
  else
    ready(ARGV[1], KEYS[1], ARGV[2], KEYS[5], now)
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

// snoozeScript gives a leased job back without counting the attempt
// (Release, with no delay; Snooze), to be ready no sooner than a delay
// from now: scheduled, as a retry's backoff
// is. A Dequeue blocked on the queue (its sleepers key) reckoned its wait
// without this job, so a wake token makes it look again and wait for the
// job's run-at; with no sleepers, only the freed concurrency slot wakes.
//
//	KEYS: job hash, active zset, scheduled zset, limits hash, wake list
//	ARGV: base, name, token, delay ms (0: ready at once), nonce
var snoozeScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'k', 'sn')
if h[3] == ARGV[5] then redis.call('HSET', KEYS[1], 'sn', ARGV[5]); return 1 end
if h[1] ~= 'a' or h[2] ~= ARGV[3] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[2])
drop_dq(ARGV[1], KEYS[1])
redis.call('HINCRBY', KEYS[1], 'n', -1)
redis.call('HSET', KEYS[1], 'sn', ARGV[5])
local now, b = now_ms(), tonumber(ARGV[4])
if b > 0 then
  redis.call('HSET', KEYS[1], 'st', 's', 'ra', now + b)
  redis.call('ZADD', KEYS[3], now + b, ARGV[2])
  if redis.call('EXISTS', ARGV[1] .. 'sl') == 1 then wake(KEYS[5]) else wake_limited(KEYS[4], KEYS[5]) end
else
  ready(ARGV[1], KEYS[1], ARGV[2], KEYS[5], now)
end
return 1
`)

// cancelScript cancels a waiting or running job.
//
//	KEYS: job hash, scheduled zset, active zset, limits hash, wake list
//	ARGV: base, name, channel, id, nonce
//
// Returns 1 canceled, 2 not found, 3 already ended.
var cancelScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'pr', 'sn')
local st = h[1]
if not st then return 2 end
if h[3] == ARGV[5] then redis.call('HSET', KEYS[1], 'sn', ARGV[5]); return 1 end
if st == 'd' or st == 'x' or st == 'c' then return 3 end
if st == 'r' then
  redis.call('LREM', ARGV[1] .. 'r' .. (h[2] or '0'), 1, ARGV[2])
elseif st == 's' then
  redis.call('ZREM', KEYS[2], ARGV[2])
elseif st == 'a' then
  redis.call('ZREM', KEYS[3], ARGV[2])
  drop_dq(ARGV[1], KEYS[1])
  wake_limited(KEYS[4], KEYS[5])
end
redis.call('HSET', KEYS[1], 'sn', ARGV[5])
finish(ARGV[1], KEYS[1], ARGV[2], 'c', now_ms(), ARGV[3], ARGV[4])
return 1
`)

// requeueScript makes a dead job ready again with fresh attempts.
//
//	KEYS: job hash, wake list
//	ARGV: base, name, nonce
//
// Returns 1, or 2 when there is no such dead job.
var requeueScript = redis.NewScript(luaLib + `
local h = redis.call('HMGET', KEYS[1], 'st', 'sn')
if h[2] == ARGV[3] then redis.call('HSET', KEYS[1], 'sn', ARGV[3]); return 1 end
if h[1] ~= 'x' then return 2 end
redis.call('HSET', KEYS[1], 'sn', ARGV[3])
requeue(ARGV[1], KEYS[1], ARGV[2], KEYS[2], now_ms())
return 1
`)

// giveBackScript undoes the lease of a Dequeue call that failed (see
// "Dequeue records" above): the job the call's record names, when still
// leased under the record's token, goes back to the head of its ready
// list without counting the attempt (and its rate token back to the
// bucket), and the record becomes a tombstone.
//
//	KEYS: active zset, limits hash, wake list
//	ARGV: base, nonce
//
// Returns 1 when a job was given back, else 0.
var giveBackScript = redis.NewScript(luaLib + `
local base = ARGV[1]
local dk = base .. 'dq:' .. ARGV[2]
local rec = redis.call('GET', dk)
redis.call('SET', dk, '-', 'PX', TOMB_TTL)
if not rec or rec == '-' then return 0 end
local k, name = dq_record(rec)
local jk = base .. 'j:' .. name
local h = redis.call('HMGET', jk, 'st', 'k', 'pr', 'n')
if h[1] ~= 'a' or h[2] ~= k then return 0 end
redis.call('ZREM', KEYS[1], name)
redis.call('HDEL', jk, 'dq')
local n = (tonumber(h[4]) or 1) - 1
redis.call('HSET', jk, 'st', 'r', 'n', n)
if n == 0 then redis.call('HDEL', jk, 'sa') end
redis.call('LPUSH', base .. 'r' .. (h[3] or '0'), name)
wake(KEYS[3])
local lim = redis.call('HMGET', KEYS[2], 'r', 'b', 'tk')
if lim[1] and lim[3] then
  local burst = tonumber(lim[2]) or math.max(1, math.floor(tonumber(lim[1])))
  redis.call('HSET', KEYS[2], 'tk', tostring(math.min(burst, tonumber(lim[3]) + 1)))
end
return 1
`)
