// Package rediselector is a failover.Elector and failover.Observer on
// Redis (a single server, Sentinel or Cluster): a lease key renewed by the
// leader and a token counter that hands out fencing tokens.
//
// # Keys
//
// For Config.Role R and Config.Prefix P, all under the hash tag {R} so that
// every script touches one Redis Cluster slot:
//
//	P{R}:lease   "<id> <token>" with a TTL of Config.Lease: who leads
//	P{R}:token   the counter of fencing tokens (never expires)
//	P{R}:events  pub/sub channel: "acquired <id> <token>", "vacant <id> <token>"
//
// # Scripts
//
// Acquire is one script: if the lease is absent, INCR the token, SET the
// lease "<id> <token>" PX Lease and PUBLISH "acquired". Renewal is one
// script and one round trip: PEXPIRE the lease only if it still holds our
// value, else the term ends with failover.ErrLost. Resign DELs the lease
// only if it holds our value and PUBLISHes "vacant", so that campaigners,
// who are subscribed, try at once instead of at their next RetryInterval.
//
// # Self-fencing
//
// A Term's deadline is the moment the last successful renewal (or the
// acquire) was sent, plus Lease, minus SafetyMargin; measured before the
// round trip, it comes before the lease could have run out in Redis. A
// failed renewal (Redis unreachable) does not end the term by itself: the
// deadline does. A renewal that answers after the deadline does not revive
// the term.
//
// # Time bounds
//
// Every bound below rests on go-redis applying a context's deadline to
// its sockets, which it does only with ContextTimeoutEnabled; New refuses
// a go-redis client without it, with an error wrapping
// failover.ErrInvalidConfig that names the option. With it, a
// Redis that hangs (accepts and never answers, or is SIGSTOPped) or is
// gone holds nothing past these bounds, whatever the client's
// ReadTimeout and MaxRetries:
//
//   - Campaign returns ctx's error by ctx's deadline (or at its cancel),
//     even while another Campaign of the same Elector is acquiring. Each
//     acquire attempt is bounded by Lease - SafetyMargin: a term acquired
//     later than that would be over before it began.
//   - Each renewal is bounded by RenewInterval and by the term's deadline;
//     one that times out is followed at once by another, on a fresh
//     connection, so a single silent connection does not cost the term.
//     The term self-fences at its deadline whether or not a renewal is
//     still waiting.
//   - Observe's polls are bounded by Lease.
//   - Close returns within about Lease: the only Redis call it waits for
//     is the resignation of a live term, bounded by Lease.
//
// Leader and Resign use the caller's context.
//
// # Tokens must survive Redis restarts
//
// Fencing tokens only fence if they never go backwards, so the token key
// must survive a restart of Redis: run it with the append-only file
// (appendonly yes). With appendfsync everysec, a crash (not a clean
// shutdown) can lose the last second of writes, an INCR among them, and
// the next leader could be handed a token that an earlier leader already
// used. Two mitigations, both in place:
//
//   - every candidate remembers the largest token it has seen (its own
//     terms, the lease values it read in Leader, Observe and failed
//     acquires) and the acquire script takes max(INCR, remembered + 1);
//     candidates that were running when the token was lost therefore never
//     go backwards, but a candidate started afresh knows nothing;
//   - appendfsync always (every write on disk before the reply) closes the
//     gap entirely, at the cost of a fsync per acquire and renewal.
//
// # Fencing across failovers
//
// Replication is asynchronous: a master acknowledges the acquire script
// before its replicas have it, and a failover (Sentinel, or a Cluster's
// replica taking over) to a replica that missed it loses the INCR. The next
// candidate that knows nothing of the lost token (one started afresh, or
// that never heard the "acquired" message) is then handed the same token
// again: two terms share a token, and no fence can tell them apart
// (TestLossyFailoverTokens forces this case: tokens 1, 2, 2 by default).
//
// Config.WaitReplicas closes it. The acquire script is followed, on the same
// connection, by WAIT WaitReplicas WaitTimeout, and the term starts only if
// that many replicas confirmed; otherwise the candidate gives the lease
// back (a DEL of its own value) and does not lead, and the token it drew is
// never used. Renewals are confirmed the same way before they extend the
// term. Why this is safe:
//
//   - WAIT returns once the replicas have acknowledged the replication
//     offset of the connection's last write, which is after the INCR (and
//     the floor SET) of the token and the SET of the lease: a replica that
//     confirmed has the counter at or above the token, and the lease.
//   - A term starts only with a confirmed token. A failover promotes a
//     replica; if it is one that confirmed (with WaitReplicas equal to the
//     number of replicas, every replica that can be promoted is), the new
//     master's counter is at or above every started term's token, so its
//     next INCR is larger than all of them. By induction over successive
//     failovers (each later term is confirmed on the then-current master's
//     replicas), tokens of started terms strictly increase and are never
//     shared. A token drawn but not confirmed may be drawn again after a
//     failover; that is harmless, since no term used it.
//   - The lease survives too, with an expiry at least the term's deadline
//     (extensions count only once confirmed), so at most one term is live
//     at a time across the failover as well, not only fenced.
//
// The price: an acquire or renewal waits for the replicas (a round trip
// more, measured in BenchmarkCommit of session/redisstore: about 2× a
// plain write on loopback), and with fewer live replicas than WaitReplicas
// nobody can lead (after a master's death, until a replica rejoins the new
// master) and a leader's renewals stop extending its term, which then ends
// at its deadline. Choose WaitReplicas below the number of replicas to keep
// electing while one replica is down, at the risk that a failover promotes
// the one that did not confirm (Sentinel and the Cluster prefer the replica
// with the largest replication offset, which confirmed if it was reachable).
//
// failover.FenceTx (PostgreSQL) keeps its fence in PostgreSQL, so a Redis
// failover cannot roll it back: with confirmed tokens it refuses every write
// of a term older than the newest that wrote. FenceSet keeps its fence key on
// the Redis it writes to, and a failover that loses the last fenced write
// loses its fence with it; the write it fenced is lost too.
//
// # Running on replicated Redis
//
// Every call rides out the errors of a master switch (refused connections,
// READONLY, LOADING, CLUSTERDOWN, TRYAGAIN, MOVED past go-redis's
// redirections): Campaign keeps trying every RetryInterval until its ctx
// ends, renewals every RenewInterval until the term's deadline, and Leader
// and Resign retry within their ctx (internal/redisha). A term whose lease
// was lost in the switch ends with failover.ErrLost at its next renewal.
// What each mode survives, measured by TestFailoverElection (three
// candidates electing in a loop through forced failovers and SIGKILLs of the
// master, down-after-milliseconds 500-1000 / node timeout 1 s):
//
//   - default: a switch that loses the last acquire can repeat a token
//     (forced in TestLossyFailoverTokens; a plain SIGKILL rarely loses it on
//     loopback, where replication lags by microseconds);
//   - WaitReplicas 1 (one replica per master): no token regression or
//     duplicate (20 switches on Sentinel and on a Cluster: 83 and 84 terms);
//     a new term started 2.4-4.9 s after the kill of the master (the
//     switch, then the killed node rejoining as a replica to confirm; by
//     default 1.9-4.7 s).
//
// Tokens are Lua numbers in the scripts: exact below 2^53.
package rediselector

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/internal/electcfg"
	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/internal/redisopt"
)

