package httpproxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/observe"
)

// TestMetrics runs a known workload through the proxy and checks the
// figures of observe's table for httpproxy: requests by status class,
// retries, and upstream latency per backend.
func TestMetrics(t *testing.T) {
	rec := observe.NewRecorder()
	live := newClone(t, "live")
	dead := testenv.RefusedAddr(t)
	// Every request first goes to the dead backend, then is retried on
	// the live one.
	p, _ := newProxy(t, &scripted{order: []string{dead, live.addr()}}, Config{Meter: rec, PrivatePaths: []string{"/admin"}})
	for _, tc := range []struct {
		path string
		want int
	}{{"/", http.StatusOK}, {"/fail", http.StatusInternalServerError}, {"/admin", http.StatusNotFound}} {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if w.Code != tc.want {
			t.Fatalf("GET %s: %d, want %d", tc.path, w.Code, tc.want)
		}
	}
	// A proxy with no backend answers 503; it reports to the same Meter.
	empty, _ := newProxy(t, &scripted{}, Config{Meter: rec})
	w := httptest.NewRecorder()
	empty.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET / with no backend: %d", w.Code)
	}

	for class, want := range map[string]float64{"2xx": 1, "4xx": 1, "5xx": 2, "3xx": 0} {
		if got := rec.Value("scaleout.httpproxy.requests", "class", class); got != want {
			t.Errorf("requests of class %s = %v, want %v", class, got, want)
		}
	}
	if got := rec.Value("scaleout.httpproxy.retries"); got != 2 {
		t.Errorf("retries = %v, want 2 (/ and /fail each retried once after the dead backend)", got)
	}
	if got := rec.Count("scaleout.httpproxy.upstream.duration", "backend", live.addr()); got != 2 {
		t.Errorf("upstream latencies of the live backend = %d, want 2", got)
	}
	if got := rec.Count("scaleout.httpproxy.upstream.duration", "backend", dead); got != 0 {
		t.Errorf("upstream latencies of the dead backend = %d, want 0 (it never answered)", got)
	}
	if got := rec.Value("scaleout.httpproxy.upstream.duration"); got <= 0 || got > 5 {
		t.Errorf("upstream latency sum = %v s, want in (0, 5]", got)
	}
}
