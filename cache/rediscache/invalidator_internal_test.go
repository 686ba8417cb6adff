package rediscache

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/testenv"
)

// A subscription whose connection dies without a word (a partition: the
// server neither answers nor resets) must be found out within about
// twice pingEvery, and the subscribers told to drop everything: the
// messages published meanwhile are lost to them. Once the network heals,
// invalidations flow again, with nothing restarted.
func TestInvalidatorFindsASilentConnection(t *testing.T) {
	old := pingEvery
	pingEvery = 100 * time.Millisecond
	t.Cleanup(func() { pingEvery = old })
	p := testenv.StartFaultProxy(t, testenv.RedisAddr(t))
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	inv, err := NewInvalidator(t.Context(), c, InvalidatorConfig{Channel: testenv.Prefix(t) + "invalidate"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	lost := make(chan struct{}, 64)
	heard := make(chan string, 64)
	inv.Subscribe(func(keys []string) {
		if keys == nil {
			lost <- struct{}{}
			return
		}
		for _, k := range keys {
			heard <- k
		}
	})
	p.Blackhole(true)
	start := time.Now()
	// Twice pingEvery, plus a margin a loaded machine respects.
	limit := 2*pingEvery + 2*time.Second
	select {
	case <-lost:
		t.Logf("silent connection found out after %v", time.Since(start))
	case <-time.After(limit):
		t.Fatalf("no drop-everything batch %v after the connection went silent (pingEvery %v)", time.Since(start), pingEvery)
	}
	p.Blackhole(false)
	publisher := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = publisher.Close() })
	pub, err := NewInvalidator(t.Context(), publisher, InvalidatorConfig{Channel: testenv.Prefix(t) + "invalidate"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	healed := time.Now()
	for {
		if err := pub.Publish(t.Context(), []string{"k"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-heard:
			t.Logf("invalidations heard again %v after the network healed", time.Since(healed))
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Since(healed) > 2*pingEvery+2*time.Second {
			t.Fatalf("no invalidation heard %v after the network healed", time.Since(healed))
		}
	}
}