// Config configures New. Role is required; every other zero field means
// its default.
type Config struct {
	// Role names what the candidates compete for: the candidates of one
	// Role on one Redis elect one leader. It must not be empty nor hold a
	// brace: it is the keys' hash tag.
	Role string
	// Prefix starts every key and channel name; default none.
	Prefix string
	// Config is this candidate's ID and the election's timing, with
	// failover.Config's defaults and constraints; ID must not hold white
	// space and Lease must be at least Redis's 1 ms resolution.
	failover.Config
	// WaitReplicas, when positive, makes a term start only once that many
	// replicas have confirmed its token and lease (WAIT), and a renewal
	// extend the term only once they have confirmed it: tokens then never
	// go backwards, nor are shared, across a failover that loses the
	// master's last writes, as long as the replica promoted is one that
	// confirmed (set it to the number of replicas for any). See "Fencing
	// across failovers" in the package doc. 0 (the default) starts the term
	// as soon as the master answers. Negative is invalid, and so is a
	// client other than *redis.Client (single or Sentinel) or
	// *redis.ClusterClient.
	WaitReplicas int
	// WaitTimeout bounds each wait of WaitReplicas: an acquire not confirmed
	// in time gives the lease back and does not lead, a renewal not
	// confirmed does not extend the term. Default RenewInterval / 2; it must
	// be at least 1 ms and under RenewInterval, and set only with
	// WaitReplicas.
	WaitTimeout time.Duration
}

