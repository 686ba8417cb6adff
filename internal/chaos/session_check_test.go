package chaos

import (
	"testing"
	"time"
)

// TestSessionLostRotation: a rotation whose answer was lost may have
// taken effect, so a read presenting the old ID more than RotateGrace
// later may find a fresh visitor's session (the forward expired before
// the client heard of the new ID); within the grace it must not.
func TestSessionLostRotation(t *testing.T) {
	const grace = 2 * time.Second
	ms := func(n int) int64 { return int64(time.Duration(n) * time.Millisecond) }
	for _, c := range []struct {
		name      string
		readAt    int // ms
		violation bool
	}{
		{"after the grace", 3000, false},
		{"within the grace", 1000, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &SessionWorkload{RotateGrace: grace, History: NewHistory()}
			w.History.Add(1, SessionOp{Kind: "append", Family: 1, ID: "A", Value: "v1"},
				SessionOut{OK: true, Attached: true}, ms(0), ms(10))
			w.History.Add(1, SessionOp{Kind: "rotate", Family: 1, ID: "A"}, SessionOut{}, ms(100), Unknown)
			w.History.Add(2, SessionOp{Kind: "read", Family: 1, ID: "A"},
				SessionOut{OK: true}, ms(c.readAt), ms(c.readAt+5))
			w.markMayDrop()
			got := CheckSessions(w.History.Ops())
			if (got != "") != c.violation {
				t.Fatalf("a detached read %v after a lost rotation: checker says %q, want a violation: %v", time.Duration(ms(c.readAt)), got, c.violation)
			}
		})
	}
}
