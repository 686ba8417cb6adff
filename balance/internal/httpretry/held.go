package httpretry

import (
	"io"
	"sync/atomic"
)

// Held is a request body that cannot be replayed (no GetBody: a proxied
// client's body, a caller's stream) lent to one attempt at a time, so
// that a request whose connection was refused, and so never sent, can go
// to another backend with it. The transport's Close does not close it;
// Unread tells whether any attempt has read from it (after which it
// cannot be sent again), and Broken whether a read failed (the sender's
// fault, not the backend's).
//
// A proxy leaves the body to the server, which closes it when the
// handler returns. A client must close it once (http.RoundTripper's
// contract): Release says no other attempt will follow, after which the
// transport's Close, or Release itself if that Close came first, closes
// the underlying body.
type Held struct {
	rc     io.ReadCloser
	read   atomic.Bool // an attempt read from it; set by the transport's writer
	broken atomic.Bool
	state  atomic.Uint32 // heldClosed | heldReleased
	closed atomic.Bool   // the underlying body was closed
}

const (
	heldClosed   = 1 << iota // the transport closed it
	heldReleased             // the caller released it
)

// Hold wraps rc.
func Hold(rc io.ReadCloser) *Held { return &Held{rc: rc} }

// Init makes h hold rc, for a Held embedded in a larger struct.
func (h *Held) Init(rc io.ReadCloser) { h.rc = rc }

func (h *Held) Read(p []byte) (int, error) {
	if !h.read.Load() {
		h.read.Store(true)
	}
	n, err := h.rc.Read(p)
	if err != nil && err != io.EOF {
		h.broken.Store(true)
	}
	return n, err
}

// Close records that the transport is done with the body; it closes the
// underlying body only after Release.
func (h *Held) Close() error {
	if h.mark(heldClosed) {
		return h.closeUnderlying()
	}
	return nil
}

// Release gives up the right to send the body again: the underlying body
// is closed when the transport closes it, or now if it already has.
func (h *Held) Release() {
	if h.mark(heldReleased) {
		h.closeUnderlying()
	}
}

// CloseNow closes the underlying body at once (the request ended with an
// error: no transport holds it any more that the caller knows of).
func (h *Held) CloseNow() { h.state.Store(heldClosed | heldReleased); h.closeUnderlying() }

// mark sets bit and reports whether both bits are set now, for the first
// time by this call.
func (h *Held) mark(bit uint32) bool {
	for {
		old := h.state.Load()
		if old&bit != 0 {
			return false
		}
		if h.state.CompareAndSwap(old, old|bit) {
			return old|bit == heldClosed|heldReleased
		}
	}
}

func (h *Held) closeUnderlying() error {
	if h.closed.Swap(true) {
		return nil
	}
	return h.rc.Close()
}

// Unread reports whether no attempt has read from the body.
func (h *Held) Unread() bool { return !h.read.Load() }

// Broken reports whether reading the body failed.
func (h *Held) Broken() bool { return h.broken.Load() }
