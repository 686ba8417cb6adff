package balance

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/scaleout/scaleout/shard"
)

// DefaultHashLoadFactor is ConsistentHash's load bound c when
// ConsistentHashConfig.LoadFactor is zero: no backend takes a request while
// it has 1.25 times its fair share of the requests in flight (HAProxy's
// hash-balance-factor 125, Envoy's hash_balance_factor, and the ε = 0.25
// of Mirrokni et al.).
const DefaultHashLoadFactor = 1.25

// ConsistentHashConfig configures NewConsistentHash. The zero value is the
// default.
type ConsistentHashConfig struct {
	// LoadFactor is c ≥ 1 in the bound on requests in flight: a backend of
	// weight w takes a request only while its in-flight count is below
	// ceil(c · (total in flight + 1) · w / W), W the total weight. 0 means
	// DefaultHashLoadFactor; NaN, infinite or below 1 is invalid. A lower
	// factor spreads load more evenly and moves more keys off their home
	// backend under load; a higher one keeps more affinity.
	LoadFactor float64
	// Partitions is the number of partitions of the key space that the
	// home table (a shard.Bounded) assigns to backends: 0 means
	// shard.DefaultPartitions (4096). It is an upper bound on the number of
	// backends. Keep it fixed for the life of the balancer's users:
	// another count moves nearly every key.
	Partitions int
}

// ConsistentHash sends every request with the same key to the same
// backend, its home, for cache and session affinity, as long as the home
// is not overloaded; keys keep their home when other backends come and go.
// This is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam, 2016), the scheme of HAProxy's hash-balance-factor and
// Envoy's ring hash with hash_balance_factor: plain consistent hashing
// sends a hot key's whole traffic, or an unlucky share of keys, to one
// backend, while the bound caps every backend at c times its fair share of
// the requests in flight.
//
// A key's home is found in two steps, both from package shard: the key (its
// {hash tag}, when it has one) hashes to one of Partitions partitions, and
// a shard.Bounded assigns each partition to a backend by weighted
// rendezvous hashing with a static bound of 1.25 times a fair share of
// partitions. When a backend joins it takes about its share of
// partitions, all from others; when one leaves only its partitions move;
// the rest keep their home (a few more may move where the static bound
// spills; shard.PlanMoves counts them).
//
// A pick takes the home unless its in-flight count has reached the bound
// ceil(c · (T+1) · w/W), T the balancer's total in flight; then it takes,
// among the backends under their bound, the one the partition prefers most
// by a rendezvous hash of (partition, Addr) — an order fixed per partition
// and independent of the other backends, so a hot home's overflow spreads
// over all backends (not onto one ring neighbour) and comes back to the
// same ones. Since the bounds add up to more than T, some backend is
// always under its bound.
//
// An empty key has no home: it goes to the less loaded (in-flight/weight)
// of two random backends, as P2C does without latency.
//
// Cost: a pick hashes the key once and reads the home's in-flight count;
// only when that is not zero does it need T: below 64 backends it sums
// their counts, and from 64 on it reads a running total that every pick
// and Done keeps (in eight counters, so that concurrent picks of different
// backends do not contend on one). Only when the home is full does it rank
// the others (O(n), no allocation). The running total counts requests to a
// backend that an Update removed until they are Done, and misses those
// picked before the set reached 64 backends until they are Done, so the
// bounds are briefly a little off after such an Update.
// Update builds the partition table in time linear in Partitions and the
// backends (shard.NewBounded): a few milliseconds at the default 4,096
// partitions. ConsistentHash is safe for concurrent use.
type ConsistentHash struct {
	factor     float64
	partitions int

	mu  sync.Mutex // serialises Update
	reg registry

	set atomic.Pointer[hashSet]
}

var _ Pinner = (*ConsistentHash)(nil)

// hashSet is one immutable backend set of a ConsistentHash.
type hashSet struct {
	eps   []*endpoint
	table *shard.Bounded // nil when eps is empty
	home  []int32        // partition → index in eps
	seeds []uint64       // per endpoint, a hash of its Addr for the overflow order
	total float64        // total weight
}

// NewConsistentHash returns a ConsistentHash with no backends. It fails
// with ErrInvalidConfig for a LoadFactor that is not a finite number ≥ 1
// or a negative or oversized Partitions.
func NewConsistentHash(cfg ConsistentHashConfig) (*ConsistentHash, error) {
	c := cfg.LoadFactor
	switch {
	case c == 0:
		c = DefaultHashLoadFactor
	case math.IsNaN(c) || math.IsInf(c, 0) || c < 1:
		return nil, fmt.Errorf("%w: ConsistentHash LoadFactor %v is not a finite number >= 1", ErrInvalidConfig, c)
	}
	p := cfg.Partitions
	switch {
	case p == 0:
		p = shard.DefaultPartitions
	case p < 0 || p > 1<<22:
		return nil, fmt.Errorf("%w: ConsistentHash Partitions %d not in [1, %d]", ErrInvalidConfig, p, 1<<22)
	}
	h := &ConsistentHash{factor: c, partitions: p, reg: registry{track: track{inflightOn: true}, totals: new(stripedTotal)}}
	h.set.Store(&hashSet{})
	return h, nil
}

