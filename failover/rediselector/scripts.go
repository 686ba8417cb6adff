package rediselector

import "github.com/redis/go-redis/v9"

// The scripts. KEYS[1] is the lease key, KEYS[2] the token key; both
// carry the role's hash tag, so each script touches one Cluster slot. The
// lease value is "<id> <token>".

// acquireScript: ARGV[1] id, ARGV[2] lease in ms, ARGV[3] the smallest
// token acceptable (the candidate's last known token + 1), ARGV[4] the
// events channel, ARGV[5] the token of the candidate's last Term + 1 (a
// lease of its own with a token at least this was never its Term). Returns {1, token} when it took the lease, {0, value}
// when someone holds it.
var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  -- Our own lease with a token we never learned: an earlier acquire whose
  -- reply was lost (a timeout). Nobody else can have led since, so take
  -- it up rather than leave the role vacant until it expires. A token we
  -- did learn (a term that ended) is never taken up again: every term
  -- gets a new token.
  local sp = string.find(cur, ' ', 1, true)
  if sp and string.sub(cur, 1, sp - 1) == ARGV[1] then
    local t = tonumber(string.sub(cur, sp + 1))
    if t and t >= tonumber(ARGV[5]) then
      redis.call('PEXPIRE', KEYS[1], ARGV[2])
      return {1, t}
    end
  end
  return {0, cur}
end
local t = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3])
if floor and t < floor then
  t = floor
  redis.call('SET', KEYS[2], string.format('%d', t))
end
local v = ARGV[1] .. ' ' .. string.format('%d', t)
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[4], 'acquired ' .. v)
return {1, t}
`)

// renewScript: ARGV[1] the value "<id> <token>", ARGV[2] lease in ms.
// Returns 1 when the lease is still ours and was extended, else 0. It is
// sent with EVAL, never EVALSHA, so a renewal is one round trip even
// after Redis restarted and forgot its scripts.
const renewScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`

// resignScript: ARGV[1] our value, ARGV[2] the events channel. Deletes
// the lease only if it is still ours and announces the vacancy.
var resignScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'vacant ' .. ARGV[1])
  return 1
end
return 0
`)