// Elector is a failover.Elector and failover.Observer on Redis. It is safe
// for concurrent use. Close it to stop its goroutines.
type Elector struct {
	client   redis.UniversalClient
	cfg      failover.Config
	config   Config // as given to New, defaults filled in
	leaseKey string
	tokenKey string
	channel  string

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	pubsub *redis.PubSub

	// acquiring holds a token while an acquire attempt runs: one at a
	// time, and a Campaign waiting for its turn still honours its ctx.
	acquiring chan struct{}

	mu        sync.Mutex
	term      *failover.Term
	lastToken uint64 // the largest token seen
	termToken uint64 // the token of this candidate's last Term
	lastID    string // the ID that held lastToken, if known
	wake      chan struct{}
	closed    bool
}

var (
	_ failover.Elector  = (*Elector)(nil)
	_ failover.Observer = (*Elector)(nil)
)

// New returns an Elector of cfg.Role for the candidate cfg.ID, on client,
// which it never closes. It subscribes to the role's events channel at
// once, on a goroutine that Close stops. It fails with an error wrapping
// failover.ErrInvalidConfig when cfg is invalid (see Config and
// failover.Config.Validate) or client is nil, and refuses a go-redis
// client without ContextTimeoutEnabled (see Time bounds).
func New(client redis.UniversalClient, cfg Config) (*Elector, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil Redis client", failover.ErrInvalidConfig)
	}
	if err := redisopt.Check(client); err != nil {
		return nil, fmt.Errorf("%w: %w", failover.ErrInvalidConfig, err)
	}
	if cfg.Role == "" {
		return nil, fmt.Errorf("%w: empty Role", failover.ErrInvalidConfig)
	}
	if strings.ContainsAny(cfg.Role, "{}") {
		return nil, fmt.Errorf("%w: Role %q contains a brace: it is the keys' hash tag", failover.ErrInvalidConfig, cfg.Role)
	}
	n, err := electcfg.Normalize(electcfg.Config(cfg.Config))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", failover.ErrInvalidConfig, err)
	}
	cfg.Config = failover.Config(n)
	if err := cfg.checkWait(client); err != nil {
		return nil, err
	}
	if strings.ContainsAny(cfg.ID, " \t\r\n") {
		return nil, fmt.Errorf("%w: ID %q contains white space", failover.ErrInvalidConfig, cfg.ID)
	}
	if cfg.Lease < time.Millisecond {
		return nil, fmt.Errorf("%w: Lease %v under Redis's 1 ms resolution", failover.ErrInvalidConfig, cfg.Lease)
	}
	base := cfg.Prefix + "{" + cfg.Role + "}:"
	e := &Elector{
		client:    client,
		cfg:       cfg.Config,
		config:    cfg,
		leaseKey:  base + "lease",
		tokenKey:  base + "token",
		channel:   base + "events",
		wake:      make(chan struct{}),
		acquiring: make(chan struct{}, 1),
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.pubsub = client.Subscribe(e.ctx, e.channel)
	e.wg.Go(e.listen)
	return e, nil
}

// Config returns the configuration New was given, defaults filled in.
func (e *Elector) Config() Config { return e.config }

// listen wakes campaigners and observers on every event of the channel.
func (e *Elector) listen() {
	for {
		msg, err := e.pubsub.ReceiveMessage(e.ctx)
		if e.ctx.Err() != nil {
			return
		}
		if err != nil {
			// Redis unreachable: the PubSub reconnects and subscribes again
			// at the next call. Meanwhile the timers poll.
			select {
			case <-e.ctx.Done():
				return
			case <-time.After(e.cfg.RetryInterval):
			}
			continue
		}
		if _, rest, ok := strings.Cut(msg.Payload, " "); ok {
			if id, tok, ok := parseValue(rest); ok {
				e.seen(id, tok)
			}
		}
		e.mu.Lock()
		close(e.wake)
		e.wake = make(chan struct{})
		e.mu.Unlock()
	}
}

