package pgqueue

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/internal/perqueue"
	"github.com/scaleout/scaleout/replica"
)

// DefaultPrefix starts the name of every table, index, sequence, function
// and notification channel of a Queue when Config.Prefix is empty.
const DefaultPrefix = "scaleout_queue_"

// Defaults of Config.
const (
	DefaultPollInterval = time.Second
	DefaultSweepEvery   = time.Second
)

// DB is what a Queue needs of a database: *sql.DB, and *replica.DB (whose
// statements the Queue sends to the primary), have it. The connections
// must reach PostgreSQL through the pgx driver (github.com/jackc/pgx/v5/stdlib)
// for Dequeue and Wait to hear notifications; with another driver they
// poll every Config.PollInterval.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Conn(ctx context.Context) (*sql.Conn, error)
}

// Config configures a Queue. The zero value is valid.
type Config struct {
	// Prefix starts the name of every object of the Queue in the database
	// (tables <Prefix>jobs, <Prefix>queues, <Prefix>uniq, <Prefix>totals,
	// and their indexes, sequence, functions and channels); default
	// DefaultPrefix. Lower-case letters, digits and '_', starting with a
	// letter, at most 40 bytes. Queues with different prefixes in one
	// database share nothing.
	Prefix string
	// MaxPayload bounds a job's payload; 0 means queue.DefaultMaxPayload.
	MaxPayload int
	// Backoff is the wait before retry number attempt (1 after the first
	// failure); default queue.DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// PollInterval bounds how long a blocked Dequeue or Wait goes without
	// looking at the database when no notification comes (the listening
	// connection is down, or a notification was lost with it); default
	// DefaultPollInterval.
	PollInterval time.Duration
	// Meter receives scaleout.queue.enqueued, by queue (see package
	// observe): the jobs this process's Enqueue, EnqueueTx, EnqueuePgxTx
	// and EnqueueBatch stored, not an Enqueue answered by the job already
	// stored under its ID. A job enqueued in a transaction is counted when
	// its statement stored it, even if the transaction then rolls back.
	// nil means none.
	Meter observe.Meter
}

// Queue is a queue.JobQueue on PostgreSQL. Its methods are safe for
// concurrent use. Close it to stop its listening connection; it never
// closes the DB.
type Queue struct {
	db         DB
	usePrimary bool // db routes reads to replicas: send everything to the primary
	prefix     string
	readyChan  string
	endedChan  string
	maxPayload int
	backoff    func(int) time.Duration
	poll       time.Duration
	enqueued   *perqueue.Counters

	enqueueSQL, enqueueQuietSQL, leaseSQL, leaseManySQL, enqueueFnSQL string
	ackManySQL, failCurrentSQL, failExpiredSQL, extendSQL             string
	snoozeSQL, ackLeaseSQL, cleanSQL                                  string

	mu        sync.Mutex
	closed    bool
	closedCh  chan struct{}
	closeCtx  context.Context
	closeStop context.CancelFunc
	lis       *listener
	notify    notifier
	leases    combiner[leaseKey, struct{}, leased]
	acks      combiner[struct{}, ackReq, ackRes]
	ackLeases combiner[leaseKey, ackReq, ackLeased]
	inflight  sync.WaitGroup // statements of Dequeue run on past their caller (detach)

	sweepMu   sync.Mutex
	lastSweep time.Time
	lastClean time.Time
}

var (
	_ queue.JobQueue      = (*Queue)(nil)
	_ queue.Settler       = (*Queue)(nil)
	_ queue.Snoozer       = (*Queue)(nil)
	_ queue.BatchEnqueuer = (*Queue)(nil)
	_ queue.DeadLetters   = (*Queue)(nil)
	_ queue.Limiter       = (*Queue)(nil)
	_ queue.Inspector     = (*Queue)(nil)
	_ queue.AckDequeuer   = (*Queue)(nil)
)

