package shard

import (
	"fmt"
	"sort"
)

// DefaultMaglevTableSize is the lookup-table size used when MaglevConfig
// leaves it zero: a prime above 100 × 655, so up to 655 shards stay within
// about 1% of an even share of the table.
const DefaultMaglevTableSize = 65537

// MaglevConfig configures NewMaglev. The zero value is the default.
type MaglevConfig struct {
	// TableSize is the number of lookup-table entries, a prime at least as
	// large as the number of shards; 0 means DefaultMaglevTableSize. Keep it
	// above 100 × shards for balance, and keep it fixed across membership
	// changes: a different size remaps nearly every key.
	TableSize int
}

const maxMaglevTableSize = 1 << 26

// Maglev is Google's Maglev consistent hash (Eisenbud et al., NSDI 2016): a
// prime-sized lookup table filled from each shard's own permutation of the
// entries, so a lookup is one hash and one table read, O(1) whatever the
// number of shards. Each shard owns within about shards/TableSize of an
// even share of the table; on a membership change a few entries beyond the
// minimum change owner (the paper measures a small percentage), and
// PlanMoves lists exactly which.
//
// Weights give a shard that many turns per round when the table is filled,
// so its share of entries is proportional to its weight. The table is
// filled in name order, so the mapping does not depend on the order members
// were given in.
type Maglev struct {
	names []string
	table []int32 // entry -> index into names
}

var (
	_ Sharder        = (*Maglev)(nil)
	_ partitionTable = (*Maglev)(nil)
)

// NewMaglev returns a Maglev over members.
func NewMaglev(members []Member, cfg MaglevConfig) (*Maglev, error) {
	names, _, err := validate(members)
	if err != nil {
		return nil, err
	}
	m := cfg.TableSize
	if m == 0 {
		m = DefaultMaglevTableSize
	}
	switch {
	case m < 0 || m > maxMaglevTableSize:
		return nil, fmt.Errorf("%w: maglev table size %d outside [1, %d]", ErrInvalidConfig, m, maxMaglevTableSize)
	case !isPrime(m):
		return nil, fmt.Errorf("%w: maglev table size %d is not prime", ErrInvalidConfig, m)
	case m < len(names):
		return nil, fmt.Errorf("%w: maglev table size %d is smaller than the %d shards", ErrInvalidConfig, m, len(names))
	}
	return &Maglev{names: names, table: populateMaglev(members, m)}, nil
}

// populateMaglev fills the table: in rounds, each shard (in name order)
// takes, per unit of weight, the next entry of its permutation that is
// still free.
func populateMaglev(members []Member, m int) []int32 {
	order := make([]int, len(members))
	maxW := 0
	for i, mem := range members {
		order[i] = i
		maxW = max(maxW, mem.Weight)
	}
	sort.Slice(order, func(a, b int) bool { return members[order[a]].Name < members[order[b]].Name })

	offset := make([]uint64, len(members))
	skip := make([]uint64, len(members))
	next := make([]uint64, len(members))
	credit := make([]int, len(members))
	for i, mem := range members {
		offset[i] = hashString(mem.Name, 0x6d61676c) % uint64(m)
		skip[i] = hashString(mem.Name, 0x65762121)%uint64(m-1) + 1
	}
	if m == 1 {
		skip[0] = 1 // a one-entry table has one permutation
	}

	table := make([]int32, m)
	for i := range table {
		table[i] = -1
	}
	for filled := 0; filled < m; {
		for _, i := range order {
			// Weights are relative to the heaviest shard, which takes one
			// entry every round; lighter shards bank credit between turns.
			credit[i] += members[i].Weight
			for credit[i] >= maxW && filled < m {
				credit[i] -= maxW
				c := (offset[i] + next[i]*skip[i]) % uint64(m)
				for table[c] >= 0 {
					next[i]++
					c = (offset[i] + next[i]*skip[i]) % uint64(m)
				}
				table[c] = int32(i)
				next[i]++
				filled++
			}
		}
	}
	return table
}

// Shards returns the shard names in construction order.
func (g *Maglev) Shards() []string { return g.names }

// Shard returns the shard that owns key.
func (g *Maglev) Shard(key string) string {
	return g.names[g.table[fastrange(keyHash(key), len(g.table))]]
}

// Partition returns the lookup-table entry key falls in, the unit that
// PlanMoves reports for Maglev.
func (g *Maglev) Partition(key string) int {
	return fastrange(keyHash(key), len(g.table))
}

func (g *Maglev) partitionOwners() []int32 { return g.table }

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
