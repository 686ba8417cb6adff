package shard

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKeyHashFindsEveryBrace: keyHash's one-pass brace detection must agree
// with parsing the tag first, for a '{' at every position of keys of every
// length the hash's code paths distinguish.
func TestKeyHashFindsEveryBrace(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for n := 0; n <= 70; n++ {
		for trial := 0; trial < 20; trial++ {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte('a' + rng.IntN(26))
			}
			keys := []string{string(b)}
			for i := 0; i < n; i++ {
				c := append([]byte(nil), b...)
				c[i] = '{'
				if i+2 < n {
					c[i+2] = '}'
				}
				keys = append(keys, string(c))
			}
			for _, k := range keys {
				require.Equal(t, hashString(hashTag(k), 0), keyHash(k), "key %q", k)
			}
		}
	}
	require.Equal(t, keyHash("{ab}x"), keyHash("{ab}yz"))
}

// TestHashSpreadsBits: flipping one input bit flips about half the output
// bits, so keys that differ in one character land independently.
func TestHashSpreadsBits(t *testing.T) {
	base := []byte("user:000000000000012345")
	h0 := hashString(string(base), 0)
	total := 0
	for i := range base {
		for bit := range 8 {
			c := append([]byte(nil), base...)
			c[i] ^= 1 << bit
			total += popcount(h0 ^ hashString(string(c), 0))
		}
	}
	mean := float64(total) / float64(len(base)*8)
	require.InDelta(t, 32, mean, 2)
}

func popcount(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}
