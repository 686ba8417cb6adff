package querycache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/scaleout/scaleout/cache"
)

// Defaults of VersionsConfig.
const (
	DefaultVersionPrefix = "qv:"
	DefaultBumpTimeout   = 5 * time.Second
)

// VersionsConfig configures NewVersions. Zero values mean the documented
// defaults; negative durations are cache.ErrInvalidConfig.
type VersionsConfig struct {
	// Prefix starts the key of every table's version: Prefix+table.
	// Default DefaultVersionPrefix.
	Prefix string
	// TTL bounds the life of a version key; 0 keeps it until the cache
	// evicts it. A version that expires is replaced by a fresh one, so
	// its table's entries are merely missed.
	TTL time.Duration
	// Timeout, when positive, bounds each read (and creation) of
	// versions with a context deadline, after which Query answers from
	// the database without caching. By default the cache client's own
	// timeouts bound it, as for cache.LoaderConfig.CacheTimeout.
	Timeout time.Duration
	// BumpTimeout bounds the Bump that Exec, CommitAndBump and WithTx run
	// after a write, which runs even if the caller's context is done (the
	// write may be committed). Default DefaultBumpTimeout.
	BumpTimeout time.Duration
}

// A Version is the current generation of one table: 128 random bits,
// replaced by fresh ones at every Bump and never reused.
type Version [16]byte

// Versions keeps the version of every table in an ObjectCache. Every
// process that reads through a Cache or writes the tables must use the
// same store (the same Redis or memcached, the same Prefix). It is safe for
// concurrent use.
type Versions struct {
	c     cache.ObjectCache
	swap  cache.SwapCache  // c as a SwapCache, or nil
	batch cache.BatchCache // c as a BatchCache, or nil
	cfg   VersionsConfig
}

// NewVersions returns the Versions kept in c. A nil c or a negative
// duration is an error wrapping cache.ErrInvalidConfig.
func NewVersions(c cache.ObjectCache, cfg VersionsConfig) (*Versions, error) {
	if c == nil {
		return nil, fmt.Errorf("querycache: nil cache: %w", cache.ErrInvalidConfig)
	}
	if cfg.TTL < 0 || cfg.Timeout < 0 || cfg.BumpTimeout < 0 {
		return nil, fmt.Errorf("querycache: negative duration in versions config: %w", cache.ErrInvalidConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultVersionPrefix
	}
	if cfg.BumpTimeout == 0 {
		cfg.BumpTimeout = DefaultBumpTimeout
	}
	v := &Versions{c: c, cfg: cfg}
	v.swap, _ = c.(cache.SwapCache)
	v.batch, _ = c.(cache.BatchCache)
	return v, nil
}

func (v *Versions) key(table string) string { return v.cfg.Prefix + table }

func checkTables(tables []string) error {
	for _, t := range tables {
		if t == "" {
			return ErrInvalidTable
		}
	}
	return nil
}

// Get returns the current versions of tables, in their order, creating
// the missing ones: with Add on a SwapCache, so that concurrent creators
// agree; with Set otherwise, where a creator that loses the race merely
// leaves entries nobody reads. Reads are one GetMulti on a BatchCache.
// Each call to the cache is bounded by the configured Timeout, if any. Query reads
// versions through Get before it runs the query, which is what makes a
// Bump after the write hide every result read before it.
func (v *Versions) Get(ctx context.Context, tables ...string) ([]Version, error) {
	if err := checkTables(tables); err != nil {
		return nil, err
	}
	out := make([]Version, len(tables))
	if len(tables) == 0 {
		return out, nil
	}
	if v.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.cfg.Timeout)
		defer cancel()
	}
	if len(tables) == 1 || v.batch == nil {
		for i, t := range tables {
			ver, err := v.get1(ctx, t)
			if err != nil {
				return nil, err
			}
			out[i] = ver
		}
		return out, nil
	}
	keys := make([]string, len(tables))
	for i, t := range tables {
		keys[i] = v.key(t)
	}
	got, err := v.batch.GetMulti(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("querycache: reading versions: %w", err)
	}
	for i, t := range tables {
		raw, ok := got[keys[i]]
		if ok && len(raw) > 0 {
			out[i] = toVersion(raw)
			continue
		}
		ver, err := v.create(ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = ver
	}
	return out, nil
}

// get1 reads one table's version, creating it when it is missing.
func (v *Versions) get1(ctx context.Context, table string) (Version, error) {
	raw, err := v.c.Get(ctx, v.key(table))
	switch {
	case err == nil && len(raw) > 0:
		return toVersion(raw), nil
	case err == nil, errors.Is(err, cache.ErrMiss):
		return v.create(ctx, table)
	default:
		return Version{}, fmt.Errorf("querycache: reading the version of %q: %w", table, err)
	}
}

// create stores a fresh version for a table that has none. On a
// SwapCache the first creator wins and the others read its version.
func (v *Versions) create(ctx context.Context, table string) (Version, error) {
	k := v.key(table)
	for range 4 {
		fresh := newVersion()
		if v.swap == nil {
			if err := v.c.Set(ctx, k, fresh[:], v.cfg.TTL); err != nil {
				return Version{}, fmt.Errorf("querycache: creating the version of %q: %w", table, err)
			}
			return fresh, nil
		}
		err := v.swap.Add(ctx, k, fresh[:], v.cfg.TTL)
		if err == nil {
			return fresh, nil
		}
		if !errors.Is(err, cache.ErrNotStored) {
			return Version{}, fmt.Errorf("querycache: creating the version of %q: %w", table, err)
		}
		raw, err := v.c.Get(ctx, k)
		if err == nil && len(raw) > 0 {
			return toVersion(raw), nil
		}
		if err != nil && !errors.Is(err, cache.ErrMiss) {
			return Version{}, fmt.Errorf("querycache: reading the version of %q: %w", table, err)
		}
		// Created and gone again (evicted, expired, deleted): try again.
	}
	return Version{}, fmt.Errorf("querycache: the version of %q keeps vanishing: %w", table, cache.ErrNotStored)
}

