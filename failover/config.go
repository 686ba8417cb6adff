package failover

import (
	"fmt"
	"time"

	"github.com/scaleout/scaleout/failover/internal/electcfg"
)

// Defaults of Config: a lease of 1 s fails over within about 1.25 s of a
// leader's death, where client-go's defaults take 15–17 s.
const (
	DefaultLease = electcfg.DefaultLease
)

// Config configures an Elector. Zero values mean the documented defaults.
// The durations must not be negative and must satisfy Lease >
// RenewInterval > RetryInterval and SafetyMargin < Lease - RenewInterval,
// and ID must be at most 200 bytes; Validate checks this, and the
// constructors (MemoryStore.Candidate, rediselector.New) fail with its
// error.
type Config struct {
	// ID names this candidate, distinct among the role's candidates;
	// default hostname-pid-random.
	ID string
	// Lease is how long a leadership lasts without renewal; default
	// DefaultLease.
	Lease time.Duration
	// RenewInterval is how often a leader renews; default Lease/4.
	RenewInterval time.Duration
	// RetryInterval is how often a candidate tries to take a vacant or
	// expired lease; default Lease/8. A Resign is noticed at once, not
	// at the next retry (rediselector: over pub/sub).
	RetryInterval time.Duration
	// SafetyMargin is how long before the lease's end, as measured from
	// the moment the renewal was sent, the leader considers itself no
	// longer leader; default Lease/10. It must cover the clock drift
	// between machines over one lease.
	SafetyMargin time.Duration
}

// Validate reports whether c, its zero fields taken as their defaults,
// breaks a constraint of Config, with an error wrapping ErrInvalidConfig
// that names it; nil when c is usable. The constructors of this module's
// Electors call it, so calling it first is only useful to check a
// configuration early (one read from flags, say) or in an Elector of
// another package.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults returns c with its zero fields set to their defaults, or
// Validate's error.
func (c Config) withDefaults() (Config, error) {
	n, err := electcfg.Normalize(electcfg.Config(c))
	if err != nil {
		return Config(n), fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return Config(n), nil
}
