package balance

// Real-time tests in this file: TestDNSRunAgainstStub and
// TestDNSFeedsBalancerAndProber (the real resolver path against a DNS
// server on loopback UDP; they wait for updates with generous bounds and
// assert no duration). Run's timing is tested on the fake clock
// (TestDNSRunTiming).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
)

// dnsTarget is a Balancer that records every Update.
type dnsTarget struct {
	mu      sync.Mutex
	updates [][]Backend
	fail    error // returned by Update when set
}

func (r *dnsTarget) Update(bs []Backend) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.updates = append(r.updates, slices.Clone(bs))
	return nil
}

func (r *dnsTarget) Pick(context.Context, string) (Choice, error) { return Choice{}, ErrNoBackend }

func (r *dnsTarget) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.updates)
}

func (r *dnsTarget) lastAddrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.updates) == 0 {
		return nil
	}
	return dnsAddrs(r.updates[len(r.updates)-1])
}

func dnsAddrs(bs []Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Addr
	}
	return out
}

func TestNewDNSConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  DNSConfig
		ok   bool
	}{
		{"a records", DNSConfig{Name: "x.test.", Port: 80}, true},
		{"srv", DNSConfig{Name: "x.test.", SRV: true, Service: "http"}, true},
		{"srv by name", DNSConfig{Name: "_http._tcp.x.test.", SRV: true}, true},
		{"no name", DNSConfig{Port: 80}, false},
		{"no port", DNSConfig{Name: "x.test."}, false},
		{"port too big", DNSConfig{Name: "x.test.", Port: 65536}, false},
		{"port with srv", DNSConfig{Name: "x.test.", Port: 80, SRV: true}, false},
		{"service without srv", DNSConfig{Name: "x.test.", Port: 80, Service: "http"}, false},
		{"bad network", DNSConfig{Name: "x.test.", Port: 80, Network: "tcp"}, false},
		{"negative interval", DNSConfig{Name: "x.test.", Port: 80, Interval: -1}, false},
		{"negative timeout", DNSConfig{Name: "x.test.", Port: 80, Timeout: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDNS(tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				require.NotNil(t, d)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestDNSResolveAddresses(t *testing.T) {
	stub := newDNSStub(t)
	stub.setAddrs("clones.test.", "10.0.0.3", "10.0.0.1", "fd00::2", "10.0.0.2", "10.0.0.1")
	for _, tc := range []struct {
		network string
		want    []string
	}{
		{"", []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "[fd00::2]:8080"}},
		{"ip4", []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"}},
		{"ip6", []string{"[fd00::2]:8080"}},
	} {
		t.Run("network="+tc.network, func(t *testing.T) {
			d, err := NewDNS(DNSConfig{Name: "Clones.Test.", Port: 8080, Network: tc.network, Resolver: stub.resolver()})
			require.NoError(t, err)
			// The stub rotates its answers; the set is the same every time.
			for range 3 {
				got, err := d.Resolve(t.Context())
				require.NoError(t, err)
				require.Equal(t, tc.want, dnsAddrs(got))
			}
		})
	}
}

func TestDNSResolveSRV(t *testing.T) {
	stub := newDNSStub(t)
	stub.setSRV("_http._tcp.clones.test.",
		stubSRV{Priority: 10, Weight: 5, Port: 8081, Target: "b.clones.test."},
		stubSRV{Priority: 10, Weight: 0, Port: 8080, Target: "a.clones.test."},
		stubSRV{Priority: 20, Weight: 9, Port: 9000, Target: "backup.clones.test."}, // fallback: not used
		stubSRV{Priority: 10, Weight: 1, Port: 8081, Target: "b.clones.test."},      // duplicate: the larger weight stays
	)
	zone := func(b Backend) string { return strings.SplitN(b.Addr, ".", 2)[0] }
	for _, cfg := range []DNSConfig{
		{Name: "clones.test.", SRV: true, Service: "http"}, // Proto defaults to tcp
		{Name: "_http._tcp.clones.test.", SRV: true},
	} {
		cfg.Resolver, cfg.Zone = stub.resolver(), zone
		d, err := NewDNS(cfg)
		require.NoError(t, err)
		got, err := d.Resolve(t.Context())
		require.NoError(t, err)
		require.Equal(t, []Backend{
			{Addr: "a.clones.test:8080", Weight: 0, Zone: "a"},
			{Addr: "b.clones.test:8081", Weight: 5, Zone: "b"},
		}, got)
	}
}

func TestDNSResolveFailures(t *testing.T) {
	stub := newDNSStub(t)
	stub.setAddrs("clones.test.", "10.0.0.1")
	newD := func(name string, allowEmpty bool) *DNS {
		d, err := NewDNS(DNSConfig{Name: name, Port: 80, Resolver: stub.resolver(), AllowEmpty: allowEmpty, Timeout: 2 * time.Second})
		require.NoError(t, err)
		return d
	}

	t.Run("nxdomain", func(t *testing.T) {
		_, err := newD("missing.test.", false).Resolve(t.Context())
		var dnsErr *net.DNSError
		require.ErrorAs(t, err, &dnsErr)
		require.True(t, dnsErr.IsNotFound)

		got, err := newD("missing.test.", true).Resolve(t.Context())
		require.NoError(t, err, "AllowEmpty: not found is an empty set")
		require.Empty(t, got)
	})
	t.Run("no records of the type", func(t *testing.T) {
		d, err := NewDNS(DNSConfig{Name: "clones.test.", Port: 80, Network: "ip6", Resolver: stub.resolver()})
		require.NoError(t, err)
		_, err = d.Resolve(t.Context())
		require.Error(t, err)
	})
	t.Run("servfail", func(t *testing.T) {
		stub.setRcode(stubRcodeServFail)
		defer stub.setRcode(stubRcodeOK)
		for _, allow := range []bool{false, true} {
			_, err := newD("clones.test.", allow).Resolve(t.Context())
			require.Error(t, err, "a server failure is never an empty set")
			var dnsErr *net.DNSError
			require.ErrorAs(t, err, &dnsErr)
			require.False(t, dnsErr.IsNotFound)
		}
	})
	t.Run("ip literal", func(t *testing.T) {
		got, err := newD("127.0.0.1", false).Resolve(t.Context())
		require.NoError(t, err)
		require.Equal(t, []string{"127.0.0.1:80"}, dnsAddrs(got))
	})
}

// TestDNSRunAgainstStub runs the real resolver path end to end: records
// change, the server fails, and Run keeps the last good set through it.
func TestDNSRunAgainstStub(t *testing.T) {
	stub := newDNSStub(t)
	defer testenv.CheckGoroutines(t)() // the stub's goroutines are its cleanup's
	stub.setAddrs("clones.test.", "10.0.0.1", "10.0.0.2")
	target := &dnsTarget{}
	errs := make(chan error, 100)
	d, err := NewDNS(DNSConfig{
		Name: "clones.test.", Port: 80, Resolver: stub.resolver(), Target: target,
		Interval: 20 * time.Millisecond, Timeout: time.Second,
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	require.Eventually(t, func() bool { return target.count() == 1 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"10.0.0.1:80", "10.0.0.2:80"}, target.lastAddrs())

	// Rotated but equal answers cause no Update.
	q := stub.queries.Load()
	require.Eventually(t, func() bool { return stub.queries.Load() > q+6 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, 1, target.count())

	stub.setAddrs("clones.test.", "10.0.0.2", "10.0.0.3")
	require.Eventually(t, func() bool { return target.count() == 2 }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, []string{"10.0.0.2:80", "10.0.0.3:80"}, target.lastAddrs())

	// A failing server and then a vanished name keep the last good set.
	for _, rcode := range []int{stubRcodeServFail, stubRcodeNXDomain} {
		stub.setRcode(rcode)
		select {
		case err := <-errs:
			require.Error(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("no error reported")
		}
		require.Equal(t, 2, target.count())
		b, ok := d.Backends()
		require.True(t, ok)
		require.Equal(t, []string{"10.0.0.2:80", "10.0.0.3:80"}, dnsAddrs(b))
	}
	stub.setRcode(stubRcodeOK)

	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// dnsFakeLookup is a lookup the synctest tests script.
type dnsFakeLookup struct {
	mu    sync.Mutex
	calls []time.Duration // time since start of each call
	start time.Time
	set   []Backend
	err   error
}

func (f *dnsFakeLookup) lookup(ctx context.Context) ([]Backend, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, time.Since(f.start))
	if f.err != nil {
		return nil, f.err
	}
	return normalize(slices.Clone(f.set)), nil
}

func (f *dnsFakeLookup) script(set []Backend, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set, f.err = set, err
}

func (f *dnsFakeLookup) callTimes() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// TestDNSRunTiming drives Run on a fake clock: the interval, updates only
// on change, backoff after failures, the last good set kept through them.
func TestDNSRunTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		target := &dnsTarget{}
		var reported []error
		d, err := NewDNS(DNSConfig{
			Name: "clones.test.", Port: 80, Target: target, Interval: 10 * time.Second,
			OnError: func(err error) { reported = append(reported, err) },
		})
		require.NoError(t, err)
		f := &dnsFakeLookup{start: time.Now()}
		f.script([]Backend{{Addr: "b:80"}, {Addr: "a:80"}}, nil)
		d.lookup = f.lookup

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()

		synctest.Wait()
		require.Equal(t, []time.Duration{0}, f.callTimes(), "resolves at once")
		require.Equal(t, []string{"a:80", "b:80"}, target.lastAddrs())

		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Len(t, f.callTimes(), 2)
		require.Equal(t, 1, target.count(), "same set: no Update")

		f.script([]Backend{{Addr: "c:80"}}, nil)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, 2, target.count())
		require.Equal(t, []string{"c:80"}, target.lastAddrs())

		// Failures: the set stays, retries back off 1s, 2s, 4s, 8s, then Interval.
		failure := errors.New("dns down")
		f.script(nil, failure)
		time.Sleep(40 * time.Second) // to t=60s
		synctest.Wait()
		require.Equal(t, []time.Duration{
			0, 10 * time.Second, 20 * time.Second,
			30 * time.Second, 31 * time.Second, 33 * time.Second, 37 * time.Second,
			45 * time.Second, 55 * time.Second,
		}, f.callTimes())
		require.Equal(t, 2, target.count())
		require.Len(t, reported, 6)
		require.ErrorIs(t, reported[0], failure)
		b, ok := d.Backends()
		require.True(t, ok)
		require.Equal(t, []string{"c:80"}, dnsAddrs(b))

		// Recovery resets the backoff.
		f.script([]Backend{{Addr: "d:80"}}, nil)
		time.Sleep(5 * time.Second) // the retry at 65s succeeds
		synctest.Wait()
		require.Equal(t, []string{"d:80"}, target.lastAddrs())
		f.script(nil, failure)
		time.Sleep(11 * time.Second) // failure at 75s, retry at 76s
		synctest.Wait()
		calls := f.callTimes()
		require.Equal(t, []time.Duration{65 * time.Second, 75 * time.Second, 76 * time.Second}, calls[len(calls)-3:])

		cancel()
		synctest.Wait()
		require.ErrorIs(t, <-done, context.Canceled)
	})
}

// TestDNSRunUpdateRejected: a set the Target rejects is reported and not
// remembered, so the next lookup tries it again.
func TestDNSRunUpdateRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		target := &dnsTarget{fail: fmt.Errorf("%w: nope", ErrInvalidBackend)}
		var reported []error
		d, err := NewDNS(DNSConfig{Name: "x.test.", Port: 80, Target: target, Interval: time.Minute,
			OnError: func(err error) { reported = append(reported, err) }})
		require.NoError(t, err)
		f := &dnsFakeLookup{start: time.Now()}
		f.script([]Backend{{Addr: "a:80"}}, nil)
		d.lookup = f.lookup
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = d.Run(ctx) }()

		synctest.Wait()
		require.Len(t, reported, 1)
		require.ErrorIs(t, reported[0], ErrInvalidBackend)
		_, ok := d.Backends()
		require.False(t, ok)

		target.mu.Lock()
		target.fail = nil
		target.mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"a:80"}, target.lastAddrs())
		cancel()
		synctest.Wait()
	})
}

