package main

import (
	"bytes"
	"testing"
)

// TestRun runs the example: every call succeeds although clone 2 dies
// under load, the survivors serve every call begun after the kill but
// those in flight to clone 2 as it died, and every clone served calls
// before it.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	res, err := runResult(&out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.errors != 0 {
		t.Fatalf("%d of %d calls failed", res.errors, res.calls)
	}
	for _, c := range []string{"clone 1", "clone 2", "clone 3"} {
		if res.served[c] == 0 {
			t.Errorf("%s served nothing", c)
		}
	}
	// A call that read killed == false just before the kill may still be
	// answered by clone 2; none begun later can be (its listener is closed).
	if n := res.afterKill["clone 2"]; n > 4 {
		t.Errorf("clone 2 served %d calls begun after it was killed", n)
	}
	if res.afterKill["clone 1"] == 0 || res.afterKill["clone 3"] == 0 {
		t.Errorf("the survivors did not carry the calls: %v", res.afterKill)
	}
}
