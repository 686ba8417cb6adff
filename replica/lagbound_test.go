package replica

import (
	"testing"
	"time"
)

// TestTrailBoundsABusyReplica is the case a loaded machine produces after
// an idle spell: the replica replays a burst more slowly than probes come,
// so it never has everything it received, and its last replayed
// transaction is as old as the idle spell. The primary's trail says it
// holds every write older than the latest mark it has passed.
func TestTrailBoundsABusyReplica(t *testing.T) {
	ms := func(n int) int64 { return int64(time.Duration(n) * time.Millisecond) }
	var tr primaryTrail
	a, b := new(member), new(member)
	tr.record(a, 1, 100, ms(0), ms(0))
	tr.record(a, 1, 200, ms(100), ms(100))
	tr.record(a, 1, 300, ms(200), ms(200))

	if _, ok := tr.lagBound(99, ms(200)); ok {
		t.Fatal("a replica behind every mark has no bound")
	}
	if lag, ok := tr.lagBound(250, ms(200)); !ok || lag != 100*time.Millisecond {
		t.Fatalf("replayed 250 ≥ the mark of 100ms: lag %v, %v; want 100ms", lag, ok)
	}
	if lag, ok := tr.lagBound(300, ms(150)); !ok || lag != 0 {
		t.Fatalf("a mark newer than the replica's probe bounds its lag at 0: %v, %v", lag, ok)
	}

	tr.record(a, 2, 50, ms(300), ms(300)) // promoted: a new timeline
	if len(tr.marks) != 1 {
		t.Fatalf("marks of the previous timeline were kept: %v", tr.marks)
	}
	tr.record(b, 2, 60, ms(400), ms(400)) // another primary
	if lag, ok := tr.lagBound(60, ms(400)); !ok || lag != 0 || len(tr.marks) != 1 {
		t.Fatalf("after a change of primary the trail holds only its marks: %v %v %v", lag, ok, tr.marks)
	}
	for i := range 2 * trailLen {
		tr.record(b, 2, uint64(100+i), ms(500+i), ms(500+i))
	}
	if len(tr.marks) != trailLen {
		t.Fatalf("the trail holds %d marks, want %d", len(tr.marks), trailLen)
	}
	tr.reset()
	if _, ok := tr.lagBound(1<<60, ms(1000)); ok {
		t.Fatal("reset kept marks")
	}
}

// TestTrailShowsWhatAReplicaLacks is the case of a replica whose WAL
// receiver fell behind: it reports no lag, having replayed all it
// received, but it has not replayed positions the primary wrote long ago.
func TestTrailShowsWhatAReplicaLacks(t *testing.T) {
	ms := func(n int) int64 { return int64(time.Duration(n) * time.Millisecond) }
	var tr primaryTrail
	a := new(member)
	tr.record(a, 1, 1000, ms(0), ms(5))
	tr.record(a, 1, 2000, ms(100), ms(130))
	tr.record(a, 1, 3000, ms(200), ms(210))

	if lag, ok := tr.lacking(900, ms(300)); !ok || lag != 295*time.Millisecond {
		t.Fatalf("replayed 900 < the mark answered at 5ms: lacking %v, %v; want 295ms", lag, ok)
	}
	if lag, ok := tr.lacking(1500, ms(300)); !ok || lag != 170*time.Millisecond {
		t.Fatalf("replayed 1500 < the mark answered at 130ms: lacking %v, %v; want 170ms", lag, ok)
	}
	if _, ok := tr.lacking(3000, ms(300)); ok {
		t.Fatal("a replica that holds every mark lacks nothing")
	}
	if _, ok := tr.lacking(3000-headerSlack, ms(300)); ok {
		t.Fatal("a replica short of the latest mark by a page header lacks nothing: an idle primary's insert position lies past one")
	}
	if lag, ok := tr.lacking(1000, ms(120)); !ok || lag != 0 {
		t.Fatalf("a mark answered after the replica's probe was sent says nothing of that probe: %v, %v", lag, ok)
	}
}
