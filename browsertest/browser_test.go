package browsertest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// stopTimeout bounds the graceful close of the browser; after it, chromedp kills it.
const stopTimeout = 10 * time.Second

// tab is one tab of a headless Chromium started for one test.
type tab struct {
	ctx context.Context // chromedp's context of the tab; actions run on it

	mu       sync.Mutex
	problems []string // console errors, uncaught exceptions and browser log errors
}

// openTab starts the Chromium binary chromium (from testenv.ChromiumPath, which a test
// calls first so that it skips before it starts anything), opens url in a tab and waits
// for its load event. The test's cleanup closes the browser and waits until it has
// exited and its profile is removed.
func openTab(t *testing.T, chromium, url string) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Flag("disable-gpu", true), // no GPU in CI; saves starting its process
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	tb := &tab{ctx: ctx}
	start := time.Now()
	// Console starts the browser and subscribes before the page loads, so no message of
	// the page is missed.
	messages := chromedp.Console(ctx)
	var reading sync.WaitGroup
	reading.Go(func() {
		for m, err := range messages {
			if err != nil {
				return // the browser is gone or the test is over
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				tb.mu.Lock()
				tb.problems = append(tb.problems, m.String())
				tb.mu.Unlock()
			}
		}
	})
	t.Cleanup(func() {
		stopCtx, cancelStop := context.WithTimeout(ctx, stopTimeout)
		defer cancelStop()
		if err := chromedp.Cancel(stopCtx); err != nil {
			t.Errorf("closing chromium: %v", err)
		}
		cancel()
		cancelAlloc()
		reading.Wait()
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s in chromium: %v", url, err)
	}
	t.Logf("chromium started and loaded %s in %v", url, time.Since(start))
	return tb
}

// consoleProblems returns what the page reported as going wrong so far, oldest first.
func (tb *tab) consoleProblems() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.problems...)
}

// freeAddr returns a loopback address nothing listens on, for a server the test starts.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}
