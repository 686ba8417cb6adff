package session

import (
	"crypto/rand"
	"encoding/base64"
)

// idBytes is the entropy of a session ID: 256 bits from crypto/rand.
const idBytes = 32

// idLen is the length of an issued ID: 32 bytes in unpadded base64url.
const idLen = 43

// newID returns a fresh session ID: 32 bytes from crypto/rand in unpadded
// base64url, 43 characters. crypto/rand.Read never fails (Go 1.24+).
func newID() string {
	var b [idBytes]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validID reports whether s has the shape of an ID this package issues:
// exactly 43 characters of the base64url alphabet. Anything else never
// reaches a store.
func validID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	// The last character carries 4 data bits and 2 padding bits that must be zero in a
	// canonical encoding; rejecting non-canonical forms keeps one ID per
	// 256-bit value.
	return base64URLIndex(s[idLen-1])&0x03 == 0
}

func base64URLIndex(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	default:
		return 63
	}
}
