package replica

import (
	"maps"
	"strings"
	"sync"
	"sync/atomic"
)

// ReadOnly reports whether the Router sends query to a replica. Each
// statement of query (a query may hold several, separated by semicolons,
// when the driver allows it) must start with a reading statement (SELECT,
// WITH, VALUES, TABLE, SHOW, EXPLAIN) and name nothing that writes or
// locks: INSERT, UPDATE, DELETE or MERGE anywhere (a data-modifying WITH,
// INSERT … RETURNING, EXPLAIN ANALYZE of a write), CREATE or EXECUTE
// (EXPLAIN ANALYZE runs CREATE TABLE … AS and prepared statements), INTO
// (SELECT … INTO creates a table), a row lock (FOR UPDATE, FOR [KEY]
// SHARE, MySQL's LOCK IN SHARE MODE), or a function known to write
// (nextval, setval, MariaDB's NEXT VALUE FOR, advisory locks, large
// objects, txid_current, pg_notify, MySQL's GET_LOCK, RELEASE_LOCK and RELEASE_ALL_LOCKS).
// Words inside string literals, quoted identifiers and comments do not
// count. Whatever it cannot prove read-only goes to the primary, so an
// unknown statement costs load, never correctness; a read calling a
// function of yours that writes needs UsePrimary.
//
// PostgreSQL and MySQL (or MariaDB) split a query into words, literals
// and comments differently, and how they do depends on settings, so a
// query must be read-only under every reading that applies:
//   - comments: PostgreSQL nests /* */ comments, MySQL ends one at the
//     first */; # starts a comment in MySQL only, and -- does in MySQL
//     only when a space or control character follows;
//   - backslashes: one escapes a quote in MySQL string literals (unless
//     NO_BACKSLASH_ESCAPES), in PostgreSQL only in E'…' strings (or
//     in every string with standard_conforming_strings off);
//   - quotes: "…" is a string in MySQL (an identifier with ANSI_QUOTES
//     and in PostgreSQL), `…` an identifier in MySQL only, $$…$$ a
//     string in PostgreSQL only.
//
// A query holding a MySQL executable comment (/*! … */, /*!80000 … */,
// MariaDB's /*M! … */) goes to the primary: MySQL runs its content as
// code, or skips it when the server is older than the version it names.
func ReadOnly(query string) bool {
	ro, alike := readOnlyAs(query, reading{})
	if !ro {
		return false
	}
	backslash := strings.IndexByte(query, '\\') >= 0
	if backslash && !readOnly(query, reading{escapes: escapeSingle}) {
		return false
	}
	if alike && !backslash {
		return true // MySQL's readings cannot differ from PostgreSQL's
	}
	return readOnly(query, reading{mysql: true}) &&
		(!backslash || readOnly(query, reading{mysql: true, escapes: escapeSingle}) &&
			readOnly(query, reading{mysql: true, escapes: escapeBoth}))
}

func readOnly(query string, r reading) bool {
	ro, _ := readOnlyAs(query, r)
	return ro
}

// reading is one way a server may split a query into tokens.
type reading struct {
	mysql   bool    // MySQL's comments and quotes, else PostgreSQL's
	escapes escapes // which literals a backslash escapes in
}

type escapes uint8

const (
	escapeNone   escapes = iota // standard_conforming_strings; NO_BACKSLASH_ESCAPES
	escapeSingle                // in '…' (standard_conforming_strings off; MySQL with ANSI_QUOTES)
	escapeBoth                  // in '…' and "…" (MySQL's default)
)

// statementEnd is what scanWords passes for a semicolon outside literals
// and comments: no word looks like it.
const statementEnd = ";"

