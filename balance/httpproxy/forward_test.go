package httpproxy

// Real-time tests in this file: TestForwardMatchesReverseProxy (real
// loopback backends and clients: 1xx responses, trailers and flushing are
// the point). No duration is asserted.

import (
	"bufio"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// seen is what a client got through a proxy, and what the backend got.
type seen struct {
	Status       int
	Header       http.Header // the response's, without Date
	Body         string
	Trailer      http.Header
	Informations []int       // 1xx status codes, in order
	Backend      http.Header // the request header the backend saw
	Query        string      // the query the backend saw
	ReadErr      bool        // reading the body failed
}

// TestForwardMatchesReverseProxy: the proxy's own forwarding path does
// to requests and responses what httputil.ReverseProxy does (hop-by-hop
// headers both ways, Te: trailers, the client's missing User-Agent, a
// query Go servers do not parse, 1xx responses, announced and unannounced
// trailers, Server-Sent Events flushed as they come, a body cut short
// aborted), compared request for request through both, over one backend.
func TestForwardMatchesReverseProxy(t *testing.T) {
	release := make(chan struct{})
	var backendSaw []http.Header
	var backendQuery []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			backendSaw = append(backendSaw, r.Header.Clone())
			backendQuery = append(backendQuery, r.URL.RawQuery)
			w.Header().Set("Connection", "X-Back-Hop")
			w.Header().Set("X-Back-Hop", "leak")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Add("X-Multi", "a")
			w.Header().Add("X-Multi", "b")
			_, _ = io.WriteString(w, "echo")
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			_, _ = io.WriteString(w, "final")
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
			w.Header().Set(http.TrailerPrefix+"X-Late", "unannounced")
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			w.Header().Set("Content-Length", "") // none: this is a stream
			_, _ = io.WriteString(w, "data: one\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
			_, _ = io.WriteString(w, "data: two\n\n")
		case "/cut":
			w.Header().Set("Content-Length", "100")
			_, _ = io.WriteString(w, "short")
		}
	}))
	t.Cleanup(backend.Close)
	t.Cleanup(func() { close(release) }) // before the backend closes
	addr := backend.Listener.Addr().String()

	lb := balance.NewRoundRobin()
	require.NoError(t, lb.Update([]balance.Backend{{Addr: addr}}))
	ours, _ := newProxy(t, lb, Config{})
	target := &url.URL{Scheme: "http", Host: addr}
	ref := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.SetXForwarded()
		},
		BufferPool: bufferPool{},
		ErrorLog:   newDiscardLogger(),
	}

	do := func(t *testing.T, h http.Handler, path string) seen {
		base, client := serve(t, h)
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		req.Header["User-Agent"] = []string{""} // none sent
		req.Header.Set("Connection", "X-Hop")
		req.Header.Set("X-Hop", "secret")
		req.Header.Set("Proxy-Authorization", "Basic eDp5")
		req.Header.Set("Te", "trailers")
		req.Header.Set("X-Kept", "yes")
		var s seen
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
				s.Informations = append(s.Informations, code)
				return nil
			},
		}))
		resp, err := client.Do(req)
		if err != nil {
			// A body cut short, before the header was flushed: the
			// connection is reset, so the client cannot take it for whole.
			return seen{ReadErr: true}
		}
		defer resp.Body.Close()
		if path == "/events" {
			// The first event arrives while the backend still holds
			// the second: it was flushed, not buffered.
			lines := make(chan string, 1)
			go func() {
				line, _ := bufio.NewReader(resp.Body).ReadString('\n')
				lines <- line
			}()
			select {
			case line := <-lines:
				require.Equal(t, "data: one\n", line)
			case <-time.After(5 * time.Second):
				t.Fatal("the first event was not flushed")
			}
			return seen{Status: resp.StatusCode}
		}
		b, err := io.ReadAll(resp.Body)
		s.Status, s.Body, s.ReadErr, s.Trailer = resp.StatusCode, string(b), err != nil, resp.Trailer
		s.Header = resp.Header.Clone()
		s.Header.Del("Date")
		return s
	}

	for _, path := range []string{"/echo?a=1;b=2&c=3", "/echo?x=%zz&y=1", "/hints", "/trailers", "/cut"} {
		t.Run(path, func(t *testing.T) {
			backendSaw, backendQuery = nil, nil
			got := do(t, ours, path)
			want := do(t, ref, path)
			if strings.HasPrefix(path, "/echo") {
				require.Len(t, backendSaw, 2)
				got.Backend, want.Backend = backendSaw[0], backendSaw[1]
				got.Query, want.Query = backendQuery[0], backendQuery[1]
				require.Empty(t, got.Backend["X-Hop"], "a header named by Connection")
				require.Empty(t, got.Backend["User-Agent"], "Go's default instead of none")
				require.Equal(t, []string{"trailers"}, got.Backend["Te"])
				// The proxies' own addresses differ.
				require.NotEmpty(t, got.Backend["X-Forwarded-Host"])
				got.Backend.Del("X-Forwarded-Host")
				want.Backend.Del("X-Forwarded-Host")
			}
			switch path {
			case "/hints":
				require.Equal(t, []int{http.StatusEarlyHints}, got.Informations)
			case "/trailers":
				require.Equal(t, http.Header{"X-Sum": {"42"}, "X-Late": {"unannounced"}}, got.Trailer)
			case "/cut":
				require.True(t, got.ReadErr, "a body cut short taken for whole")
			}
			require.Equal(t, want, got)
		})
	}
	t.Run("/events", func(t *testing.T) {
		for _, h := range []http.Handler{ours, ref} {
			require.Equal(t, http.StatusOK, do(t, h, "/events").Status)
		}
	})
}

// TestForwardAllocs: a plain GET through the proxy allocates less than
// through httputil.ReverseProxy with a BufferPool and the same Transport,
// the server's and the Transport's allocations included, which it cannot
// avoid (issue 21: 93 allocations per request against its 86 before the
// proxy forwarded requests itself).
func TestForwardAllocs(t *testing.T) {
	bs := []balance.Backend{{Addr: newClone(t, "a").addr()}}
	lb := balance.NewRoundRobin()
	require.NoError(t, lb.Update(bs))
	ours, _ := newProxy(t, lb, Config{})
	ref := newHTTPUtil(t, bs, true)
	allocs := func(h http.Handler) float64 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		return testing.AllocsPerRun(200, func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
		})
	}
	a, b := allocs(ours), allocs(ref)
	t.Logf("allocations per request: ours %.1f, httputil with a BufferPool %.1f", a, b)
	require.Less(t, a, b-5, "ours allocates at least 5 fewer")
}

func newDiscardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
