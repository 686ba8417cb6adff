package shard_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/shard"
)

// strategy builds one kind of Sharder over members, so the properties every
// Sharder promises are tested once for all of them.
type strategy struct {
	name string
	// hashed strategies honour hash tags and spread keys evenly.
	hashed bool
	build  func(members []shard.Member) (shard.Sharder, error)
}

var strategies = []strategy{
	{"jump", true, func(m []shard.Member) (shard.Sharder, error) { return shard.NewJump(m) }},
	{"rendezvous", true, func(m []shard.Member) (shard.Sharder, error) { return shard.NewRendezvous(m) }},
	{"ring", true, func(m []shard.Member) (shard.Sharder, error) { return shard.NewRing(m, shard.RingConfig{}) }},
	{"ketama", true, func(m []shard.Member) (shard.Sharder, error) {
		return shard.NewRing(m, shard.RingConfig{Ketama: true})
	}},
	{"maglev", true, func(m []shard.Member) (shard.Sharder, error) { return shard.NewMaglev(m, shard.MaglevConfig{}) }},
	{"bounded", true, func(m []shard.Member) (shard.Sharder, error) { return shard.NewBounded(m, shard.BoundedConfig{}) }},
	{"range", false, func(m []shard.Member) (shard.Sharder, error) {
		// One span per member, at evenly spaced first bytes.
		spans := make([]shard.Span, len(m))
		for i, mem := range m {
			if mem.Weight != 1 {
				return nil, fmt.Errorf("%w: range spans are unweighted", shard.ErrInvalidWeight)
			}
			if i > 0 {
				spans[i].Start = fmt.Sprintf("%c%03d", 'a'+i*26/len(m), i)
			}
			spans[i].Shard = mem.Name
		}
		return shard.NewRange(spans)
	}},
}

func names(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("shard-%02d", i)
	}
	return s
}

// keys returns n distinct 23-byte keys.
func keys(n int) []string {
	k := make([]string, n)
	for i := range k {
		k[i] = fmt.Sprintf("user:%018d", i)
	}
	return k
}

func TestConstructorsRefuseBadMembers(t *testing.T) {
	for _, s := range strategies {
		for _, tc := range []struct {
			name    string
			members []shard.Member
			err     error
		}{
			{"none", nil, shard.ErrNoShards},
			{"empty name", []shard.Member{{Name: "a", Weight: 1}, {Name: "", Weight: 1}}, shard.ErrEmptyName},
			{"zero weight", []shard.Member{{Name: "a", Weight: 0}}, shard.ErrInvalidWeight},
			{"negative weight", []shard.Member{{Name: "a", Weight: -3}}, shard.ErrInvalidWeight},
		} {
			t.Run(s.name+"/"+tc.name, func(t *testing.T) {
				sh, err := s.build(tc.members)
				require.ErrorIs(t, err, tc.err)
				require.Nil(t, sh)
			})
		}
		if s.name != "range" { // a range sharder may give one shard several spans
			t.Run(s.name+"/duplicate", func(t *testing.T) {
				_, err := s.build(shard.Members("a", "b", "a"))
				require.ErrorIs(t, err, shard.ErrDuplicateName)
			})
		}
	}
}

func TestLookupsAreTotalAndDeterministic(t *testing.T) {
	odd := []string{"", "\xff\xfe\x00", strings.Repeat("k", 1<<20), "{", "}", "{}", "{a}", "日本語", "\x00"}
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			for _, n := range []int{1, 2, 7, 100} {
				a, err := s.build(shard.Members(names(n)...))
				require.NoError(t, err)
				b, err := s.build(shard.Members(names(n)...))
				require.NoError(t, err)
				listed := map[string]bool{}
				for _, name := range a.Shards() {
					listed[name] = true
				}
				require.Len(t, listed, n)
				for _, k := range append(keys(2000), odd...) {
					got := a.Shard(k)
					require.True(t, listed[got], "key %q went to unlisted shard %q", k, got)
					require.Equal(t, got, b.Shard(k), "key %q not deterministic", k)
				}
			}
		})
	}
}

func TestHashTagsKeepRelatedKeysTogether(t *testing.T) {
	for _, s := range strategies {
		if !s.hashed {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			sh, err := s.build(shard.Members(names(50)...))
			require.NoError(t, err)
			spread := map[string]bool{}
			for i := range 200 {
				tag := fmt.Sprintf("user%d", i)
				want := sh.Shard(tag)
				spread[want] = true
				for _, suffix := range []string{":profile", ":orders", ":cart"} {
					require.Equal(t, want, sh.Shard("{"+tag+"}"+suffix))
				}
			}
			require.Greater(t, len(spread), 25, "tags should still spread over shards")
		})
	}
}

// TestEvenSpread checks the share of each shard for the strategies that
// promise an even spread: max/mean close to the binomial noise of the key
// count (for 200,000 keys over 10 shards, one standard deviation is 0.7%).
func TestEvenSpread(t *testing.T) {
	limits := map[string]float64{"jump": 1.02, "rendezvous": 1.02, "maglev": 1.02, "bounded": 1.25 * 1.02, "ring": 1.25, "ketama": 1.25}
	ks := keys(200_000)
	for _, s := range strategies {
		limit, ok := limits[s.name]
		if !ok {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			sh, err := s.build(shard.Members(names(10)...))
			require.NoError(t, err)
			count := map[string]int{}
			for _, k := range ks {
				count[sh.Shard(k)]++
			}
			maxLoad := 0
			for _, c := range count {
				maxLoad = max(maxLoad, c)
			}
			ratio := float64(maxLoad) / (float64(len(ks)) / 10)
			t.Logf("max/mean %.4f", ratio)
			require.LessOrEqual(t, ratio, limit)
		})
	}
}

