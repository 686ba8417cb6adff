package redisqueue

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/queue"
)

var _ queue.Inspector = (*Queue)(nil)

// deadBatch bounds the dead jobs one script of RequeueAll or
// DeleteAllDead handles.
const deadBatch = 100

func (q *Queue) queuesKey() string { return q.prefix + "queues" }

// register adds a queue to the set Queues lists, once per process.
func (q *Queue) register(ctx context.Context, op, name string) error {
	q.regMu.RLock()
	ok := q.registered[name]
	q.regMu.RUnlock()
	if ok {
		return nil
	}
	if err := redisha.Retry(ctx, q.rdb, func(ctx context.Context) error {
		return q.rdb.SAdd(ctx, q.queuesKey(), name).Err()
	}); err != nil {
		return wrap(op+": register queue", err)
	}
	q.regMu.Lock()
	q.registered[name] = true
	q.regMu.Unlock()
	return nil
}

// Queues implements queue.Inspector.
func (q *Queue) Queues(ctx context.Context) ([]string, error) {
	if q.isClosed() {
		return nil, queue.ErrClosed
	}
	names, err := redisha.Value(ctx, q.rdb, func(ctx context.Context) ([]string, error) {
		return q.rdb.SMembers(ctx, q.queuesKey()).Result()
	})
	if err != nil {
		return nil, wrap("queues", err)
	}
	slices.Sort(names)
	return names, nil
}

// inspectArgs are the arguments every script starting with inspectHead
// takes.
func (q *Queue) inspectArgs(k qkeys, name string, more ...any) ([]string, []any) {
	return []string{k.sched, k.active, k.lim, k.wake}, append([]any{k.base, q.channel, name, q.backoffs()}, more...)
}

// Counts implements queue.Inspector.
func (q *Queue) Counts(ctx context.Context, name string) (queue.QueueCounts, error) {
	if err := queue.CheckQueue(name); err != nil {
		return queue.QueueCounts{}, err
	}
	if q.isClosed() {
		return queue.QueueCounts{}, queue.ErrClosed
	}
	keys, args := q.inspectArgs(q.keys(name), name)
	res, err := redisha.Value(ctx, q.rdb, func(ctx context.Context) ([]int64, error) {
		return countsScript.Run(ctx, q.rdb, keys, args...).Int64Slice()
	})
	if err != nil {
		return queue.QueueCounts{}, wrap("counts", err)
	}
	if len(res) != 9 {
		return queue.QueueCounts{}, fmt.Errorf("redisqueue: counts: malformed reply of %d items", len(res))
	}
	c := queue.QueueCounts{
		Queue: name,
		Ready: int(res[0]), Scheduled: int(res[1]), Active: int(res[2]), Dead: int(res[3]),
		DoneTotal: res[4], CanceledTotal: res[5],
		Paused: res[6] == 1,
	}
	if res[7] >= 0 {
		c.OldestReady = max(0, time.Duration(res[8]-res[7])*time.Millisecond)
	}
	return c, nil
}

// List implements queue.Inspector. The cursor of a ready page is
// "r:<priority>:<index>:<name>", of the others "z:<score>:<name>".
func (q *Queue) List(ctx context.Context, name string, state queue.State, cursor string, limit int) (queue.Page, error) {
	limit, err := queue.CheckList(name, state, limit)
	if err != nil {
		return queue.Page{}, err
	}
	if q.isClosed() {
		return queue.Page{}, queue.ErrClosed
	}
	if state == queue.StateReady {
		return q.listReady(ctx, name, cursor, limit)
	}
	return q.listZ(ctx, name, state, cursor, limit)
}

func badCursor(cursor string) error {
	return fmt.Errorf("%w: malformed cursor %q", queue.ErrInvalidConfig, cursor)
}

// cursorNames is how many of the last jobs listed in a ready list a
// cursor names: the listing goes on after the first of them still ready,
// so a page lists no job twice unless all of them were canceled or
// deleted (not taken by a worker: a job taken from the head takes every
// job before it too) before the next page.
const cursorNames = 3

// maxListCalls bounds the script calls of one List that keep finding
// entries of jobs that left the state.
const maxListCalls = 100

