package replica

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/shard"

	"github.com/scaleout/scaleout/observe"
)

// Defaults of Config.
const (
	DefaultProbeInterval = time.Second
	// DefaultProbeTimeout is the least default ProbeTimeout (see there).
	DefaultProbeTimeout = time.Second
	DefaultMaxLag       = 10 * time.Second
	DefaultFailAfter    = 2
	DefaultReadmitAfter = 2
)

// Config configures a Router. Zero values mean the documented defaults.
type Config struct {
	// Probe learns each node's role, lag and position. Nil means a static
	// topology: the Nodes' declared roles hold, nothing is probed, and no
	// lag is known (MaxLag cannot exclude anything).
	Probe Probe
	// ProbeInterval is how often every node is probed; default
	// DefaultProbeInterval. A query that fails on a broken connection
	// brings the next probe forward.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe's queries on an open connection: a
	// probe fails when the node does not answer within it, or refuses,
	// resets or errs, and not otherwise. An answer that comes after
	// ProbeInterval but within ProbeTimeout is a success: that round
	// lasts longer, and the next starts when it ends. Default
	// ProbeInterval, but at least DefaultProbeTimeout (1 s):
	// ProbeInterval says how fresh the view should be, not how fast a
	// healthy server answers, and a server or a client machine under
	// load (a checkpoint, a saturated CPU, a pause of this process)
	// routinely takes longer than a short interval. Taking a healthy
	// primary out fails every write; a longer timeout only delays
	// noticing a server that hangs, since a stopped one refuses at once.
	ProbeTimeout time.Duration
	// ConnectTimeout bounds opening a node's probe connection, which
	// happens in the first round and after each failed probe (the
	// connection is kept between rounds, see Probe). It is separate from
	// ProbeTimeout because a new connection takes several round trips
	// (TCP, TLS, authentication) where a probe takes one, and a slow
	// dial says nothing of the server's health. Default 2 ×
	// ProbeTimeout. The probe connection is one of the pool's
	// connections: leave room for it in db.SetMaxOpenConns, or a pool
	// saturated by traffic makes it wait up to ConnectTimeout.
	ConnectTimeout time.Duration
	// FailAfter is how many probes in a row must fail before a node is
	// taken out (a primary: writes fail with ErrNoPrimary; a replica: no
	// reads); default DefaultFailAfter. A node that stops answering
	// (holds its connections, or accepts new ones, and never replies) is
	// taken out within ProbeInterval + FailAfter × max(ProbeInterval,
	// ConnectTimeout + ProbeTimeout) of when it stopped; with the
	// defaults and a ProbeInterval up to 1 s, ProbeInterval + 6 s. One
	// that refuses or resets connections is taken out after FailAfter
	// rounds, each as short as a round trip, and the first sooner when a
	// query that hits it brings it forward.
	FailAfter int
	// ReadmitAfter is how many probes in a row must succeed before a node
	// taken out is used again, so that a flapping node is not; default
	// DefaultReadmitAfter. A node's first successful probe admits it.
	ReadmitAfter int
	// MaxLag is the staleness bound of reads on replicas: a replica gets a
	// read only while its lag at the last probe plus the time since that
	// probe was sent is below MaxLag, so no read sees data older than
	// MaxLag even between probes. Default DefaultMaxLag; negative means no
	// bound. It must exceed ProbeInterval, or every replica would drop out
	// between probes.
	MaxLag time.Duration
	// MinServing is the floor of replicas that keep serving reads when
	// fewer than that are within MaxLag: the least lagging healthy ones,
	// so that a lag spike does not move every read to the primary
	// (Vitess's min_number_serving_vttablets). Reads on them may be older
	// than MaxLag. Default 0: MaxLag is strict.
	MinServing int
	// StrictReads makes reads fail with ErrNoReplica when no replica is
	// fit, instead of going to the primary (the default), for a primary
	// that must be kept free of reads.
	StrictReads bool
	// ReadYourWrites is how long after a write through a Track context
	// its reads go to the primary, when the write's position is not known
	// (without a PositionProbe, or after a write sent through Query).
	// Default MaxLag, which is the longest a fit replica can be behind (or
	// DefaultMaxLag when MaxLag is unbounded); negative disables the
	// window.
	ReadYourWrites time.Duration
	// Balancer picks among the replicas fit for reads; its backends are
	// the Nodes' names. Default balance.NewRoundRobin(); pass a
	// balance.P2C to send reads to the least busy replica. The Router
	// owns its backend set: do not Update it yourself.
	Balancer balance.Balancer
	// WriteSharder routes writes by key in a multi-primary (master-master)
	// topology: a write whose context carries a key (WithKey) goes to the
	// node named Shard(key), so that each key is written on one primary
	// and concurrent writes to it cannot conflict. Its shard names must be
	// node names. Without it, or for a write with no key, writes go to the
	// preferred primary (see Router).
	WriteSharder shard.Sharder

	// Meter receives the Router's metrics (see package observe): each
	// node's lag, role and serving state, reads and writes routed to it,
	// reads that fell back to the primary, and ErrNoPrimary failures; nil
	// means none.
	Meter observe.Meter
	// Logger logs changes of primary (a promotion followed, or no
	// primary left); nil means slog.Default().
	Logger *slog.Logger
}

// normalize fills defaults and validates c.
func (c Config) normalize() (Config, error) {
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = max(c.ProbeInterval, DefaultProbeTimeout)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 2 * c.ProbeTimeout
	}
	if c.FailAfter == 0 {
		c.FailAfter = DefaultFailAfter
	}
	if c.ReadmitAfter == 0 {
		c.ReadmitAfter = DefaultReadmitAfter
	}
	if c.MaxLag == 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.ReadYourWrites == 0 {
		c.ReadYourWrites = c.MaxLag
		if c.MaxLag < 0 {
			c.ReadYourWrites = DefaultMaxLag
		}
	}
	if c.Balancer == nil {
		c.Balancer = balance.NewRoundRobin()
	}
	switch {
	case c.ProbeInterval < 0 || c.ProbeTimeout < 0 || c.ConnectTimeout < 0:
		return c, fmt.Errorf("%w: negative ProbeInterval, ProbeTimeout or ConnectTimeout", ErrInvalidConfig)
	case c.FailAfter < 0 || c.ReadmitAfter < 0 || c.MinServing < 0:
		return c, fmt.Errorf("%w: negative FailAfter, ReadmitAfter or MinServing", ErrInvalidConfig)
	case c.Probe != nil && c.MaxLag > 0 && c.MaxLag <= c.ProbeInterval:
		return c, fmt.Errorf("%w: MaxLag %v must exceed ProbeInterval %v", ErrInvalidConfig, c.MaxLag, c.ProbeInterval)
	}
	return c, nil
}
