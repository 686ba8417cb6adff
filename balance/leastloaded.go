package balance

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// LeastLoadedConfig configures NewLeastLoaded. The zero value is the
// default: load is the number of this balancer's requests in flight.
type LeastLoadedConfig struct {
	// Load, when set, reports a backend's load as the backend itself sees
	// it, in requests in flight, for example as polled from the load
	// report the backend publishes; Addr identifies the backend. The
	// balancer then uses max(own in-flight, Load(addr)) as the backend's
	// load. The backend's own count includes the requests this balancer
	// sent it, so taking the larger never counts them twice; and between
	// two reports the local count still rises with every pick, so a burst
	// does not all go to the backend that reported least.
	//
	// A gauge in other units (CPU, queue length) should be scaled to
	// request equivalents. Load is called once per backend on every pick,
	// concurrently: it must be safe for concurrent use and cheap (an
	// atomic read of the latest report, not a network call). A negative or
	// NaN result counts as 0.
	Load func(addr string) float64
}

// LeastLoaded sends each request to the backend with the fewest requests
// in flight relative to its weight (in-flight / Weight), counting the
// requests this balancer picked and whose Choice is not Done yet, or the
// load the backend reports (LeastLoadedConfig.Load). It suits requests of
// very uneven cost, where round robin piles long requests on one backend:
// nginx's least_conn, HAProxy's leastconn.
//
// Ties, which are the rule when load is light (every backend at 0), are
// spread over the tied backends, not given to the first in the list:
// below 64 backends the scan starts at a random backend and takes the
// first minimum it meets, and from 64 on they are taken in turn (see
// below). Always taking the first is the unevenness HAProxy users report with
// leastconn (haproxy#1099), where the first server gets most of the light
// traffic.
//
// Up to 63 backends a pick scans them, stopping at the first idle one:
// with light load that is one or two atomic reads, under full load about a
// nanosecond per backend, and it takes no lock, so concurrent picks do not
// wait for each other. From 64 backends on, LeastLoaded keeps them in
// buckets by requests in flight (a bucket queue, updated in O(1) by every
// pick and Done under a mutex), and a pick takes the next backend in turn
// of the lowest bucket: its cost does not grow with the number of backends
// (with weights, it grows with the number of distinct weights). Ties then
// go round robin among the tied backends, as HAProxy's and nginx's do. With
// LeastLoadedConfig.Load, which can change without telling the balancer,
// every pick scans all backends: O(n). A pick does not allocate.
// LeastLoaded is safe for concurrent use.
type LeastLoaded struct {
	load func(addr string) float64

	mu  sync.Mutex // serialises Update
	reg registry
	ix  *llIndex // nil with LeastLoadedConfig.Load
	// indexMin is llIndexMin; tests lower it to run the conformance kit,
	// whose sets are small, on the index.
	indexMin int

	set atomic.Pointer[llSet]
}

// llSet is one immutable backend set of a LeastLoaded: the endpoints, and
// beside them what the scan reads, packed so that it reads one array.
type llSet struct {
	eps     []*endpoint
	loads   []llLoad
	indexed bool // picks take the index (LeastLoaded.ix), not a scan
}

type llLoad struct {
	inflight *atomic.Int64
	weight   int64
}

var _ Pinner = (*LeastLoaded)(nil)

// NewLeastLoaded returns a LeastLoaded with no backends.
func NewLeastLoaded(cfg LeastLoadedConfig) *LeastLoaded {
	l := &LeastLoaded{load: cfg.Load, reg: registry{track: track{inflightOn: true}}, indexMin: llIndexMin}
	if cfg.Load == nil {
		l.ix = new(llIndex)
		l.reg.track.ll = l.ix
	}
	l.set.Store(&llSet{})
	return l
}

// Update replaces the backend set; see Balancer. In-flight counts follow
// a backend's Addr across updates.
func (l *LeastLoaded) Update(backends []Backend) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	eps, err := l.reg.endpoints(backends)
	if err != nil {
		return err
	}
	next := &llSet{eps: eps, indexed: l.ix != nil && len(eps) >= l.indexMin}
	if next.indexed {
		l.ix.rebuild(eps)
	} else {
		next.loads = make([]llLoad, len(eps))
		for i, e := range eps {
			next.loads[i] = llLoad{inflight: &e.inflight, weight: int64(e.weight())}
		}
		if l.ix != nil {
			l.ix.rebuild(nil)
		}
	}
	l.set.Store(next)
	return nil
}

// Pick chooses the least loaded backend; key is ignored. See Balancer.
func (l *LeastLoaded) Pick(ctx context.Context, _ string) (c Choice, err error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	s := l.set.Load()
	eps := s.eps
	n := len(eps)
	switch n {
	case 0:
		return Choice{}, ErrNoBackend
	case 1:
		eps[0].begin(&c, false)
		return c, nil
	}
	if s.indexed {
		// nil only if an Update to fewer backends cleared the index
		// since s was loaded: then scan the current set.
		if e := l.ix.pick(); e != nil {
			c.ep = e
			return c, nil
		}
		return l.Pick(ctx, "")
	}
	start := int(uint64(rand.Uint32()) * uint64(n) >> 32)
	var best int
	if l.load == nil {
		best = leastInflight(s.loads, start)
	} else {
		best = leastReported(eps, start, l.load)
	}
	eps[best].begin(&c, false)
	return c, nil
}

// leastInflight returns the index of the backend of least in-flight/weight,
// scanning cyclically from start; the first minimum wins. Loads are
// compared as a/wa < b/wb ⇔ a·wb < b·wa, without division.
func leastInflight(loads []llLoad, start int) int {
	best := start
	bl, bw := loads[start].inflight.Load(), loads[start].weight
	// An idle backend cannot be beaten: stop at the first one. Besides
	// saving the rest of the scan, this spares reading counters that other
	// cores are writing, which under concurrent picks costs more than the
	// scan itself.
	for k := 1; k < len(loads) && bl != 0; k++ {
		i := start + k
		if i >= len(loads) {
			i -= len(loads)
		}
		il, iw := loads[i].inflight.Load(), loads[i].weight
		if il*bw < bl*iw {
			best, bl, bw = i, il, iw
		}
	}
	return best
}

// leastReported is leastInflight with each backend's load raised to what
// load reports for it.
func leastReported(eps []*endpoint, start int, load func(string) float64) int {
	cost := func(e *endpoint) float64 {
		l := float64(e.inflight.Load())
		if r := load(e.Addr); r > l { // false for NaN
			l = r
		}
		return l / float64(e.weight())
	}
	best, bc := start, cost(eps[start])
	for k := 1; k < len(eps); k++ {
		i := start + k
		if i >= len(eps) {
			i -= len(eps)
		}
		if c := cost(eps[i]); c < bc {
			best, bc = i, c
		}
	}
	return best
}

// PickAddr returns a Choice for the backend at addr; see Pinner.
func (l *LeastLoaded) PickAddr(ctx context.Context, addr string) (Choice, error) {
	return l.reg.pickAddr(ctx, addr)
}
