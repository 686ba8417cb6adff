package testenv

import (
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var prefixShape = regexp.MustCompile(`^scaleout-test:[A-Za-z0-9_.-]{1,64}:[0-9a-f]{16}:$`)

func TestPrefixStableWithinATest(t *testing.T) {
	t.Parallel()
	p := Prefix(t)
	require.Equal(t, p, Prefix(t))
	require.Regexp(t, prefixShape, p)
	require.True(t, strings.HasPrefix(p, KeyPrefixRoot+"TestPrefixStableWithinATest:"), p)
}

func TestPrefixUniqueAcrossTests(t *testing.T) {
	t.Parallel()
	const n = 200
	var mu sync.Mutex
	seen := map[string]bool{Prefix(t): true}
	t.Run("group", func(t *testing.T) {
		for i := range n {
			name := "sub"
			if i%2 == 0 {
				name = "sub {tag} * ? [x] with spaces/and/slashes" // sanitized to the same name
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				p := Prefix(t)
				require.Regexp(t, prefixShape, p)
				mu.Lock()
				defer mu.Unlock()
				require.False(t, seen[p], "prefix %q handed out twice", p)
				seen[p] = true
			})
		}
	})
	require.Len(t, seen, n+1)
}

func TestPrefixForgottenAfterTest(t *testing.T) {
	t.Parallel()
	var sub testing.TB
	t.Run("sub", func(t *testing.T) {
		sub = t
		Prefix(t)
		_, ok := prefixes.Load(t)
		require.True(t, ok)
	})
	_, ok := prefixes.Load(sub)
	require.False(t, ok, "Prefix must not keep finished tests alive")
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"TestX":                  "TestX",
		"TestX/case_#01":         "TestX_case__01",
		"a{b}c*d?e[f]g\\h i:j":   "a_b_c_d_e_f_g_h_i_j",
		"":                       "_",
		"ünï":                    "_n_",
		strings.Repeat("x", 100): strings.Repeat("x", maxNameLen),
	}
	for in, want := range tests {
		require.Equal(t, want, sanitize(in), "sanitize(%q)", in)
	}
}

func TestGlobEscape(t *testing.T) {
	t.Parallel()
	require.Equal(t, `a\*b\?c\[d\]e\\f`, globEscape(`a*b?c[d]e\f`))
	require.Equal(t, "scaleout-test:x:", globEscape("scaleout-test:x:"))
}
