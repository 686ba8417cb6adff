package httpclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/scaleout/scaleout/balance"
)

// BenchmarkRoundTrip measures the Transport's cost per request over a
// bare http.Transport to one loopback backend: the same request, the same
// keep-alive connection, the body read and closed. The difference of the
// two is the overhead (the target: at most 1 µs and 1 allocation).
func BenchmarkRoundTrip(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	newBase := func() *http.Transport { return &http.Transport{MaxIdleConnsPerHost: 16} }

	run := func(b *testing.B, rt http.RoundTripper, url string) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("bare", func(b *testing.B) {
		base := newBase()
		defer base.CloseIdleConnections()
		run(b, base, "http://"+addr+"/")
	})
	b.Run("roundrobin", func(b *testing.B) {
		lb := balance.NewRoundRobin()
		if err := lb.Update([]balance.Backend{{Addr: addr}}); err != nil {
			b.Fatal(err)
		}
		base := newBase()
		defer base.CloseIdleConnections()
		t, err := New(lb, Config{Base: base})
		if err != nil {
			b.Fatal(err)
		}
		run(b, t, "http://svc/")
	})
	b.Run("health-p2c", func(b *testing.B) {
		p2c, err := balance.NewP2C(balance.P2CConfig{})
		if err != nil {
			b.Fatal(err)
		}
		lb, err := balance.NewHealth(p2c, balance.HealthConfig{})
		if err != nil {
			b.Fatal(err)
		}
		defer lb.Close()
		if err := lb.Update([]balance.Backend{{Addr: addr}}); err != nil {
			b.Fatal(err)
		}
		base := newBase()
		defer base.CloseIdleConnections()
		t, err := New(lb, Config{Base: base})
		if err != nil {
			b.Fatal(err)
		}
		run(b, t, "http://svc/")
	})
}

// stubBase answers every request at once with the same response, without
// a network or an allocation, so that BenchmarkOverhead measures nothing
// but the Transport's own work.
type stubBase struct {
	resp http.Response
	body stubBody
}

type stubBody struct{ n int }

func (b *stubBody) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, io.EOF
	}
	b.n = 0
	return copy(p, "ok"), nil
}
func (*stubBody) Close() error { return nil }

func (s *stubBase) RoundTrip(*http.Request) (*http.Response, error) {
	s.body.n = 2
	s.resp.StatusCode = http.StatusOK
	s.resp.Body = &s.body
	return &s.resp, nil
}

// BenchmarkOverhead is the Transport's own cost per request: a pick, the
// attempt's request, the response body's wrapper and the Done at its end,
// over a base that answers in memory, against that base called directly.
// The target is at most 1 µs and 1 allocation over bare.
func BenchmarkOverhead(b *testing.B) {
	req, err := http.NewRequest(http.MethodGet, "http://svc/", nil)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64)
	run := func(b *testing.B, rt http.RoundTripper) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					break
				}
			}
			resp.Body.Close()
		}
	}
	b.Run("bare", func(b *testing.B) { run(b, &stubBase{}) })
	for _, tc := range []struct {
		name string
		lb   func() balance.Balancer
	}{
		{"roundrobin", func() balance.Balancer { return balance.NewRoundRobin() }},
		{"p2c", func() balance.Balancer { p, _ := balance.NewP2C(balance.P2CConfig{}); return p }},
		{"health-p2c", func() balance.Balancer {
			p, _ := balance.NewP2C(balance.P2CConfig{})
			h, _ := balance.NewHealth(p, balance.HealthConfig{})
			return h
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lb := tc.lb()
			if err := lb.Update([]balance.Backend{{Addr: "10.0.0.7:8080"}, {Addr: "10.0.0.8:8080"}, {Addr: "10.0.0.9:8080"}}); err != nil {
				b.Fatal(err)
			}
			t, err := New(lb, Config{Base: &stubBase{}})
			if err != nil {
				b.Fatal(err)
			}
			run(b, t)
		})
	}
}
