package chaos

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scaleout/scaleout/internal/testenv"
)

// A Process is a server the run owns and may pause, kill and restart.
type Process interface {
	Pause()
	Resume()
	Kill()
	Restart()
}

// A Schedule injects faults, chosen by a seeded random source, into the
// links (proxies) and processes it is given, until its context ends.
type Schedule struct {
	rng     *rand.Rand
	links   []*testenv.FaultProxy
	request func([]byte) bool // which requests a lost reply may hit
	procs   []Process
	// LosesData reports, for a kill and restart of procs[i], that the
	// server comes back empty: OnCrash is then called with the time the
	// data was lost, for the model.
	LosesData bool
	OnCrash   func(at time.Time)
	// Quiet is how long the schedule leaves the system alone between
	// faults: drawn from [Quiet/2, Quiet*3/2). Default 400ms.
	Quiet time.Duration

	mu     sync.Mutex
	counts map[string]int
}

// NewSchedule returns a schedule over links (and procs, which may be nil)
// seeded with seed. request selects the requests whose replies a lost-reply
// fault may drop (nil: any); a client's connection handshake should be left
// alone, or the fault only costs a reconnection.
func NewSchedule(seed uint64, links []*testenv.FaultProxy, procs []Process, request func([]byte) bool) *Schedule {
	return &Schedule{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		links:   links,
		request: request,
		procs:   procs,
		counts:  map[string]int{},
	}
}

// Faults returns how many faults of each kind were injected.
func (s *Schedule) Faults() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counts)
}

// String lists the faults injected, by kind.
func (s *Schedule) String() string {
	f := s.Faults()
	keys := slices.Sorted(maps.Keys(f))
	parts := make([]string, len(keys))
	n := 0
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, f[k])
		n += f[k]
	}
	return fmt.Sprintf("%d faults (%s)", n, strings.Join(parts, ", "))
}

func (s *Schedule) count(kind string) {
	s.mu.Lock()
	s.counts[kind]++
	s.mu.Unlock()
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// between draws a duration in [lo, hi).
func (s *Schedule) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)))
}

// Run injects faults until ctx ends, then heals everything: no link or
// process is left faulty. It must run on the test's goroutine (it restarts
// testenv servers, which may fail the test).
func (s *Schedule) Run(ctx context.Context) {
	quiet := s.Quiet
	if quiet == 0 {
		quiet = 400 * time.Millisecond
	}
	defer s.heal()
	for sleep(ctx, s.between(quiet/2, quiet*3/2)) {
		kinds := []string{"delay", "lost reply", "reset", "blackhole", "refuse"}
		if len(s.procs) > 0 {
			kinds = append(kinds, "pause", "kill")
		}
		kind := kinds[s.rng.IntN(len(kinds))]
		if len(s.links) == 0 && kind != "pause" && kind != "kill" {
			continue
		}
		var link *testenv.FaultProxy
		if len(s.links) > 0 {
			link = s.links[s.rng.IntN(len(s.links))]
		}
		s.count(kind)
		switch kind {
		case "delay":
			link.SetDelay(s.between(2*time.Millisecond, 30*time.Millisecond))
			sleep(ctx, s.between(200*time.Millisecond, time.Second))
			link.SetDelay(0)
		case "lost reply":
			for range 1 + s.rng.IntN(3) {
				link.DropReply(s.request)
			}
		case "reset":
			link.ResetAll()
		case "blackhole":
			link.Blackhole(true)
			sleep(ctx, s.between(100*time.Millisecond, 1200*time.Millisecond))
			link.Blackhole(false)
		case "refuse":
			link.Refuse(true)
			sleep(ctx, s.between(100*time.Millisecond, 800*time.Millisecond))
			link.Refuse(false)
		case "pause":
			p := s.procs[s.rng.IntN(len(s.procs))]
			p.Pause()
			sleep(ctx, s.between(100*time.Millisecond, 1200*time.Millisecond))
			p.Resume()
		case "kill":
			p := s.procs[s.rng.IntN(len(s.procs))]
			p.Kill()
			if s.LosesData && s.OnCrash != nil {
				s.OnCrash(time.Now())
			}
			sleep(ctx, s.between(50*time.Millisecond, 500*time.Millisecond))
			p.Restart()
		}
	}
}

func (s *Schedule) heal() {
	for _, l := range s.links {
		l.SetDelay(0)
		l.Blackhole(false)
		l.Refuse(false)
		l.Disarm()
	}
}
