package queue_test

import (
	"context"
	"fmt"
	"log"

	"github.com/scaleout/scaleout/queue"
)

// A handler chains a follow-up job with Delivery.Then: the Worker enqueues
// it with the job's Ack, in one atomic step, so the follow-up exists if and
// only if the job is done, and exactly once however many times the job
// ran (a failed attempt's Then jobs are dropped).
func ExampleDelivery_Then() {
	ctx := context.Background()
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	w, err := queue.NewWorker(q, queue.WorkerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	published := make(chan string)
	err = w.Handle("resize", queue.ResultFunc(func(ctx context.Context, d *queue.Delivery) ([]byte, error) {
		thumb := "thumb-of-" + string(d.Job.Payload)
		d.Then(queue.Job{Type: "publish", Payload: []byte(thumb)})
		return []byte(thumb), nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	err = w.HandleFunc("publish", func(ctx context.Context, d *queue.Delivery) error {
		published <- string(d.Job.Payload)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(runCtx) }()

	id, err := q.Enqueue(ctx, queue.Job{Type: "resize", Payload: []byte("cat.jpg")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published", <-published)
	info, err := q.Status(ctx, id) // done before its follow-up existed
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("resize", info.State, string(info.Result))

	stop()
	<-done
	// Output:
	// published thumb-of-cat.jpg
	// resize done thumb-of-cat.jpg
}
