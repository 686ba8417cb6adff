package balance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of P2CConfig.
const (
	// DefaultP2CDecay is the time constant of P2C's latency average when
	// P2CConfig.Decay is zero: go-zero's p2c uses the same 10 s, long
	// enough that one slow request does not condemn a backend, short
	// enough that a backend slow a minute ago is judged by now.
	DefaultP2CDecay = 10 * time.Second
	// DefaultP2CForcePickAfter is how long a backend may go unpicked before
	// P2C sends it a request anyway, when P2CConfig.ForcePickAfter is zero
	// (go-zero's forcePick).
	DefaultP2CForcePickAfter = time.Second
	// DefaultP2CMinLatency is the floor of the latency P2C compares, when
	// P2CConfig.MinLatency is zero.
	DefaultP2CMinLatency = time.Millisecond
)

// P2CConfig configures NewP2C. The zero value is the default.
type P2CConfig struct {
	// Decay is the time constant of each backend's moving average of
	// latency: a sample taken Δt after the backend's previous one gets
	// weight 1−exp(−Δt/Decay), so the average follows a change in about
	// Decay whatever the request rate. 0 means DefaultP2CDecay; negative
	// is invalid.
	Decay time.Duration
	// ForcePickAfter is how long a backend may go unpicked before the next
	// pick that draws it is given to it even though it costs more. Without
	// it a backend that was slow once would keep its bad average for ever,
	// since only requests update the average; with it a penalised backend
	// is re-tested about once per ForcePickAfter and recovers when it is
	// fast again. 0 means DefaultP2CForcePickAfter; negative is invalid.
	ForcePickAfter time.Duration
	// MinLatency is the floor of the latency P2C compares: a backend whose
	// average is lower counts as MinLatency. Below about a millisecond a
	// request's measured time is dominated by scheduling and timer noise
	// rather than by the backend's speed, and since the average gives a
	// sample taken moments after the previous one almost no weight, one
	// early noisy sample would otherwise rank a backend for a long time;
	// with the floor, backends that are all faster than it are balanced
	// on in-flight counts alone (which still reflect speed: a slower
	// backend holds its requests longer). 0 means DefaultP2CMinLatency;
	// negative is invalid; set 1ns to compare raw averages.
	MinLatency time.Duration
	// Reports, when set, tells a backend's load as the backend itself sees
	// it, in requests in flight: *LoadProber polls it, and
	// balance/grpcbalance reads it from gRPC response trailers; Addr
	// identifies the backend. The cost then counts max(own in-flight,
	// Reports.Load(addr)) requests in flight instead of the own count
	// alone, as LeastLoadedConfig.Load does and for the same reasons: the
	// backend's count includes this balancer's requests, and between two
	// reports the own count still rises with every pick. Other clients'
	// requests thus weigh on the choice, which the own count cannot see.
	// Load is called twice per pick, concurrently: it must be cheap and
	// safe for concurrent use. A negative or NaN result counts as 0. (An
	// interface rather than a func, unlike LeastLoadedConfig.Load, so that
	// P2CConfig stays comparable.)
	Reports interface{ Load(addr string) float64 }
}