// seen remembers the largest token seen and its holder.
func (e *Elector) seen(id string, tok uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if tok > e.lastToken {
		e.lastToken, e.lastID = tok, id
	}
}

func parseValue(v string) (id string, tok uint64, ok bool) {
	id, t, ok := strings.Cut(v, " ")
	if !ok || id == "" {
		return "", 0, false
	}
	tok, err := strconv.ParseUint(t, 10, 64)
	return id, tok, err == nil
}

func (e *Elector) jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1) // ±10 %
}

// current returns the term while it lasts, the wake channel, and whether
// the Elector is closed.
func (e *Elector) current() (*failover.Term, <-chan struct{}, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.term
	if t != nil && t.Err() != nil {
		t = nil
	}
	return t, e.wake, e.closed
}

// Campaign implements failover.Elector. While Redis is unreachable it
// keeps trying, every RetryInterval, until ctx ends. It returns
// failover.ErrClosed once the Elector is closed.
func (e *Elector) Campaign(ctx context.Context) (*failover.Term, error) {
	for {
		t, wake, closed := e.current()
		switch {
		case closed:
			return nil, failover.ErrClosed
		case t != nil:
			return t, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		t, err := e.tryAcquire(ctx)
		if t != nil {
			return t, nil
		}
		if errors.Is(err, failover.ErrClosed) {
			return nil, err
		}
		timer := time.NewTimer(e.jitter(e.cfg.RetryInterval))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-e.ctx.Done():
			timer.Stop()
			return nil, failover.ErrClosed
		case <-wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// tryAcquire runs the acquire script once; it returns the new Term when it
// took the lease. The attempt runs on a goroutine of the Elector, so that
// tryAcquire returns when ctx ends although go-redis, waiting for a reply,
// honours only the deadline of a context, not its cancellation.
func (e *Elector) tryAcquire(ctx context.Context) (*failover.Term, error) {
	select {
	case e.acquiring <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.ctx.Done():
		return nil, failover.ErrClosed
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		<-e.acquiring
		return nil, failover.ErrClosed
	}
	if t := e.term; t != nil && t.Err() == nil {
		e.mu.Unlock()
		<-e.acquiring
		return t, nil
	}
	a := &attempt{floor: e.lastToken + 1, own: e.termToken + 1, done: make(chan struct{})}
	e.wg.Go(func() { // under mu: never after Close's Wait began
		defer func() { <-e.acquiring }()
		e.acquire(ctx, a)
	})
	e.mu.Unlock()
	closing := false
	select {
	case <-a.done:
	case <-ctx.Done():
	case <-e.ctx.Done():
		closing = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case a.finished:
		return a.term, a.err
	case closing:
		a.abandoned = true // the attempt resigns a lease it takes
		return nil, failover.ErrClosed
	default:
		a.abandoned = true
		return nil, ctx.Err()
	}
}

// An attempt is one run of the acquire script. finished, abandoned, term
// and err are guarded by Elector.mu: whichever of the attempt and its
// Campaign decides first settles who owns a lease taken.
type attempt struct {
	floor, own uint64 // the token floor and this candidate's next token
	done       chan struct{}
	finished   bool // the attempt settled term and err
	abandoned  bool // its Campaign returned before it finished
	term       *failover.Term
	err        error
}

// acquire runs attempt a and installs the Term it wins, unless its
// Campaign abandoned it or the Elector closed: then it resigns the lease.
func (e *Elector) acquire(ctx context.Context, a *attempt) {
	defer close(a.done)
	// A term acquired after Lease - SafetyMargin would be over before it
	// began.
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Lease-e.cfg.SafetyMargin)
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)()
	sent := time.Now()
	res, err := e.runAcquire(ctx, a)
	var term *failover.Term
	switch {
	case errors.Is(err, errNotConfirmed):
		// Won on the master, but not confirmed by enough replicas: a
		// failover could hand the token out again. Give the lease back
		// rather than lead with it.
		if len(res) == 2 {
			if tok, ok := res[1].(int64); ok {
				e.seen(e.cfg.ID, uint64(tok))
				e.resignValue(e.cfg.ID, uint64(tok))
			}
		}
	case err != nil:
	case len(res) != 2:
		err = fmt.Errorf("rediselector: acquire answered %v", res)
	default:
		if won, _ := res[0].(int64); won == 0 {
			if v, _ := res[1].(string); v != "" {
				if id, tok, ok := parseValue(v); ok {
					e.seen(id, tok)
				}
			}
			break
		}
		tok, _ := res[1].(int64)
		e.seen(e.cfg.ID, uint64(tok))
		term = failover.NewTerm(e.cfg.ID, uint64(tok), sent.Add(e.cfg.Lease-e.cfg.SafetyMargin))
	}
	e.mu.Lock()
	a.finished, a.err = true, err
	keep := term != nil && !a.abandoned && !e.closed
	if keep {
		a.term = term
		e.term, e.termToken = term, term.Token
		e.wg.Go(func() { e.renew(term) }) // under mu: never after Close's Wait began
	}
	cause := failover.ErrResigned
	if term != nil && e.closed {
		a.err, cause = failover.ErrClosed, failover.ErrClosed
	}
	e.mu.Unlock()
	if term != nil && !keep {
		term.End(cause)
		e.resignValue(e.cfg.ID, term.Token)
	}
}

// renew keeps term's lease until the term ends or the Elector closes.
func (e *Elector) renew(term *failover.Term) {
	value := e.cfg.ID + " " + strconv.FormatUint(term.Token, 10)
	ms := e.cfg.Lease.Milliseconds()
	keys := []string{e.leaseKey}
	tick := time.NewTicker(e.cfg.RenewInterval)
	defer tick.Stop()
	for {
		select {
		case <-term.Done():
			return
		case <-e.ctx.Done():
			return
		case <-tick.C:
		}
		// Bounded by RenewInterval: a renewal stuck on a silent connection
		// is given up in time for the next one, which the ticker has
		// already queued, to go out on a fresh connection (go-redis drops
		// a connection that timed out).
		sent := time.Now()
		deadline := sent.Add(e.cfg.RenewInterval)
		if d := term.Deadline(); d.Before(deadline) {
			deadline = d
		}
		ctx, cancel := context.WithDeadline(e.ctx, deadline)
		n, err := e.runRenew(ctx, keys, value, ms)
		cancel()
		switch {
		case err != nil:
			// Unreachable, slow or not confirmed by the replicas: keep
			// trying; the deadline self-fences.
		case n == 0:
			term.End(failover.ErrLost)
			return
		case time.Now().Before(term.Deadline()):
			term.Extend(sent.Add(e.cfg.Lease - e.cfg.SafetyMargin))
		}
	}
}

// Resign implements failover.Elector: the term ends with
// failover.ErrResigned at once, then the lease is deleted if it is still
// ours and a vacancy announced. An error means Redis could not be told:
// the lease then runs out by itself. After Close it returns
// failover.ErrClosed (Close resigned).
func (e *Elector) Resign(ctx context.Context) error {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return failover.ErrClosed
	}
	return e.resign(ctx)
}

