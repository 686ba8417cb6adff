package httpretry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIsConnFailure(t *testing.T) {
	require.False(t, IsConnFailure(context.Canceled))
	require.False(t, IsConnFailure(context.DeadlineExceeded))
	require.False(t, IsConnFailure(errors.New("other")))
	require.True(t, IsConnFailure(&net.OpError{Op: "dial", Err: errors.New("x")}))
	require.True(t, IsConnFailure(io.EOF))
	require.False(t, IsConnFailure(&net.OpError{Op: "read", Err: timeoutErr{}}))
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestCanRetry(t *testing.T) {
	get, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	require.True(t, CanRetry(get))
	post, _ := http.NewRequest(http.MethodPost, "http://x/", strings.NewReader("a"))
	require.False(t, CanRetry(post), "POST is not idempotent")
	post.Header.Set("Idempotency-Key", "k")
	require.True(t, CanRetry(post), "an idempotency key makes it so, and the body has GetBody")
	post.GetBody = nil
	require.False(t, CanRetry(post), "a body that cannot be replayed")
}

func TestAgain(t *testing.T) {
	dial := &net.OpError{Op: "dial", Err: errors.New("refused")}
	reset := &net.OpError{Op: "read", Err: syscall.ECONNRESET}
	require.True(t, Again(dial, false, nil), "a refused connection sent nothing")
	require.False(t, Again(reset, false, nil), "a non-idempotent request may have arrived")
	require.True(t, Again(reset, true, nil))
	h := Hold(io.NopCloser(strings.NewReader("body")))
	require.True(t, Again(dial, false, h), "the held body is intact")
	_, _ = h.Read(make([]byte, 1))
	require.False(t, Again(dial, false, h), "an attempt read the held body")
}

// TestHeldCloseOnce: the underlying body is closed once, when both the
// transport has closed it and the caller released it, in either order.
func TestHeldCloseOnce(t *testing.T) {
	for _, closeFirst := range []bool{true, false} {
		rc := &countCloser{}
		h := Hold(rc)
		if closeFirst {
			require.NoError(t, h.Close())
			require.Zero(t, rc.n, "closed before release")
			h.Release()
		} else {
			h.Release()
			require.Zero(t, rc.n, "closed before the transport did")
			require.NoError(t, h.Close())
		}
		h.Close()
		h.CloseNow()
		require.Equal(t, 1, rc.n)
	}
}

type countCloser struct{ n int }

func (*countCloser) Read([]byte) (int, error) { return 0, io.EOF }
func (c *countCloser) Close() error           { c.n++; return nil }
