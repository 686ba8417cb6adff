package balance_test

// Real-time tests in this file: TestSlowBackendOnRealServers (P2C's
// latency average fed by real HTTP requests to loopback backends, one of
// them slow; it asserts traffic shares, not durations). P2C's rules are
// tested on the fake clock in p2c_test.go.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// TestSlowBackendOnRealServers runs real HTTP requests against five
// loopback backends, one of them 25 times slower: round robin sends it a
// fifth of the traffic, P2C at most a third of that; when the backend is
// fast again, P2C gives it its share back. The gap is wide because a
// loaded machine adds its scheduling delay to every request: at 10 times
// (20 ms against 2 ms), a few milliseconds of it made the slow backend
// look only 3 times slower, which P2C rightly punishes less.
func TestSlowBackendOnRealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds of real traffic")
	}
	var slowDelay atomic.Int64
	slowDelay.Store(int64(50 * time.Millisecond))
	var backends []balance.Backend
	for i := range 5 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			d := 2 * time.Millisecond
			if i == 0 {
				d = time.Duration(slowDelay.Load())
			}
			time.Sleep(d)
			_, _ = io.WriteString(w, "ok")
		}))
		t.Cleanup(srv.Close)
		backends = append(backends, balance.Backend{Addr: srv.Listener.Addr().String()})
	}
	slow := backends[0].Addr

	// share drives 8 closed-loop clients through lb for d and returns the
	// slow backend's share of the requests.
	share := func(lb balance.Balancer, d time.Duration) float64 {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		defer client.CloseIdleConnections()
		var total, toSlow atomic.Int64
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					c, err := lb.Pick(context.Background(), "")
					if err != nil {
						t.Error(err)
						return
					}
					resp, err := client.Get("http://" + c.Backend().Addr + "/")
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					c.Done(err)
					total.Add(1)
					if c.Backend().Addr == slow {
						toSlow.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return float64(toSlow.Load()) / float64(total.Load())
	}

	rr := balance.NewRoundRobin()
	require.NoError(t, rr.Update(backends))
	rrShare := share(rr, time.Second)

	p2c, err := balance.NewP2C(balance.P2CConfig{Decay: 300 * time.Millisecond, ForcePickAfter: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, p2c.Update(backends))
	share(p2c, 300*time.Millisecond) // learn the latencies
	p2cShare := share(p2c, 1500*time.Millisecond)
	t.Logf("slow backend's share: round robin %.1f%%, P2C %.1f%%", rrShare*100, p2cShare*100)
	require.InDelta(t, 0.2, rrShare, 0.02)
	require.LessOrEqual(t, p2cShare, rrShare/3)

	slowDelay.Store(int64(2 * time.Millisecond)) // the backend recovers
	share(p2c, time.Second)
	recovered := share(p2c, time.Second)
	t.Logf("after it recovers: P2C %.1f%%", recovered*100)
	require.Greater(t, recovered, 0.1)
}