// TestWeights checks that a weight-3 member gets about three times the keys
// of a weight-1 member, for every weighted strategy.
func TestWeights(t *testing.T) {
	ks := keys(200_000)
	for _, s := range strategies {
		if s.name == "jump" || s.name == "range" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			members := shard.Members(names(8)...)
			members[3].Weight = 3
			sh, err := s.build(members)
			require.NoError(t, err)
			count := map[string]int{}
			for _, k := range ks {
				count[sh.Shard(k)]++
			}
			mean := float64(len(ks)) / 10 // total weight 10
			require.InDelta(t, 3.0, float64(count[members[3].Name])/mean, 0.3)
			for i, m := range members {
				if i != 3 {
					require.InDelta(t, 1.0, float64(count[m.Name])/mean, 0.25, m.Name)
				}
			}
		})
	}
}

func TestUnweightedStrategiesRefuseWeights(t *testing.T) {
	_, err := shard.NewJump([]shard.Member{{Name: "a", Weight: 2}})
	require.ErrorIs(t, err, shard.ErrInvalidWeight)
}

// TestMinimalDisruption: adding an 11th shard to 10 moves keys only to the
// new shard, and about 1/11 of them; removing one moves only its keys.
func TestMinimalDisruption(t *testing.T) {
	ks := keys(100_000)
	ideal := 1.0 / 11
	for _, s := range strategies {
		if !s.hashed {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			ten, err := s.build(shard.Members(names(10)...))
			require.NoError(t, err)
			eleven, err := s.build(shard.Members(names(11)...))
			require.NoError(t, err)
			moved := 0
			for _, k := range ks {
				a, b := ten.Shard(k), eleven.Shard(k)
				if a != b {
					moved++
					if s.name != "bounded" && s.name != "maglev" {
						require.Equal(t, "shard-10", b, "key %q moved between old shards", k)
					}
				}
			}
			frac := float64(moved) / float64(len(ks))
			t.Logf("moved %.4f of keys, %.3f × ideal", frac, frac/ideal)
			require.Less(t, frac/ideal, 1.12)
		})
	}
}

func TestOwners(t *testing.T) {
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			sh, err := s.build(shard.Members(names(5)...))
			require.NoError(t, err)
			_, isReplicator := sh.(shard.Replicator)
			for _, k := range keys(500) {
				one, err := shard.Owners(sh, k, 1)
				require.NoError(t, err)
				require.Equal(t, []string{sh.Shard(k)}, one)
				three, err := shard.Owners(sh, k, 3)
				if !isReplicator {
					require.ErrorIs(t, err, shard.ErrNotSupported)
					continue
				}
				require.NoError(t, err)
				require.Len(t, three, 3)
				require.Equal(t, sh.Shard(k), three[0])
				require.NotEqual(t, three[0], three[1])
				require.NotEqual(t, three[1], three[2])
				require.NotEqual(t, three[0], three[2])
			}
			if isReplicator {
				for _, n := range []int{0, -1, 6} {
					_, err := shard.Owners(sh, "k", n)
					require.ErrorIs(t, err, shard.ErrInvalidCount)
				}
				all, err := shard.Owners(sh, "k", 5)
				require.NoError(t, err)
				require.ElementsMatch(t, sh.Shards(), all)
			}
		})
	}
}

// TestOwnersFailOver: the second owner of a key is where the key goes when
// its first owner is removed, so replicas are already in place.
func TestOwnersFailOver(t *testing.T) {
	for _, s := range strategies {
		if s.name != "rendezvous" && s.name != "ring" && s.name != "jump" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			all := names(8)
			sh, err := s.build(shard.Members(all...))
			require.NoError(t, err)
			for _, k := range keys(2000) {
				owners, err := shard.Owners(sh, k, 2)
				require.NoError(t, err)
				var without shard.Sharder
				if j, ok := sh.(*shard.Jump); ok {
					without, err = j.Remove(owners[0])
				} else {
					var rest []string
					for _, n := range all {
						if n != owners[0] {
							rest = append(rest, n)
						}
					}
					without, err = s.build(shard.Members(rest...))
				}
				require.NoError(t, err)
				require.Equal(t, owners[1], without.Shard(k), "key %q", k)
			}
		})
	}
}

func FuzzShard(f *testing.F) {
	f.Add("user:1", uint8(3), uint8(1))
	f.Add("", uint8(1), uint8(0))
	f.Add("{tag}rest", uint8(200), uint8(7))
	f.Add("\xff\x00{", uint8(17), uint8(255))
	f.Fuzz(func(t *testing.T, key string, n, w uint8) {
		count := int(n)%40 + 1
		members := shard.Members(names(count)...)
		members[0].Weight = int(w)%5 + 1
		for _, s := range strategies {
			sh, err := s.build(members)
			if err != nil {
				// Only the unweighted strategies may refuse, and only for the weight.
				require.ErrorIs(t, err, shard.ErrInvalidWeight, s.name)
				require.NotEqual(t, 1, members[0].Weight)
				continue
			}
			got := sh.Shard(key)
			require.Contains(t, sh.Shards(), got, s.name)
			require.Equal(t, got, sh.Shard(key), s.name)
		}
		require.GreaterOrEqual(t, shard.Slot(key), 0)
		require.Less(t, shard.Slot(key), shard.SlotCount)
	})
}
