package failover_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
)

// forge posts to member to's Handler a heartbeat from `from`, active with
// epoch, signed with key when it is not nil, naming the receiver's boot
// nonce peerBoot. It returns the status and, from a JSON answer, the
// receiver's nonce.
func forge(n *ptNet, from, to string, epoch uint64, key []byte, peerBoot string) (int, string) {
	body, _ := json.Marshal(map[string]any{"from": from, "to": to, "mode": "active-passive",
		"role": "active", "epoch": epoch, "priority": 99, "seq": time.Now().UnixNano(),
		"boot": "forger", "peerBoot": peerBoot})
	req := httptest.NewRequest(http.MethodPost, "http://"+to+"/hb", bytes.NewReader(body))
	req.RemoteAddr = "192.0.2.66:4444"
	if key != nil {
		req.Header.Set(failover.SignatureHeader, sign(key, body))
	}
	n.mu.Lock()
	h := n.handlers[to]
	n.mu.Unlock()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var a struct {
		Boot string `json:"boot"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &a)
	return rec.Code, a.Boot
}

// forgeFor sends forged heartbeats to both members, each claiming to come
// from the other, active with an epoch above any, every millisecond for
// d; the forger learns each receiver's boot nonce from its refusals. It
// returns how many were sent and how many accepted, and how often in
// samples every 10 ms no member, or both, were active.
func forgeFor(n *ptNet, a, b *ptNode, d time.Duration, key []byte) (sent, accepted, noneActive, bothActive, samples int) {
	boots := map[string]string{}
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond) {
		for _, to := range []string{"a", "b"} {
			from := map[string]string{"a": "b", "b": "a"}[to]
			status, boot := forge(n, from, to, uint64(1000+sent), key, boots[to])
			if boot != "" {
				boots[to] = boot
			}
			sent++
			if status == http.StatusOK {
				accepted++
			}
		}
		if sent%20 == 0 {
			samples++
			ra, rb := a.pair.Role(), b.pair.Role()
			switch {
			case ra == failover.Passive && rb == failover.Passive:
				noneActive++
			case ra == failover.Active && rb == failover.Active:
				bothActive++
			}
		}
	}
	return
}

// TestPairForgedHeartbeats: a host that reaches the heartbeat handlers but
// lacks the Secret sends forged heartbeats to both members for 2 s, each
// claiming the other is active with a newer epoch: none is accepted, the
// roles never change, and one member is active throughout. With
// InsecureNoSecret, the same forger flaps the roles: why the opt-out is
// loudly named and for tests only.
func TestPairForgedHeartbeats(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mut    func(*failover.PairConfig)
		secure bool
	}{
		{"secret", nil, true},
		{"InsecureNoSecret", func(c *failover.PairConfig) { c.Secret, c.InsecureNoSecret = nil, true }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, ev := newPTNet(), &ptEvents{}
				ids := []string{"a", "b"}
				a := n.start(t, ev, "a", 2, ids, tc.mut)
				b := n.start(t, ev, "b", 1, ids, tc.mut)
				time.Sleep(time.Second)
				require.Equal(t, failover.Active, a.pair.Role())
				start := time.Now()
				wrong := bytes.Repeat([]byte("x"), len(testSecret))
				sent, accepted, none, both, samples := forgeFor(n, a, b, 2*time.Second, wrong)
				flaps := len(filter(ev.since(start), "promote", "demote"))
				t.Logf("%s: %d forged heartbeats in 2 s, %d accepted, %d promotions and demotions, no member active in %d%% and both in %d%% of %d samples",
					tc.name, sent, accepted, flaps, 100*none/samples, 100*both/samples, samples)
				if tc.secure {
					require.Zero(t, accepted, "forged heartbeats accepted")
					require.Zero(t, flaps, "role changes under forged heartbeats")
					require.Zero(t, none+both, "samples without exactly one active member")
					require.Equal(t, failover.Active, a.pair.Role())
				} else {
					require.NotZero(t, flaps, "without a secret, forgeries get through")
				}
				n.kill(a)
				n.kill(b)
			})
		})
	}
}

// TestPairEpochOverflow: a heartbeat whose epoch no member reaches (here
// 2^64-1, after which the next promotion would wrap to epoch 0 and lose
// to every older one) is refused, even on a Pair without a Secret.
func TestPairEpochOverflow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, ev := newPTNet(), &ptEvents{}
		insecure := func(c *failover.PairConfig) { c.Secret, c.InsecureNoSecret = nil, true }
		a := n.start(t, ev, "a", 1, []string{"a", "b"}, insecure) // b never starts
		time.Sleep(time.Second)
		require.Equal(t, failover.Active, a.pair.Role())
		epoch := a.pair.Epoch()
		_, boot := forge(n, "b", "a", math.MaxUint64, nil, "")
		for _, e := range []uint64{math.MaxUint64, math.MaxInt64 + 1} {
			status, _ := forge(n, "b", "a", e, nil, boot)
			require.Equal(t, http.StatusBadRequest, status, "epoch %d", e)
		}
		time.Sleep(time.Second)
		require.Equal(t, failover.Active, a.pair.Role())
		require.Equal(t, epoch, a.pair.Epoch())
		require.Equal(t, []string{"a promote"}, filter(ev.since(time.Time{}), "promote", "demote"))
		n.kill(a)
	})
}

// TestPairReplayAfterRestart: signed heartbeats captured on the wire
// from a, replayed a month later to b, restarted while a is down, are all
// refused: b never sees a up and promotes itself alone.
func TestPairReplayAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, ev := newPTNet(), &ptEvents{}
		ids := []string{"a", "b"}
		a := n.start(t, ev, "a", 2, ids, nil)
		b := n.start(t, ev, "b", 1, ids, nil)

		// Capture what a sends b, as on the wire.
		type captured struct {
			body []byte
			sig  string
		}
		var (
			mu  sync.Mutex
			got []captured
		)
		n.mu.Lock()
		hb := n.handlers["b"]
		n.handlers["b"] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, captured{body, r.Header.Get(failover.SignatureHeader)})
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
			hb.ServeHTTP(w, r)
		})
		n.mu.Unlock()
		time.Sleep(7 * time.Second) // 10 heartbeats a second
		require.Equal(t, failover.Active, a.pair.Role())
		require.True(t, b.pair.PeerUp("a"))
		n.kill(a)
		n.kill(b)
		mu.Lock()
		replay := got[len(got)-60:]
		mu.Unlock()

		time.Sleep(30 * 24 * time.Hour)
		restarted := time.Now()
		b = n.start(t, ev, "b", 1, ids, nil) // a is still down
		n.mu.Lock()
		h := n.handlers["b"]
		n.mu.Unlock()
		accepted, seenUp := 0, false
		for _, c := range replay {
			req := httptest.NewRequest(http.MethodPost, "http://b/hb", bytes.NewReader(c.body))
			req.Header.Set(failover.SignatureHeader, c.sig)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code == http.StatusOK {
				accepted++
			}
			seenUp = seenUp || b.pair.PeerUp("a")
			time.Sleep(ptInterval / 2)
		}
		t.Logf("month-old signed heartbeats replayed to a restarted member: %d of %d accepted", accepted, len(replay))
		require.Zero(t, accepted, fmt.Sprintf("%d of %d replayed heartbeats accepted", accepted, len(replay)))
		require.False(t, seenUp, "replayed heartbeats made a look up")
		require.Equal(t, failover.Active, b.pair.Role())
		require.Equal(t, []string{"b promote"}, filter(ev.since(restarted), "promote", "demote", "up"))
		n.kill(b)
	})
}
