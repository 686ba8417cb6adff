package testenv

import "time"

// A Switcher switches the master of a private Sentinel group or of one Cluster
// shard, for the failover tests of the Redis-backed primitives.
type Switcher interface {
	// Forced is a planned switch (SENTINEL FAILOVER, CLUSTER FAILOVER); it
	// returns once the group is healthy again.
	Forced()
	// Kill SIGKILLs the master, calls killed at once (so that a test times
	// what follows from the kill, not from the switch), waits for the new
	// master and brings the killed node back as its replica.
	Kill(killed func())
}

// Switcher switches the group's master.
func (g *SentinelGroup) Switcher() Switcher { return sentinelSwitcher{g} }

type sentinelSwitcher struct{ g *SentinelGroup }

func (s sentinelSwitcher) Forced() { s.g.t.Helper(); s.g.Failover() }

func (s sentinelSwitcher) Kill(killed func()) {
	s.g.t.Helper()
	k := s.g.KillMaster()
	killed()
	s.g.WaitSwitched(k)
	s.g.Rejoin(k)
}

// Switcher switches the master of the shard serving key's slot.
func (c *Cluster) Switcher(key string) Switcher { return clusterSwitcher{c, key} }

type clusterSwitcher struct {
	c   *Cluster
	key string
}

func (s clusterSwitcher) Forced() { s.c.t.Helper(); s.c.FailoverShard(s.key) }

func (s clusterSwitcher) Kill(killed func()) {
	s.c.t.Helper()
	k := s.c.KillMaster(s.key)
	killed()
	s.c.WaitSwitched(k, s.key)
	s.c.Rejoin(k)
}

// RunSwitches runs Failovers() switches of s, alternately forced and a killed
// master (the first is forced), each after pause; killed is called at each
// kill, and afterKill, if not nil, once that switch is over.
func RunSwitches(s Switcher, pause time.Duration, killed, afterKill func()) {
	for i := range Failovers() {
		time.Sleep(pause)
		if i%2 == 0 {
			s.Forced()
			continue
		}
		s.Kill(killed)
		if afterKill != nil {
			afterKill()
		}
	}
}
