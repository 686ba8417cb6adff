package replica

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MySQL probes MySQL asynchronous replication (5.7 and later, and
// MariaDB). A probe reads:
//   - the role: a node with read_only or super_read_only on is a
//     replica, one with both off the primary, which is how ProxySQL
//     finds the writer after a promotion (MariaDB has no
//     super_read_only: read_only alone decides there);
//   - a replica's lag and whether it is attached, from SHOW REPLICA
//     STATUS (the name since MySQL 8.0.22; older servers and MariaDB
//     answer SHOW SLAVE STATUS, which is tried when the first fails).
//     Lag is Seconds_Behind_Source (Seconds_Behind_Master before 8.0.22),
//     in whole seconds: the age of the event the SQL thread is applying
//     (from the source's timestamp, corrected for clock skew), 0 when it
//     has applied all the I/O thread received. Changes the I/O thread has
//     not received yet do not count. Detached
//     is set when the I/O or the SQL thread is not running ("Connecting"
//     counts as not running) or Seconds_Behind is NULL, the states in
//     which ProxySQL shuns a replica. A read-only node with no
//     replication configured is a detached replica. With multi-source
//     replication (several channels) the worst channel counts: the
//     largest lag, and detached if any channel is.
//
// Position and Generation are always 0. MySQL is not a PositionProbe: a
// GTID set is not a scalar and GTID sets are not totally ordered, so
// "has this replica applied my write" is not a comparison of two numbers;
// WAIT_FOR_EXECUTED_GTID_SET would be the way to ask it, and is left for
// later. Without a Generation, two nodes that both claim to be primary
// (both with read_only off) cannot be ranked, so promotions should set
// read_only on the old primary, as orchestrators do.
//
// The probing user needs the REPLICATION CLIENT privilege for SHOW
// REPLICA STATUS (on MariaDB 10.5 and later, REPLICA MONITOR, also known
// as SLAVE MONITOR); reading read_only needs none.
type MySQL struct{}

var _ Probe = MySQL{}

// Probe implements Probe.
func (MySQL) Probe(ctx context.Context, q Querier) (State, error) {
	readOnly, err := mysqlReadOnly(ctx, q)
	if err != nil {
		return State{}, err
	}
	if !readOnly {
		return State{Role: RolePrimary}, nil
	}
	cols, rows, err := mysqlQueryAll(ctx, q, "SHOW REPLICA STATUS")
	if err != nil && ctx.Err() == nil {
		var err2 error
		cols, rows, err2 = mysqlQueryAll(ctx, q, "SHOW SLAVE STATUS")
		if err2 != nil {
			return State{}, fmt.Errorf("replica: mysql: show replica status: %w; show slave status: %w", err, err2)
		}
		err = nil
	}
	if err != nil {
		return State{}, fmt.Errorf("replica: mysql: show replica status: %w", err)
	}
	return mysqlReplicaState(cols, rows), nil
}

// mysqlReadOnly reports whether the node refuses ordinary writes:
// read_only or super_read_only on. It falls back to read_only alone when
// the first query fails, as it does on MariaDB.
func mysqlReadOnly(ctx context.Context, q Querier) (bool, error) {
	var ro, sro sql.NullString
	err := q.QueryRowContext(ctx, "SELECT @@global.read_only, @@global.super_read_only").Scan(&ro, &sro)
	if err == nil {
		return mysqlOn(ro) || mysqlOn(sro), nil
	}
	if ctx.Err() != nil {
		return false, fmt.Errorf("replica: mysql: read_only: %w", err)
	}
	if err2 := q.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err2 != nil {
		return false, fmt.Errorf("replica: mysql: read_only: %w; without super_read_only: %w", err, err2)
	}
	return mysqlOn(ro), nil
}

// mysqlOn interprets a boolean system variable: "0" and "OFF" are off,
// anything else on ("1", "ON", or MariaDB's enum values of read_only such
// as "NO_LOCK"). NULL is off.
func mysqlOn(v sql.NullString) bool {
	if !v.Valid {
		return false
	}
	s := strings.TrimSpace(v.String)
	return s != "" && s != "0" && !strings.EqualFold(s, "OFF")
}

// mysqlQueryAll runs a statement and returns its column names and every
// row, each value as a NullString (NULL stays NULL).
func mysqlQueryAll(ctx context.Context, q Querier, query string) ([]string, [][]sql.NullString, error) {
	rs, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, nil, err
	}
	var rows [][]sql.NullString
	for rs.Next() {
		row := make([]sql.NullString, len(cols))
		dest := make([]any, len(cols))
		for i := range row {
			dest[i] = &row[i]
		}
		if err := rs.Scan(dest...); err != nil {
			return nil, nil, err
		}
		rows = append(rows, row)
	}
	if err := rs.Err(); err != nil {
		return nil, nil, err
	}
	return cols, rows, nil
}

// mysqlReplicaState interprets the result of SHOW REPLICA STATUS (or SHOW
// SLAVE STATUS) on a read-only node: columns are its column names, rows
// its rows, one per replication channel. It picks the columns it needs by
// name, under either the 8.0.22+ (Source, Replica) or the older (Master,
// Slave) names; a missing column or an unparsable value makes the channel
// Detached. No row at all is a Detached replica too.
func mysqlReplicaState(columns []string, rows [][]sql.NullString) State {
	st := State{Role: RoleReplica}
	if len(rows) == 0 {
		st.Detached = true
		return st
	}
	index := func(names ...string) int {
		for _, n := range names {
			for i, c := range columns {
				if strings.EqualFold(c, n) {
					return i
				}
			}
		}
		return -1
	}
	lagCol := index("Seconds_Behind_Source", "Seconds_Behind_Master")
	ioCol := index("Replica_IO_Running", "Slave_IO_Running")
	sqlCol := index("Replica_SQL_Running", "Slave_SQL_Running")
	value := func(row []sql.NullString, i int) (string, bool) {
		if i < 0 || i >= len(row) || !row[i].Valid {
			return "", false
		}
		return strings.TrimSpace(row[i].String), true
	}
	for _, row := range rows {
		io, ok1 := value(row, ioCol)
		sqlRunning, ok2 := value(row, sqlCol)
		if !ok1 || !ok2 || !strings.EqualFold(io, "Yes") || !strings.EqualFold(sqlRunning, "Yes") {
			st.Detached = true
		}
		s, ok := value(row, lagCol)
		if !ok {
			st.Detached = true
			continue
		}
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			st.Detached = true
			continue
		}
		sec = min(max(sec, 0), maxDurationSeconds)
		st.Lag = max(st.Lag, time.Duration(sec)*time.Second)
	}
	return st
}

// maxDurationSeconds is the largest whole number of seconds a
// time.Duration holds, to keep an absurd Seconds_Behind from overflowing.
const maxDurationSeconds = int64(1<<63-1) / int64(time.Second)
