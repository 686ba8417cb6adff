// Package mckey holds what every memcached-backed store of this module
// needs the same way: keys memcached accepts for any string, expirations
// in its format, and recognising an item the server refused as too large.
package mckey

import (
	"crypto/sha256"
	"encoding/base64"
	"math"
	"strings"
	"time"
)

// MaxKey is memcached's key length limit.
const MaxKey = 250

// HashLen is the length of a hashed key part: base64url(SHA-256), unpadded.
const HashLen = 43

// maxRelative is the longest expiration memcached takes as relative seconds.
const maxRelative = 30 * 24 * 60 * 60

// Safe reports whether s is only printable ASCII other than space, as
// memcached requires of keys.
func Safe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Key returns prefix+s when s is non-empty, safe, does not start with '~'
// and fits, and otherwise prefix+marker+base64url(SHA-256(s)). Markers start
// with '~', so the two forms never collide.
func Key(prefix, s, marker string) string {
	if s != "" && s[0] != '~' && len(prefix)+len(s) <= MaxKey && Safe(s) {
		return prefix + s
	}
	sum := sha256.Sum256([]byte(s))
	return prefix + marker + base64.RawURLEncoding.EncodeToString(sum[:])
}

// Expiration converts a deadline into memcached's expiration so that an
// item never expires early: relative seconds up to 30 days, an absolute
// Unix time beyond (capped at the protocol's 2038 limit). ok is false when
// the deadline is not after now.
//
// Memcached's clock counts whole seconds, moved on once a second, and an
// item is dropped at the tick that reaches its expiration: an item set
// just before a tick with a relative expiration of n seconds is gone after
// a little more than n-1 (TestNeverEarlyOnAServer). So the deadline is
// rounded up to a whole second and one second is added: an item lives at
// least until its deadline, and at most two seconds past it.
func Expiration(now, deadline time.Time) (exp int32, ok bool) {
	d := deadline.Sub(now)
	if d <= 0 {
		return 0, false
	}
	secs := d / time.Second
	if d%time.Second != 0 {
		secs++ // round up, without the overflow of d + time.Second - 1
	}
	secs++ // the server's tick
	if secs <= maxRelative {
		return int32(secs), true
	}
	u := deadline.Unix() + 1
	if deadline.Nanosecond() > 0 {
		u++
	}
	return int32(min(u, math.MaxInt32)), true
}

// TooLarge reports whether err is the server refusing an item as too big
// for it; gomemcache has no error value for it, only the server's text.
func TooLarge(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SERVER_ERROR object too large") ||
		strings.Contains(msg, "SERVER_ERROR out of memory storing object")
}
