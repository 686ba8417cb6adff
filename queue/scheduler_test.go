package queue_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

// sCountingQueue records the jobs Enqueue created (not those it found
// under their ID, as a repeat), and fails every Enqueue before downUntil.
type sCountingQueue struct {
	queue.JobQueue
	mu        sync.Mutex
	accepted  []queue.Job
	calls     int
	downUntil time.Time
}

func (q *sCountingQueue) Enqueue(ctx context.Context, j queue.Job) (queue.JobID, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	if time.Now().Before(q.downUntil) {
		return "", errors.New("connection refused")
	}
	_, serr := q.JobQueue.Status(ctx, queue.FormatID(cmp.Or(j.Queue, queue.DefaultQueue), j.ID))
	existed := serr == nil
	id, err := q.JobQueue.Enqueue(ctx, j)
	if err == nil && !existed {
		q.accepted = append(q.accepted, j)
	}
	return id, err
}

func (q *sCountingQueue) ids() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []string
	for _, j := range q.accepted {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	return ids
}

// sRun runs s until stop is called.
func sRun(t *testing.T, s *queue.Scheduler) (stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

func sNew(t *testing.T, q queue.JobQueue, cfg queue.SchedulerConfig) *queue.Scheduler {
	t.Helper()
	s, err := queue.NewScheduler(q, cfg)
	require.NoError(t, err)
	return s
}

// sSlots returns the slot IDs of name every step from first, n of them.
func sSlots(name string, first time.Time, step time.Duration, n int) []string {
	var ids []string
	for i := range n {
		ids = append(ids, queue.SlotID(name, first.Add(time.Duration(i)*step)))
	}
	slices.Sort(ids)
	return ids
}

func TestSchedulersEnqueueEachSlotOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now() // 2000-01-01 00:00 UTC in the bubble: a slot
		q := &sCountingQueue{JobQueue: wMemory(t, queue.MemoryConfig{})}
		var stops []func() error
		// Five schedulers, as on five machines, starting at different
		// moments; the one starting 40 s late finds the first slot too old
		// for it (MaxDelay is half the minute), the others find it taken.
		for _, delay := range []time.Duration{0, 0, 10 * time.Second, 20 * time.Second, 40 * time.Second} {
			time.Sleep(delay - time.Since(start))
			s := sNew(t, q, queue.SchedulerConfig{})
			require.NoError(t, s.Add("render", "@every 1m", queue.Job{Type: "render", Queue: "pages"}))
			require.NoError(t, s.Add("digest", "@hourly", queue.Job{Type: "digest"}))
			stops = append(stops, sRun(t, s))
		}
		time.Sleep(10*time.Minute + 30*time.Second - time.Since(start))
		for _, stop := range stops {
			require.ErrorIs(t, stop(), context.Canceled)
		}

		// Slots 00:00 to 00:10 of render, 00:00 of digest.
		want := append(sSlots("render", start, time.Minute, 11), queue.SlotID("digest", start))
		slices.Sort(want)
		require.Equal(t, want, q.ids())

		// The slot jobs carry their IDs and unique keys.
		id := queue.FormatID("pages", queue.SlotID("render", start.Add(3*time.Minute)))
		info, err := q.Status(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, "render", info.Type)
		for _, j := range q.accepted {
			require.Equal(t, j.ID, j.UniqueKey)
			if j.Type == "render" {
				require.Equal(t, 2*time.Minute, j.UniqueFor)
			} else {
				require.Equal(t, 2*time.Hour, j.UniqueFor)
			}
		}
	})
}

