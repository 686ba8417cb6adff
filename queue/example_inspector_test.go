package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// An operator's view of a queue: its depth, its dead letters page by
// page, requeueing them all, and a pause while the cause is fixed.
func ExampleInspector() {
	ctx := context.Background()
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	for range 3 {
		if _, err := q.Enqueue(ctx, queue.Job{Queue: "reports", Type: "report", MaxAttempts: 1}); err != nil {
			log.Fatal(err)
		}
	}
	d, err := q.Dequeue(ctx, []string{"reports"}, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Fail(ctx, errors.New("printer on fire")); err != nil {
		log.Fatal(err)
	}

	var in queue.Inspector = q // and redisqueue.Queue, on Redis
	c, err := in.Counts(ctx, "reports")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("depth", c.Pending(), "dead", c.Dead)

	for cursor := ""; ; {
		page, err := in.List(ctx, "reports", queue.StateDead, cursor, 10)
		if err != nil {
			log.Fatal(err)
		}
		for _, j := range page.Jobs {
			fmt.Println(j.State, j.Type, j.LastErr)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}

	// Hold the queue while the printer is fixed, and retry the dead.
	if err := in.Pause(ctx, "reports"); err != nil {
		log.Fatal(err)
	}
	n, err := in.RequeueAll(ctx, "reports")
	if err != nil {
		log.Fatal(err)
	}
	c, err = in.Counts(ctx, "reports")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("requeued", n, "ready", c.Ready, "paused", c.Paused)
	// Output:
	// depth 2 dead 1
	// dead report printer on fire
	// requeued 1 ready 3 paused true
}
