package balance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DNSConfig configures NewDNS. Name and, for address records, Port are
// required; every other field has a default.
type DNSConfig struct {
	// Name is the DNS name to resolve: the host name whose A/AAAA records
	// list the backends, or with SRV the domain of the SRV records. A
	// fully qualified name ("clones.example.internal.") skips the
	// resolver's search domains. An IP literal resolves to itself.
	Name string
	// Port is the backends' port for A/AAAA lookups (1-65535). It must be
	// 0 with SRV, where each record carries its own port.
	Port int
	// Network selects the address records: "ip" (A and AAAA, the
	// default), "ip4" (A only) or "ip6" (AAAA only). Ignored with SRV.
	Network string

	// SRV looks up SRV records instead of addresses: the backends are
	// target:port of each record, with the record's weight. Only the
	// records of the lowest priority value are used (RFC 2782: the others
	// are for when all of those fail, which health checks, not DNS,
	// decide). A record's target is kept as a host name and resolved when
	// a connection is dialled. A weight of 0 becomes Backend.Weight 0,
	// which balancers read as 1.
	SRV bool
	// Service and Proto name the SRV records "_service._proto.Name"
	// (Proto defaults to "tcp" when Service is set). Both empty looks up
	// Name itself. Only with SRV.
	Service, Proto string

	// Resolver resolves the name; nil means net.DefaultResolver. Pass a
	// Resolver with PreferGo and Dial to query a particular server.
	Resolver *net.Resolver
	// Interval is the time between lookups in Run; 0 means 30s. After a
	// failed lookup Run retries sooner: after 1s, then doubling up to
	// Interval.
	Interval time.Duration
	// Timeout bounds one lookup; 0 means 5s.
	Timeout time.Duration
	// Target receives the backend set: Run calls Target.Update with every
	// new set. Any Balancer will do; Updaters feeds several (a balancer
	// and the LoadProber beside it). Required by Run; Resolve does not
	// use it.
	Target Updater
	// Zone, when set, gives each resolved backend its Zone (for example
	// from its address's subnet). It must be safe to call from Run.
	Zone func(b Backend) string
	// AllowEmpty lets an authoritative "no such name" or "no records"
	// answer empty the set. By default such an answer is treated like any
	// failed lookup: the last good set stays, because a mistyped zone
	// update should not take every backend out of service at once.
	AllowEmpty bool
	// OnError is told of every failed lookup and failed Target.Update in
	// Run. nil logs them with Logger at level Warn. It is called from
	// Run's goroutine and should not block.
	OnError func(err error)
	// Logger logs failed lookups when OnError is nil; nil means
	// slog.Default().
	Logger *slog.Logger
}

// An Updater takes backend sets: every Balancer does, and so does
// LoadProber.
type Updater interface {
	Update(backends []Backend) error
}

// Updaters returns an Updater that gives every set to each of targets in
// turn. All of them get the set even when one fails; the error joins
// their errors.
func Updaters(targets ...Updater) Updater {
	return updaters(slices.Clone(targets))
}

type updaters []Updater

