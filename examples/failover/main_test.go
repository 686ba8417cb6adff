// Real-time tests in this file: TestRun and TestRunActiveActive (the
// demo's point is real balancers failing over on real loopback sockets,
// with heartbeats over HTTP). Each heartbeat times out after one
// interval, so the tests use 400 ms: at 50 ms, and even at the default
// 200 ms, heartbeats were missed three times running on a machine with a
// load average of 10, the pair flapped before the kill, and a pair that
// flaps is not the demo (the Pair's own timing is checked in synctest in
// package failover). Their bounds are what the Pair promises (a peer is
// down MissedBeats intervals after it was last heard from) plus
// loadMargin.
package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/scaleout/scaleout/internal/testenv"
)

// loadMargin is what a busy machine may add to a bound of the Pair: the
// heartbeat round trips and the callbacks run on a 2-core machine shared
// with a load average of 10.
const loadMargin = time.Second

// testInterval is the heartbeat interval of the tests.
const testInterval = 400 * time.Millisecond

// TestRun runs the demo: the service must answer before and after the
// kill, all clones must serve, the gap must stay within the failover
// bound (MissedBeats intervals), and no goroutine of it may outlive it.
func TestRun(t *testing.T) {
	defer testenv.CheckGoroutines(t)()
	var out bytes.Buffer
	o := options{interval: testInterval, missed: 3, killAfter: 2 * time.Second, after: 2500 * time.Millisecond}
	res, err := run(&out, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if res.okBefore == 0 || res.okAfter == 0 {
		t.Errorf("answers before the kill %d, after %d: want both > 0", res.okBefore, res.okAfter)
	}
	if bound := time.Duration(o.missed)*o.interval + loadMargin; res.gap <= 0 || res.gap > bound {
		t.Errorf("service gap %v without a successful answer, want within %v (%d missed beats of %v, and %v for load)",
			res.gap, bound, o.missed, o.interval, loadMargin)
	}
	for _, want := range []string{"hello from clone 1", "hello from clone 2", "hello from clone 3",
		"lb1: active", "killing lb1", "lb2: active", "service gap:", "shutting down"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRunActiveActive runs the active-active demo: both balancers must
// serve before the kill; lb1 must notice lb2 down (OnPeerDown) within
// MissedBeats intervals; once it has, only lb1 may answer, and no request
// may fail; only the requests sent to lb2 between the kill and that
// notice may fail; once lb2 is back and lb1 has noticed (OnPeerUp), both
// must serve again; and no goroutine of it may outlive it.
func TestRunActiveActive(t *testing.T) {
	defer testenv.CheckGoroutines(t)()
	var out bytes.Buffer
	o := options{mode: "active-active", interval: testInterval, missed: 3,
		killAfter: 2 * time.Second, backAfter: 2500 * time.Millisecond, after: 2 * time.Second}
	res, err := runActiveActive(&out, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	const lb1, lb2 = 0, 1
	if s := res.served[phaseBefore]; s[lb1] == 0 || s[lb2] == 0 {
		t.Errorf("before the kill: lb1 answered %d, lb2 %d; want both > 0", s[lb1], s[lb2])
	}
	if n := res.failed[phaseBefore]; n != 0 {
		t.Errorf("before the kill: %d failed requests, want 0", n)
	}
	if bound := time.Duration(o.missed)*o.interval + loadMargin; res.detect <= 0 || res.detect > bound {
		t.Errorf("peer-down notice %v after the kill, want within %v (%d missed beats of %v, and %v for load)",
			res.detect, bound, o.missed, o.interval, loadMargin)
	}
	// The client sends at most a request every 10 ms, half of them to
	// lb2, and one may have been on its way when lb2 was killed.
	if n, bound := res.failed[phaseKilled], int(res.detect/(10*time.Millisecond))/2+2; n > bound {
		t.Errorf("between the kill and the peer-down notice (%v): %d failed requests, want at most %d", res.detect, n, bound)
	}
	if s := res.served[phaseDown]; s[lb1] == 0 || s[lb2] != 0 {
		t.Errorf("lb2 down: lb1 answered %d, lb2 %d; want only lb1", s[lb1], s[lb2])
	}
	// lb1 may hear from lb2 at once after its restart: no request need
	// fall between.
	if s := res.served[phaseBack]; s[lb2] != 0 {
		t.Errorf("lb2 restarted, before the peer-up notice: lb2 answered %d, want 0", s[lb2])
	}
	for _, p := range []int{phaseDown, phaseBack, phaseUp} {
		if n := res.failed[p]; n != 0 {
			t.Errorf("%s: %d failed requests, want 0", phaseNames[p], n)
		}
	}
	if s := res.served[phaseUp]; s[lb1] == 0 || s[lb2] == 0 {
		t.Errorf("after the return: lb1 answered %d, lb2 %d; want both > 0", s[lb1], s[lb2])
	}
	if res.rejoin <= 0 {
		t.Errorf("no peer-up notice after the restart")
	}
	for _, want := range []string{"hello from clone 1", "hello from clone 2", "hello from clone 3",
		"killing lb2", "lb1: peer lb2 down", "front balancer now lb1\n", "restarting lb2",
		"lb1: peer lb2 up", "front balancer now lb1, lb2\n", "failed requests:", "shutting down"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