// Bump gives each table a fresh random version, so that no entry cached
// under the old ones is read again. Call it after the change to the tables
// is committed (see Exec, CommitAndBump and WithTx, which do): a Bump
// before the commit lets a reader cache the pre-commit rows under the new
// version. Bump writes with one SetMulti on a BatchCache; if the write
// fails it tries to delete the version keys instead (a missing version is
// as good as a fresh one). It fails with a *BumpError, after which it is
// safe and advisable to call it again. Bump with no tables does nothing.
func (v *Versions) Bump(ctx context.Context, tables ...string) error {
	if err := checkTables(tables); err != nil {
		return err
	}
	if len(tables) == 0 {
		return nil
	}
	keys := make([]string, len(tables))
	for i, t := range tables {
		keys[i] = v.key(t)
	}
	var err error
	if len(tables) > 1 && v.batch != nil {
		items := make(map[string][]byte, len(tables))
		for _, k := range keys {
			fresh := newVersion()
			items[k] = fresh[:]
		}
		err = v.batch.SetMulti(ctx, items, v.cfg.TTL)
	} else {
		for _, k := range keys {
			fresh := newVersion()
			if err = v.c.Set(ctx, k, fresh[:], v.cfg.TTL); err != nil {
				break
			}
		}
	}
	if err == nil {
		return nil
	}
	derr := v.c.Delete(ctx, keys...)
	if derr == nil {
		return nil // the versions are gone: the next reader creates fresh ones
	}
	err = errors.Join(err, derr)
	return &BumpError{Tables: append([]string(nil), tables...), Err: err}
}

// bumpAfterWrite bumps after a write that may have reached the database,
// even when ctx is done, and marks a failure as committed.
func (v *Versions) bumpAfterWrite(ctx context.Context, tables []string) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), v.cfg.BumpTimeout)
	defer cancel()
	err := v.Bump(bctx, tables...)
	var be *BumpError
	if errors.As(err, &be) {
		be.Committed = true
	}
	return err
}

// An Execer runs a statement: *sql.DB and *sql.Conn (outside a
// transaction). A *sql.Tx is one too, but Versions.Exec refuses it.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// A TxBeginner starts transactions: *sql.DB and *sql.Conn.
type TxBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// Exec runs a statement that commits on its own (autocommit) and then
// bumps tables. It bumps even when the statement fails, since a statement
// whose answer was lost may still have committed; a bump too many only
// costs misses. A failed Bump after a successful statement is a
// *BumpError with Committed set. On a *sql.Tx it fails with ErrExecInTx
// and runs nothing: inside a transaction, bump after the commit with
// CommitAndBump or WithTx.
func (v *Versions) Exec(ctx context.Context, db Execer, tables []string, query string, args ...any) (sql.Result, error) {
	if _, ok := db.(*sql.Tx); ok {
		return nil, ErrExecInTx
	}
	if err := checkTables(tables); err != nil {
		return nil, err
	}
	res, err := db.ExecContext(ctx, query, args...)
	if berr := v.bumpAfterWrite(ctx, tables); berr != nil {
		return res, errors.Join(err, berr)
	}
	return res, err
}

// CommitAndBump commits tx and then bumps tables: in this order, because
// a Bump before the commit lets a reader that starts in between read the
// pre-commit rows and cache them under the new versions, where every later
// reader would find them. A failed commit is returned as it is, and the
// tables are bumped anyway unless tx was already done (sql.ErrTxDone),
// since a commit whose answer was lost may have succeeded. A failed Bump
// after a successful commit is a *BumpError with Committed set; the caller
// may retry Bump.
func (v *Versions) CommitAndBump(ctx context.Context, tx *sql.Tx, tables ...string) error {
	if err := checkTables(tables); err != nil {
		_ = tx.Rollback()
		return err
	}
	err := tx.Commit()
	if errors.Is(err, sql.ErrTxDone) {
		return err
	}
	if berr := v.bumpAfterWrite(ctx, tables); berr != nil {
		return errors.Join(err, berr)
	}
	return err
}

// WithTx runs fn in a transaction on db and, if fn returns nil, commits it
// and bumps tables (see CommitAndBump). If fn fails or panics the
// transaction is rolled back and nothing is bumped: a rolled-back
// transaction changed nothing.
func (v *Versions) WithTx(ctx context.Context, db TxBeginner, opts *sql.TxOptions, tables []string, fn func(*sql.Tx) error) (err error) {
	if err := checkTables(tables); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	committing := false
	defer func() {
		if !committing {
			_ = tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	committing = true
	return v.CommitAndBump(ctx, tx, tables...)
}

func newVersion() Version {
	var v Version
	_, _ = rand.Read(v[:]) // crypto/rand.Read never fails
	return v
}

// toVersion maps stored bytes to a Version: 16 bytes as they are, any
// other value (not written by this package) through SHA-256, so that
// different values stay different.
func toVersion(raw []byte) Version {
	if len(raw) == len(Version{}) {
		return Version(raw)
	}
	sum := sha256.Sum256(raw)
	return Version(sum[:16])
}
