package testenv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func proxiedRedis(t *testing.T, opt redis.Options) (*FaultProxy, *redis.Client, string) {
	t.Helper()
	p := StartFaultProxy(t, RedisAddr(t))
	opt.Addr = p.Addr()
	c := redis.NewClient(&opt)
	t.Cleanup(func() { _ = c.Close() })
	key := Prefix(t) + "n"
	RedisClient(t) // registers the cleanup of Prefix(t)
	return p, c, key
}

func TestFaultProxyPassesThrough(t *testing.T) {
	_, c, key := proxiedRedis(t, redis.Options{})
	ctx := t.Context()
	for i := 1; i <= 100; i++ {
		n, err := c.Incr(ctx, key).Result()
		if err != nil || n != int64(i) {
			t.Fatalf("INCR through the proxy = %d, %v; want %d", n, err, i)
		}
	}
	big := bytes.Repeat([]byte("x"), 1<<20) // several reads in each direction
	if err := c.Set(ctx, key+"big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, key+"big").Bytes()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("1 MiB value through the proxy: %d bytes, %v", len(got), err)
	}
}

// A dropped reply is the lost-reply case: the server applied the command, the client
// saw a reset, and go-redis's default retry applies it a second time.
func TestFaultProxyDropReply(t *testing.T) {
	p, c, key := proxiedRedis(t, redis.Options{})
	ctx := t.Context()
	p.DropReply(func(req []byte) bool { return bytes.Contains(req, []byte("incr")) })
	if p.Armed() != 1 {
		t.Fatalf("Armed = %d, want 1", p.Armed())
	}
	n, err := c.Incr(ctx, key).Result()
	if err != nil {
		t.Fatalf("INCR after a lost reply: %v (go-redis retries by default)", err)
	}
	if n != 2 || p.DroppedReplies() != 1 || p.Armed() != 0 {
		t.Fatalf("INCR = %d with %d replies dropped, %d armed; want 2 (applied twice), 1, 0", n, p.DroppedReplies(), p.Armed())
	}

	// Without retries the caller sees the error, and the command was applied.
	key0 := key + "0"
	c0 := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer c0.Close()
	p.DropReply(func(req []byte) bool { return bytes.Contains(req, []byte("incr")) })
	if err := c0.Incr(ctx, key0).Err(); err == nil {
		t.Fatal("INCR whose reply was dropped succeeded without retries")
	}
	if v, err := c.Get(ctx, key0).Int(); err != nil || v != 1 {
		t.Fatalf("after the lost reply the key is %d, %v; want 1 (the server applied it)", v, err)
	}
}

func TestFaultProxyDelay(t *testing.T) {
	p, c, key := proxiedRedis(t, redis.Options{})
	ctx := t.Context()
	p.SetDelay(50 * time.Millisecond)
	start := time.Now()
	if err := c.Set(ctx, key, 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("a round trip through a 50ms delay took %v; want ≥ 100ms (request and reply each wait)", d)
	}
	p.SetDelay(0)
}

func TestFaultProxyBlackholeAndRefuse(t *testing.T) {
	p, c, key := proxiedRedis(t, redis.Options{MaxRetries: -1, ReadTimeout: 200 * time.Millisecond})
	ctx := t.Context()
	if err := c.Set(ctx, key, 1, 0).Err(); err != nil {
		t.Fatal(err)
	}
	p.Blackhole(true)
	err := c.Get(ctx, key).Err()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("GET through a blackhole: %v; want a timeout", err)
	}
	p.Blackhole(false)
	if err := c.Get(ctx, key).Err(); err != nil {
		t.Fatalf("GET after the blackhole ended: %v", err)
	}

	p.Refuse(true)
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Get(ctx2, key).Err(); err == nil {
		t.Fatal("GET through a refusing proxy succeeded")
	}
	p.Refuse(false)
	if err := c.Get(ctx, key).Err(); err != nil {
		t.Fatalf("GET after refusing ended: %v", err)
	}
	if p.Accepted() < 2 {
		t.Fatalf("Accepted = %d, want reconnections counted", p.Accepted())
	}
}
