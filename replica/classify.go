package replica

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"
)

// ReadOnly reports whether the Router sends query to a replica: it must start with
// a reading statement (SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN) and
// name nothing that writes or locks: INSERT, UPDATE, DELETE or MERGE
// anywhere (a data-modifying WITH, INSERT … RETURNING, EXPLAIN ANALYZE of
// a write), INTO (SELECT … INTO creates a table), FOR UPDATE / FOR SHARE
// (row locks need the primary), or a function known to write (nextval,
// setval, advisory locks, large objects, txid_current, pg_notify,
// MySQL's GET_LOCK). Words inside string literals, quoted identifiers and
// comments do not count. Whatever it cannot prove read-only goes to the
// primary, so an unknown statement costs load, never correctness; a read
// calling a function of yours that writes needs UsePrimary.
//
// Whether a backslash escapes a quote depends on the server (MySQL: yes;
// PostgreSQL: only in E” strings), so a query with a backslash must be
// read-only under both readings.
func ReadOnly(query string) bool {
	return readOnlyAs(query, false) && (!strings.Contains(query, `\`) || readOnlyAs(query, true))
}

func readOnlyAs(query string, backslash bool) bool {
	first := true
	afterFor := 0 // words since FOR, within a lock clause (FOR [NO] [KEY] SHARE)
	ok := false
	scanWords(query, backslash, func(w string) bool {
		if first {
			first = false
			switch {
			case eq(w, "select"), eq(w, "with"), eq(w, "values"), eq(w, "table"), eq(w, "show"), eq(w, "explain"):
				ok = true
			default:
				return false
			}
		}
		switch {
		case eq(w, "insert"), eq(w, "update"), eq(w, "delete"), eq(w, "merge"), eq(w, "into"),
			eq(w, "nextval"), eq(w, "setval"), eq(w, "txid_current"), eq(w, "pg_current_xact_id"),
			eq(w, "pg_notify"), eq(w, "get_lock"), eq(w, "release_lock"),
			hasPrefixFold(w, "pg_advisory"), hasPrefixFold(w, "pg_try_advisory"), hasPrefixFold(w, "lo_"),
			afterFor > 0 && eq(w, "share"):
			ok = false
			return false
		}
		afterFor--
		if eq(w, "for") {
			afterFor = 3
		}
		return true
	})
	return ok
}

func eq(a, b string) bool { return len(a) == len(b) && strings.EqualFold(a, b) }

func hasPrefixFold(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }

// scanWords calls fn with each bare word (keyword or identifier) of query,
// skipping literals, quoted identifiers, parameters and comments, until fn
// returns false.
func scanWords(q string, backslash bool, fn func(string) bool) {
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '-' && i+1 < len(q) && q[i+1] == '-', c == '#':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			depth := 0 // PostgreSQL nests block comments
			for i < len(q) {
				if q[i] == '/' && i+1 < len(q) && q[i+1] == '*' {
					depth++
					i += 2
				} else if q[i] == '*' && i+1 < len(q) && q[i+1] == '/' {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(q, i, c, backslash || c == '\'' && i > 0 && (q[i-1] == 'E' || q[i-1] == 'e'))
		case c == '$':
			i = skipDollar(q, i)
		case isWordStart(c):
			j := i + 1
			for j < len(q) && isWordPart(q[j]) {
				j++
			}
			if !fn(q[i:j]) {
				return
			}
			i = j
		case c >= '0' && c <= '9':
			for i < len(q) && isWordPart(q[i]) {
				i++
			}
		default:
			i++
		}
	}
}

// skipQuoted returns the index after the literal or quoted identifier
// opened by quote at i; a doubled quote stays inside, and so does a
// backslash-escaped one when backslash is set.
func skipQuoted(q string, i int, quote byte, backslash bool) int {
	for i++; i < len(q); i++ {
		switch q[i] {
		case '\\':
			if backslash {
				i++
			}
		case quote:
			if i+1 < len(q) && q[i+1] == quote {
				i++
				continue
			}
			return i + 1
		}
	}
	return i
}

// skipDollar skips a PostgreSQL dollar-quoted string ($$…$$, $tag$…$tag$)
// or a parameter ($1).
func skipDollar(q string, i int) int {
	j := i + 1
	for j < len(q) && (isWordPart(q[j]) && q[j] != '$') {
		j++
	}
	if j >= len(q) || q[j] != '$' || (j > i+1 && q[i+1] >= '0' && q[i+1] <= '9') {
		return j // a parameter, or a lone $
	}
	tag := q[i : j+1]
	end := strings.Index(q[j+1:], tag)
	if end < 0 {
		return len(q)
	}
	return j + 1 + end + len(tag)
}

func isWordStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isWordPart(c byte) bool { return isWordStart(c) || c >= '0' && c <= '9' || c == '$' }

// classCache remembers ReadOnly per query text: applications send a small
// set of distinct statements over and over, and a map hit is cheaper than
// a scan. The map is copied on write behind an atomic pointer, so a hit
// takes no lock and allocates nothing (a sync.Map would box the string
// key). It stops growing at classCacheMax entries, so that statements
// built with literals inlined cannot grow it, or the cost of copying it,
// without bound.
type classCache struct {
	m  atomic.Pointer[map[string]bool]
	mu sync.Mutex // serializes copies
}

const classCacheMax = 4096

func (c *classCache) readOnly(query string) bool {
	if m := c.m.Load(); m != nil {
		if ro, ok := (*m)[query]; ok {
			return ro
		}
	}
	ro := ReadOnly(query)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old == nil || len(*old) < classCacheMax {
		m := make(map[string]bool, 1+lenOf(old))
		if old != nil {
			maps.Copy(m, *old)
		}
		m[query] = ro
		c.m.Store(&m)
	}
	return ro
}

func lenOf(m *map[string]bool) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
