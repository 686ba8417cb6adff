package replica

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PostgreSQL probes PostgreSQL streaming replication (10 and later). One
// query per probe reads:
//   - the role: pg_is_in_recovery();
//   - a replica's positions: the WAL it received and the WAL it replayed,
//     and the commit time of the last transaction it replayed;
//   - whether its WAL receiver streams (Detached when not);
//   - a primary's position, pg_current_wal_insert_lsn(), and its
//     generation: the timeline, which pg_promote() increments, so a
//     promoted replica outranks the primary it replaced.
//
// Lag is 0 while a replica has replayed all the WAL it received. When it
// has not, and it has not even replayed what it had received at the
// previous probe, it is stuck (replay paused, or held back by a conflict
// with a query): Lag is then the age of the last transaction it replayed,
// which bounds how stale it is. When it is merely busy replaying the
// stream, Lag is the time since the previous probe, by which it had
// received everything it has now replayed. Using the replay timestamp
// alone, as is common, would report a replica of an idle primary as hours
// behind the moment one write arrives.
//
// The probing role needs no superuser right. The zero value is ready to
// use; use one *PostgreSQL per Router (it remembers each node's previous
// probe, by the node's name, ProbedNode, which survives the Router
// replacing a probe connection), and do not copy it after first use.
// Called outside a Router, it remembers a node by the Querier it is
// given, which should then be the same each time (the node's *sql.DB).
type PostgreSQL struct {
	prev sync.Map // node name (string) or Querier → pgSample
}

// pgSample is what the previous probe of a replica saw.
type pgSample struct {
	at       time.Time
	received uint64
}

var _ PositionProbe = (*PostgreSQL)(nil)

// pgProbeQuery answers everything in one round trip. The CASEs keep the
// primary-only functions (pg_current_wal_insert_lsn, pg_walfile_name) from
// running on a standby, where they fail.
const pgProbeQuery = `SELECT r,
  CASE WHEN r THEN coalesce(pg_last_wal_replay_lsn()::text, '0/0') ELSE pg_current_wal_insert_lsn()::text END,
  CASE WHEN r THEN coalesce(pg_last_wal_receive_lsn()::text, '0/0') ELSE '0/0' END,
  CASE WHEN r THEN coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 1e9) ELSE 0 END,
  CASE WHEN r THEN NOT EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = 'streaming') ELSE false END,
  CASE WHEN r THEN '' ELSE substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8) END
FROM pg_is_in_recovery() AS r`

// Probe implements Probe.
func (p *PostgreSQL) Probe(ctx context.Context, q Querier) (State, error) {
	var (
		recovering         bool
		lsn, received, tli string
		sinceReplay        float64
		detached           bool
	)
	sent := time.Now()
	if err := q.QueryRowContext(ctx, pgProbeQuery).Scan(&recovering, &lsn, &received, &sinceReplay, &detached, &tli); err != nil {
		return State{}, err
	}
	pos, err := ParseLSN(lsn)
	if err != nil {
		return State{}, err
	}
	var key any = q
	if name, ok := ProbedNode(ctx); ok {
		key = name
	}
	st := State{Role: RolePrimary, Position: pos}
	if !recovering {
		p.prev.Delete(key)
		if st.Generation, err = strconv.ParseUint(tli, 16, 32); err != nil {
			return State{}, fmt.Errorf("replica: postgresql: timeline %q: %w", tli, err)
		}
		return st, nil
	}
	recv, err := ParseLSN(received)
	if err != nil {
		return State{}, err
	}
	st.Role, st.Detached = RoleReplica, detached
	prev, seen := p.prev.Load(key)
	p.prev.Store(key, pgSample{at: sent, received: recv})
	switch {
	case recv <= pos:
		st.Lag = 0
	case seen && pos >= prev.(pgSample).received:
		st.Lag = sent.Sub(prev.(pgSample).at)
	default:
		st.Lag = time.Duration(max(sinceReplay, 0) * float64(time.Second))
	}
	return st, nil
}

// WritePosition implements PositionProbe: the WAL insert position, which
// is past the commit record of every transaction committed so far, even
// with synchronous_commit off (when the flush position may not be).
func (*PostgreSQL) WritePosition(ctx context.Context, q Querier) (uint64, error) {
	var lsn string
	if err := q.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		return 0, err
	}
	return ParseLSN(lsn)
}

// ParseLSN parses a PostgreSQL pg_lsn in its text form ("16/B374D848").
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("replica: postgresql: bad LSN %q", s)
	}
	return h<<32 | l, nil
}
