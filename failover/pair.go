package failover

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of PairConfig.
const (
	DefaultPairInterval    = 200 * time.Millisecond
	DefaultPairMissedBeats = 3
)

// SignatureHeader carries the HMAC-SHA256 of a heartbeat's body under
// PairConfig.Secret, base64url without padding.
const SignatureHeader = "X-Failover-Signature"

// maxBeatSize bounds a heartbeat body.
const maxBeatSize = 4 << 10

// MinPairSecret is the shortest PairConfig.Secret NewPair accepts.
const MinPairSecret = 16

// maxEpoch is the largest epoch a heartbeat may carry. Epochs grow by one
// per promotion (or are an Arbiter's fencing tokens), so no member comes
// near it; refusing larger ones keeps a promotion's maxEpoch+1 from
// wrapping to 0, which would make the newest active member the oldest.
const maxEpoch = math.MaxInt64

// PairMode says whether the members of a Pair take turns or all serve.
type PairMode int

// Pair modes.
const (
	// ActivePassive: one member is active and serves; the others are
	// passive and watch it. When the active one misses MissedBeats
	// heartbeats, the best passive one promotes itself (OnPromote), e.g.
	// binds the address the active one served on.
	ActivePassive PairMode = iota
	// ActiveActive: every member serves; each learns when another goes
	// down or comes back (OnPeerDown, OnPeerUp), e.g. to take over its
	// share of the traffic.
	ActiveActive
)

func (m PairMode) String() string {
	switch m {
	case ActivePassive:
		return "active-passive"
	case ActiveActive:
		return "active-active"
	}
	return fmt.Sprintf("PairMode(%d)", int(m))
}

// Role is what a member of a Pair does now.
type Role int

// Roles.
const (
	Passive Role = iota
	Active
)