// resign is Resign, for Close too.
func (e *Elector) resign(ctx context.Context) error {
	e.mu.Lock()
	t := e.term
	e.term = nil
	e.mu.Unlock()
	if t == nil {
		return nil
	}
	wasLive := t.Err() == nil
	t.End(failover.ErrResigned)
	if !wasLive {
		return nil // expired or lost: the lease is not ours any more
	}
	value := e.cfg.ID + " " + strconv.FormatUint(t.Token, 10)
	if err := redisha.Retry(ctx, e.client, func(ctx context.Context) error {
		return resignScript.Run(ctx, e.client, []string{e.leaseKey}, value, e.channel).Err()
	}); err != nil {
		return fmt.Errorf("rediselector: resign: %w", err)
	}
	return nil
}

func (e *Elector) resignValue(id string, tok uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Lease)
	defer cancel()
	value := id + " " + strconv.FormatUint(tok, 10)
	_ = resignScript.Run(ctx, e.client, []string{e.leaseKey}, value, e.channel).Err()
}

// Leader implements failover.Elector. With nobody leading it returns a
// vacant Leader with the largest token known (and its holder's ID, when
// this Elector saw it) and failover.ErrNoLeader. After Close it returns
// failover.ErrClosed.
func (e *Elector) Leader(ctx context.Context) (failover.Leader, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return failover.Leader{}, failover.ErrClosed
	}
	return e.leader(ctx)
}

