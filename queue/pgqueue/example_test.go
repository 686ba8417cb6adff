package pgqueue_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"log"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver: LISTEN/NOTIFY wake-ups

	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

// An order and its invoice job are written in one transaction: both
// exist, or neither. A worker runs the job once the transaction commits.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("pgx", os.Getenv("SCALEOUT_PG_PRIMARY_DSN"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	q, err := pgqueue.New(db, pgqueue.Config{Prefix: "example_queue_"})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	if err := q.Migrate(ctx); err != nil { // once, at deploy
		log.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS example_orders (id text PRIMARY KEY)`); err != nil {
		log.Fatal(err)
	}
	order := "order-" + rand.Text()[:8]
	invoices := "invoices-" + rand.Text()[:8] // a queue of this run's own

	// The order and its job, atomically.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO example_orders (id) VALUES ($1)`, order); err != nil {
		log.Fatal(err)
	}
	id, err := q.EnqueueTx(ctx, tx, queue.Job{Queue: invoices, Type: "invoice", ID: order, Payload: []byte(order)})
	if err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	// A worker, anywhere.
	d, err := q.Dequeue(ctx, []string{invoices}, queue.DefaultLease)
	if err != nil {
		log.Fatal(err)
	}
	if err := d.Ack(ctx, []byte("sent")); err != nil {
		log.Fatal(err)
	}

	info, err := q.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.State, string(info.Result), info.ID == id)
	// Output: done sent true
}
