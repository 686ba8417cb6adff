package failover

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errPartitioned is what a partitioned Memory's calls to its store fail
// with (see Memory.Partition).
var errPartitioned = errors.New("failover: memory: partitioned from the store")

// A MemoryStore is the in-process store of one role: the lease, the
// fencing token and the observers that the Memory candidates of that role
// share. It behaves like a real backend: the lease expires Lease after its
// last renewal by the store's clock (time.Now), the token increases on
// every acquisition, and a Resign wakes the campaigners at once.
//
// The zero value is an empty store, ready to use. A MemoryStore must not be
// copied after first use.
type MemoryStore struct {
	mu        sync.Mutex
	holder    string    // current leader's ID, "" when vacant
	token     uint64    // the last token handed out
	lastID    string    // the last leader's ID, reported with vacancies
	expires   time.Time // store clock: when the holder's lease runs out
	timer     *time.Timer
	wake      chan struct{} // closed and replaced when the lease is freed
	observers map[*memoryObserver]struct{}
}

// NewMemoryStore returns an empty store for one role.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Candidate returns a candidate for the store's role configured by cfg,
// whose zero durations mean the defaults of Config; it fails with an error
// wrapping ErrInvalidConfig when cfg is invalid (see Config.Validate).
// Candidates of one store need distinct IDs. The candidate starts nothing
// until it campaigns or is observed; Close it when done.
func (s *MemoryStore) Candidate(cfg Config) (*Memory, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Memory{store: s, cfg: cfg, closing: make(chan struct{}), healed: closedChan()}, nil
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// current reports the leader; s.mu must be held.
func (s *MemoryStore) current() Leader {
	s.expireLocked()
	if s.holder == "" {
		return Leader{ID: s.lastID, Token: s.token, Vacant: true}
	}
	return Leader{ID: s.holder, Token: s.token}
}

// wakeChan returns a channel closed when the lease is next freed by a
// Resign; s.mu must be held.
func (s *MemoryStore) wakeChan() <-chan struct{} {
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
	return s.wake
}

// expireLocked frees an expired lease; s.mu must be held.
func (s *MemoryStore) expireLocked() {
	if s.holder != "" && !time.Now().Before(s.expires) {
		s.holder = ""
		s.publishLocked()
	}
}

// expire runs on the store's timer.
func (s *MemoryStore) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
}

// setLeaseLocked starts or extends the holder's lease; s.mu must be held.
func (s *MemoryStore) setLeaseLocked(now time.Time, lease time.Duration) {
	s.expires = now.Add(lease)
	if s.timer == nil {
		s.timer = time.AfterFunc(lease, s.expire)
	} else {
		s.timer.Reset(lease)
	}
}

// acquire takes the lease for id if it is vacant or expired.
func (s *MemoryStore) acquire(id string, lease time.Duration) (token uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if s.holder != "" {
		return 0, false
	}
	s.token++
	s.holder, s.lastID = id, id
	s.setLeaseLocked(time.Now(), lease)
	s.publishLocked()
	return s.token, true
}

// renew extends the lease of id's term token, if it still holds it.
func (s *MemoryStore) renew(id string, token uint64, lease time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if s.holder != id || s.token != token {
		return false
	}
	s.setLeaseLocked(time.Now(), lease)
	return true
}

// release frees the lease of id's term token, if it still holds it, and
// wakes the campaigners.
func (s *MemoryStore) release(id string, token uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked()
	if s.holder != id || s.token != token {
		return
	}
	s.holder = ""
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
	s.publishLocked()
}

// publishLocked hands the current leader to every observer without
// blocking; s.mu must be held.
func (s *MemoryStore) publishLocked() {
	l := s.current()
	for o := range s.observers {
		o.set(l)
	}
}

func (s *MemoryStore) subscribe(o *memoryObserver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.observers == nil {
		s.observers = make(map[*memoryObserver]struct{})
	}
	s.observers[o] = struct{}{}
	o.set(s.current())
}

func (s *MemoryStore) unsubscribe(o *memoryObserver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.observers, o)
}

// memoryObserver holds the latest value for one Observe call.
type memoryObserver struct {
	mu     sync.Mutex
	latest Leader
	notify chan struct{} // capacity 1: a value is pending
}

func (o *memoryObserver) set(l Leader) {
	o.mu.Lock()
	o.latest = l
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

func (o *memoryObserver) get() Leader {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.latest
}

// Memory is one candidate of a MemoryStore's role: an Elector and
// Observer for tests and for goroutines of one process that compete.
//
// A leader renews its lease every RenewInterval; each successful renewal
// extends its Term to (the time the renewal was sent) + Lease -
// SafetyMargin. A candidate retries every RetryInterval while it
// campaigns, and at once when the leader resigns. Partition simulates a
// network partition for tests.
type Memory struct {
	store *MemoryStore
	cfg   Config

	mu          sync.Mutex
	term        *Term // the latest term, live or ended; nil before the first
	closed      bool
	closing     chan struct{} // closed by Close
	partitioned bool
	healed      chan struct{} // closed while not partitioned
	wg          sync.WaitGroup
}

var (
	_ Elector  = (*Memory)(nil)
	_ Observer = (*Memory)(nil)
)

// Config returns the candidate's configuration, defaults filled in.
func (m *Memory) Config() Config { return m.cfg }

// Partition cuts this candidate off from its store (cut true) or
// reconnects it (cut false), as a network partition would: while cut, its
// calls to the store fail (Campaign keeps retrying, Leader and Resign fail,
// Observe delivers nothing) and its leader stops renewing. Its Term then
// ends at its deadline (ErrLeaseExpired) while the store holds the lease
// until it expires, a SafetyMargin later; then another candidate can take
// over with a larger token.
func (m *Memory) Partition(cut bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cut == m.partitioned {
		return
	}
	m.partitioned = cut
	if cut {
		m.healed = make(chan struct{})
	} else {
		close(m.healed)
	}
}

// Campaign blocks until this candidate leads, then returns its Term; or
// returns ctx.Err(), or ErrClosed after Close. While leading it returns
// the current Term.
func (m *Memory) Campaign(ctx context.Context) (*Term, error) {
	timer := time.NewTimer(m.cfg.RetryInterval)
	timer.Stop()
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t, wake, err := m.tryAcquire()
		if t != nil || err != nil {
			return t, err
		}
		timer.Reset(m.cfg.RetryInterval)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.closing:
			return nil, ErrClosed
		case <-wake:
		case <-timer.C:
		}
	}
}

