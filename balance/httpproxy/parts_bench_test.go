package httpproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/scaleout/scaleout/balance"
)

// BenchmarkParts times, one at a time, the pieces of the hot path that the
// proxy adds to httputil.ReverseProxy, for the cost table in the package
// doc's "Cost" section: the X-Forwarded-* headers (the outbound header
// cloned per op, as ReverseProxy does, included), the pick and its
// outcome report, and the response body wrapper that reports it.
func BenchmarkParts(b *testing.B) {
	p, err := New(benchRoundRobin(b, 3), Config{ErrorLog: quiet})
	if err != nil {
		b.Fatal(err)
	}
	in := httptest.NewRequest(http.MethodGet, "/", nil)
	in.Header.Set("User-Agent", "wrk")
	in.Header.Set("Accept", "*/*")
	b.Run("forwarded", func(b *testing.B) {
		b.ReportAllocs()
		out := in.Clone(in.Context())
		for b.Loop() {
			out.Header = in.Header.Clone()
			p.setForwarded(in, out)
		}
	})
	b.Run("header-clone-only", func(b *testing.B) {
		b.ReportAllocs()
		out := in.Clone(in.Context())
		for b.Loop() {
			out.Header = in.Header.Clone()
		}
	})
	b.Run("pick-done", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			c, err := p.lb.Pick(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			p.done(&c, nil)
		}
	})
	b.Run("done-body", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		buf := make([]byte, 64)
		for b.Loop() {
			c, _ := p.lb.Pick(ctx, "")
			resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}
			resp = p.respond(&c, nil, nil, false, resp)
			_, _ = resp.Body.Read(buf)
			_ = resp.Body.Close()
		}
	})
}

// benchRoundRobin is a round robin over n made-up backends.
func benchRoundRobin(b *testing.B, n int) *balance.RoundRobin {
	lb := balance.NewRoundRobin()
	bs := make([]balance.Backend, n)
	for i := range bs {
		bs[i] = balance.Backend{Addr: "10.0.0." + string(rune('1'+i)) + ":80"}
	}
	if err := lb.Update(bs); err != nil {
		b.Fatal(err)
	}
	return lb
}