func TestDNSRunMisuse(t *testing.T) {
	d, err := NewDNS(DNSConfig{Name: "x.test.", Port: 80})
	require.NoError(t, err)
	require.ErrorIs(t, d.Run(t.Context()), ErrInvalidConfig, "no Target")

	synctest.Test(t, func(t *testing.T) {
		d, err := NewDNS(DNSConfig{Name: "x.test.", Port: 80, Target: &dnsTarget{}, OnError: func(error) {}})
		require.NoError(t, err)
		d.lookup = (&dnsFakeLookup{start: time.Now(), set: []Backend{{Addr: "a:80"}}}).lookup
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		synctest.Wait()
		require.ErrorIs(t, d.Run(ctx), ErrAlreadyRunning, "second Run")
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		// Once the first Run returned, Run may run again.
		ctx2, cancel2 := context.WithCancel(t.Context())
		cancel2()
		require.ErrorIs(t, d.Run(ctx2), context.Canceled)
	})
}

func TestNormalize(t *testing.T) {
	got := normalize([]Backend{{Addr: "b", Weight: 1}, {Addr: "a"}, {Addr: "b", Weight: 3}, {Addr: "a", Weight: 2}})
	require.Equal(t, []Backend{{Addr: "a", Weight: 2}, {Addr: "b", Weight: 3}}, got)
	require.Empty(t, normalize(nil))
}

