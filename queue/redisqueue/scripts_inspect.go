package redisqueue

import (
	"fmt"

	"github.com/redis/go-redis/v9"
)

// The Inspector's scripts. Like the others, each touches the keys of one
// queue only (its hash tag); they add three keys to the layout, written off
// the enqueue and dequeue path:
//
//	<base>deadx  zset: dead jobs by the end of their retention, so that
//	             the dead set can be pruned of jobs that expired
//	<base>stat   hash: running totals, d (acked) and c (canceled)
//	<base>dd:<name>  string, for tombTTL ms: the nonce of the DeleteDead
//	             that deleted the dead job name (see deleteDeadScript)
//
// and two fields: p in the limits hash (set while the queue is paused)
// and rs in a job hash (ms when it last became ready other than by
// enqueue, for OldestReady).

// inspectHead starts the scripts that bring the queue up to date first.
//
//	KEYS: scheduled zset, active zset, limits hash, wake list
//	ARGV: base, channel, queue name, backoff ms joined by commas, ...
const inspectHead = `
local base, chan, qn, BO, ACKED = ARGV[1], ARGV[2], ARGV[3], 4, false
local now = now_ms()
`

// countsScript counts a queue's jobs by state.
//
// Returns {ready, scheduled, active, dead, done total, canceled total,
// paused (0/1), ms the oldest ready job became ready (-1: none), now ms}.
var countsScript = redis.NewScript(luaLib + inspectHead + tickBody + `
local ready, oldest = 0, nil
for p = 0, 9 do
  local rk = base .. 'r' .. p
  local n = redis.call('LLEN', rk)
  if n > 0 then
    ready = ready + n
    local h = redis.call('HMGET', base .. 'j:' .. redis.call('LINDEX', rk, 0), 'rs', 'e')
    local since = tonumber(h[1] or h[2])
    if since and (not oldest or since < oldest) then oldest = since end
  end
end
prune_dead(base, now, 100)
local st = redis.call('HMGET', base .. 'stat', 'd', 'c')
return {ready, redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', base .. 'dead'), tonumber(st[1]) or 0, tonumber(st[2]) or 0,
  redis.call('HEXISTS', KEYS[3], 'p'), oldest or -1, now}
`)

// listCap bounds the entries one list script looks at, in pages: a page
// that needs more (entries of jobs no longer in the state) ends early.
const listCap = "10"

// listReadyScript lists ready jobs in the order Dequeue takes them.
//
//	ARGV (after inspectHead's): priority to start at, the names of the
//	last jobs listed in that priority's list, the last first, joined by
//	commas ("" for none), the index of the last then, page size
//
// Returns {more, then per job: priority, index, name, its hash as HGETALL
// returns it}; more is 0 (the last page), 1, or 2 when it looked at its
// cap of entries without finding a job, followed by the priority, index
// and name to go on from. The listing goes on after the first of the
// cursor's jobs still in the list, found with LPOS within the index of
// the last then (jobs only move toward the head of a ready list): the
// jobs listed after it are gone.
var listReadyScript = redis.NewScript(luaLib + inspectHead + tickBody + `
local pri, limit = tonumber(ARGV[5]), tonumber(ARGV[8])
local cap = ` + listCap + ` * (limit + 1)
local start = 0
for cname in string.gmatch(ARGV[6], '[^,]+') do
  local pos = redis.call('LPOS', base .. 'r' .. pri, cname, 'MAXLEN', tonumber(ARGV[7]) + 1)
  if pos then start = pos + 1; break end
end
local out, found, scanned = {0}, 0, 0
for p = pri, 0, -1 do
  local rk = base .. 'r' .. p
  if p ~= pri then start = 0 end
  while found <= limit do
    local names = redis.call('LRANGE', rk, start, start + limit - found)
    if #names == 0 then break end
    for i, name in ipairs(names) do
      scanned = scanned + 1
      local h = redis.call('HGETALL', base .. 'j:' .. name)
      local st = nil
      for k = 1, #h, 2 do if h[k] == 'st' then st = h[k+1] end end
      if st == 'r' then
        if found == limit then out[1] = 1; return out end
        found = found + 1
        out[#out+1] = p; out[#out+1] = start + i - 1; out[#out+1] = name; out[#out+1] = h
      end
      if scanned == cap then
        if found > 0 then out[1] = 1; return out end
        return {2, p, start + i - 1, name}
      end
    end
    start = start + #names
  end
end
return out
`)

