package shard

import "slices"

// sortUint64 sorts s ascending. Large inputs get an LSD radix sort, 11 bits
// a pass, linear in len(s); the passes over bits that are equal in every
// element are skipped, so keys with a small low part (a rank below a
// position) cost no more passes than their varying bits need.
func sortUint64(s []uint64) {
	if len(s) < 1<<12 {
		slices.Sort(s)
		return
	}
	const bitsPer = 11
	const buckets = 1 << bitsPer
	var or, and uint64 = 0, ^uint64(0)
	for _, v := range s {
		or |= v
		and &= v
	}
	varying := or ^ and
	tmp := make([]uint64, len(s))
	src, dst := s, tmp
	var count [buckets]int
	for shift := 0; shift < 64; shift += bitsPer {
		if (varying>>shift)&(buckets-1) == 0 {
			continue
		}
		clear(count[:])
		for _, v := range src {
			count[(v>>shift)&(buckets-1)]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, v := range src {
			d := (v >> shift) & (buckets - 1)
			dst[count[d]] = v
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &s[0] {
		copy(s, src)
	}
}