// P2C is the power of two choices (Mitzenmacher) on latency and load:
// each pick draws two distinct backends at random and takes the cheaper,
// where
//
//	cost = (in-flight + 1) × max(EWMA latency, MinLatency) × (1 + consecutive failures) / weight
//
// In-flight counts come from Choice.Done (raised to what the backend
// reports, with P2CConfig.Reports), and so do the latency average
// (see P2CConfig.Decay) and the run of failures. Comparing two random
// backends instead of scanning all of them costs O(1) per pick at any size
// and, unlike "always the least loaded", does not send a burst of
// simultaneous picks to the same backend (herding), while still cutting
// the worst backend's share exponentially (Mitzenmacher: the maximum load
// falls from log n/log log n to log log n). A backend ten times slower
// than the rest gets almost no traffic: it wins a draw only against a
// backend with ten times its in-flight count.
//
// Latency only becomes known through requests, so two rules keep P2C from
// starving a backend on stale information:
//
//   - A backend whose latency is not known yet (new, or with fewer than
//     eight requests finished: see warmupSamples) is costed with the other
//     candidate's latency, so the draw falls to in-flight counts and new
//     backends get traffic at once; when neither is known both count as
//     MinLatency. Its latency is then the fastest of those first samples,
//     so that one slow early request (a cold connection, a caller
//     descheduled on a busy machine) does not rank it for long.
//   - A backend that has not been picked for P2CConfig.ForcePickAfter is
//     given the next request for which it is drawn, even if it costs more,
//     so its average can recover (go-zero's forcePick). This costs at most
//     one request per backend per ForcePickAfter.
//
// The failure factor keeps a backend that fails fast (and so looks fast)
// from attracting traffic; one success resets it.
//
// Latency is measured on one pick in eight (see p2cSampleEvery), on every
// forced re-test and on every pick of a backend whose latency is still
// unknown; other picks only count in flight. A pick reads two backends'
// counters; it takes no lock and does not allocate. Update costs O(n). P2C is safe for concurrent use.
type P2C struct {
	reports    interface{ Load(addr string) float64 }
	forceAfter int64   // nanoseconds
	minLatency float64 // nanoseconds
	touchEvery int64   // the resolution of lastPick, to spare writes

	mu    sync.Mutex // serialises Update
	reg   registry
	picks map[string]*atomic.Int64 // last pick time per Addr, across updates

	set atomic.Pointer[p2cSet]
}

var _ Pinner = (*P2C)(nil)

// p2cSet is one immutable backend set of a P2C.
type p2cSet struct{ peers []p2cPeer }

type p2cPeer struct {
	ep *endpoint
	// st is ep.stats, which a pick reads without reaching ep: over
	// thousands of backends each pointer followed is a likely cache miss.
	st *stats
	// lastPick is the monotonic time of the backend's last pick, to the
	// resolution touchEvery; shared across updates by Addr.
	lastPick  *atomic.Int64
	invWeight float64 // 1/weight, to spare a division per pick
}

// NewP2C returns a P2C with no backends. It fails with ErrInvalidConfig
// for a negative Decay or ForcePickAfter.
func NewP2C(cfg P2CConfig) (*P2C, error) {
	switch {
	case cfg.Decay < 0:
		return nil, fmt.Errorf("%w: P2C Decay %v is negative", ErrInvalidConfig, cfg.Decay)
	case cfg.ForcePickAfter < 0:
		return nil, fmt.Errorf("%w: P2C ForcePickAfter %v is negative", ErrInvalidConfig, cfg.ForcePickAfter)
	case cfg.MinLatency < 0:
		return nil, fmt.Errorf("%w: P2C MinLatency %v is negative", ErrInvalidConfig, cfg.MinLatency)
	}
	if cfg.MinLatency == 0 {
		cfg.MinLatency = DefaultP2CMinLatency
	}
	if cfg.Decay == 0 {
		cfg.Decay = DefaultP2CDecay
	}
	if cfg.ForcePickAfter == 0 {
		cfg.ForcePickAfter = DefaultP2CForcePickAfter
	}
	p := &P2C{
		reports:    cfg.Reports,
		forceAfter: int64(cfg.ForcePickAfter),
		minLatency: float64(cfg.MinLatency),
		touchEvery: int64(cfg.ForcePickAfter / 8),
		reg:        registry{track: track{inflightOn: true, latencyOn: true, failuresOn: true, decay: cfg.Decay}},
		picks:      map[string]*atomic.Int64{},
	}
	p.set.Store(&p2cSet{})
	return p, nil
}

// Update replaces the backend set; see Balancer. A backend keeps its
// statistics, and the time of its last pick, while its Addr stays in the
// set. A backend new to the set counts as picked now, so it is not forced
// at once: the unknown-latency rule already gives it traffic.
func (p *P2C) Update(backends []Backend) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	eps, err := p.reg.endpoints(backends)
	if err != nil {
		return err
	}
	now := nanotime()
	picks := make(map[string]*atomic.Int64, len(eps))
	peers := make([]p2cPeer, len(eps))
	for i, e := range eps {
		lp := p.picks[e.Addr]
		if lp == nil {
			lp = new(atomic.Int64)
			lp.Store(now)
		}
		picks[e.Addr] = lp
		peers[i] = p2cPeer{ep: e, st: e.stats, lastPick: lp, invWeight: 1 / float64(e.weight())}
	}
	p.picks = picks
	p.set.Store(&p2cSet{peers: peers})
	return nil
}

