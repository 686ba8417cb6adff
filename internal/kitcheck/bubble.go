package kitcheck

import (
	"testing"
	"testing/synctest"
)

// InBubble runs f as t's body inside synctest.Test and reports a skip in
// the bubble (a clause the implementation does not support, or a factory
// that skips) as a skip of t. On Go 1.26 synctest.Test reports a bubble
// that called t.Skip as passed, so without this an unsupported clause
// would read as a conforming one. Whether a clause is supported is known
// only from the implementation, which must be built inside the bubble, so
// the skip is carried out of it rather than decided before it. Kits that
// run clauses in bubbles use it.
func InBubble(t *testing.T, f func(t *testing.T)) {
	var inner *testing.T
	synctest.Test(t, func(t *testing.T) {
		inner = t
		f(t)
	})
	if inner.Skipped() {
		t.SkipNow()
	}
}
