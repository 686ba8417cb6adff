package replica_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
)

// Reads go to the replicas in turn, writes and writing queries to the
// primary. The nodes here are replicatest's in-memory fakes, whose every
// query answers the name of the node that ran it; with PostgreSQL, give
// each node a *sql.DB from sql.Open("pgx", dsn) and Probe:
// new(replica.PostgreSQL).
func Example() {
	topo := replicatest.New(nil, "pg-a", "pg-b", "pg-c")
	defer topo.Close()
	r, err := replica.New(replica.Config{
		Probe:  topo,
		MaxLag: 5 * time.Second,
		// The zero RoundRobin starts at the first replica, for a stable
		// output; the default starts at a random one.
		Balancer: new(balance.RoundRobin),
	}, topo.Nodes()...)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	db, ctx := r.DB(), context.Background()

	for _, q := range []string{
		"SELECT name FROM users WHERE id = $1",
		"SELECT name FROM users WHERE id = $1",
		"INSERT INTO users (name) VALUES ($1) RETURNING id",
		"SELECT id FROM jobs FOR UPDATE SKIP LOCKED",
	} {
		var node string
		if err := db.QueryRowContext(ctx, q).Scan(&node); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s <- %s\n", node, q)
	}
	// Output:
	// pg-b <- SELECT name FROM users WHERE id = $1
	// pg-c <- SELECT name FROM users WHERE id = $1
	// pg-a <- INSERT INTO users (name) VALUES ($1) RETURNING id
	// pg-a <- SELECT id FROM jobs FOR UPDATE SKIP LOCKED
}

// A request that wrote reads its own write: Track the request's context.
// Here the only replica has stopped applying changes, so the tracked read
// goes to the primary while an untracked one still reads the replica.
// MarkOf carries the guarantee to the next request, in a cookie.
func ExampleTrack() {
	topo := replicatest.New(nil, "primary", "replica")
	defer topo.Close()
	r, _ := replica.New(replica.Config{Probe: topo}, topo.Nodes()...)
	defer r.Close()
	db := r.DB()

	topo.Pause("replica")
	ctx := replica.Track(context.Background())
	if _, err := db.ExecContext(ctx, "UPDATE users SET name = $1 WHERE id = $2", "Ada", 42); err != nil {
		fmt.Println(err)
		return
	}
	var tracked, untracked string
	_ = db.QueryRowContext(ctx, "SELECT name FROM users WHERE id = 42").Scan(&tracked)
	_ = db.QueryRowContext(context.Background(), "SELECT name FROM users WHERE id = 42").Scan(&untracked)
	fmt.Println("tracked read on", tracked)
	fmt.Println("untracked read on", untracked)

	mark, _ := replica.MarkOf(ctx)
	cookie, _ := mark.MarshalText()
	var next replica.Mark
	_ = next.UnmarshalText(cookie)
	_ = db.QueryRowContext(replica.TrackFrom(context.Background(), next), "SELECT 1").Scan(&tracked)
	fmt.Println("next request reads on", tracked)
	// Output:
	// tracked read on primary
	// untracked read on replica
	// next request reads on primary
}

// A request writes in a transaction, then enqueues a job about what it
// wrote. BeginTxFunc records the commit in the request's Track context;
// the job carries the request's Mark in its payload, and the worker (on
// another machine, with a Router of its own) runs it under TrackFrom, so
// its reads see the write even though the replica has not applied it
// (here it stopped applying changes).
func ExampleTrackFrom_job() {
	topo := replicatest.New(nil, "primary", "replica")
	defer topo.Close()
	topo.Pause("replica")
	web, _ := replica.New(replica.Config{Probe: topo}, topo.Nodes()...)
	defer web.Close()
	worker, _ := replica.New(replica.Config{Probe: topo}, topo.Nodes()...)
	defer worker.Close()

	type receipt struct {
		OrderID int64
		Mark    replica.Mark // what the worker's reads must see
	}
	req := replica.Track(context.Background())
	err := web.DB().BeginTxFunc(req, nil, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(req, "INSERT INTO orders (id) VALUES ($1)", 7)
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mark, _ := replica.MarkOf(req)
	fmt.Println("the commit is recorded at a position:", mark.Position > 0)
	payload, _ := json.Marshal(receipt{OrderID: 7, Mark: mark}) // the job's payload

	// In the worker:
	var job receipt
	if err := json.Unmarshal(payload, &job); err != nil {
		fmt.Println(err)
		return
	}
	var with, without string
	db, ctx := worker.DB(), context.Background()
	_ = db.QueryRowContext(replica.TrackFrom(ctx, job.Mark), "SELECT id FROM orders WHERE id = $1", job.OrderID).Scan(&with)
	_ = db.QueryRowContext(ctx, "SELECT id FROM orders WHERE id = $1", job.OrderID).Scan(&without)
	fmt.Println("the job with the mark reads on", with)
	fmt.Println("the job without it reads on", without)
	// Output:
	// the commit is recorded at a position: true
	// the job with the mark reads on primary
	// the job without it reads on replica
}
