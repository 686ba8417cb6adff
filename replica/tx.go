package replica

import (
	"context"
	"database/sql"
	"errors"
)

// BeginTx starts a transaction and returns the node's own *sql.Tx, so
// code written against *sql.DB (and functions that take a *sql.Tx) works
// unchanged: on a fit replica when opts.ReadOnly, else on the primary,
// where all of the transaction's statements run, reads included.
//
// A *sql.Tx tells nobody when it commits, so a read-write transaction
// begun through a Track context sends that context's reads to the primary
// from then on, and a Mark taken from it afterwards covers
// Config.ReadYourWrites from the moment MarkOf is called (see Track). To
// have the commit recorded at its position instead, so that the reads go
// back to any replica that applied it, run the transaction with
// BeginTxFunc.
func (d *DB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	if opts != nil && opts.ReadOnly {
		return read(ctx, d.r, func(db *sql.DB) (*sql.Tx, error) { return db.BeginTx(ctx, opts) })
	}
	tx, _, err := d.beginWrite(ctx, opts)
	if err != nil {
		return nil, err
	}
	trackerFrom(ctx).pin(d.r.cfg.ReadYourWrites)
	return tx, nil
}

// Begin is BeginTx with context.Background() and default options: a
// read-write transaction on the primary.
func (d *DB) Begin() (*sql.Tx, error) { return d.BeginTx(context.Background(), nil) }

// BeginTxFunc runs fn in a transaction begun as BeginTx would, commits it
// when fn returns nil and rolls it back otherwise (fn's error is
// returned, joined with Rollback's if that failed too). fn must neither
// commit nor roll back tx. The commit of a read-write transaction through
// a Track context is recorded as a write made through ExecContext is: at
// the primary's position with a PositionProbe, else in the
// Config.ReadYourWrites window from the commit; the context is not
// pinned to the primary as after BeginTx.
func (d *DB) BeginTxFunc(ctx context.Context, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	var (
		tx      *sql.Tx
		primary *member
		err     error
	)
	if opts != nil && opts.ReadOnly {
		tx, err = d.BeginTx(ctx, opts)
	} else {
		tx, primary, err = d.beginWrite(ctx, opts)
	}
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done { // fn panicked: release the connection, let the panic go on
			_ = tx.Rollback()
		}
	}()
	err = fn(tx)
	done = true
	if err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, rerr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		d.r.suspect(err)
		return err
	}
	if primary != nil {
		d.r.wrote(context.WithoutCancel(ctx), primary, true)
	}
	return nil
}

// beginWrite starts a read-write transaction on ctx's primary.
func (d *DB) beginWrite(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, *member, error) {
	m, err := d.r.writer(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err := m.DB.BeginTx(ctx, opts)
	if err != nil {
		d.r.suspect(err)
		return nil, nil, err
	}
	return tx, m, nil
}
