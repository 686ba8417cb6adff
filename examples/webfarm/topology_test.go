package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The migrator may move rows only once every live clone applied the
// topology that added the old shards to its reads: a clone that knew only
// the old shards would read a moved row where it no longer is (a 503) and
// write it there, behind the migrator (an update lost).
func TestMoveWaitsForEveryLiveClone(t *testing.T) {
	dead := &node{name: "clone-3", done: make(chan struct{})}
	close(dead.done)
	f := &farm{nodes: map[string]*node{
		"clone-1": {name: "clone-1", done: make(chan struct{})},
		"clone-2": {name: "clone-2", done: make(chan struct{})},
		"clone-3": dead,
	}}
	f.topo = topology{Version: 4, Shards: []string{"s0", "s1"},
		Clones: []cloneAddr{{Name: "clone-1"}, {Name: "clone-2"}, {Name: "clone-3"}}}
	f.topo.Previous = f.topo.Shards
	f.topo.Shards = append(f.topo.Shards, "s2")
	f.topo.Version++
	f.moveFrom = f.topo.Version

	f.heard("clone-1", 5)
	f.heard("lb-1", 5) // a balancer reads no rows
	f.heard("clone-2", 4)
	require.False(t, f.topo.Move, "clone-2 still reads only the old shards")
	f.heard("clone-2", 5)
	require.True(t, f.topo.Move, "every live clone (clone-3 is dead) reads both")
	require.Equal(t, 6, f.topo.Version, "Move is a new version, which the clones apply")
	f.heard("clone-1", 6)
	require.Equal(t, 6, f.topo.Version, "Move is set once")
}