func (q *Queue) listReady(ctx context.Context, name, cursor string, limit int) (queue.Page, error) {
	pri, idx, cname := 9, int64(0), ""
	if cursor != "" {
		f := strings.SplitN(cursor, ":", 4)
		var err1, err2 error
		if len(f) == 4 && f[0] == "r" {
			pri, err1 = strconv.Atoi(f[1])
			idx, err2 = strconv.ParseInt(f[2], 10, 64)
		}
		names := strings.Split(f[len(f)-1], ",")
		if len(f) != 4 || f[0] != "r" || err1 != nil || err2 != nil || pri < 0 || pri > 9 || idx < 0 || len(names) > cursorNames {
			return queue.Page{}, badCursor(cursor)
		}
		for _, n := range names {
			if !validName(n) {
				return queue.Page{}, badCursor(cursor)
			}
		}
		cname = f[3]
	}
	k := q.keys(name)
	for range maxListCalls {
		keys, args := q.inspectArgs(k, name, pri, cname, idx, limit)
		res, err := redisha.Value(ctx, q.rdb, func(ctx context.Context) ([]any, error) {
			return listReadyScript.Run(ctx, q.rdb, keys, args...).Slice()
		})
		if err != nil {
			return queue.Page{}, wrap("list", err)
		}
		var p parser
		more := p.int(res[0])
		if more == 2 && len(res) == 4 { // go on from where it stopped
			pri, idx, cname = int(p.int(res[1])), p.int(res[2]), p.str(res[3])
			if p.err != nil {
				return queue.Page{}, fmt.Errorf("redisqueue: list: malformed reply: %w", p.err)
			}
			continue
		}
		var page queue.Page
		var last string
		for i := 1; i+3 < len(res); i += 4 {
			jp, ji, jn := int(p.int(res[i])), p.int(res[i+1]), p.str(res[i+2])
			info, err := hashInfo(name, jn, res[i+3])
			if err != nil {
				return queue.Page{}, err
			}
			page.Jobs = append(page.Jobs, info)
			// The last jobs listed in this priority's list, the last first.
			if jp != pri {
				pri, cname = jp, ""
			}
			names := append([]string{jn}, strings.Split(cname, ",")...)
			if cname == "" {
				names = names[:1]
			}
			cname = strings.Join(names[:min(len(names), cursorNames)], ",")
			pri = jp
			last = fmt.Sprintf("r:%d:%d:%s", jp, ji, cname)
		}
		if p.err != nil {
			return queue.Page{}, fmt.Errorf("redisqueue: list: malformed reply: %w", p.err)
		}
		if more == 1 && last != "" {
			page.Next = last
		}
		return page, nil
	}
	return queue.Page{}, nil
}

// zsets of the listable states but ready: set, descending, state letter.
var zsets = map[queue.State]struct {
	set  string
	desc string
	want string
}{
	queue.StateScheduled: {"sched", "0", "s"},
	queue.StateActive:    {"active", "0", "a"},
	queue.StateDead:      {"dead", "1", "x"},
}

func (q *Queue) listZ(ctx context.Context, name string, state queue.State, cursor string, limit int) (queue.Page, error) {
	has, score, cname := "0", "", ""
	if cursor != "" {
		f := strings.SplitN(cursor, ":", 3)
		var err error
		if len(f) == 3 && f[0] == "z" {
			_, err = strconv.ParseFloat(f[1], 64)
		}
		if len(f) != 3 || f[0] != "z" || err != nil || !validName(f[2]) {
			return queue.Page{}, badCursor(cursor)
		}
		has, score, cname = "1", f[1], f[2]
	}
	z := zsets[state]
	k := q.keys(name)
	for range maxListCalls {
		keys, args := q.inspectArgs(k, name, z.set, z.desc, has, score, cname, limit, z.want)
		res, err := redisha.Value(ctx, q.rdb, func(ctx context.Context) ([]any, error) {
			return listZScript.Run(ctx, q.rdb, keys, args...).Slice()
		})
		if err != nil {
			return queue.Page{}, wrap("list", err)
		}
		var p parser
		more := p.int(res[0])
		if more == 2 {
			continue // it dropped entries of jobs gone: again
		}
		var page queue.Page
		var last string
		for i := 1; i+2 < len(res); i += 3 {
			js, jn := p.str(res[i]), p.str(res[i+1])
			info, err := hashInfo(name, jn, res[i+2])
			if err != nil {
				return queue.Page{}, err
			}
			page.Jobs = append(page.Jobs, info)
			last = "z:" + js + ":" + jn
		}
		if p.err != nil {
			return queue.Page{}, fmt.Errorf("redisqueue: list: malformed reply: %w", p.err)
		}
		if more == 1 && last != "" {
			page.Next = last
		}
		return page, nil
	}
	return queue.Page{}, nil
}

