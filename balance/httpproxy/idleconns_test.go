package httpproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// TestCloseIdleConnections: the keep-alive connection to a backend is
// reused until CloseIdleConnections closes it; the Proxy then serves the
// next request on a new connection.
func TestCloseIdleConnections(t *testing.T) {
	var opened, closed atomic.Int64
	back := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	back.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			opened.Add(1)
		case http.StateClosed:
			closed.Add(1)
		}
	}
	back.Start()
	t.Cleanup(back.Close)

	p, _ := newProxy(t, newRR(t, []balance.Backend{{Addr: back.Listener.Addr().String()}}), Config{})
	url, client := serve(t, p)
	for range 3 {
		code, body, _ := get(t, client, url)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "ok", body)
	}
	require.Equal(t, int64(1), opened.Load(), "three requests in a row share one backend connection")

	p.CloseIdleConnections()
	require.Eventually(t, func() bool { return closed.Load() == 1 }, 5*time.Second, time.Millisecond,
		"the idle backend connection is closed (closed: %d)", closed.Load())

	code, body, _ := get(t, client, url)
	require.Equal(t, http.StatusOK, code, "the Proxy serves after CloseIdleConnections")
	require.Equal(t, "ok", body)
	require.Equal(t, int64(2), opened.Load(), "on a new connection")
}
