package failover_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/scaleout/scaleout/failover"
)

// Run keeps a candidate campaigning and runs a function for each of its
// terms. Here the first term's job fails, so Run resigns, tells OnError,
// and campaigns again; the second term lasts until ctx is cancelled.
func ExampleRun() {
	store := failover.NewMemoryStore()
	m, err := store.Candidate(failover.Config{ID: "worker-1"})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onError := func(t *failover.Term, err error) {
		fmt.Printf("term %d failed: %v\n", t.Token, err) // say, log it
	}
	err = failover.Run(ctx, m, failover.RunConfig{OnError: onError}, func(ctx context.Context, t *failover.Term) error {
		// Pass t.Token with every write to the resources this leader
		// manages, so that they can reject a former leader's late writes.
		fmt.Printf("%s leads with token %d\n", t.ID, t.Token)
		if t.Token == 1 {
			return errors.New("job failed") // Run resigns and campaigns again
		}
		cancel() // say, SIGTERM
		<-ctx.Done()
		fmt.Println("stopped:", context.Cause(ctx))
		return nil
	})
	fmt.Println("Run:", err)
	// Output:
	// worker-1 leads with token 1
	// term 1 failed: job failed
	// worker-1 leads with token 2
	// stopped: context canceled
	// Run: context canceled
}

// Candidates of one MemoryStore compete for one role; a Resign hands over
// at once.
func ExampleMemoryStore() {
	ctx := context.Background()
	store := failover.NewMemoryStore()
	a, _ := store.Candidate(failover.Config{ID: "a"})
	defer a.Close()
	b, _ := store.Candidate(failover.Config{ID: "b"})
	defer b.Close()

	ta, _ := a.Campaign(ctx)
	fmt.Println("a leads with token", ta.Token)

	next := make(chan *failover.Term)
	go func() {
		tb, _ := b.Campaign(ctx) // blocks while a leads
		next <- tb
	}()
	l, _ := b.Leader(ctx)
	fmt.Println("leader:", l.ID)

	_ = a.Resign(ctx)
	<-ta.Done()
	fmt.Println("a's term ended:", ta.Err())
	tb := <-next
	fmt.Println("b leads with token", tb.Token)
	// Output:
	// a leads with token 1
	// leader: a
	// a's term ended: failover: resigned
	// b leads with token 2
}

// A leader cut off from the store stops acting at its term's deadline,
// before its lease runs out in the store; then another candidate takes
// over with a larger token.
func ExampleMemory_Partition() {
	ctx := context.Background()
	store := failover.NewMemoryStore()
	cfg := failover.Config{Lease: 200 * time.Millisecond}
	cfg.ID = "a"
	a, _ := store.Candidate(cfg)
	defer a.Close()
	cfg.ID = "b"
	b, _ := store.Candidate(cfg)
	defer b.Close()

	ta, _ := a.Campaign(ctx)
	a.Partition(true)
	<-ta.Done()
	fmt.Println("a:", ta.Err())
	tb, _ := b.Campaign(ctx)
	fmt.Printf("b leads with token %d > %d\n", tb.Token, ta.Token)
	// Output:
	// a: failover: lease expired before it was renewed
	// b leads with token 2 > 1
}
