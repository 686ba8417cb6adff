package chaos

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Synthetic histories for CheckCacheInval, with times in milliseconds.

var cacheInvalTestBounds = CacheInvalBounds{TTL: 2 * time.Second, OtherClones: 500 * time.Millisecond, Margin: 10 * time.Millisecond}

func cacheInvalBump(key, v int, call, ret int64) porcupine.Operation {
	return porcupine.Operation{Input: CacheInvalOp{Kind: "bump", Key: key, Version: v}, Call: call * ms, Return: ret * ms}
}

// cacheInvalDelete is a Delete on clone announcing v; ret < 0 is a Delete
// that failed (its return Unknown).
func cacheInvalDelete(key, clone, v int, call, ret int64) porcupine.Operation {
	op := porcupine.Operation{Input: CacheInvalOp{Kind: "invalidate", Key: key, Clone: clone, Version: v, OK: ret >= 0}, Call: call * ms, Return: ret * ms}
	if ret < 0 {
		op.Return = Unknown
	}
	return op
}

func cacheInvalRead(key, clone, v int, readAt, call, ret int64) porcupine.Operation {
	return porcupine.Operation{Input: CacheInvalOp{Kind: "read", Key: key, Clone: clone, Version: v, ReadAt: readAt * ms}, Call: call * ms, Return: ret * ms}
}

// cacheInvalBase: key 1 goes to version 1 at 100–101 ms, deleted on clone
// 0 at 102–110, to version 2 at 1000–1001, deleted on clone 1 at
// 1002–1010 (failed: unknown outcome).
func cacheInvalBase() []porcupine.Operation {
	return []porcupine.Operation{
		cacheInvalBump(1, 1, 100, 101),
		cacheInvalDelete(1, 0, 1, 102, 110),
		cacheInvalBump(1, 2, 1000, 1001),
		cacheInvalDelete(1, 1, 2, 1002, -1),
	}
}

func TestCheckCacheInvalValid(t *testing.T) {
	for name, read := range map[string]porcupine.Operation{
		"initial version before any change":            cacheInvalRead(1, 0, 0, 5, 50, 60),
		"old version during the bump":                  cacheInvalRead(1, 0, 0, 99, 100, 105),
		"old version during the Delete":                cacheInvalRead(1, 0, 0, 99, 105, 112),
		"old version read exactly as the Delete ends":  cacheInvalRead(1, 0, 0, 99, 110, 112),
		"new version after the Delete":                 cacheInvalRead(1, 0, 1, 111, 111, 115),
		"another clone, within OtherClones":            cacheInvalRead(1, 2, 0, 99, 600, 601),
		"after a failed Delete, within the ttl":        cacheInvalRead(1, 1, 1, 999, 1500, 1501),
		"loaded just within ttl plus margin":           cacheInvalRead(1, 1, 1, 999, 999+2000+10, 3100),
		"a version loaded as it was being overwritten": cacheInvalRead(1, 1, 1, 1001, 1002, 1003),
		"another key is unaffected":                    cacheInvalRead(2, 0, 0, 5, 500, 501),
	} {
		t.Run(name, func(t *testing.T) {
			if v := CheckCacheInval(append(cacheInvalBase(), read), cacheInvalTestBounds); v != "" {
				t.Errorf("valid history reported: %s", v)
			}
		})
	}
}

func TestCheckCacheInvalViolations(t *testing.T) {
	strict := cacheInvalTestBounds
	strict.OtherClones = 0
	for name, tc := range map[string]struct {
		read   porcupine.Operation
		bounds CacheInvalBounds
		want   string
	}{
		"clause 1: a version never written":                {cacheInvalRead(1, 0, 3, 1500, 1500, 1501), cacheInvalTestBounds, "never written"},
		"clause 1: a negative version":                     {cacheInvalRead(1, 0, -1, 50, 50, 51), cacheInvalTestBounds, "never written"},
		"clause 1: loaded before it was written":           {cacheInvalRead(1, 0, 2, 900, 1500, 1501), cacheInvalTestBounds, "no load produced"},
		"clause 1: loaded after it was overwritten":        {cacheInvalRead(1, 0, 0, 200, 50, 300), cacheInvalTestBounds, "no load produced"},
		"clause 1: loaded after the read returned":         {cacheInvalRead(1, 0, 1, 400, 300, 350), cacheInvalTestBounds, "no load produced"},
		"clause 2: older than ttl plus margin":             {cacheInvalRead(1, 1, 1, 999, 999+2000+11, 3100), cacheInvalTestBounds, "more than the ttl"},
		"clause 3: same clone after the Delete":            {cacheInvalRead(1, 0, 0, 99, 111, 112), cacheInvalTestBounds, "on the same clone"},
		"clause 3: another clone after OtherClones":        {cacheInvalRead(1, 2, 0, 99, 611, 612), cacheInvalTestBounds, "on clone 0"},
		"clause 3: another clone at once when synchronous": {cacheInvalRead(1, 2, 0, 99, 111, 112), strict, "on clone 0"},
		"clause 3: a failed Delete lifts no earlier bound": {cacheInvalRead(1, 0, 0, 99, 1500, 1501), cacheInvalTestBounds, "on the same clone"},
	} {
		t.Run(name, func(t *testing.T) {
			v := CheckCacheInval(append(cacheInvalBase(), tc.read), tc.bounds)
			if !strings.Contains(v, tc.want) {
				t.Errorf("got %q, want a violation saying %q", v, tc.want)
			}
		})
	}
}