func (r Role) String() string {
	switch r {
	case Passive:
		return "passive"
	case Active:
		return "active"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Peer is another member of a Pair.
type Peer struct {
	// ID is the peer's PairConfig.Self.
	ID string
	// URL is the full URL of the peer's Pair.Handler, e.g.
	// "http://10.0.0.8:8080/failover/heartbeat".
	URL string
}

// PairConfig configures a Pair. Zero values mean the documented defaults;
// NewPair fails with an error wrapping ErrInvalidConfig on invalid values.
//
// Every member must have the same Mode, Interval, MissedBeats, Preempt and
// Secret, and name all the others in Peers.
type PairConfig struct {
	// Self is this member's ID; required, at most 200 bytes.
	Self string
	// Peers are the other members (one for a pair, a few at most: each
	// member sends a heartbeat to each other one every Interval).
	// Required; IDs unique and different from Self; URLs http or https.
	Peers []Peer
	// Mode is ActivePassive (the default) or ActiveActive.
	Mode PairMode
	// Priority ranks members for the active role: when no member is
	// active (at start, or after the active one died), the member with
	// the highest Priority among those alive promotes itself, ties going
	// to the smallest ID. The preferred active member is thus the one with
	// the highest Priority.
	Priority int
	// Interval is how often a heartbeat is sent to each peer; default
	// DefaultPairInterval (200 ms). Each heartbeat times out after
	// Interval.
	Interval time.Duration
	// MissedBeats is how many Intervals without hearing from a peer mark
	// it down; default DefaultPairMissedBeats (3). A passive member
	// promotes itself between (MissedBeats-1)×Interval and
	// MissedBeats×Interval after the active one died.
	MissedBeats int
	// Preempt makes an active member hand the role over, when a member
	// of higher rank (Priority, then ID) is alive and passive: it
	// demotes itself first (OnDemote), then the other one promotes itself,
	// so that both are never active at once. Without it (the default) a
	// former active member that comes back stays passive, so the service
	// does not move twice. The active member's setting decides.
	Preempt bool
	// Arbiter, optional and for ActivePassive only, settles split brain:
	// a member becomes active only once it wins Arbiter.Campaign, and
	// stops being active when its Term ends; it resigns when it demotes.
	// Each member passes its own Elector for the same role (e.g.
	// rediselector, or Memory in one process).
	//
	// Without an Arbiter, a pair cannot tell a dead peer from a cut link:
	// when the network between two members fails while both live, each
	// sees the other miss its heartbeats and both are active (split brain)
	// until the link comes back; then the one with the older epoch
	// demotes itself. Only a third party that both members must reach,
	// such as an Arbiter, prevents that. With an Arbiter, failover takes
	// at least as long as the dead member's lease.
	Arbiter Elector
	// Secret authenticates heartbeats and their answers with HMAC-SHA256
	// (compared in constant time), so that nobody without it can promote
	// or demote a member by sending forged heartbeats. Required, at least
	// MinPairSecret (16) bytes, drawn from crypto/rand; all members share
	// it. See Handler for replays.
	Secret []byte
	// InsecureNoSecret lets a Pair run without Secret, for tests only:
	// then anyone who can reach Handler can promote and demote members at
	// will (a few seconds of forged heartbeats flap the role hundreds of
	// times) and replay old heartbeats.
	InsecureNoSecret bool
	// HTTPClient sends heartbeats; default a client of its own, whose idle
	// connections Run closes when it returns.
	HTTPClient *http.Client
	// Logger logs role changes at Info and rejected heartbeats at Warn;
	// nil means slog.Default().
	Logger *slog.Logger

	// OnPromote is called when this member becomes active (ActivePassive);
	// ctx ends when it stops being active. It runs on Run's goroutine:
	// heartbeats go on being sent and answered meanwhile, but the next
	// role decision waits for it, so it should return promptly.
	OnPromote func(ctx context.Context)
	// OnDemote is called when this member stops being active
	// (ActivePassive), including when Run returns while it is active.
	// Peers see it as active until OnDemote returns, so a preempting
	// member promotes itself only after it, e.g. once the address is
	// free.
	OnDemote func(ctx context.Context)
	// OnPeerDown is called when a peer that was up misses MissedBeats
	// heartbeats, OnPeerUp when a peer is heard from after it was down or
	// for the first time. Peers start down without a call.
	OnPeerDown func(peerID string)
	OnPeerUp   func(peerID string)
}

// A Pair is one member of a group of servers (usually two) that check
// each other with heartbeats over HTTP, so that when one dies another
// takes over: active-passive, where a passive member promotes itself and
// takes over the active one's work (e.g. its address), or active-active,
// where all serve and each learns when another goes down.
//
// Mount Handler on each member's server at the URL the peers know it by,
// and call Run. A heartbeat goes both ways: the sender tells its role,
// epoch and priority, and the answer tells the receiver's, so one
// exchange per Interval in either direction keeps a peer up.
//
// In ActivePassive mode, each promotion gets a larger epoch (the Arbiter's
// fencing token when there is one). Should two members be active at once
// (after a cut link heals), the one with the smaller epoch (then lower
// rank) demotes itself as soon as it hears of the other.
type Pair struct {
	cfg    PairConfig
	client *http.Client
	own    bool // cfg.HTTPClient was nil
	log    *slog.Logger
	limit  time.Duration // MissedBeats × Interval

	running atomic.Bool
	kick    chan struct{} // wakes Run's loop; buffered 1

	mu        sync.Mutex
	role      Role   // what Role reports
	adv       Role   // what heartbeats tell: stays Active until OnDemote returns
	epoch     uint64 // of the current or last activity
	maxEpoch  uint64 // largest epoch seen
	seq       uint64 // last sequence number sent
	boot      string // this Pair's nonce: heartbeats must name it
	peers     map[string]*peerState
	peerOrder []string
}

type peerState struct {
	url      string
	heard    time.Time // last time heard from; zero: never
	up       bool      // as last reported by a hook
	role     Role
	epoch    uint64
	priority int
	lastSeq  uint64 // largest sequence number accepted from it
	boot     string // its nonce, as last learned: our heartbeats name it
	id       string
	wakeSend chan struct{}
}

// beat is a heartbeat or its answer.
type beat struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Mode     string `json:"mode"`
	Role     string `json:"role"`
	Epoch    uint64 `json:"epoch"`
	Priority int    `json:"priority"`
	// Seq grows with each heartbeat a member sends (it starts from the
	// wall clock in nanoseconds, so it still grows after a restart); an
	// answer echoes the heartbeat's.
	Seq uint64 `json:"seq"`
	// Boot is the sender's nonce, new with each Pair (each start of a
	// process); PeerBoot the receiver's, as the sender last learned it. A
	// member accepts only heartbeats that name its own Boot, so those
	// captured before it restarted are refused.
	Boot     string `json:"boot"`
	PeerBoot string `json:"peerBoot,omitempty"`
}

// NewPair validates cfg and returns a Pair that is passive until Run
// decides otherwise (active at once in ActiveActive mode).
func NewPair(cfg PairConfig) (*Pair, error) {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultPairInterval
	}
	if cfg.MissedBeats == 0 {
		cfg.MissedBeats = DefaultPairMissedBeats
	}
	switch {
	case cfg.Self == "":
		return nil, fmt.Errorf("%w: Self is empty", ErrInvalidConfig)
	case len(cfg.Self) > 200:
		return nil, fmt.Errorf("%w: Self longer than 200 bytes", ErrInvalidConfig)
	case len(cfg.Peers) == 0:
		return nil, fmt.Errorf("%w: no Peers", ErrInvalidConfig)
	case cfg.Mode != ActivePassive && cfg.Mode != ActiveActive:
		return nil, fmt.Errorf("%w: unknown Mode %d", ErrInvalidConfig, int(cfg.Mode))
	case cfg.Interval < 0:
		return nil, fmt.Errorf("%w: negative Interval", ErrInvalidConfig)
	case cfg.MissedBeats < 0:
		return nil, fmt.Errorf("%w: negative MissedBeats", ErrInvalidConfig)
	case cfg.Mode == ActiveActive && cfg.Arbiter != nil:
		return nil, fmt.Errorf("%w: an Arbiter is for ActivePassive only", ErrInvalidConfig)
	case len(cfg.Secret) == 0 && !cfg.InsecureNoSecret:
		return nil, fmt.Errorf("%w: no Secret: anyone who reaches the heartbeat handler could promote and demote members", ErrInvalidConfig)
	case len(cfg.Secret) > 0 && len(cfg.Secret) < MinPairSecret:
		return nil, fmt.Errorf("%w: Secret has %d bytes, fewer than %d", ErrInvalidConfig, len(cfg.Secret), MinPairSecret)
	}
	p := &Pair{
		cfg:   cfg,
		log:   cfg.Logger,
		limit: time.Duration(cfg.MissedBeats) * cfg.Interval,
		kick:  make(chan struct{}, 1),
		boot:  rand.Text(),
		peers: make(map[string]*peerState, len(cfg.Peers)),
	}
	for _, pe := range cfg.Peers {
		switch {
		case pe.ID == "":
			return nil, fmt.Errorf("%w: a peer has an empty ID", ErrInvalidConfig)
		case pe.ID == cfg.Self:
			return nil, fmt.Errorf("%w: peer %q is Self", ErrInvalidConfig, pe.ID)
		case p.peers[pe.ID] != nil:
			return nil, fmt.Errorf("%w: duplicate peer %q", ErrInvalidConfig, pe.ID)
		}
		u, err := url.Parse(pe.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: peer %q: URL %q is not an http or https URL", ErrInvalidConfig, pe.ID, pe.URL)
		}
		p.peers[pe.ID] = &peerState{id: pe.ID, url: pe.URL, wakeSend: make(chan struct{}, 1)}
		p.peerOrder = append(p.peerOrder, pe.ID)
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("pair", cfg.Self)
	p.client = cfg.HTTPClient
	if p.client == nil {
		p.own = true
		p.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if cfg.Mode == ActiveActive {
		p.role, p.adv = Active, Active
	}
	return p, nil
}

// Role reports whether this member is active now. In ActiveActive mode it
// is always Active.
func (p *Pair) Role() Role {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.role
}

// Epoch reports the epoch of this member's current or last activity.
func (p *Pair) Epoch() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch
}

// PeerUp reports whether the peer was heard from within MissedBeats
// Intervals.
func (p *Pair) PeerUp(peerID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.peers[peerID]
	return ps != nil && ps.alive(time.Now(), p.limit)
}

func (ps *peerState) alive(now time.Time, limit time.Duration) bool {
	return !ps.heard.IsZero() && now.Sub(ps.heard) < limit
}

// rank orders members for the active role: higher priority, then smaller ID.
func better(prioA int, idA string, prioB int, idB string) bool {
	if prioA != prioB {
		return prioA > prioB
	}
	return idA < idB
}

func (p *Pair) sign(body []byte) string {
	m := hmac.New(sha256.New, p.cfg.Secret)
	m.Write(body)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Pair) verify(body []byte, sig string) bool {
	if len(p.cfg.Secret) == 0 {
		return true
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, p.cfg.Secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// stateLocked is this member's heartbeat to peer `to`.
func (p *Pair) stateLocked(to string, seq uint64) beat {
	return beat{From: p.cfg.Self, To: to, Mode: p.cfg.Mode.String(), Role: p.adv.String(),
		Epoch: p.epoch, Priority: p.cfg.Priority, Seq: seq, Boot: p.boot, PeerBoot: p.peers[to].boot}
}

// nextSeqLocked returns a sequence number larger than every earlier one,
// from the wall clock so that it still grows after a restart.
func (p *Pair) nextSeqLocked() uint64 {
	s := uint64(time.Now().UnixNano())
	if s <= p.seq {
		s = p.seq + 1
	}
	p.seq = s
	return s
}

// recordLocked notes what peer ps told, in an authentic and fresh
// heartbeat or answer.
func (p *Pair) recordLocked(ps *peerState, b beat) {
	ps.boot = b.Boot
	if !p.running.Load() {
		return
	}
	ps.heard = time.Now()
	ps.role = Passive
	if b.Role == Active.String() {
		ps.role = Active
	}
	ps.epoch = b.Epoch
	ps.priority = b.Priority
	if b.Epoch > p.maxEpoch {
		p.maxEpoch = b.Epoch
	}
}

func (p *Pair) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Handler answers the peers' heartbeats (POST) with this member's state.
// Mount it at the URL the peers have in their Peer.URL. It rejects a
// heartbeat that is not signed with Secret (401), malformed or with an
// epoch beyond any a member reaches (400), not from a configured peer or
// not for this member (403), or replayed (409).
//
// Replays: a heartbeat must name the receiver's boot nonce (drawn by
// NewPair, so new with each process) and carry a sequence number larger
// than the last one accepted from its sender. A heartbeat captured before
// the receiver restarted names an old nonce and is refused, however old it
// is and whether or not its sender is still alive, and without depending on
// the members' clocks. The refusal (409) carries the receiver's signed
// state and nonce, so a live peer sends again at once: a restart costs one
// round trip, not an Interval.
func (p *Pair) Handler() http.Handler {
	return http.HandlerFunc(p.serveBeat)
}

func (p *Pair) serveBeat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBeatSize+1))
	if err != nil || len(body) > maxBeatSize {
		http.Error(w, "bad heartbeat", http.StatusBadRequest)
		return
	}
	if !p.verify(body, r.Header.Get(SignatureHeader)) {
		p.log.Warn("heartbeat rejected: bad signature", "remote", r.RemoteAddr)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var b beat
	if err := json.Unmarshal(body, &b); err != nil || b.Epoch > maxEpoch {
		p.log.Warn("heartbeat rejected: malformed", "remote", r.RemoteAddr)
		http.Error(w, "bad heartbeat", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	ps := p.peers[b.From]
	if ps == nil || b.To != p.cfg.Self {
		p.mu.Unlock()
		p.log.Warn("heartbeat rejected: unknown peer", "from", b.From, "to", b.To, "remote", r.RemoteAddr)
		http.Error(w, "unknown peer", http.StatusForbidden)
		return
	}
	status := http.StatusOK
	switch {
	case b.PeerBoot != p.boot:
		// Sent before this member started (a peer that has not heard
		// from it yet, or a replay): refused, with the nonce to use.
		status = http.StatusConflict
		p.log.Info("heartbeat refused: it names another start of this member", "from", b.From, "remote", r.RemoteAddr)
	case len(p.cfg.Secret) > 0 && b.Seq <= ps.lastSeq:
		p.mu.Unlock()
		p.log.Warn("heartbeat rejected: replayed", "from", b.From, "remote", r.RemoteAddr)
		http.Error(w, "replayed heartbeat", http.StatusConflict)
		return
	default:
		ps.lastSeq = b.Seq
		p.recordLocked(ps, b)
	}
	answer := p.stateLocked(b.From, b.Seq)
	p.mu.Unlock()
	if status == http.StatusOK {
		p.wake()
	}

	out, _ := json.Marshal(answer)
	w.Header().Set("Content-Type", "application/json")
	if len(p.cfg.Secret) > 0 {
		w.Header().Set(SignatureHeader, p.sign(out))
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// send sends one heartbeat to peer id and records the answer.
func (p *Pair) send(ctx context.Context, id string) {
	p.mu.Lock()
	ps := p.peers[id]
	seq := p.nextSeqLocked()
	b := p.stateLocked(id, seq)
	p.mu.Unlock()
	body, _ := json.Marshal(b)

	ctx, cancel := context.WithTimeout(ctx, p.cfg.Interval)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ps.url, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	if len(p.cfg.Secret) > 0 {
		req.Header.Set(SignatureHeader, p.sign(body))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.log.Debug("heartbeat failed", "peer", id, "err", err)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBeatSize+1))
	if err != nil || len(out) > maxBeatSize {
		return
	}
	// 409 with a signed answer: the peer did not know this member's
	// start yet. Its answer is as fresh (it echoes seq) and authentic as
	// any, and tells the nonce to send again with.
	stale := resp.StatusCode == http.StatusConflict && resp.Header.Get("Content-Type") == "application/json"
	if resp.StatusCode != http.StatusOK && !stale {
		p.log.Warn("heartbeat refused", "peer", id, "status", resp.StatusCode)
		return
	}
	if !p.verify(out, resp.Header.Get(SignatureHeader)) {
		p.log.Warn("heartbeat answer rejected: bad signature", "peer", id)
		return
	}
	var a beat
	if err := json.Unmarshal(out, &a); err != nil || a.From != id || a.To != p.cfg.Self || a.Seq != seq || a.Epoch > maxEpoch {
		p.log.Warn("heartbeat answer rejected: malformed", "peer", id)
		return
	}
	p.mu.Lock()
	p.recordLocked(ps, a)
	p.mu.Unlock()
	p.wake()
	if stale {
		select {
		case ps.wakeSend <- struct{}{}:
		default:
		}
	}
}

// sender sends heartbeats to one peer every Interval, and at once when
// this member's role changes.
func (p *Pair) sender(ctx context.Context, id string, now <-chan struct{}) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		p.send(ctx, id)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-now:
		}
	}
}

func (p *Pair) sendNow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ps := range p.peers {
		select {
		case ps.wakeSend <- struct{}{}:
		default:
		}
	}
}