// tryAcquire returns the live term, or a new one if the lease could be
// taken, or else a channel closed when the leader resigns.
func (m *Memory) tryAcquire() (*Term, <-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return nil, nil, ErrClosed
	case m.term != nil && m.term.Err() == nil:
		return m.term, nil, nil
	case m.partitioned:
		return nil, nil, nil // the call hangs or fails: retry later
	}
	s := m.store
	s.mu.Lock()
	wake := s.wakeChan()
	s.mu.Unlock()
	sent := time.Now()
	token, ok := s.acquire(m.cfg.ID, m.cfg.Lease)
	if !ok {
		return nil, wake, nil
	}
	t := NewTerm(m.cfg.ID, token, sent.Add(m.cfg.Lease-m.cfg.SafetyMargin))
	m.term = t
	m.wg.Add(1)
	go m.renew(t)
	return t, nil, nil
}

// renew renews t's lease every RenewInterval until t ends.
func (m *Memory) renew(t *Term) {
	defer m.wg.Done()
	ticker := time.NewTicker(m.cfg.RenewInterval)
	defer ticker.Stop()
	for {
		select {
		case <-t.Done():
			return
		case <-ticker.C:
		}
		m.mu.Lock()
		partitioned := m.partitioned
		m.mu.Unlock()
		if partitioned {
			continue // the renewal is lost; the term ends at its deadline
		}
		sent := time.Now()
		if !m.store.renew(t.ID, t.Token, m.cfg.Lease) {
			t.End(ErrLost)
			return
		}
		t.Extend(sent.Add(m.cfg.Lease - m.cfg.SafetyMargin))
	}
}

// Resign ends this candidate's term (ErrResigned) and frees the lease at
// once, waking the other candidates; it does nothing when this candidate
// does not lead. While partitioned, the term ends but the lease stays in
// the store until it expires, and Resign fails. After Close it returns
// ErrClosed (Close resigned).
func (m *Memory) Resign(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return m.resignLocked()
}

func (m *Memory) resignLocked() error {
	t := m.term
	if t == nil {
		return nil
	}
	t.End(ErrResigned)
	if m.partitioned {
		return errPartitioned
	}
	m.store.release(t.ID, t.Token)
	return nil
}

// Leader reports who leads the role, or fails with ErrNoLeader, returning
// a Leader with Vacant set that names the last leader, if any; after Close
// it returns ErrClosed.
func (m *Memory) Leader(ctx context.Context) (Leader, error) {
	if err := ctx.Err(); err != nil {
		return Leader{}, err
	}
	m.mu.Lock()
	partitioned, closed := m.partitioned, m.closed
	m.mu.Unlock()
	switch {
	case closed:
		return Leader{}, ErrClosed
	case partitioned:
		return Leader{}, errPartitioned
	}
	m.store.mu.Lock()
	l := m.store.current()
	m.store.mu.Unlock()
	if l.Vacant {
		return l, ErrNoLeader
	}
	return l, nil
}

// Observe sends the current Leader, then each change, vacancies included,
// until ctx ends or the candidate is closed; then it closes the channel. A
// slow reader misses intermediate values, never the latest; the store
// never waits for it. While partitioned, nothing is delivered. After
// Close it returns ErrClosed.
func (m *Memory) Observe(ctx context.Context) (<-chan Leader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	o := &memoryObserver{notify: make(chan struct{}, 1)}
	m.store.subscribe(o)
	out := make(chan Leader)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(out)
		defer m.store.unsubscribe(o)
		for {
			select {
			case <-ctx.Done():
				return
			case <-m.closing:
				return
			case <-o.notify:
			}
			for sent := false; !sent; {
				m.mu.Lock()
				healed := m.healed
				m.mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-m.closing:
					return
				case <-healed:
				}
				select {
				case out <- o.get():
					sent = true
				case <-o.notify: // a newer value: send that one
				case <-ctx.Done():
					return
				case <-m.closing:
					return
				}
			}
		}
	}()
	return out, nil
}

// Close resigns (when not partitioned), ends the term, stops the
// candidate's goroutines and closes its Observe channels, and returns once
// they have ended; a Campaign waiting returns ErrClosed, and every later
// call of Campaign, Resign, Leader and Observe fails with ErrClosed. The
// store stays usable by its other candidates. Close is idempotent (every
// call waits for the goroutines) and always returns nil.
func (m *Memory) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.closing)
		_ = m.resignLocked()
	}
	m.mu.Unlock()
	// No goroutine starts once closed is set: each is registered under mu
	// after checking it.
	m.wg.Wait()
	return nil
}