func TestSchedulerCurrentSlotOnStart(t *testing.T) {
	tests := []struct {
		name     string
		startAt  time.Duration // after 00:00
		maxDelay time.Duration
		want     []time.Duration
	}{
		{name: "recent slot is enqueued", startAt: 5*time.Hour + 20*time.Minute, want: []time.Duration{5 * time.Hour, 6 * time.Hour}},
		{name: "old slot is skipped", startAt: 5*time.Hour + 45*time.Minute, want: []time.Duration{6 * time.Hour}},
		{name: "MaxDelay", startAt: 5*time.Hour + 45*time.Minute, maxDelay: 50 * time.Minute, want: []time.Duration{5 * time.Hour, 6 * time.Hour}},
		{name: "MaxDelay shorter", startAt: 5*time.Hour + 20*time.Minute, maxDelay: 10 * time.Minute, want: []time.Duration{6 * time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				day := time.Now()
				time.Sleep(tt.startAt)
				q := &sCountingQueue{JobQueue: wMemory(t, queue.MemoryConfig{})}
				s := sNew(t, q, queue.SchedulerConfig{MaxDelay: tt.maxDelay})
				require.NoError(t, s.Add("job", "0 * * * *", queue.Job{Type: "t"}))
				stop := sRun(t, s)
				time.Sleep(6*time.Hour + 30*time.Minute - time.Since(day))
				require.ErrorIs(t, stop(), context.Canceled)
				var want []string
				for _, at := range tt.want {
					want = append(want, queue.SlotID("job", day.Add(at)))
				}
				require.Equal(t, want, q.ids())
			})
		})
	}
}

func TestSchedulerRetriesEnqueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		q := &sCountingQueue{JobQueue: wMemory(t, queue.MemoryConfig{}), downUntil: start.Add(3 * time.Second)}
		s := sNew(t, q, queue.SchedulerConfig{})
		require.NoError(t, s.Add("job", "@every 1m", queue.Job{Type: "t"}))
		stop := sRun(t, s)
		time.Sleep(90 * time.Second)
		require.ErrorIs(t, stop(), context.Canceled)
		require.Equal(t, sSlots("job", start, time.Minute, 2), q.ids())
		require.Less(t, q.calls, 10) // backing off, not spinning
	})
}

func TestSchedulerSkipsSlotWhileQueueIsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		// Down for 40 s: slot 00:00 (MaxDelay 30 s) is lost, 00:01 is not.
		q := &sCountingQueue{JobQueue: wMemory(t, queue.MemoryConfig{}), downUntil: start.Add(40 * time.Second)}
		s := sNew(t, q, queue.SchedulerConfig{})
		require.NoError(t, s.Add("job", "@every 1m", queue.Job{Type: "t"}))
		stop := sRun(t, s)
		time.Sleep(150 * time.Second)
		require.ErrorIs(t, stop(), context.Canceled)
		require.Equal(t, sSlots("job", start.Add(time.Minute), time.Minute, 2), q.ids())
	})
}

func TestSchedulerLocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ny, err := time.LoadLocation("America/New_York")
		require.NoError(t, err)
		q := &sCountingQueue{JobQueue: wMemory(t, queue.MemoryConfig{})}
		s := sNew(t, q, queue.SchedulerConfig{Location: ny})
		require.NoError(t, s.Add("morning", "0 9 * * *", queue.Job{Type: "t"}))
		stop := sRun(t, s)
		time.Sleep(24 * time.Hour)
		require.ErrorIs(t, stop(), context.Canceled)
		// 09:00 EST is 14:00 UTC; the ID is in UTC.
		require.Equal(t, []string{"periodic:morning:2000-01-01T14:00:00Z"}, q.ids())
	})
}

func TestSchedulerRunsUntilCanceledWithNoSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &sCountingQueue{JobQueue: wMemory(t, queue.MemoryConfig{})}
		s := sNew(t, q, queue.SchedulerConfig{})
		require.NoError(t, s.Add("never", "0 0 30 2 *", queue.Job{Type: "t"}))
		stop := sRun(t, s)
		synctest.Wait()
		require.ErrorIs(t, s.Run(t.Context()), queue.ErrAlreadyRunning)
		require.ErrorIs(t, s.Add("late", "@hourly", queue.Job{Type: "t"}), queue.ErrInvalidConfig)
		require.ErrorIs(t, stop(), context.Canceled)
		require.Empty(t, q.ids())
	})
}

