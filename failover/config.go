package failover

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// Defaults of Config: a lease of 1 s fails over within about 1.25 s of a
// leader's death, where client-go's defaults take 15–17 s.
const (
	DefaultLease = time.Second
)

// Config configures an Elector. Zero values mean the documented defaults.
// The durations must not be negative and must satisfy Lease >
// RenewInterval > RetryInterval and SafetyMargin < Lease - RenewInterval,
// and ID must be at most 200 bytes, else the constructor fails with an
// error wrapping ErrInvalidConfig.
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

// Normalize fills defaults and validates c, for Elector implementations.
func (c Config) Normalize() (Config, error) {
	if c.ID == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = c.Lease / 4
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = c.Lease / 8
	}
	if c.SafetyMargin == 0 {
		c.SafetyMargin = c.Lease / 10
	}
	switch {
	case c.Lease < 0 || c.RenewInterval < 0 || c.RetryInterval < 0 || c.SafetyMargin < 0:
		return c, fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	case !(c.Lease > c.RenewInterval && c.RenewInterval > c.RetryInterval):
		return c, fmt.Errorf("%w: want Lease (%v) > RenewInterval (%v) > RetryInterval (%v)", ErrInvalidConfig, c.Lease, c.RenewInterval, c.RetryInterval)
	case c.SafetyMargin >= c.Lease-c.RenewInterval:
		return c, fmt.Errorf("%w: SafetyMargin (%v) must be under Lease - RenewInterval (%v)", ErrInvalidConfig, c.SafetyMargin, c.Lease-c.RenewInterval)
	case len(c.ID) > 200:
		return c, fmt.Errorf("%w: ID longer than 200 bytes", ErrInvalidConfig)
	}
	return c, nil
}