// Update replaces the backend set; see Balancer. It also fails with
// ErrInvalidBackend when there are more backends than Partitions, or when
// shard.NewBounded refuses the set (the error then wraps its error too),
// and then keeps the previous set. The limits on the set's size are
// shard.NewBounded's: this one adds none of its own.
func (h *ConsistentHash) Update(backends []Backend) error {
	if len(backends) > h.partitions {
		return fmt.Errorf("%w: %d backends for %d partitions; raise ConsistentHashConfig.Partitions or use fewer backends",
			ErrInvalidBackend, len(backends), h.partitions)
	}
	if err := validate(backends); err != nil {
		return err
	}
	next := &hashSet{}
	if len(backends) > 0 {
		members := make([]shard.Member, len(backends))
		index := make(map[string]int32, len(backends))
		for i, b := range backends {
			members[i] = shard.Member{Name: b.Addr, Weight: b.weight()}
			index[b.Addr] = int32(i)
			next.total += float64(b.weight())
		}
		table, err := shard.NewBounded(members, shard.BoundedConfig{Partitions: h.partitions})
		if err != nil { // a set beyond shard.NewBounded's limits
			return fmt.Errorf("%w: %w", ErrInvalidBackend, err)
		}
		next.table = table
		next.home = make([]int32, table.Partitions())
		for p := range next.home {
			owner, _ := table.PartitionOwner(p)
			next.home[p] = index[owner]
		}
		next.seeds = make([]uint64, len(backends))
		for i, b := range backends {
			next.seeds[i] = hashAddr(b.Addr)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	eps, err := h.reg.endpoints(backends)
	if err != nil {
		return err
	}
	next.eps = eps
	h.set.Store(next)
	return nil
}

// Pick chooses key's home, or the next backend in the key's order when the
// home is over its bound; see ConsistentHash and Balancer.
func (h *ConsistentHash) Pick(ctx context.Context, key string) (c Choice, err error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	s := h.set.Load()
	n := len(s.eps)
	switch {
	case n == 0:
		return Choice{}, ErrNoBackend
	case n == 1:
		s.eps[0].begin(&c, false)
		return c, nil
	case key == "":
		s.spread().begin(&c, false)
		return c, nil
	}
	p := s.table.Partition(key)
	home := s.eps[s.home[p]]
	load := home.inflight.Load()
	if load == 0 { // under any bound, which is at least 1
		home.begin(&c, false)
		return c, nil
	}
	var total int64
	if n >= runningTotalMin {
		total = h.reg.totals.load()
	} else {
		for _, e := range s.eps {
			total += e.inflight.Load()
		}
	}
	scale := h.factor * float64(total+1) / s.total
	if float64(load) < math.Ceil(scale*float64(home.weight())) {
		home.begin(&c, false)
		return c, nil
	}
	// Overflow: the partition's most preferred backend under its bound.
	ph := mixHash(uint64(p) + 0x9e3779b97f4a7c15)
	best, bestScore := int(s.home[p]), uint64(0)
	for i, e := range s.eps {
		if i == int(s.home[p]) || float64(e.inflight.Load()) >= math.Ceil(scale*float64(e.weight())) {
			continue
		}
		if sc := mixHash(ph ^ s.seeds[i]); sc >= bestScore {
			best, bestScore = i, sc
		}
	}
	// best stays the home only if the counts moved under our feet so that
	// none is under its bound now; the home is then as good as any.
	s.eps[best].begin(&c, false)
	return c, nil
}

// spread picks the less loaded (in-flight/weight) of two random backends,
// for requests without a key.
func (s *hashSet) spread() *endpoint {
	i, j := randomPair(len(s.eps))
	a, b := s.eps[i], s.eps[j]
	if b.inflight.Load()*int64(a.weight()) < a.inflight.Load()*int64(b.weight()) {
		a = b
	}
	return a
}

// hashAddr is 64-bit FNV-1a of addr, mixed: a stable per-backend seed.
func hashAddr(addr string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(addr); i++ {
		h ^= uint64(addr[i])
		h *= 1099511628211
	}
	return mixHash(h)
}

// mixHash is the splitmix64 finaliser: a bijection that spreads every input
// bit over the output.
func mixHash(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// PickAddr returns a Choice for the backend at addr; see Pinner.
func (h *ConsistentHash) PickAddr(ctx context.Context, addr string) (Choice, error) {
	return h.reg.pickAddr(ctx, addr)
}