type campaignResult struct {
	gen  uint64
	term *Term
	err  error
}

// Run sends heartbeats, tracks the peers and changes this member's role,
// calling the hooks, until ctx ends; then, if active, it demotes itself
// (OnDemote, Arbiter.Resign) and returns ctx's error once every goroutine
// it started has ended. A second Run while one runs returns
// ErrAlreadyRunning at once.
func (p *Pair) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer p.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	r := &pairRun{p: p, ctx: ctx, wg: &wg, start: time.Now(), campaigns: make(chan campaignResult, 1)}
	defer func() {
		cancel()
		wg.Wait()
		// A campaign won while Run ended.
		select {
		case res := <-r.campaigns:
			if res.term != nil {
				r.resign()
			}
		default:
		}
		if p.own {
			p.client.CloseIdleConnections()
		}
	}()

	for _, id := range p.peerOrder {
		ch := p.peers[id].wakeSend
		wg.Go(func() { p.sender(ctx, id, ch) })
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	defer r.shutdown()
	for {
		next := r.step()
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.kick:
		case <-timer.C:
		case <-r.termDone():
		case res := <-r.campaigns:
			r.campaigned(res)
		}
	}
}

// pairRun is the state of one Run that only its goroutine touches.
type pairRun struct {
	p     *Pair
	ctx   context.Context
	wg    *sync.WaitGroup
	start time.Time

	term         *Term
	activeCancel context.CancelFunc // ends OnPromote's ctx

	gen       uint64 // of the campaign wanted; a result of another is resigned
	campStop  context.CancelFunc
	campaigns chan campaignResult
}

