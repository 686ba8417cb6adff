package testenv

import (
	"testing"

	"go.uber.org/goleak"
)

// CheckGoroutines is the one goroutine-leak check of the project's tests
// (go.uber.org/goleak). Call it at the start of a test:
//
//	defer testenv.CheckGoroutines(t)()
//
// It notes the goroutines running then, and the returned func fails the
// test if goroutines other than those are still running when it is called
// (goleak retries for a while, so goroutines that are on their way out
// after a Close are waited for, not reported). Goroutines of other tests
// that run in parallel would count too: use it only in tests that are not
// parallel, or in TestMain through goleak.VerifyTestMain.
func CheckGoroutines(t testing.TB) func() {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		goleak.VerifyNone(t, ignore)
	}
}
