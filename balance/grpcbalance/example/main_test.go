package main

import (
	"bytes"
	"testing"
	"time"
)

// TestRun runs the example briefly: s1 dies under load, and no call fails
// but those s1 had in its hands when it died (at most one per caller,
// all begun before the kill: gRPC cannot know whether they ran, so does
// not retry them); the survivors carry the calls while it is down, and it
// serves again after its restart. A call counts in the phase it began in,
// and the phase moves on once s1 is dead: no call of the second phase can
// be answered by s1.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	res, err := run(&out, 6*time.Second)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.failed[1] != 0 || res.failed[2] != 0 {
		t.Fatalf("calls begun after the kill failed: %d while s1 was down, %d after its restart, of %d", res.failed[1], res.failed[2], res.calls)
	}
	if res.failed[0] > callers {
		t.Fatalf("%d calls begun before the kill failed, more than the %d s1 could have had in flight", res.failed[0], callers)
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
