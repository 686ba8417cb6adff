package querycache

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/scaleout/scaleout/cache"
)

// Errors of this package.
var (
	// ErrUnsupportedArg is wrapped by every *ArgError: a query argument
	// whose type has no canonical encoding, so it cannot be part of a key.
	ErrUnsupportedArg = errors.New("querycache: query argument cannot be encoded canonically")
	// ErrNoTables is returned by Query, QueryRow and Key when no table is
	// listed: such an entry could never be invalidated by Bump.
	ErrNoTables = errors.New("querycache: no tables listed for the query")
	// ErrInvalidTable is returned for an empty table name.
	ErrInvalidTable = errors.New("querycache: empty table name")
	// ErrBumpFailed is wrapped by every *BumpError.
	ErrBumpFailed = errors.New("querycache: bumping table versions failed")
	// ErrExecInTx is returned by Versions.Exec on a *sql.Tx: bumping
	// before the transaction commits would let a reader cache the
	// pre-commit rows under the new versions. Use CommitAndBump or WithTx.
	ErrExecInTx = errors.New("querycache: Versions.Exec on a *sql.Tx would bump before commit; use CommitAndBump or WithTx")
	// ErrNoRows is QueryRow's answer when the query returns no row,
	// whether the database said so now or a negative entry remembered it
	// (LoaderConfig.NegativeTTL). It matches both sql.ErrNoRows and
	// cache.ErrNotFound with errors.Is.
	ErrNoRows = fmt.Errorf("querycache: %w: %w", sql.ErrNoRows, cache.ErrNotFound)
)

// An ArgError reports a query argument that cannot be part of a cache
// key. It wraps ErrUnsupportedArg and, when there is one, the error of the
// argument's driver.Valuer.
type ArgError struct {
	Index  int    // position of the argument in args
	Type   string // its dynamic type
	Reason string // why it cannot be encoded
	Err    error  // the driver.Valuer's error, or nil
}

func (e *ArgError) Error() string {
	msg := fmt.Sprintf("querycache: argument %d of type %s cannot be encoded canonically: %s", e.Index, e.Type, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrUnsupportedArg and the Valuer's error, if any.
func (e *ArgError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrUnsupportedArg, e.Err}
	}
	return []error{ErrUnsupportedArg}
}

// A BumpError reports tables whose versions may not have moved: readers
// may keep getting results cached before the write until Bump(Tables...)
// succeeds or the entries expire. It wraps ErrBumpFailed and the cache's
// error. Committed says the write it follows is in the database.
type BumpError struct {
	Tables    []string
	Committed bool
	Err       error
}

func (e *BumpError) Error() string {
	what := "bumping the versions of tables [" + strings.Join(e.Tables, " ") + "] failed"
	if e.Committed {
		what = "the write is committed, but " + what + " (call Bump again; until then readers may get results cached before the write)"
	}
	return "querycache: " + what + ": " + e.Err.Error()
}

// Unwrap returns ErrBumpFailed and the cache's error.
func (e *BumpError) Unwrap() []error { return []error{ErrBumpFailed, e.Err} }
