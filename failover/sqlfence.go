package failover

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
)

// FenceTableDDL creates the table FenceTx uses, in PostgreSQL; run it once
// per database (CreateFenceTable does), or put it in your migrations.
const FenceTableDDL = `CREATE TABLE IF NOT EXISTS scaleout_fence (
	resource text PRIMARY KEY,
	token    bigint NOT NULL
)`

// CreateFenceTable runs FenceTableDDL.
func CreateFenceTable(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, FenceTableDDL); err != nil {
		// Two processes creating the table at once can collide in the
		// catalog; the table exists all the same.
		var ok bool
		if qerr := db.QueryRowContext(ctx, `SELECT to_regclass('scaleout_fence') IS NOT NULL`).Scan(&ok); qerr == nil && ok {
			return nil
		}
		return fmt.Errorf("failover: creating scaleout_fence: %w", err)
	}
	return nil
}

// FenceTx fences a PostgreSQL transaction with a leader's token: it
// records token as the highest for resource, in the table FenceTableDDL
// creates, and returns ErrStaleToken when a larger token is already
// recorded. Call it first in the transaction, before the writes it
// guards, and roll back when it fails:
//
//	tx, err := db.BeginTx(ctx, nil)
//	...
//	defer tx.Rollback()
//	if err := failover.FenceTx(ctx, tx, "billing", term.Token); err != nil {
//		return err // errors.Is(err, failover.ErrStaleToken): no longer leader
//	}
//	... the leader's writes ...
//	return tx.Commit()
//
// The upsert locks the resource's fence row until the transaction ends,
// so fenced transactions on one resource run one at a time; one with an
// older token that waits for a newer one's commit finds the newer token
// and fails. The writes of a leader therefore commit only while no newer
// leader has committed a fenced transaction on the resource. At isolation
// levels above READ COMMITTED a concurrent newer token shows as a
// serialization failure instead of ErrStaleToken: it fails all the same.
//
// The statement (PostgreSQL 9.5 and later) is:
//
//	INSERT INTO scaleout_fence(resource, token) VALUES ($1, $2)
//	ON CONFLICT (resource) DO UPDATE SET token = EXCLUDED.token
//	WHERE scaleout_fence.token <= EXCLUDED.token
//
// Tokens above math.MaxInt64 (never reached by the electors here) are
// refused, since the column is a bigint.
func FenceTx(ctx context.Context, tx *sql.Tx, resource string, token uint64) error {
	if tx == nil {
		return errors.New("failover: FenceTx: nil transaction")
	}
	if token > math.MaxInt64 {
		return fmt.Errorf("failover: FenceTx: token %d does not fit a bigint", token)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO scaleout_fence(resource, token) VALUES ($1, $2)
ON CONFLICT (resource) DO UPDATE SET token = EXCLUDED.token
WHERE scaleout_fence.token <= EXCLUDED.token`, resource, int64(token))
	if err != nil {
		return fmt.Errorf("failover: fencing %q: %w", resource, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("failover: fencing %q: %w", resource, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: token %d for %q", ErrStaleToken, token, resource)
	}
	return nil
}
