package redisqueue

import (
	"errors"
	"testing"

	"github.com/scaleout/scaleout/queue"
)

// FuzzParseInfo: whatever a job hash holds, decoding it is a JobInfo with a
// state or an error, never a panic, and never ErrNotFound for a non-empty
// hash.
func FuzzParseInfo(f *testing.F) {
	f.Add("t", "x", "st", "r", "e", "1700000000000", "p", "")
	f.Add("n", "x", "st", "?", "ra", "-1", "sa", "9999999999999999999999")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3, k4, v4 string) {
		h := map[string]string{k1: v1, k2: v2, k3: v3, k4: v4}
		info, err := parseInfo("q/j", "q", h)
		switch {
		case errors.Is(err, queue.ErrNotFound):
			t.Fatalf("ErrNotFound for %v", h)
		case err == nil && info.State == "":
			t.Fatalf("no state and no error: %+v", info)
		case err != nil && info.ID != "":
			t.Fatalf("an error with a JobInfo: %+v", info)
		}
	})
}