func (r *pairRun) termDone() <-chan struct{} {
	if r.term == nil {
		return nil
	}
	return r.term.Done()
}

// step applies what is known now, calls the hooks, and returns when to
// look again at the latest.
func (r *pairRun) step() time.Time {
	p := r.p
	now := time.Now()
	next := now.Add(p.cfg.Interval)

	// Peers up and down.
	var ups, downs []string
	allHeard := true
	p.mu.Lock()
	for _, id := range p.peerOrder {
		ps := p.peers[id]
		alive := ps.alive(now, p.limit)
		if ps.heard.IsZero() {
			allHeard = false
		}
		if alive {
			if d := ps.heard.Add(p.limit); d.Before(next) {
				next = d
			}
		}
		if alive != ps.up {
			ps.up = alive
			if alive {
				ups = append(ups, id)
			} else {
				downs = append(downs, id)
			}
		}
	}
	p.mu.Unlock()
	for _, id := range downs {
		p.log.Info("peer down", "peer", id)
		if p.cfg.OnPeerDown != nil {
			p.cfg.OnPeerDown(id)
		}
	}
	for _, id := range ups {
		p.log.Info("peer up", "peer", id)
		if p.cfg.OnPeerUp != nil {
			p.cfg.OnPeerUp(id)
		}
	}
	if p.cfg.Mode == ActiveActive {
		return next
	}

	// Wait to hear from the peers before deciding anything at start.
	if grace := r.start.Add(p.limit); !allHeard && now.Before(grace) {
		if grace.Before(next) {
			next = grace
		}
		return next
	}

	if r.term != nil && r.term.Err() != nil {
		r.term = nil // ended: no Resign
		r.demote("arbiter term ended")
	}

	p.mu.Lock()
	role, epoch := p.role, p.epoch
	activePeer, demote, best := false, false, true
	for _, ps := range p.peers {
		if !ps.alive(now, p.limit) {
			continue
		}
		id := ps.id
		if ps.role == Active {
			activePeer = true
			if role == Active && (ps.epoch > epoch || ps.epoch == epoch && better(ps.priority, id, p.cfg.Priority, p.cfg.Self)) {
				demote = true
			}
		}
		if better(ps.priority, id, p.cfg.Priority, p.cfg.Self) {
			best = false
			if role == Active && ps.role == Passive && p.cfg.Preempt {
				demote = true
			}
		}
	}
	p.mu.Unlock()

	switch {
	case role == Active && demote:
		r.demote("a peer takes precedence")
	case role == Passive && !activePeer && best:
		r.promote()
	case role == Passive:
		r.stopCampaign()
	}
	return next
}