// New returns a Queue on db. It does not touch the database: call Migrate
// once to create the tables. Invalid configuration is an error wrapping
// queue.ErrInvalidConfig.
func New(db DB, cfg Config) (*Queue, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: pgqueue: nil DB", queue.ErrInvalidConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !validPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("%w: pgqueue: prefix %q: want 1 to 40 of [a-z0-9_], starting with a letter", queue.ErrInvalidConfig, cfg.Prefix)
	}
	if cfg.MaxPayload < 0 || cfg.PollInterval < 0 {
		return nil, fmt.Errorf("%w: pgqueue: negative MaxPayload or PollInterval", queue.ErrInvalidConfig)
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = queue.DefaultMaxPayload
	}
	if cfg.Backoff == nil {
		cfg.Backoff = queue.DefaultBackoff
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	_, routed := db.(*replica.DB)
	q := &Queue{
		db:         db,
		usePrimary: routed,
		prefix:     cfg.Prefix,
		readyChan:  cfg.Prefix + "ready",
		endedChan:  cfg.Prefix + "ended",
		maxPayload: cfg.MaxPayload,
		backoff:    cfg.Backoff,
		poll:       cfg.PollInterval,
		enqueued:   perqueue.New(cfg.Meter, observe.QueueEnqueued),
		closedCh:   make(chan struct{}),
	}
	q.closeCtx, q.closeStop = context.WithCancel(context.Background())
	q.notify.q = q
	q.leases.width, q.acks.width, q.ackLeases.width = combineWidth, combineWidth, combineWidth
	q.enqueueSQL = q.sql(enqueueSQL)
	q.enqueueQuietSQL = q.sql(enqueueQuietSQL)
	q.enqueueFnSQL = q.sql(enqueueFnSQL)
	q.leaseSQL = q.sql(`SELECT * FROM {p}lease($1, $2)`)
	q.leaseManySQL = q.sql(leaseManyWith("$1", "$2", "$3"))
	q.ackManySQL = q.sql(channels(ackManySQL, 6, 7))
	q.failCurrentSQL = q.sql(channels(replaceAll(failSQL, "{lease}", "lease_until > clock_timestamp()"), 7, 8))
	q.failExpiredSQL = q.sql(channels(replaceAll(failSQL, "{lease}", "lease_until <= clock_timestamp()"), 7, 8))
	q.extendSQL = q.sql(extendSQL)
	q.snoozeSQL = q.sql(snoozeSQL)
	q.ackLeaseSQL = q.sql(channels(ackLeaseSQL, 6, 7))
	q.cleanSQL = q.sql(cleanSQL)
	return q, nil
}

func validPrefix(p string) bool {
	if p == "" || len(p) > 40 || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Close stops the Queue's listening connection and makes later calls fail
// with queue.ErrClosed; blocked Dequeue and Wait calls return it at once.
// It is idempotent and never closes the DB.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.closedCh)
	q.closeStop()
	lis := q.lis
	q.mu.Unlock()
	if lis != nil {
		lis.wg.Wait()
	}
	q.inflight.Wait()
	q.notify.close()
	return nil
}

func (q *Queue) checkOpen() error {
	select {
	case <-q.closedCh:
		return queue.ErrClosed
	default:
		return nil
	}
}

// ctx marks ctx for the primary when the DB routes reads.
func (q *Queue) ctx(ctx context.Context) context.Context {
	if q.usePrimary {
		return replica.UsePrimary(ctx)
	}
	return ctx
}

// dbErr wraps a database error, or returns the context's error when the
// context ended (the driver's error then says no more).
func dbErr(ctx context.Context, what string, err error) error {
	if cerr := ended(ctx); cerr != nil {
		return cerr
	}
	return fmt.Errorf("pgqueue: %s: %w", what, err)
}

func encodeHeaders(h map[string]string) []byte {
	if len(h) == 0 {
		return nil
	}
	b, _ := json.Marshal(h) // a map of strings always encodes
	return b
}

func decodeHeaders(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("pgqueue: malformed headers: %w", err)
	}
	return h, nil
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func replaceAll(s, old, new string) string { return strings.ReplaceAll(s, old, new) }
