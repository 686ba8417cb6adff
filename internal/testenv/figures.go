package testenv

import (
	"encoding/json"
	"testing"
	"time"
)

// FiguresMarker starts the line LogFailoverFigures writes, for
// internal/cmd/failoverfigures to find in `go test -v` output.
const FiguresMarker = "failover figures: "

// The counts a failover test reports, each under its own column of the
// side-by-side table (a primitive reports those that apply to it).
const (
	CountAcknowledged = "acknowledged"         // writes the primitive acknowledged: Enqueues, commits, terms, Sets
	CountFailed       = "failed calls"         // calls that failed within their deadline
	CountJobsLost     = "jobs lost"            // acknowledged Enqueues whose job vanished
	CountJobsTwice    = "jobs run twice"       // jobs delivered again after an acknowledged Ack
	CountRolledBack   = "sessions rolled back" // sessions whose acknowledged commit was undone
	CountLogoutUndone = "logouts undone"       // sessions served again after an acknowledged logout
	CountTokenFaults  = "token regressions or duplicates"
	CountStaleKeys    = "keys stale after" // keys reading an older value once the switches were over
)

// FailoverFigures are what one failover test measured through Switches master
// switches of one topology with one setting of its primitive.
type FailoverFigures struct {
	Primitive string         `json:"primitive"`
	Topology  string         `json:"topology"`
	Setting   string         `json:"setting"`
	Switches  int            `json:"switches"`
	Counts    map[string]int `json:"counts"`
	// KillToFirst is, for each killed master, the time from its SIGKILL to
	// the primitive's first acknowledged operation after it.
	KillToFirst []time.Duration `json:"kill_to_first"`
}

// LogFailoverFigures logs f as one line of JSON after FiguresMarker, so that
// `make failover-figures` puts every primitive's figures side by side.
func LogFailoverFigures(t testing.TB, f FailoverFigures) {
	t.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatalf("failover figures: %v", err)
	}
	t.Log(FiguresMarker + string(b))
}