// promote makes this member active, or starts campaigning for it.
func (r *pairRun) promote() {
	p := r.p
	if p.cfg.Arbiter == nil {
		p.mu.Lock()
		if p.maxEpoch >= maxEpoch {
			p.mu.Unlock()
			p.log.Error("cannot promote: epochs exhausted", "epoch", p.maxEpoch)
			return
		}
		p.maxEpoch++
		epoch := p.maxEpoch
		p.mu.Unlock()
		r.becomeActive(epoch)
		return
	}
	if r.campStop != nil {
		return // campaigning
	}
	r.gen++
	gen := r.gen
	cctx, stop := context.WithCancel(r.ctx)
	r.campStop = stop
	r.wg.Go(func() {
		term, err := p.cfg.Arbiter.Campaign(cctx)
		select {
		case r.campaigns <- campaignResult{gen, term, err}:
		case <-r.ctx.Done():
			if term != nil {
				r.resign()
			}
		}
	})
}

func (r *pairRun) stopCampaign() {
	if r.campStop != nil {
		r.campStop()
		r.campStop = nil
		r.gen++
	}
}

func (r *pairRun) campaigned(res campaignResult) {
	if res.gen != r.gen || r.p.Role() == Active {
		if res.term != nil {
			r.resign()
		}
		return
	}
	r.campStop()
	r.campStop = nil
	r.gen++
	if res.err != nil {
		r.p.log.Warn("campaign failed", "err", res.err)
		return
	}
	select {
	case <-res.term.Done():
		return
	default:
	}
	r.term = res.term
	r.p.mu.Lock()
	if res.term.Token > r.p.maxEpoch {
		r.p.maxEpoch = res.term.Token
	}
	r.p.mu.Unlock()
	r.becomeActive(res.term.Token)
}

