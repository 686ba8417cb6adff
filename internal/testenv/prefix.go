package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
)

// KeyPrefixRoot starts every prefix that Prefix returns.
const KeyPrefixRoot = "scaleout-test:"

// maxNameLen bounds the test-name part of a prefix, so keys stay well under memcached's
// 250-byte limit.
const maxNameLen = 64

var prefixes sync.Map // testing.TB -> string

// Prefix returns the key prefix private to this test: the same value for every call in
// one test, a different one for every other test, subtest and run. See the package doc.
func Prefix(t testing.TB) string {
	t.Helper()
	if p, ok := prefixes.Load(t); ok {
		return p.(string)
	}
	p, loaded := prefixes.LoadOrStore(t, newPrefix(t.Name()))
	if !loaded {
		t.Cleanup(func() { prefixes.Delete(t) })
	}
	return p.(string)
}

func newPrefix(name string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return KeyPrefixRoot + sanitize(name) + ":" + hex.EncodeToString(b[:]) + ":"
}

// sanitize maps a test name to [A-Za-z0-9_.-], at most maxNameLen bytes.
func sanitize(name string) string {
	var sb strings.Builder
	for _, r := range name {
		if sb.Len() >= maxNameLen {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	if sb.Len() == 0 {
		return "_"
	}
	return sb.String()
}

// globEscape quotes the characters that are special in a Redis MATCH pattern.
func globEscape(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
