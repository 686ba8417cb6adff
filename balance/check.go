package balance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// A Check actively probes one backend; nil means healthy.
type Check func(ctx context.Context, b Backend) error

// HTTPCheck returns a Check that GETs http://<addr><path> and passes on a
// 2xx or 3xx status. It uses its own client with keep-alives, so a check
// does not open a connection every interval.
func HTTPCheck(path string) Check {
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute},
		// A redirect is an answer: the backend is up.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return func(ctx context.Context, b Backend) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.Addr+path, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			return fmt.Errorf("balance: health check of %s: status %d", b.Addr, resp.StatusCode)
		}
		return nil
	}
}

// TCPCheck returns a Check that passes when a TCP connection to the
// backend opens.
func TCPCheck() Check {
	var d net.Dialer
	return func(ctx context.Context, b Backend) error {
		conn, err := d.DialContext(ctx, "tcp", b.Addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}
}

// Run runs the active checks every Interval until ctx is done or Health
// is closed, then returns ctx's error (ErrClosed after Close) once every
// check in progress has returned. Without a Check it just waits. A second
// Run while one runs returns ErrAlreadyRunning at once; after Close, Run
// returns ErrClosed at once.
func (h *Health) Run(ctx context.Context) error {
	h.mu.Lock()
	switch {
	case h.closed:
		h.mu.Unlock()
		return ErrClosed
	case h.running:
		h.mu.Unlock()
		return ErrAlreadyRunning
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	h.running, h.cancelRun = true, cancel
	h.runs.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.running, h.cancelRun = false, nil
		h.mu.Unlock()
		cancel(nil)
		h.runs.Done()
	}()

	if h.cfg.Check != nil {
		h.checkLoop(runCtx)
	} else {
		<-runCtx.Done()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return ErrClosed // only Close ends runCtx while ctx lives
}

// checkLoop checks every backend now and then every Interval until ctx
// ends.
func (h *Health) checkLoop(ctx context.Context) {
	ticker := time.NewTicker(h.cfg.Interval)
	defer ticker.Stop()
	for {
		h.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// checkAll checks every backend concurrently and applies the results.
func (h *Health) checkAll(ctx context.Context) {
	h.mu.Lock()
	backends := append([]Backend(nil), h.all...)
	h.mu.Unlock()
	results := make([]error, len(backends))
	var wg sync.WaitGroup
	for i, b := range backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
			defer cancel()
			results[i] = h.cfg.Check(cctx, b)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // cancelled checks say nothing about the backends
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	changed := false
	for i, b := range backends {
		st := h.states[b.Addr]
		if st == nil {
			continue // removed while being checked
		}
		if st.observeCheck(results[i] == nil, h.cfg.Rise, h.cfg.Fall, time.Now()) {
			changed = true
			h.noteStateLocked(st)
		}
	}
	if changed && !h.closed {
		_ = h.publishLocked()
	}
}

// observeCheck applies one active check result with hysteresis: Fall
// failures in a row take an up backend down, Rise passes in a row bring a
// down one back. It reports whether the state changed.
func (st *backendHealth) observeCheck(pass bool, rise, fall int, now time.Time) bool {
	if pass != st.activeDown { // the result agrees with the current state
		st.streak = 0
		return false
	}
	st.streak++
	if st.activeDown && st.streak >= rise {
		st.activeDown, st.streak, st.upSince = false, 0, now
		return true
	}
	if !st.activeDown && st.streak >= fall {
		st.activeDown, st.streak = true, 0
		return true
	}
	return false
}