func (r *pairRun) becomeActive(epoch uint64) {
	p := r.p
	p.mu.Lock()
	p.role, p.adv, p.epoch = Active, Active, epoch
	p.mu.Unlock()
	p.log.Info("promoted", "epoch", epoch)
	p.sendNow()
	actx, cancel := context.WithCancel(r.ctx)
	r.activeCancel = cancel
	if p.cfg.OnPromote != nil {
		p.cfg.OnPromote(actx)
	}
}

// demote makes this member passive: OnDemote first, then the heartbeats
// tell the peers.
func (r *pairRun) demote(why string) {
	p := r.p
	p.mu.Lock()
	if p.role != Active {
		p.mu.Unlock()
		return
	}
	p.role = Passive
	p.mu.Unlock()
	p.log.Info("demoted", "why", why)
	if r.activeCancel != nil {
		r.activeCancel()
		r.activeCancel = nil
	}
	if p.cfg.OnDemote != nil {
		p.cfg.OnDemote(context.WithoutCancel(r.ctx))
	}
	if r.term != nil {
		r.term = nil
		r.resign()
	}
	p.mu.Lock()
	p.adv = Passive
	p.mu.Unlock()
	p.sendNow()
}

func (r *pairRun) resign() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), r.p.cfg.Interval)
	defer cancel()
	if err := r.p.cfg.Arbiter.Resign(ctx); err != nil {
		r.p.log.Warn("resign failed", "err", err)
	}
}

// shutdown ends Run's activity.
func (r *pairRun) shutdown() {
	r.stopCampaign()
	if r.p.cfg.Mode == ActivePassive {
		r.demote("run ends")
	}
	// Forget the peers: a later Run starts afresh.
	p := r.p
	p.mu.Lock()
	for _, ps := range p.peers {
		ps.heard, ps.up = time.Time{}, false
	}
	p.mu.Unlock()
}
