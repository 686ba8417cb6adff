package queue_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// A web handler enqueues the slow work and answers at once; a worker (here
// in the same process) runs it; whoever holds the ID waits for the result.
func ExampleWorker() {
	ctx := context.Background()
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		log.Fatal(err)
	}

	w, err := queue.NewWorker(q, queue.WorkerConfig{Concurrency: 2})
	if err != nil {
		log.Fatal(err)
	}
	err = w.Handle("thumbnail", queue.ResultFunc(func(ctx context.Context, d *queue.Delivery) ([]byte, error) {
		return []byte("thumb-of-" + string(d.Job.Payload)), nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(runCtx) }()

	// In the HTTP handler: enqueue and answer "being prepared".
	id, err := q.Enqueue(ctx, queue.Job{Type: "thumbnail", Payload: []byte("cat.jpg")})
	if err != nil {
		log.Fatal(err)
	}

	// Later, anywhere: wait for it.
	info, err := q.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.State, string(info.Result))

	stop()
	<-done // Run returns once its jobs are finished
	// Output: done thumb-of-cat.jpg
}

// Every Scheduler on every machine adds the same periodic jobs; each slot
// is enqueued once.
func ExampleScheduler() {
	ctx, stop := context.WithCancel(context.Background())
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		log.Fatal(err)
	}

	s, err := queue.NewScheduler(q, queue.SchedulerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	// In production: "@hourly" or "0 * * * *".
	if err := s.Add("prerender", "@every 1s", queue.Job{Type: "render-pages"}); err != nil {
		log.Fatal(err)
	}

	w, err := queue.NewWorker(q, queue.WorkerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	rendered := make(chan string, 1)
	err = w.HandleFunc("render-pages", func(ctx context.Context, d *queue.Delivery) error {
		select {
		case rendered <- d.Job.Type:
		default:
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}

	done := make(chan error, 2)
	go func() { done <- s.Run(ctx) }()
	go func() { done <- w.Run(ctx) }()
	fmt.Println("ran", <-rendered)
	stop()
	<-done
	<-done
	// Output: ran render-pages
}

type Report struct {
	User int
	Year int
}

// A Type encodes the payload of a job type, here as JSON.
func ExampleType() {
	ctx := context.Background()
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	w, err := queue.NewWorker(q, queue.WorkerConfig{})
	if err != nil {
		log.Fatal(err)
	}

	reports := queue.NewType[Report]("report", nil)
	err = reports.HandleResult(w, func(ctx context.Context, r Report, d *queue.Delivery) ([]byte, error) {
		return fmt.Appendf(nil, "report %d for user %d", r.Year, r.User), nil
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(runCtx) }()

	id, err := reports.Enqueue(ctx, q, Report{User: 7, Year: 2026}, queue.Job{})
	if err != nil {
		log.Fatal(err)
	}
	info, err := q.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(info.Result))

	// A payload the type cannot decode goes to the dead letters.
	id, err = q.Enqueue(ctx, queue.Job{Type: "report", Payload: []byte("{not json")})
	if err != nil {
		log.Fatal(err)
	}
	info, err = q.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.State, strings.HasPrefix(info.LastErr, "malformed payload"))

	stop()
	<-done
	// Output:
	// report 2026 for user 7
	// dead true
}

func ExampleParseSchedule() {
	after := time.Date(2026, 1, 30, 12, 0, 0, 0, time.UTC)
	for _, spec := range []string{"0 9 * * MON-FRI", "*/20 * * * *", "0 0 1 */3 *", "@every 90m", "@daily"} {
		s, err := queue.ParseSchedule(spec)
		if err != nil {
			log.Fatal(err)
		}
		next := s.Next(after)
		fmt.Printf("%-16s %s, then %s\n", spec, next.Format(time.DateTime), s.Next(next).Format(time.DateTime))
	}
	// Output:
	// 0 9 * * MON-FRI  2026-02-02 09:00:00, then 2026-02-03 09:00:00
	// */20 * * * *     2026-01-30 12:20:00, then 2026-01-30 12:40:00
	// 0 0 1 */3 *      2026-04-01 00:00:00, then 2026-07-01 00:00:00
	// @every 90m       2026-01-30 13:30:00, then 2026-01-30 15:00:00
	// @daily           2026-01-31 00:00:00, then 2026-02-01 00:00:00
}

// Daylight saving in New York: on 2025-03-09 the clocks skip 02:00-03:00, so
// a job due at 02:30 runs at 03:00 that day; on 2025-11-02 they repeat
// 01:00-02:00, and a job every 30 minutes runs in both passes.
func ExampleParseScheduleInLocation() {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		log.Fatal(err)
	}
	show := func(spec string, after time.Time, n int) {
		s, err := queue.ParseScheduleInLocation(spec, ny)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-13s", spec)
		for range n {
			after = s.Next(after)
			fmt.Print(" ", after.In(ny).Format("Jan 2 15:04 MST"))
		}
		fmt.Println()
	}
	show("30 2 * * *", time.Date(2025, 3, 8, 12, 0, 0, 0, ny), 2)
	show("*/30 * * * *", time.Date(2025, 11, 2, 0, 45, 0, 0, ny), 4)
	// Output:
	// 30 2 * * *    Mar 9 03:00 EDT Mar 10 02:30 EDT
	// */30 * * * *  Nov 2 01:00 EDT Nov 2 01:30 EDT Nov 2 01:00 EST Nov 2 01:30 EST
}

// A handler waiting on something not ready yet (an upload still arriving,
// a partner API asking to come back later) snoozes its job: it runs again
// after the delay, and the wait spends none of its attempts.
func ExampleSnoozeFor() {
	ctx := context.Background()
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	w, err := queue.NewWorker(q, queue.WorkerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	var looks atomic.Int32 // the upload is complete by the second look
	err = w.HandleFunc("transcode", func(ctx context.Context, d *queue.Delivery) error {
		if looks.Add(1) == 1 {
			fmt.Println("attempt", d.Attempt, "not uploaded yet: snooze")
			return queue.SnoozeFor(50 * time.Millisecond)
		}
		fmt.Println("attempt", d.Attempt, "transcoded")
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(runCtx) }()

	id, err := q.Enqueue(ctx, queue.Job{Type: "transcode", MaxAttempts: 1})
	if err != nil {
		log.Fatal(err)
	}
	info, err := q.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.State)
	stop()
	<-done
	// Output:
	// attempt 1 not uploaded yet: snooze
	// attempt 1 transcoded
	// done
}
