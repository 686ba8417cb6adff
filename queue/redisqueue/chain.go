package redisqueue

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/queue"
)

var _ queue.Chainer = (*Queue)(nil)

// A CrossQueueError is AckThen's refusal of a next job in another queue
// than the acked job's. A chain step is one Lua script, and a script may
// only touch keys of one Redis Cluster slot; every key of a queue carries
// the queue's name as its hash tag, so another queue's jobs live in
// another slot, on another node as the case may be. The refusal holds on
// a single server and on Sentinel too, so that code that passes its tests
// there does not fail on a Cluster. It changes nothing, and wraps
// queue.ErrUnsupported. Route by job type within one queue instead (the
// Worker picks handlers by type), or enqueue into the other queue from
// the next job's handler.
type CrossQueueError struct {
	Index int    // of the refused job in AckThen's next
	Queue string // the acked job's queue
	Next  string // the refused job's queue
}

func (e *CrossQueueError) Error() string {
	return fmt.Sprintf("redisqueue: next job %d is in queue %q, not in the acked job's %q: one step cannot span two queues' hash slots",
		e.Index, e.Next, e.Queue)
}

// Unwrap returns queue.ErrUnsupported.
func (e *CrossQueueError) Unwrap() error { return queue.ErrUnsupported }

// AckThen implements queue.Chainer in one script call: the script checks
// the lease and every next job, and only when all pass acks the job and
// stores the next ones, so that no client ever sees one without the
// other. Next jobs must be in the acked job's queue (*CrossQueueError).
// The call's nonce, stored in the acked job as Ack's is, makes a run
// again of the script (a lost reply retried by go-redis or by the Queue
// through a master switch) report the first run's success without
// storing anything twice; the next jobs' IDs are chosen before the first
// run, so every run names the same jobs.
//
// With Config.WaitReplicas, a step the replicas did not confirm returns
// the IDs with an error wrapping a *NotReplicatedError, as Enqueue does.
// The next jobs are counted in scaleout.queue.enqueued when the reply
// says the script stored them (a run again after a lost reply counts
// none).
func (q *Queue) AckThen(ctx context.Context, d *queue.Delivery, result []byte, next []queue.Job) ([]queue.JobID, error) {
	if len(next) == 0 {
		return nil, q.Ack(ctx, d, result)
	}
	k, name, err := q.delivery(d)
	if err != nil {
		return nil, err
	}
	qn, _, _ := queue.ParseID(d.ID) // delivery parsed it
	jobs, ids, err := queue.PrepareChain(next, q.maxPayload)
	if err != nil {
		return nil, err
	}
	for i, j := range jobs {
		if j.Queue != qn {
			return nil, &CrossQueueError{Index: i, Queue: qn, Next: j.Queue}
		}
	}
	if q.isClosed() {
		return nil, queue.ErrClosed
	}
	if result == nil {
		result = []byte{}
	}
	args := make([]any, 0, 7+11*len(jobs))
	args = append(args, k.base, name, d.Token, result, q.channel, string(d.ID), newNonce())
	now := time.Now().UnixMilli()
	for _, j := range jobs {
		args = appendJobArgs(args, j, now)
	}
	v, err := q.run(ctx, chainScript, []string{k.job(name), k.active, k.lim, k.wake, k.sched}, args...)
	var short error // the replicas' silence about a step that took effect
	if notReplicated(err) {
		short, err = wrap("ack then", err), nil
	}
	if err != nil {
		return nil, wrap("ack then", err)
	}
	res, _ := v.([]any)
	code, _ := firstInt(res)
	switch code {
	case codeOK:
		for i, r := range res[1:] {
			if n, _ := r.(int64); n == 1 && i < len(jobs) {
				q.enqueued.Get(qn).Inc()
			}
		}
		return ids, short
	case codeLost:
		return nil, fmt.Errorf("%w: %s token %d", queue.ErrLeaseLost, d.ID, d.Token)
	case chainIDTaken, chainUniqueHeld:
		if len(res) == 3 {
			i, _ := res[1].(int64)
			other, _ := res[2].(string)
			if code == chainIDTaken {
				return nil, fmt.Errorf("next job %d: %w: %s holds another job", i-1, queue.ErrDuplicate, queue.FormatID(qn, other))
			}
			return nil, fmt.Errorf("next job %d: %w: the unique key is held by %s", i-1, queue.ErrDuplicate, queue.FormatID(qn, other))
		}
	}
	return nil, fmt.Errorf("redisqueue: ack then: malformed reply %v", v)
}

