// Package electcfg holds the defaults and checks of failover.Config in one
// place, for the electors of package failover and of its subpackages
// (failover/rediselector). Its Config has failover.Config's fields in the
// same order, so that each converts to the other.
package electcfg

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"
)

// DefaultLease is the Lease of a Config that sets none.
const DefaultLease = time.Second

// MaxIDLen is the longest candidate ID accepted.
const MaxIDLen = 200

// Config mirrors failover.Config.
type Config struct {
	ID            string
	Lease         time.Duration
	RenewInterval time.Duration
	RetryInterval time.Duration
	SafetyMargin  time.Duration
}

// Normalize returns c with its zero fields set to their defaults, or an
// error saying which constraint c breaks; the caller wraps it in its
// package's ErrInvalidConfig.
func Normalize(c Config) (Config, error) {
	if c.ID == "" {
		c.ID = defaultID()
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
		return c, errors.New("negative duration")
	case !(c.Lease > c.RenewInterval && c.RenewInterval > c.RetryInterval):
		return c, fmt.Errorf("want Lease (%v) > RenewInterval (%v) > RetryInterval (%v)", c.Lease, c.RenewInterval, c.RetryInterval)
	case c.SafetyMargin >= c.Lease-c.RenewInterval:
		return c, fmt.Errorf("SafetyMargin (%v) must be under Lease - RenewInterval (%v)", c.SafetyMargin, c.Lease-c.RenewInterval)
	case len(c.ID) > MaxIDLen:
		return c, fmt.Errorf("ID longer than %d bytes", MaxIDLen)
	}
	return c, nil
}

// defaultID is hostname-pid-random: distinct among the processes of a
// fleet, and among the candidates of one process.
func defaultID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