// hashInfo decodes a job hash as HGETALL returns it in a script.
func hashInfo(qn, name string, v any) (queue.JobInfo, error) {
	flat, ok := v.([]any)
	if !ok || len(flat)%2 != 0 {
		return queue.JobInfo{}, fmt.Errorf("redisqueue: list: malformed job %s", name)
	}
	h := make(map[string]string, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		k, ok1 := flat[i].(string)
		val, ok2 := flat[i+1].(string)
		if !ok1 || !ok2 {
			return queue.JobInfo{}, fmt.Errorf("redisqueue: list: malformed job %s", name)
		}
		h[k] = val
	}
	return parseInfo(queue.FormatID(qn, name), qn, h)
}

// validName reports whether s may be a job's name (queue's alphabet).
func validName(s string) bool {
	_, _, err := queue.ParseID(queue.FormatID("q", s))
	return err == nil
}

// Pause implements queue.Inspector: the flag is the field p of the
// queue's limits hash, which every Dequeue reads, so it holds in every
// process and, with Redis persistence, across a restart.
func (q *Queue) Pause(ctx context.Context, name string) error {
	return q.setPaused(ctx, name, true)
}

// Resume implements queue.Inspector.
func (q *Queue) Resume(ctx context.Context, name string) error {
	return q.setPaused(ctx, name, false)
}

func (q *Queue) setPaused(ctx context.Context, name string, paused bool) error {
	if err := queue.CheckQueue(name); err != nil {
		return err
	}
	if q.isClosed() {
		return queue.ErrClosed
	}
	flag, op := 0, "resume"
	if paused {
		flag, op = 1, "pause"
		if err := q.register(ctx, op, name); err != nil {
			return err
		}
	}
	k := q.keys(name)
	if err := redisha.Retry(ctx, q.rdb, func(ctx context.Context) error {
		return pauseScript.Run(ctx, q.rdb, []string{k.lim, k.wake}, k.base, flag).Err()
	}); err != nil {
		return wrap(op, err)
	}
	return nil
}

// RequeueAll implements queue.Inspector.
func (q *Queue) RequeueAll(ctx context.Context, name string) (int, error) {
	return q.deadBatches(ctx, "requeue all", name, 1)
}

// DeleteAllDead implements queue.Inspector.
func (q *Queue) DeleteAllDead(ctx context.Context, name string) (int, error) {
	return q.deadBatches(ctx, "delete all dead", name, 0)
}

func (q *Queue) deadBatches(ctx context.Context, op, name string, requeue int) (int, error) {
	if err := queue.CheckQueue(name); err != nil {
		return 0, err
	}
	if q.isClosed() {
		return 0, queue.ErrClosed
	}
	k := q.keys(name)
	total := 0
	for {
		res, err := redisha.Value(ctx, q.rdb, func(ctx context.Context) ([]int64, error) {
			return deadBatchScript.Run(ctx, q.rdb, []string{k.wake}, k.base, deadBatch, requeue).Int64Slice()
		})
		if err != nil {
			return total, wrap(op, err)
		}
		if len(res) != 2 {
			return total, fmt.Errorf("redisqueue: %s: malformed reply of %d items", op, len(res))
		}
		total += int(res[0])
		if res[1] < deadBatch {
			return total, nil
		}
	}
}

// DeleteDead implements queue.Inspector.
func (q *Queue) DeleteDead(ctx context.Context, id queue.JobID) error {
	if q.isClosed() {
		return queue.ErrClosed
	}
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return err
	}
	k := q.keys(qn)
	nonce := newNonce()
	code, err := redisha.Value(ctx, q.rdb, func(ctx context.Context) (int64, error) {
		return deleteDeadScript.Run(ctx, q.rdb, []string{k.job(name)}, k.base, name, nonce).Int64()
	})
	if err != nil {
		return wrap("delete dead", err)
	}
	if code != codeOK {
		return fmt.Errorf("%w: %s is not a dead job", queue.ErrNotFound, id)
	}
	return nil
}