func TestSchedulerInvalid(t *testing.T) {
	_, err := queue.NewScheduler(nil, queue.SchedulerConfig{})
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
	_, err = queue.NewScheduler(wMemory(t, queue.MemoryConfig{}), queue.SchedulerConfig{MaxDelay: -1})
	require.ErrorIs(t, err, queue.ErrInvalidConfig)

	s := sNew(t, wMemory(t, queue.MemoryConfig{}), queue.SchedulerConfig{})
	ok := queue.Job{Type: "t"}
	for name, add := range map[string]struct {
		name, spec string
		job        queue.Job
	}{
		"empty name":     {"", "@hourly", ok},
		"bad name":       {"a b", "@hourly", ok},
		"long name":      {string(slices.Repeat([]byte("n"), 71)), "@hourly", ok},
		"bad spec":       {"a", "@sometimes", ok},
		"no type":        {"a", "@hourly", queue.Job{}},
		"ID set":         {"a", "@hourly", queue.Job{Type: "t", ID: "x"}},
		"UniqueKey set":  {"a", "@hourly", queue.Job{Type: "t", UniqueKey: "x", UniqueFor: time.Hour}},
		"RunAt set":      {"a", "@hourly", queue.Job{Type: "t", RunAt: time.Now()}},
		"bad queue name": {"a", "@hourly", queue.Job{Type: "t", Queue: "a b"}},
	} {
		require.ErrorIs(t, s.Add(add.name, add.spec, add.job), queue.ErrInvalidConfig, name)
	}
	require.NoError(t, s.Add("a", "@hourly", ok))
	require.ErrorIs(t, s.Add("a", "@daily", ok), queue.ErrInvalidConfig)
	require.NoError(t, s.Add(string(slices.Repeat([]byte("n"), 70)), "@hourly", ok))
}

// listSchedule is due at its times, then never: a Schedule of the user's own.
type listSchedule []time.Time

func (l listSchedule) Next(after time.Time) time.Time {
	for _, t := range l {
		if t.After(after) {
			return t
		}
	}
	return time.Time{}
}

// TestSchedulerAddSchedule: any Schedule plugs in, to the second, and a
// zero Next ends it; a job's own zone (CRON_TZ=) beats the Scheduler's.
func TestSchedulerAddSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ny, err := time.LoadLocation("America/New_York")
		require.NoError(t, err)
		q := &sCountingQueue{JobQueue: wMemory(t, queue.MemoryConfig{})}
		s := sNew(t, q, queue.SchedulerConfig{Location: ny})
		start := time.Now()
		times := listSchedule{start.Add(7 * time.Second), start.Add(time.Minute), start.Add(150 * time.Second)}
		require.NoError(t, s.AddSchedule("list", times, queue.Job{Type: "t"}))
		require.NoError(t, s.Add("tokyo", "CRON_TZ=Asia/Tokyo 0 10 * * *", queue.Job{Type: "t"}))
		require.NoError(t, s.Add("morning", "0 9 * * *", queue.Job{Type: "t"}))
		stop := sRun(t, s)
		time.Sleep(24 * time.Hour)
		require.ErrorIs(t, stop(), context.Canceled)
		want := []string{
			"periodic:list:2000-01-01T00:00:07Z", "periodic:list:2000-01-01T00:01:00Z", "periodic:list:2000-01-01T00:02:30Z",
			"periodic:morning:2000-01-01T14:00:00Z", // 09:00 EST
			"periodic:tokyo:2000-01-01T01:00:00Z",   // 10:00 JST
		}
		slices.Sort(want)
		require.Equal(t, want, q.ids())
	})
	s := sNew(t, wMemory(t, queue.MemoryConfig{}), queue.SchedulerConfig{})
	require.ErrorIs(t, s.AddSchedule("nil", nil, queue.Job{Type: "t"}), queue.ErrInvalidConfig)
	require.ErrorIs(t, s.AddSchedule("no type", listSchedule{}, queue.Job{}), queue.ErrInvalidConfig)
	require.ErrorIs(t, s.Add("zone", "CRON_TZ=Nowhere/Atall @daily", queue.Job{Type: "t"}), queue.ErrInvalidConfig)
}