func TestUpdaters(t *testing.T) {
	a, b, c := &dnsTarget{}, &dnsTarget{fail: errors.New("b refuses")}, &dnsTarget{}
	err := Updaters(a, b, c).Update([]Backend{{Addr: "x:1"}})
	require.ErrorContains(t, err, "b refuses")
	require.Equal(t, []string{"x:1"}, a.lastAddrs())
	require.Equal(t, []string{"x:1"}, c.lastAddrs(), "every target gets the set")
	require.NoError(t, Updaters(a, c).Update(nil))
	require.NoError(t, Updaters().Update(nil))
}

// TestDNSFeedsBalancerAndProber wires discovery to a LeastLoaded and the
// LoadProber beside it, through the stub.
func TestDNSFeedsBalancerAndProber(t *testing.T) {
	stub := newDNSStub(t)
	stub.setAddrs("clones.test.", "127.0.0.1")
	lb := NewLeastLoaded(LeastLoadedConfig{})
	prober, err := NewLoadProber(LoadProberConfig{})
	require.NoError(t, err)
	d, err := NewDNS(DNSConfig{Name: "clones.test.", Port: 9, Resolver: stub.resolver(), Target: Updaters(lb, prober)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	require.Eventually(t, func() bool { _, ok := d.Backends(); return ok }, 5*time.Second, time.Millisecond)
	c, err := lb.Pick(t.Context(), "")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9", c.Backend().Addr)
	c.Done(nil)
	_, ok := prober.Status("127.0.0.1:9")
	require.True(t, ok)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}
