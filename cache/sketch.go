package cache

import "math/bits"

// sketch is a count-min sketch of 4-bit counters estimating how often a
// key hash was seen recently (TinyLFU's frequency filter). Each uint64
// word holds 16 counters; a hash maps to one counter in each of 4 rows,
// spread over the whole table, and its estimate is the least of them.
// Counters saturate at 15. After sampleSize increments every counter is
// halved, so that the sketch reflects recent popularity (aging).
//
// The table starts small and doubles, cleared, as the shard fills, up to
// about one word per entry of capacity: an unbounded shard does not pay
// for a sketch sized to its theoretical maximum.
type sketch struct {
	table      []uint64
	shift      uint // 64 - log2(counters in table)
	additions  int
	sampleSize int
	maxWords   int
}

const (
	sketchMinWords  = 64
	sketchMaxWords  = 1 << 22 // 32 MiB
	sketchResetMask = 0x7777_7777_7777_7777
)

var sketchSeeds = [4]uint64{
	0x9E37_79B9_7F4A_7C15, 0xBF58_476D_1CE4_E5B9,
	0x94D0_49BB_1331_11EB, 0xD6E8_FEB8_6659_FD93,
}

// init prepares a sketch for a shard of up to capacity entries.
func (k *sketch) init(capacity int64) {
	k.maxWords = int(ceilPow2(min(max(capacity, sketchMinWords), sketchMaxWords)))
	k.resize(min(k.maxWords, 1024))
}

func (k *sketch) resize(words int) {
	k.table = make([]uint64, words)
	k.shift = uint(64 - bits.Len(uint(words*16)-1))
	k.additions = 0
	k.sampleSize = 10 * words
}

// ensure grows the table when the shard holds more entries than it has
// words. Growing clears the counts, like aging does.
func (k *sketch) ensure(entries int64) {
	if entries > int64(len(k.table)) && len(k.table) < k.maxWords {
		k.resize(min(k.maxWords, int(ceilPow2(entries))))
	}
}

// counter returns the word index and bit shift of h's counter in row i.
func (k *sketch) counter(h uint64, i int) (int, uint) {
	x := (h ^ sketchSeeds[i]) * sketchSeeds[(i+1)&3]
	x ^= x >> 29
	x *= 0xFF51_AFD7_ED55_8CCD
	c := x >> k.shift
	return int(c >> 4), uint(c&15) << 2
}

// increment counts one occurrence of h.
func (k *sketch) increment(h uint64) {
	added := false
	for i := range 4 {
		w, s := k.counter(h, i)
		if (k.table[w]>>s)&15 != 15 {
			k.table[w] += 1 << s
			added = true
		}
	}
	if added {
		k.additions++
		if k.additions >= k.sampleSize {
			k.age()
		}
	}
}

// estimate returns the estimated recent count of h, 0 to 15.
func (k *sketch) estimate(h uint64) uint64 {
	m := uint64(15)
	for i := range 4 {
		w, s := k.counter(h, i)
		m = min(m, (k.table[w]>>s)&15)
	}
	return m
}

// age halves every counter.
func (k *sketch) age() {
	for i, w := range k.table {
		k.table[i] = (w >> 1) & sketchResetMask
	}
	k.additions /= 2
}

// ceilPow2 returns the least power of two >= n, for 1 <= n <= 1<<62.
func ceilPow2(n int64) int64 {
	return 1 << bits.Len64(uint64(n-1))
}