// readOnlyAs reports whether query is read-only as r reads it and, for
// PostgreSQL's reading (once it has read the whole query), whether MySQL
// reads it alike: whether it holds no comment, backquote or dollar quote.
// (A backslash, which the readings also differ on, is looked for apart.)
func readOnlyAs(query string, r reading) (ro, alike bool) {
	first := true      // the next word starts a statement
	lockClause := 0    // words left in a lock clause (FOR [NO] [KEY] SHARE, LOCK IN SHARE MODE)
	afterNext := false // the last word was NEXT (MariaDB's NEXT VALUE FOR seq)
	ok := false
	var buf [keywordMax]byte
	alike = scanWords(query, r, func(w string) bool {
		if w == statementEnd {
			first, lockClause, afterNext = true, 0, false
			return true
		}
		// Both servers fold keywords and function names to lower case in
		// ASCII only.
		n := min(len(w), len(buf))
		for i := range n {
			c := w[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		lw := buf[:n]
		if n < len(w) {
			lw = buf[:0] // too long to be any word below; prefixes still apply
		}
		if first {
			first = false
			switch string(lw) {
			case "select", "with", "values", "table", "show", "explain":
				ok = true
			default:
				ok = false
				return false
			}
		}
		writes := false
		switch string(lw) {
		case "insert", "update", "delete", "merge", "into", "create", "execute",
			"nextval", "setval", "txid_current", "pg_current_xact_id", "pg_notify",
			"get_lock", "release_lock", "release_all_locks":
			writes = true
		case "share":
			writes = lockClause > 0
		case "value":
			writes = afterNext
		}
		prefix := buf[:n]
		if writes || hasPrefix(prefix, "pg_advisory") || hasPrefix(prefix, "pg_try_advisory") || hasPrefix(prefix, "lo_") {
			ok = false
			return false
		}
		lockClause--
		if s := string(lw); s == "for" || s == "lock" {
			lockClause = 3
		}
		afterNext = string(lw) == "next"
		return true
	})
	return ok, alike
}

// keywordMax is the length of the longest word readOnlyAs looks for.
const keywordMax = len("pg_current_xact_id")

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// scanWords calls fn with each bare word (keyword or identifier) of query
// as r reads it, and with statementEnd for each semicolon, skipping
// literals, quoted identifiers, parameters and comments, until fn returns
// false. A MySQL executable comment ends the scan with fn(statementEnd)
// and fn("/*!"), which no statement may hold. For PostgreSQL's reading it
// reports whether MySQL would read the words it scanned alike: whether it
// met no comment (#, --, /*), backquote or dollar quote outside literals.
// A $ before a digit is a parameter in PostgreSQL and punctuation before
// a number in MySQL: alike.
func scanWords(q string, r reading, fn func(string) bool) (alike bool) {
	alike = true
	for i := 0; i < len(q); {
		c := q[i]
		var next byte
		if i+1 < len(q) {
			next = q[i+1]
		}
		switch c {
		case '#', '`':
			alike = false
		case '-', '/':
			alike = alike && next != '-' && next != '*'
		case '$':
			alike = alike && next >= '0' && next <= '9'
		}
		switch {
		case c == '-' && next == '-' && (!r.mysql || i+2 >= len(q) || q[i+2] <= ' ' || q[i+2] == 0x7f),
			c == '#' && r.mysql:
			i = skipLine(q, i, r.mysql)
		case c == '/' && next == '*':
			if r.mysql {
				if i+2 < len(q) && (q[i+2] == '!' || q[i+2] == 'M' && i+3 < len(q) && q[i+3] == '!') {
					if fn(statementEnd) {
						fn(executableComment)
					}
					return false
				}
				i = skipMySQLComment(q, i)
			} else {
				i = skipPostgresComment(q, i)
			}
		case c == '\'':
			i = skipQuoted(q, i, c, r.escapes != escapeNone)
		case c == '"':
			i = skipQuoted(q, i, c, r.mysql && r.escapes == escapeBoth)
		case c == '`' && r.mysql:
			i = skipQuoted(q, i, c, false)
		case c == '$' && !r.mysql:
			i = skipDollar(q, i)
		case c == ';':
			if !fn(statementEnd) {
				return alike
			}
			i++
		case isWordStart(c):
			j := i + 1
			for j < len(q) && isWordPart(q[j]) {
				j++
			}
			if !r.mysql && j == i+1 && (c == 'E' || c == 'e') && j < len(q) && q[j] == '\'' {
				i = skipQuoted(q, j, '\'', true) // PostgreSQL's E'…' escapes with backslashes
				continue
			}
			if !fn(q[i:j]) {
				return alike
			}
			i = j
		default:
			// Digits are skipped one by one, so that letters after them
			// make a word: PostgreSQL before 15 reads 1into as 1 INTO,
			// MySQL 1delete as an identifier (a word refused for nothing).
			i++
		}
	}
	return alike
}

// executableComment is what scanWords passes for a MySQL executable
// comment: not a reading keyword, so the statement holding it is refused.
const executableComment = "/*!"

// skipLine returns the index after the line comment at i: PostgreSQL ends
// it at a newline or carriage return, MySQL at a newline only.
func skipLine(q string, i int, mysql bool) int {
	for ; i < len(q); i++ {
		if q[i] == '\n' || q[i] == '\r' && !mysql {
			return i + 1
		}
	}
	return i
}

// skipPostgresComment returns the index after the block comment at i,
// which nests.
func skipPostgresComment(q string, i int) int {
	depth := 0
	for i < len(q) {
		switch {
		case q[i] == '/' && i+1 < len(q) && q[i+1] == '*':
			depth++
			i += 2
		case q[i] == '*' && i+1 < len(q) && q[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return i
}

// skipMySQLComment returns the index after the block comment at i, which
// ends at the first */.
func skipMySQLComment(q string, i int) int {
	end := strings.Index(q[i+2:], "*/")
	if end < 0 {
		return len(q)
	}
	return i + 2 + end + 2
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
// or a parameter ($1: digits only, so that PostgreSQL before 15, which
// reads $1into as $1 INTO, is read alike).
func skipDollar(q string, i int) int {
	if i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9' {
		for i++; i < len(q) && q[i] >= '0' && q[i] <= '9'; i++ {
		}
		return i
	}
	j := i + 1
	for j < len(q) && (isWordPart(q[j]) && q[j] != '$') {
		j++
	}
	if j >= len(q) || q[j] != '$' {
		return i + 1 // a lone $: what follows is read on
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
