package grpcbalance

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"
)

// LoadTrailer is the trailer in which LoadReporter reports a server's
// load, "inflight=N" as balance.LoadHeader says it over HTTP: the
// number of RPCs the server is still serving as it ends this one.
const LoadTrailer = "x-load"

// DefaultLoadMaxAge is how long a LoadTable trusts a server's last
// report when NewLoadTable is given no other age.
const DefaultLoadMaxAge = time.Second

// A LoadTable holds the last load each server reported in a response
// trailer (see LoadReporter), by address, for a balancer to read on every
// pick: balance.P2CConfig.Reports takes the table, and
// balance.LeastLoadedConfig.Load its Load method. A policy whose
// Config.Loads is the table fills it from the trailers of its RPCs.
//
// A report counts for MaxAge after it arrived and then reads 0, so that
// the balancer falls back on its own in-flight count: otherwise a server
// that reported a burst and was avoided for it would keep its stale high
// load for ever, since only RPCs to it bring new reports. A LoadTable is
// safe for concurrent use; Load takes no lock and does not allocate.
type LoadTable struct {
	maxAge int64 // nanoseconds

	entries sync.Map // address → *loadEntry
	size    atomic.Int64
	pruned  atomic.Int64 // size after the last prune
	pruning sync.Mutex
}

type loadEntry struct {
	load atomic.Uint64 // float64 bits
	at   atomic.Int64  // nanotime of the report
}

// NewLoadTable returns an empty table whose reports count for maxAge;
// zero or less means DefaultLoadMaxAge.
func NewLoadTable(maxAge time.Duration) *LoadTable {
	if maxAge <= 0 {
		maxAge = DefaultLoadMaxAge
	}
	return &LoadTable{maxAge: int64(maxAge)}
}

// Load returns the load the server at addr last reported, or 0 when it
// has reported nothing within MaxAge.
func (t *LoadTable) Load(addr string) float64 {
	v, ok := t.entries.Load(addr)
	if !ok {
		return 0
	}
	e := v.(*loadEntry)
	if nanotime()-e.at.Load() > t.maxAge {
		return 0
	}
	return math.Float64frombits(e.load.Load())
}

// Record reads the load report in trailer, if any, as the load of the
// server at addr. A malformed or negative report is ignored.
func (t *LoadTable) Record(addr string, trailer metadata.MD) {
	vals := trailer.Get(LoadTrailer)
	if len(vals) == 0 {
		return
	}
	n, ok := parseLoad(vals[0])
	if !ok {
		return
	}
	now := nanotime()
	if v, ok := t.entries.Load(addr); ok {
		v.(*loadEntry).store(n, now)
		return
	}
	// A new address: its entry is filled before it is published, so that
	// a prune running meanwhile does not take it for a stale one.
	e := new(loadEntry)
	e.store(n, now)
	if v, loaded := t.entries.LoadOrStore(addr, e); loaded {
		v.(*loadEntry).store(n, now)
		return
	}
	t.added()
}

func (e *loadEntry) store(load float64, now int64) {
	e.load.Store(math.Float64bits(load))
	e.at.Store(now)
}

// added counts a new address and, once the table has doubled since it was
// last pruned, forgets the addresses whose report is stale: servers come
// and go (a DNS name's clones are replaced), and the table must not grow
// with every address it ever saw.
func (t *LoadTable) added() {
	n := t.size.Add(1)
	if n < 2*t.pruned.Load()+64 || !t.pruning.TryLock() {
		return
	}
	defer t.pruning.Unlock()
	now := nanotime()
	t.entries.Range(func(k, v any) bool {
		if now-v.(*loadEntry).at.Load() > t.maxAge && t.entries.CompareAndDelete(k, v) {
			t.size.Add(-1)
		}
		return true
	})
	t.pruned.Store(t.size.Load())
}

// parseLoad reads "inflight=N".
func parseLoad(v string) (float64, bool) {
	s, ok := strings.CutPrefix(v, "inflight=")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return float64(n), true
}

var processStart = time.Now()

// nanotime is monotonic nanoseconds since the process started.
func nanotime() int64 { return int64(time.Since(processStart)) }
