package shard

import (
	"math/bits"
	"strings"
)

// The hash strategies share one 64-bit string hash, in the style of wyhash
// (a multiply-mix on 128-bit products): a few nanoseconds for short keys, no
// allocation, and the same value on every platform and in every process,
// which a shard map needs and hash/maphash (randomly seeded) cannot give.

const (
	wyp0 = 0xa0761d6478bd642f
	wyp1 = 0xe7037ed1a0b428db
	wyp2 = 0x8ebc6af09c88c6e3
	wyp3 = 0x589965cc75374cc3
)

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func read8(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

func read4(s string, i int) uint64 {
	_ = s[i+3]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24
}

// hashString returns a 64-bit hash of s under seed.
func hashString(s string, seed uint64) uint64 {
	h, _ := hashScan(s, seed)
	return h
}

// hashScan hashes s and, in the same pass over its bytes, reports whether s
// contains a '{', so keyHash pays for hash-tag parsing only on keys that may
// have a tag.
func hashScan(s string, seed uint64) (h uint64, brace bool) {
	n := len(s)
	seed ^= wyp0
	var a, b, seen uint64
	switch {
	case n == 0:
	case n < 4:
		a = uint64(s[0])<<16 | uint64(s[n>>1])<<8 | uint64(s[n-1])
		brace = s[0] == '{' || s[n>>1] == '{' || s[n-1] == '{'
	case n <= 16:
		q := (n >> 3) << 2
		a = read4(s, 0)<<32 | read4(s, q)
		b = read4(s, n-4)<<32 | read4(s, n-4-q)
		seen = hasBrace(a) | hasBrace(b)
	default:
		i := 0
		for ; n-i > 16; i += 16 {
			x, y := read8(s, i), read8(s, i+8)
			seen |= hasBrace(x) | hasBrace(y)
			seed = mum(x^wyp1, y^seed)
		}
		a = read8(s, n-16)
		b = read8(s, n-8)
		seen |= hasBrace(a) | hasBrace(b)
	}
	return mum(wyp1^uint64(n), mum(a^wyp1, b^seed)), brace || seen != 0
}

// hasBrace is non-zero when a byte of w is '{' (the classic SWAR zero-byte
// test applied to w XOR '{'{'{...). The reads above cover every byte of the
// string, so no '{' goes unseen.
func hasBrace(w uint64) uint64 {
	const ones, highs, braces = 0x0101010101010101, 0x8080808080808080, '{' * 0x0101010101010101
	x := w ^ braces
	return (x - ones) &^ x & highs
}

// mix64 scrambles x into a uniformly distributed 64-bit value; strategies
// use it to derive per-shard scores and probe sequences from one key hash.
func mix64(x uint64) uint64 {
	return mum(x^wyp2, wyp3)
}

// hashTag returns the part of key that Redis Cluster hashes: the text
// between the first '{' and the next '}', when that text is not empty, else
// the whole key. Every hash strategy hashes this, so "{user42}:profile" and
// "{user42}:orders" always share a shard.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 { // no closing brace, or an empty tag
		return key
	}
	return key[i+1 : i+1+j]
}

// keyHash is the hash every hash strategy places a key by: the hash of its
// hash tag, or of the whole key when it has none.
func keyHash(key string) uint64 {
	h, brace := hashScan(key, 0)
	if brace {
		if tag := hashTag(key); len(tag) != len(key) {
			return hashString(tag, 0)
		}
	}
	return h
}

// fastrange maps a uniform 64-bit hash onto [0, n) without a division.
func fastrange(h uint64, n int) int {
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}