func (us updaters) Update(backends []Backend) error {
	var errs []error
	for _, u := range us {
		if err := u.Update(backends); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DNS is a backend set fed by DNS: discovery for clones that register
// themselves as A/AAAA or SRV records, the load balancer's side of "DNS
// round robin". Unlike a client that resolves once and keeps the answer
// for a long time (the skew examples/dnsskew measures), DNS hands every
// address of the answer to a Balancer, which spreads each request, and
// refreshes the set on an interval.
//
// Run resolves at once and then every Interval, and calls Target.Update
// only when the set changes. The set is sorted by Addr and deduplicated,
// so a DNS server that rotates its answers (round-robin DNS) does not
// cause an Update on every lookup.
//
// A failed lookup never empties the set: Run keeps the last good set,
// reports the error to OnError and retries with backoff (1s, 2s, ... up
// to Interval), so a DNS outage leaves the balancer serving the last
// known clones, whose liveness health checks judge. An authoritative
// "not found" or empty answer counts as a failure too, unless AllowEmpty
// is set. DNS is safe for concurrent use; a second Run while one
// runs returns ErrAlreadyRunning.
type DNS struct {
	cfg      DNSConfig
	resolver *net.Resolver
	running  atomic.Bool

	// lookup does one resolution; tests replace it to drive Run's timing
	// without network I/O.
	lookup func(ctx context.Context) ([]Backend, error)

	mu   sync.Mutex
	last []Backend // the set last given to Target; nil before the first
	have bool      // last is valid (it may be empty with AllowEmpty)
}

// NewDNS validates cfg and returns a DNS. It fails with an error wrapping
// ErrInvalidConfig for a missing Name, a bad Port or Network, SRV fields
// without SRV, or negative durations.
func NewDNS(cfg DNSConfig) (*DNS, error) {
	bad := func(format string, args ...any) (*DNS, error) {
		return nil, fmt.Errorf("%w: dns: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if cfg.Name == "" {
		return bad("Name is empty")
	}
	if cfg.SRV {
		if cfg.Port != 0 {
			return bad("Port %d with SRV: the port comes from the records", cfg.Port)
		}
		if cfg.Service != "" && cfg.Proto == "" {
			cfg.Proto = "tcp"
		}
	} else {
		if cfg.Port < 1 || cfg.Port > 65535 {
			return bad("Port %d out of range 1-65535", cfg.Port)
		}
		if cfg.Service != "" || cfg.Proto != "" {
			return bad("Service/Proto without SRV")
		}
		switch cfg.Network {
		case "":
			cfg.Network = "ip"
		case "ip", "ip4", "ip6":
		default:
			return bad("Network %q is not ip, ip4 or ip6", cfg.Network)
		}
	}
	if cfg.Interval < 0 || cfg.Timeout < 0 {
		return bad("negative Interval or Timeout")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 30 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	d := &DNS{cfg: cfg, resolver: cfg.Resolver}
	if d.resolver == nil {
		d.resolver = net.DefaultResolver
	}
	d.lookup = d.resolve
	return d, nil
}

// Resolve does one lookup and returns the backend set, sorted by Addr and
// deduplicated. It does not touch Target. An empty answer is an error
// (wrapping ErrNoBackend) unless AllowEmpty is set, when a "not found"
// answer returns an empty set and no error.
func (d *DNS) Resolve(ctx context.Context) ([]Backend, error) {
	return d.lookup(ctx)
}

// Backends returns the set Run last gave Target, and whether there is one
// (false before the first good lookup).
func (d *DNS) Backends() ([]Backend, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.last), d.have
}

// Run resolves now and then every Interval until ctx is done, feeding
// Target; see DNS for what a failure does. It returns ctx's error, or at
// once an error wrapping ErrInvalidConfig when Target is nil, or
// ErrAlreadyRunning when a Run of d is in progress. No goroutine it starts
// outlives it.
func (d *DNS) Run(ctx context.Context) error {
	if d.cfg.Target == nil {
		return fmt.Errorf("%w: dns: Run needs a Target", ErrInvalidConfig)
	}
	if !d.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer d.running.Store(false)

	const firstRetry = time.Second
	retry := firstRetry
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		next := d.cfg.Interval
		if err := d.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.report(err)
			next = min(retry, d.cfg.Interval)
			retry = min(2*retry, d.cfg.Interval)
		} else {
			retry = firstRetry
		}
		timer.Reset(next)
	}
}

// refresh does one lookup and updates Target if the set changed.
func (d *DNS) refresh(ctx context.Context) error {
	set, err := d.lookup(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.have && slices.Equal(set, d.last) {
		return nil
	}
	if err := d.cfg.Target.Update(set); err != nil {
		return fmt.Errorf("balance: dns: update of %d backends: %w", len(set), err)
	}
	d.last, d.have = set, true
	return nil
}

func (d *DNS) report(err error) {
	if d.cfg.OnError != nil {
		d.cfg.OnError(err)
		return
	}
	log := d.cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Warn("balance: DNS discovery failed; keeping the last backend set",
		"name", d.cfg.Name, "err", err)
}

// resolve is the real lookup through the Resolver.
func (d *DNS) resolve(ctx context.Context) ([]Backend, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var set []Backend
	if d.cfg.SRV {
		_, srvs, err := d.resolver.LookupSRV(ctx, d.cfg.Service, d.cfg.Proto, d.cfg.Name)
		// LookupSRV returns the valid records along with an error when
		// some targets are not valid names: use the valid ones.
		if err != nil && len(srvs) == 0 {
			return d.lookupFailed(err)
		}
		set = srvBackends(srvs)
	} else {
		ips, err := d.resolver.LookupNetIP(ctx, d.cfg.Network, d.cfg.Name)
		if err != nil {
			return d.lookupFailed(err)
		}
		set = make([]Backend, 0, len(ips))
		for _, ip := range ips {
			ap := netip.AddrPortFrom(ip.Unmap(), uint16(d.cfg.Port))
			set = append(set, Backend{Addr: ap.String()})
		}
	}
	if len(set) == 0 {
		return d.lookupFailed(nil)
	}
	if d.cfg.Zone != nil {
		for i := range set {
			set[i].Zone = d.cfg.Zone(set[i])
		}
	}
	return normalize(set), nil
}

// lookupFailed maps a failed or empty lookup to Resolve's result.
func (d *DNS) lookupFailed(err error) ([]Backend, error) {
	var dnsErr *net.DNSError
	notFound := err == nil || (errors.As(err, &dnsErr) && dnsErr.IsNotFound)
	if notFound && d.cfg.AllowEmpty {
		return []Backend{}, nil
	}
	if err == nil {
		return nil, fmt.Errorf("balance: dns: %s: empty answer: %w", d.cfg.Name, ErrNoBackend)
	}
	return nil, fmt.Errorf("balance: dns: %w", err)
}

// srvBackends keeps the records of the lowest priority value.
func srvBackends(srvs []*net.SRV) []Backend {
	if len(srvs) == 0 {
		return nil
	}
	lowest := srvs[0].Priority
	for _, s := range srvs {
		lowest = min(lowest, s.Priority)
	}
	set := make([]Backend, 0, len(srvs))
	for _, s := range srvs {
		if s.Priority != lowest || s.Target == "." || s.Target == "" {
			continue // "." means "no service here" (RFC 2782)
		}
		host := strings.TrimSuffix(s.Target, ".")
		set = append(set, Backend{
			Addr:   net.JoinHostPort(host, strconv.Itoa(int(s.Port))),
			Weight: int(s.Weight),
		})
	}
	return set
}

// normalize sorts a set by Addr and drops duplicate addresses, keeping
// the largest weight of each, so rotated answers compare equal.
func normalize(set []Backend) []Backend {
	slices.SortFunc(set, func(a, b Backend) int {
		if c := strings.Compare(a.Addr, b.Addr); c != 0 {
			return c
		}
		return cmp.Compare(b.Weight, a.Weight) // larger weight first
	})
	return slices.CompactFunc(set, func(a, b Backend) bool { return a.Addr == b.Addr })
}
