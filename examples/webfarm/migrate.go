package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/shard"
)

// lead runs while this clone leads the "migrator" role: when the
// controller added a shard, the leader moves the users whose owner
// changed (shard.PlanMoves would list whole partitions; with rendezvous
// hashing, a user moves exactly when the new shard wins it), then tells
// the controller. One leader at a time, fenced by its term: a leader that
// lost its term stops moving at once.
func (c *clone) lead(ctx context.Context, t *failover.Term) error {
	c.leaderToken.Store(t.Token)
	defer c.leaderToken.Store(0)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		c.mu.RLock()
		cur, prev, version, move := c.cur, c.prev, c.topoVersion, c.move
		c.mu.RUnlock()
		if prev != nil && move {
			if err := c.migrate(ctx, cur, prev); err == nil {
				c.migrated(ctx, version, t.Token)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// migrate copies every user whose owner changed from its old shard to its
// new one (unless the new one already has a newer write), then deletes it
// from the old.
func (c *clone) migrate(ctx context.Context, cur, prev shard.Sharder) error {
	// Read on the primary: a replica's older copy of a row must not
	// overwrite the row's newest version.
	ctx = replica.UsePrimary(ctx)
	db := c.b.db.DB()
	for _, old := range prev.Shards() {
		from, err := table(c.b.prefix, old)
		if err != nil {
			return err
		}
		rows, err := db.QueryContext(ctx, "SELECT k, v FROM "+from+" ORDER BY k")
		if err != nil {
			return err
		}
		type row struct{ k, v string }
		var moving []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.k, &r.v); err != nil {
				break
			}
			if cur.Shard(r.k) != old {
				moving = append(moving, r)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		for _, r := range moving {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			to, err := table(c.b.prefix, cur.Shard(r.k))
			if err != nil {
				return err
			}
			var exists string
			err = db.QueryRowContext(ctx, "SELECT v FROM "+to+" WHERE k = $1", r.k).Scan(&exists)
			if errors.Is(err, sql.ErrNoRows) {
				_, err = db.ExecContext(ctx, upsertSQL(to), r.k, r.v)
			}
			if err != nil {
				return err
			}
			if _, err := db.ExecContext(ctx, "DELETE FROM "+from+" WHERE k = $1", r.k); err != nil {
				return err
			}
		}
	}
	return nil
}

// migrated tells the controller that the data of topology version moved.
func (c *clone) migrated(ctx context.Context, version int, token uint64) {
	body := fmt.Appendf(nil, `{"version":%d,"token":%d,"by":%q}`, version, token, c.name)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.controller+"/internal/migrated", bytes.NewReader(body))
	if err != nil {
		return
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_ = resp.Body.Close()
	}
}
