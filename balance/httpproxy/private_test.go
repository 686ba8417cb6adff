package httpproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// reportingClone is a backend whose handler is wrapped in a
// balance.LoadReporter with the in-band header on, as the balance
// package doc suggests; it counts the requests that reach it.
func reportingClone(t *testing.T) (addr string, hits *atomic.Int64) {
	hits = new(atomic.Int64)
	rep := &balance.LoadReporter{Header: true}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		rep.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "page "+r.URL.Path)
		})).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), hits
}

// TestLoadReportNotForwarded: a clone's load report, served by
// LoadReporter at balance.DefaultLoadPath, cannot be read through the
// proxy under any spelling of its path, and the in-band X-Load header is
// removed from responses; PrivatePaths configures what is held back.
func TestLoadReportNotForwarded(t *testing.T) {
	addr, hits := reportingClone(t)
	p, _ := newProxy(t, newRR(t, []balance.Backend{{Addr: addr}}), Config{})
	url, client := serve(t, p)
	for _, path := range []string{
		balance.DefaultLoadPath, "/debug/load/", "/debug//load", "/debug/./load", "/x/../debug/load",
		"/DEBUG/Load", "/debug%2fload", "/%64ebug/load", "/debug/vars", "/debug/pprof/", "/debug",
	} {
		req, err := http.NewRequest(http.MethodGet, url+path, nil)
		require.NoError(t, err)
		req.URL.RawPath, req.URL.Opaque = "", path // send the path as spelled
		resp, err := client.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s: %s", path, body)
		require.NotContains(t, string(body), "inflight", path)
	}
	require.Zero(t, hits.Load(), "private paths reached the backend")

	resp, err := client.Get(url + "/debugging/notes") // not under /debug/
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "page /debugging/notes", string(body))
	require.Empty(t, resp.Header.Get(balance.LoadHeader), "the in-band load reached the client")

	t.Run("configured", func(t *testing.T) {
		addr, hits := reportingClone(t)
		lb := newRR(t, []balance.Backend{{Addr: addr}})
		status := func(p *Proxy, path string) int {
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			return rec.Code
		}
		all, _ := newProxy(t, lb, Config{PrivatePaths: []string{}})
		require.Equal(t, http.StatusOK, status(all, balance.DefaultLoadPath), "an empty list forwards every path")
		admin, _ := newProxy(t, lb, Config{PrivatePaths: []string{"/admin"}})
		require.Equal(t, http.StatusNotFound, status(admin, "/admin"))
		require.Equal(t, http.StatusNotFound, status(admin, "/Admin/users"))
		require.Equal(t, http.StatusOK, status(admin, "/administrator"))
		require.Equal(t, http.StatusOK, status(admin, "/debug/load"), "the configured list replaces the default")
		require.EqualValues(t, 3, hits.Load())
	})
}