// listZScript lists the scheduled, active or dead jobs of a queue in the
// order of their sorted set (ascending, or descending for dead), then by
// name. It drops from the set the members whose job is no longer in the
// set's state (dead jobs whose retention passed).
//
//	ARGV (after inspectHead's): set (sched, active, dead), 1 for
//	descending, 1 when there is a cursor, the cursor's score and name,
//	page size, the state letter of the set's jobs
//
// Returns {more, then per job: score, name, its hash as HGETALL returns
// it}; more is 0 (the last page), 1, or 2 when it dropped its cap of
// members without finding a job (call again with the same cursor).
var listZScript = redis.NewScript(luaLib + inspectHead + tickBody + `
local zk, desc, limit, want = base .. ARGV[5], ARGV[6] == '1', tonumber(ARGV[10]), ARGV[11]
local cap = ` + listCap + ` * (limit + 1)
if ARGV[5] == 'dead' then prune_dead(base, now, 100) end
-- rank (or reverse rank) of the first member after the cursor
local start = 0
if ARGV[7] == '1' then
  local cs, cn = tonumber(ARGV[8]), ARGV[9]
  local r, s = nil, redis.call('ZSCORE', zk, cn)
  if s and tonumber(s) == cs then
    if desc then r = redis.call('ZREVRANK', zk, cn) else r = redis.call('ZRANK', zk, cn) end
  end
  if r then
    start = r + 1
  else
    -- The cursor's member left or moved: binary search, among the members
    -- of the cursor's score, for the first name after it.
    local lo, hi
    if desc then
      lo = redis.call('ZCOUNT', zk, '(' .. ARGV[8], '+inf')
      hi = redis.call('ZCOUNT', zk, ARGV[8], '+inf')
    else
      lo = redis.call('ZCOUNT', zk, '-inf', '(' .. ARGV[8])
      hi = redis.call('ZCOUNT', zk, '-inf', ARGV[8])
    end
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      local m
      if desc then m = redis.call('ZREVRANGE', zk, mid, mid)[1] else m = redis.call('ZRANGE', zk, mid, mid)[1] end
      if (desc and m < cn) or (not desc and m > cn) then hi = mid else lo = mid + 1 end
    end
    start = lo
  end
end
local out, found, scanned = {0}, 0, 0
while found <= limit do
  local stop = start + limit - found
  local names
  if desc then
    names = redis.call('ZREVRANGE', zk, start, stop, 'WITHSCORES')
  else
    names = redis.call('ZRANGE', zk, start, stop, 'WITHSCORES')
  end
  if #names == 0 then return out end
  local dropped = 0
  for i = 1, #names, 2 do
    scanned = scanned + 1
    local h = redis.call('HGETALL', base .. 'j:' .. names[i])
    local st = nil
    for k = 1, #h, 2 do if h[k] == 'st' then st = h[k+1] end end
    if st == want then
      if found == limit then out[1] = 1; return out end
      found = found + 1
      out[#out+1] = names[i+1]; out[#out+1] = names[i]; out[#out+1] = h
    else
      redis.call('ZREM', zk, names[i])
      dropped = dropped + 1
    end
    if scanned == cap then
      if found > 0 then out[1] = 1; return out end
      return {2}
    end
  end
  start = start + #names / 2 - dropped
end
return out
`)

// pauseScript sets or clears the paused flag of a queue; clearing it
// wakes as many blocked Dequeues as there are ready jobs (at most 64).
//
//	KEYS: limits hash, wake list
//	ARGV: base, 1 to pause, 0 to resume
var pauseScript = redis.NewScript(luaLib + `
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'p', '1')
  return 1
end
if redis.call('HDEL', KEYS[1], 'p') == 0 then return 1 end
local n = 0
for p = 0, 9 do n = n + redis.call('LLEN', ARGV[1] .. 'r' .. p) end
n = math.min(n, 64) - redis.call('LLEN', KEYS[2])
for _ = 1, n do redis.call('RPUSH', KEYS[2], '1') end
return 1
`)

// deadBatchScript requeues or deletes up to n dead jobs of a queue,
// oldest death first, dropping from the dead set members whose job is no
// longer dead.
//
//	KEYS: wake list
//	ARGV: base, n, requeue (1) or delete (0)
//
// Returns {jobs requeued or deleted, members looked at}.
var deadBatchScript = redis.NewScript(luaLib + `
local base, now = ARGV[1], now_ms()
local names = redis.call('ZRANGE', base .. 'dead', 0, tonumber(ARGV[2]) - 1)
local done = 0
for _, name in ipairs(names) do
  local jk = base .. 'j:' .. name
  if redis.call('HGET', jk, 'st') == 'x' then
    done = done + 1
    if ARGV[3] == '1' then
      requeue(base, jk, name, KEYS[1], now)
    else
      redis.call('DEL', jk)
    end
  end
  redis.call('ZREM', base .. 'dead', name)
  redis.call('ZREM', base .. 'deadx', name)
end
return {done, #names}
`)

// deleteDeadScript deletes one dead job. It leaves the call's nonce in
// <base>dd:<name> for tombTTL ms: go-redis and the Queue run a script again
// when its reply was lost, and the second run, finding the job gone, must
// report the first one's success, not "no such dead job"; another call's
// delete (another nonce) still gets that.
//
//	KEYS: job hash
//	ARGV: base, name, nonce
//
// Returns 1, or 2 when there is no such dead job.
var deleteDeadScript = redis.NewScript(fmt.Sprintf(`
local done = ARGV[1] .. 'dd:' .. ARGV[2]
if redis.call('GET', done) == ARGV[3] then return 1 end
if redis.call('HGET', KEYS[1], 'st') ~= 'x' then return 2 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[1] .. 'dead', ARGV[2])
redis.call('ZREM', ARGV[1] .. 'deadx', ARGV[2])
redis.call('SET', done, ARGV[3], 'PX', %d)
return 1
`, tombTTL))
