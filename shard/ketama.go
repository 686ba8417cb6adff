package shard

import (
	"crypto/md5"
	"strconv"
)

// Ketama is the consistent-hashing scheme last.fm published as libketama
// (2007) for memcached clients, since copied by libmemcached's weighted
// ketama distribution, Algorithm::ConsistentHash::Ketama, node-hashring and
// many Go packages. A Ring with RingConfig.Ketama reproduces it exactly:
//
//   - Member i of weight w_i, among n members of total weight W, gets
//     floor(float32(w_i)/float32(W) · 40 · n) MD5 digests, computed in the
//     same mix of single and double precision as the C code, so that
//     borderline shares round the same way. Equal weights give 40 digests,
//     except at a few member counts (61, 122, 237, 244, ...) where that
//     rounding gives everyone 39, in libketama as here. libmemcached's
//     weighted mode rounds in single precision throughout and gives 39 at
//     other counts (25, 47, 50, ...): there the two disagree, and Ketama
//     mode follows libketama.
//   - Digest k (k = 0, 1, ...) is MD5 of the string "<name>-<k>" (decimal
//     k), and digest d gives four points, h = 0..3:
//     d[3+4h]<<24 | d[2+4h]<<16 | d[1+4h]<<8 | d[4h].
//   - A key's position is the first point of MD5(key) in the same byte
//     order, and its owner the first point at or after it, wrapping to the
//     first point of the ring.
//
// The one difference that compatible clients can see: a key with a
// non-empty {hash tag} is hashed by its tag, as by every strategy here,
// where other ketama clients hash the whole key. Two more differences lie
// outside what any client relies on:
// a member whose weight is so small that the formula gives it no digest gets
// one, so it still owns keys (libketama silently drops it, as serialx/hashring
// did; it is a configuration mistake worth seeing in Loads-style checks, not
// a member that silently never receives a key); and when two members hash a
// point to the same position, the lower name keeps it, where libketama's
// qsort leaves the choice unspecified.

// ketamaPoints returns the ketama points of members; perAvg is the number
// of digests an average member gets (40 in libketama).
func ketamaPoints(members []Member, total, perAvg int) []ringPoint {
	n := len(members)
	counts := make([]int, n)
	sum := 0
	for i, m := range members {
		counts[i] = max(ketamaDigests(m.Weight, total, n, perAvg), 1)
		sum += counts[i]
	}
	pts := make([]ringPoint, 0, 4*sum)
	var buf []byte
	for i, m := range members {
		for k := range counts[i] {
			buf = append(append(append(buf[:0], m.Name...), '-'), strconv.Itoa(k)...)
			d := md5.Sum(buf)
			for h := range 4 {
				pts = append(pts, ringPoint{pos: ketamaWord(&d, h), owner: int32(i)})
			}
		}
	}
	return pts
}

// ketamaDigests is libketama's share of digests for a member:
//
//	float pct = (float)weight / (float)total;
//	unsigned int ks = floorf(pct * 40.0 * (float)n);
//
// pct is single precision, the product is double (40.0 is a double
// constant), and floorf rounds it back to single precision before flooring.
func ketamaDigests(weight, total, n, perAvg int) int {
	pct := float32(weight) / float32(total)
	return int(float32(float64(pct) * float64(perAvg) * float64(float32(n))))
}

// ketamaWord returns point h (0..3) of a digest: its bytes 4h..4h+3 read
// little-endian.
func ketamaWord(d *[md5.Size]byte, h int) uint32 {
	return uint32(d[3+4*h])<<24 | uint32(d[2+4*h])<<16 | uint32(d[1+4*h])<<8 | uint32(d[4*h])
}

// ketamaKeyHash is libketama's ketama_hashi: the first point of MD5(key).
// Keys up to 128 bytes are hashed from a stack buffer, so lookups do not
// allocate; longer keys pay one copy.
func ketamaKeyHash(key string) uint32 {
	var d [md5.Size]byte
	if len(key) <= 128 {
		var buf [128]byte
		n := copy(buf[:], key)
		d = md5.Sum(buf[:n])
	} else {
		d = md5.Sum([]byte(key))
	}
	return ketamaWord(&d, 0)
}