// Pick chooses the cheaper of two random backends; key is ignored. See
// Balancer.
func (p *P2C) Pick(ctx context.Context, _ string) (c Choice, err error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	peers := p.set.Load().peers
	switch len(peers) {
	case 0:
		return Choice{}, ErrNoBackend
	case 1:
		peers[0].ep.begin(&c, true)
		return c, nil
	}
	r := rand.Uint64()
	i, j := pairOf(r, len(peers))
	a, b := &peers[i], &peers[j]
	if p.cheaper(b, a) {
		a, b = b, a
	}
	// a is the cheaper. Most picks end here, untimed: r's low bits, which
	// pairOf barely uses, draw the one pick in p2cSampleEvery that is timed.
	if r&(p2cSampleEvery-1) != 0 && a.st.warm() {
		a.ep.begin(&c, false)
		return c, nil
	}
	// A timed pick: its clock reading also tells whether b has waited too
	// long.
	now := nanotime()
	if last := b.lastPick.Load(); now-last > p.forceAfter && b.lastPick.CompareAndSwap(last, now) {
		a = b // a forced re-test of b; only one concurrent pick wins the CAS
	} else {
		p.touch(a, now)
	}
	a.ep.begin(&c, false)
	c.start, c.timed = now, true
	return c, nil
}

// p2cSampleEvery is the share of P2C's picks that are timed: one in 8. A
// timed pick reads the clock twice and folds a sample into the average,
// which costs more than the rest of a pick and Done together; the average
// weighs each sample by the time since the previous one, so it follows the
// same curve from fewer samples. Picks of a backend whose latency is not
// known yet, and forced re-tests, are always timed.
const p2cSampleEvery = 8

// touch records a pick of peer at now, writing only when the recorded time
// is older than touchEvery, so that concurrent picks of one backend do not
// all write the same cache line.
func (p *P2C) touch(peer *p2cPeer, now int64) {
	if now-peer.lastPick.Load() > p.touchEvery {
		peer.lastPick.Store(now)
	}
}

// cheaper reports whether x costs less than y, as P2C defines cost. A
// backend whose latency is not known yet (still warming up) is costed
// with its rival's; when neither is known, both count as MinLatency.
func (p *P2C) cheaper(x, y *p2cPeer) bool {
	lx, ly := x.st.latency(), y.st.latency()
	switch wx, wy := x.st.warm(), y.st.warm(); {
	case !wx && !wy:
		lx, ly = 0, 0
	case !wx:
		lx = ly
	case !wy:
		ly = lx
	}
	lx, ly = max(lx, p.minLatency), max(ly, p.minLatency)
	cx := (p.inflight(x) + 1) * lx * float64(1+x.st.failures.Load()) * x.invWeight
	cy := (p.inflight(y) + 1) * ly * float64(1+y.st.failures.Load()) * y.invWeight
	return cx < cy
}

// inflight is the backend's requests in flight as the cost counts them:
// the own count, raised to what P2CConfig.Reports says.
func (p *P2C) inflight(peer *p2cPeer) float64 {
	l := float64(peer.st.inflight.Load())
	if p.reports != nil {
		if r := p.reports.Load(peer.ep.Addr); r > l { // false for NaN
			l = r
		}
	}
	return l
}

// randomPair returns two distinct indices drawn uniformly from [0, n),
// 2 <= n < 1<<32.
func randomPair(n int) (i, j int) { return pairOf(rand.Uint64(), n) }

// pairOf derives randomPair's two indices from the random r: the high bits
// of each 32-bit half times n (Lemire's multiply-shift), so the lowest bits
// of r stay free for other draws.
func pairOf(r uint64, n int) (i, j int) {
	i = int(uint64(uint32(r)) * uint64(n) >> 32)
	j = int((r >> 32) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	return i, j
}

// PickAddr returns a Choice for the backend at addr; see Pinner.
func (p *P2C) PickAddr(ctx context.Context, addr string) (Choice, error) {
	return p.reg.pickAddr(ctx, addr)
}
