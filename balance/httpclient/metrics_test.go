package httpclient

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/observe"
)

// TestMetrics runs a known workload through the Transport and checks the
// figures of observe's table for httpclient: requests by status class or
// error, and retries.
func TestMetrics(t *testing.T) {
	rec := observe.NewRecorder()
	live := newClone(t, "live")
	dead := testenv.RefusedAddr(t)
	// Every request first goes to the dead backend, then to the live one.
	tr, _ := newTransport(t, &scripted{order: []string{dead, live.addr}}, Config{Meter: rec})
	client := &http.Client{Transport: tr}
	for _, path := range []string{"/", "/fail"} {
		get(t, client, "http://svc"+path)
	}
	empty, _ := newTransport(t, balance.NewRoundRobin(), Config{Meter: rec})
	_, err := (&http.Client{Transport: empty}).Get("http://svc/")
	require.Error(t, err)

	for class, want := range map[string]float64{"2xx": 1, "5xx": 1, "error": 1, "4xx": 0} {
		require.Equal(t, want, rec.Value("scaleout.httpclient.requests", "class", class), "requests of class %s", class)
	}
	require.Equal(t, 2.0, rec.Value("scaleout.httpclient.retries"), "/ and /fail each retried once after the dead backend")
}