// cacheInvalNaive is the promise read literally, in time quadratic in
// the history: the reference CheckCacheInval is tested against.
func cacheInvalNaive(ops []porcupine.Operation, b CacheInvalBounds) bool {
	for _, r := range ops {
		in := r.Input.(CacheInvalOp)
		if in.Kind != "read" {
			continue
		}
		// The version's interval in the source: from its bump's call to
		// the next bump's return.
		from, until, written := int64(0), int64(Unknown), in.Version == 0
		for _, op := range ops {
			bin := op.Input.(CacheInvalOp)
			if bin.Kind != "bump" || bin.Key != in.Key {
				continue
			}
			if bin.Version == in.Version {
				from, written = op.Call, true
			}
			if bin.Version == in.Version+1 {
				until = op.Return
			}
		}
		if !written || in.ReadAt < from || in.ReadAt > until || in.ReadAt > r.Return {
			return false
		}
		if r.Call-in.ReadAt > int64(b.TTL+b.Margin) {
			return false
		}
		for _, op := range ops {
			iin := op.Input.(CacheInvalOp)
			if iin.Kind != "invalidate" || iin.Key != in.Key || !iin.OK || op.Return == Unknown || iin.Version <= in.Version {
				continue
			}
			lag := int64(b.OtherClones)
			if iin.Clone == in.Clone {
				lag = 0
			}
			if op.Return+lag < r.Call {
				return false
			}
		}
	}
	return true
}

// TestCheckCacheInvalAgreesWithNaive compares the checker with the naive
// reading of the promise on random histories of two keys and three
// clones, about half of them violating it.
func TestCheckCacheInvalAgreesWithNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bad := 0
	const runs = 20000
	for range runs {
		var ops []porcupine.Operation
		now := int64(0)
		versions := []int{0, 0}
		history := [][]int64{{0}, {0}} // when each version became current
		for range 2 + rng.IntN(12) {
			key := rng.IntN(2)
			now += rng.Int64N(300)
			switch rng.IntN(3) {
			case 0:
				versions[key]++
				ops = append(ops, cacheInvalBump(key, versions[key], now, now+1))
				history[key] = append(history[key], now)
				ret := now + 2 + rng.Int64N(50)
				if rng.IntN(4) == 0 {
					ret = -1
				}
				ops = append(ops, cacheInvalDelete(key, rng.IntN(3), versions[key], now+2, ret))
			default:
				// A version at random, up to one beyond what is written,
				// loaded at a time near when it was current; or, half the
				// time, the current version.
				v := rng.IntN(versions[key] + 2)
				at := now - rng.Int64N(2500)
				if v < len(history[key]) {
					at = history[key][v] + rng.Int64N(400)
				}
				if rng.IntN(2) == 0 { // the current version, loaded since it was written
					v = versions[key]
					at = history[key][v] + rng.Int64N(now-history[key][v]+1)
				}
				ops = append(ops, cacheInvalRead(key, rng.IntN(3), v, at, now, now+rng.Int64N(20)))
			}
		}
		got := CheckCacheInval(ops, cacheInvalTestBounds)
		want := cacheInvalNaive(ops, cacheInvalTestBounds)
		if (got == "") != want {
			t.Fatalf("checker %q, naive valid=%v, on %v", got, want, ops)
		}
		if !want {
			bad++
		}
	}
	t.Logf("%d random histories, %d violating", runs, bad)
	if bad < runs/10 || bad > runs*9/10 {
		t.Errorf("%d of %d random histories violate: the generator tests one side only", bad, runs)
	}
}
