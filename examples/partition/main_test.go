package main

import "testing"

// TestRun runs the demo: it fails if any user is not on the store the new
// sharder names after only the planned partitions were copied.
func TestRun(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