// leader is Leader, for Observe's polls too.
func (e *Elector) leader(ctx context.Context) (failover.Leader, error) {
	vals, err := redisha.Value(ctx, e.client, func(ctx context.Context) ([]any, error) {
		return e.client.MGet(ctx, e.leaseKey, e.tokenKey).Result()
	})
	if err != nil {
		return failover.Leader{}, fmt.Errorf("rediselector: leader: %w", err)
	}
	if v, ok := vals[0].(string); ok {
		id, tok, ok := parseValue(v)
		if !ok {
			return failover.Leader{}, fmt.Errorf("rediselector: lease %q holds %q", e.leaseKey, v)
		}
		e.seen(id, tok)
		return failover.Leader{ID: id, Token: tok}, nil
	}
	if s, ok := vals[1].(string); ok {
		if tok, err := strconv.ParseUint(s, 10, 64); err == nil {
			e.seen("", tok)
		}
	}
	e.mu.Lock()
	l := failover.Leader{ID: e.lastID, Token: e.lastToken, Vacant: true}
	e.mu.Unlock()
	return l, failover.ErrNoLeader
}

// Observe implements failover.Observer. Changes are noticed at once from
// the events channel (acquire, resign) and otherwise every RetryInterval,
// when the lease is read again: an expiry produces no message. While Redis
// is unreachable nothing is sent. Observe fails if the first read fails,
// and with failover.ErrClosed after Close; Close closes the channels.
func (e *Elector) Observe(ctx context.Context) (<-chan failover.Leader, error) {
	first, err := e.Leader(ctx)
	if err != nil && !errors.Is(err, failover.ErrNoLeader) {
		return nil, err
	}
	out := make(chan failover.Leader, 1)
	out <- first
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, failover.ErrClosed
	}
	e.wg.Go(func() { // under mu: never after Close's Wait began
		defer close(out)
		// Polls end with ctx or at Close, and each within Lease.
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(e.ctx, cancel)()
		last := first
		for {
			_, wake, _ := e.current()
			timer := time.NewTimer(e.cfg.RetryInterval)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-e.ctx.Done():
				timer.Stop()
				return
			case <-wake:
				timer.Stop()
			case <-timer.C:
			}
			pctx, pcancel := context.WithTimeout(ctx, e.cfg.Lease)
			l, err := e.leader(pctx)
			pcancel()
			if err != nil && !errors.Is(err, failover.ErrNoLeader) {
				continue
			}
			if l == last {
				continue
			}
			last = l
			select { // latest value: replace what the reader has not taken
			case out <- l:
			default:
				select {
				case <-out:
				default:
				}
				out <- l
			}
		}
	})
	return out, nil
}

// Close resigns if leading, stops the Elector's goroutines and its
// subscription, and returns once the goroutines have ended; a Campaign
// waiting returns failover.ErrClosed, Observe channels close, and every
// later call of Campaign, Resign, Leader and Observe fails with
// failover.ErrClosed. It never closes the client. Close is idempotent:
// the first call returns the resignation's error, if Redis could not be
// told (the lease then runs out by itself), later ones nil, each once the
// goroutines have ended.
func (e *Elector) Close() error {
	e.mu.Lock()
	first := !e.closed
	e.closed = true
	e.mu.Unlock()
	var err error
	if first {
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Lease)
		err = e.resign(ctx)
		cancel()
		e.cancel()
		_ = e.pubsub.Close()
	}
	// No goroutine starts once closed is set: each is registered under mu
	// after checking it.
	e.wg.Wait()
	return err
}