// firstInt is the first item of a script's reply, when an integer.
func firstInt(res []any) (int64, bool) {
	if len(res) == 0 {
		return -1, false
	}
	n, ok := res[0].(int64)
	return n, ok
}

// Codes of chainScript's refusals, besides codeOK and codeLost.
const (
	chainIDTaken    = 2 // a next job's ID holds another job
	chainUniqueHeld = 3 // a next job's unique key is held by another job
)

// chainScript acks a delivery as ackScript does and enqueues next jobs of
// its queue as enqueueScript does, in one step: it first checks the lease
// and every next job, and writes nothing unless all pass (a Lua script
// that fails half-way keeps its writes, so the checks come first).
//
//	KEYS: job hash, active zset, limits hash, wake list, scheduled zset
//	ARGV: base, name, token, result, channel, id, nonce, then per next job
//	      its items as in enqueueScript's ARGV
//
// Returns {1, s1, s2, ...} with si 1 when next job i was stored, 0 when
// its ID already held it (a retry); {1} for a run again of a call that
// took effect (its nonce); {0} when the delivery is not current; {2, i,
// name} when next job i's ID holds a job of another type or payload;
// {3, i, holder} when next job i's unique key is held by another job than
// the acked one, whose key the ack frees.
var chainScript = redis.NewScript(luaLib + `
local base, name, nonce = ARGV[1], ARGV[2], ARGV[7]
local h = redis.call('HMGET', KEYS[1], 'st', 'k', 'u', 'rt', 'le', 'sn')
if h[6] == nonce then redis.call('HSET', KEYS[1], 'sn', nonce); return {1} end
if h[1] ~= 'a' or h[2] ~= ARGV[3] then return {0} end
local now = now_ms()
local dl = redis.call('ZSCORE', KEYS[2], name)
if not dl or tonumber(dl) < now then return {0} end
-- (a) every check before any write
local jobs, i = {}, 8
while i <= #ARGV do
  local job = {name = ARGV[i], pri = ARGV[i+1], runat = tonumber(ARGV[i+2]), u = ARGV[i+3],
    ufor = ARGV[i+4], ty = ARGV[i+6], pl = ARGV[i+7], en = ARGV[i+8], s = i + 9, e = i + 8 + tonumber(ARGV[i+5])}
  i = job.e + 1
  jobs[#jobs+1] = job
  local held = redis.call('HMGET', base .. 'j:' .. job.name, 't', 'p')
  if held[1] or held[2] then
    if held[1] ~= job.ty or held[2] ~= job.pl then return {2, #jobs, job.name} end
    job.exists = true
  elseif job.u ~= '' then
    local holder = redis.call('GET', base .. 'u:' .. job.u)
    if holder and not (holder == name and job.u == h[3]) then return {3, #jobs, holder} end
  end
end
-- (b) the ack
redis.call('ZREM', KEYS[2], name)
drop_dq(base, KEYS[1])
redis.call('HSET', KEYS[1], 'r', ARGV[4], 'st', 'd', 'ed', now, 'sn', nonce)
redis.call('HINCRBY', base .. 'stat', 'd', 1)
if h[5] then redis.call('HDEL', KEYS[1], 'le') end
unique_done(base, name, h[3])
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(h[4]) or DEF_RT, 1))
redis.call('PUBLISH', ARGV[5], ARGV[6])
wake_limited(KEYS[3], KEYS[4])
-- (c) the next jobs
local out, nready = {1}, 0
for n, job in ipairs(jobs) do
  if job.exists then
    out[n+1] = 0
  else
    local jk = base .. 'j:' .. job.name
    if job.u ~= '' then redis.call('SET', base .. 'u:' .. job.u, job.name, 'PX', job.ufor) end
    if job.runat > 0 and job.runat > now then
      redis.call('HSET', jk, 'st', 's', 'ra', job.runat, 't', job.ty, 'p', job.pl, 'e', job.en, unpack(ARGV, job.s, job.e))
      redis.call('ZADD', KEYS[5], job.runat, job.name)
    else
      redis.call('HSET', jk, 'st', 'r', 't', job.ty, 'p', job.pl, 'e', job.en, unpack(ARGV, job.s, job.e))
      redis.call('RPUSH', base .. 'r' .. job.pri, job.name)
      nready = nready + 1
    end
    out[n+1] = 1
  end
end
if nready > 0 and redis.call('EXISTS', base .. 'sl') == 1 then
  local w = math.min(nready, 64 - redis.call('LLEN', KEYS[4]))
  for _ = 1, w do redis.call('RPUSH', KEYS[4], '1') end
end
return out
`)
