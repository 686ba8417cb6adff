package balance

import "fmt"

// A Backend is one clone requests can go to.
type Backend struct {
	// Addr identifies the backend ("10.0.0.7:8080"); it must be non-empty
	// and unique within a set. Balancers keep a backend's statistics across
	// Update calls by Addr.
	Addr string
	// Weight is the backend's relative capacity for weighted strategies;
	// 0 means 1, negative is invalid.
	Weight int
	// Zone is the backend's zone or region, for ZoneAware; may be empty.
	Zone string
}

// weight returns the effective weight, 0 meaning 1.
func (b Backend) weight() int {
	if b.Weight == 0 {
		return 1
	}
	return b.Weight
}

// validate checks a backend set: addresses non-empty and unique, weights
// not negative. An empty set is valid: picks then fail with ErrNoBackend.
func validate(backends []Backend) error {
	seen := make(map[string]struct{}, len(backends))
	for i, b := range backends {
		if b.Addr == "" {
			return fmt.Errorf("%w: backend %d has no address", ErrInvalidBackend, i)
		}
		if _, dup := seen[b.Addr]; dup {
			return fmt.Errorf("%w: duplicate address %q", ErrInvalidBackend, b.Addr)
		}
		if b.Weight < 0 {
			return fmt.Errorf("%w: %q has negative weight %d", ErrInvalidBackend, b.Addr, b.Weight)
		}
		seen[b.Addr] = struct{}{}
	}
	return nil
}
