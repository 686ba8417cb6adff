//go:build race

package cache

// StoreRaceEnabled reports a -race build, under which sync.Pool drops
// items at random: allocation counts of the hit path are then not zero.
const StoreRaceEnabled = true
