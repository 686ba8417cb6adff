package main

import (
	"bytes"
	"testing"
	"time"
)

// TestRun runs the example briefly: no call fails although s1 dies under
// load, the survivors carry the calls while it is down, and it serves
// again after its restart. A call counts in the phase it began in, and
// the phase moves on once s1 is dead: no call of the second phase can be
// answered by s1.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	res, err := run(&out, 6*time.Second)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.failed != 0 {
		t.Fatalf("%d of %d calls failed", res.failed, res.calls)
	}
	before, down, after := res.served[0], res.served[1], res.served[2]
	for _, c := range []string{"s0", "s1", "s2"} {
		if before[c] == 0 {
			t.Errorf("%s served nothing before the kill", c)
		}
	}
	if down["s1"] != 0 {
		t.Errorf("s1 served %d calls begun after it was killed", down["s1"])
	}
	if down["s0"] == 0 || down["s2"] == 0 {
		t.Errorf("the survivors did not carry the calls: %v", down)
	}
	if after["s1"] == 0 {
		t.Errorf("s1 served nothing after its restart (2 s; the reconnection backoff is at most 1.2 s): %v", after)
	}
}
