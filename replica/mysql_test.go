package replica

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// mysqlCols80 and mysqlCols57 are the leading columns of SHOW REPLICA
// STATUS (MySQL 8.0.22+) and SHOW SLAVE STATUS (5.7, MariaDB), with the
// ones the probe reads among others it must skip.
var (
	mysqlCols80 = []string{"Replica_IO_State", "Source_Host", "Replica_IO_Running", "Replica_SQL_Running", "Last_Error", "Seconds_Behind_Source", "Channel_Name"}
	mysqlCols57 = []string{"Slave_IO_State", "Master_Host", "Slave_IO_Running", "Slave_SQL_Running", "Last_Error", "Seconds_Behind_Master", "Channel_Name"}
)

// mysqlRow builds a row for mysqlCols80 or mysqlCols57; lag "NULL" is a
// NULL Seconds_Behind.
func mysqlRow(io, sqlThread, lag, channel string) []sql.NullString {
	v := func(s string) sql.NullString { return sql.NullString{String: s, Valid: s != "NULL"} }
	return []sql.NullString{v("Waiting for source to send event"), v("10.0.0.1"), v(io), v(sqlThread), v(""), v(lag), v(channel)}
}

func TestMySQLReplicaState(t *testing.T) {
	tests := []struct {
		name string
		cols []string
		rows [][]sql.NullString
		want State
	}{
		{"8.0 caught up", mysqlCols80, [][]sql.NullString{mysqlRow("Yes", "Yes", "0", "")},
			State{Role: RoleReplica}},
		{"8.0 lagging", mysqlCols80, [][]sql.NullString{mysqlRow("Yes", "Yes", "42", "")},
			State{Role: RoleReplica, Lag: 42 * time.Second}},
		{"5.7 slave names", mysqlCols57, [][]sql.NullString{mysqlRow("Yes", "Yes", "7", "")},
			State{Role: RoleReplica, Lag: 7 * time.Second}},
		{"5.7 lowercase yes", mysqlCols57, [][]sql.NullString{mysqlRow("yes", "yes", "0", "")},
			State{Role: RoleReplica}},
		{"NULL seconds behind", mysqlCols80, [][]sql.NullString{mysqlRow("Yes", "Yes", "NULL", "")},
			State{Role: RoleReplica, Detached: true}},
		{"IO thread connecting", mysqlCols80, [][]sql.NullString{mysqlRow("Connecting", "Yes", "NULL", "")},
			State{Role: RoleReplica, Detached: true}},
		{"IO thread connecting with lag", mysqlCols57, [][]sql.NullString{mysqlRow("Connecting", "Yes", "3", "")},
			State{Role: RoleReplica, Lag: 3 * time.Second, Detached: true}},
		{"SQL thread stopped", mysqlCols80, [][]sql.NullString{mysqlRow("Yes", "No", "NULL", "")},
			State{Role: RoleReplica, Detached: true}},
		{"SQL thread stopped 5.7", mysqlCols57, [][]sql.NullString{mysqlRow("Yes", "No", "NULL", "")},
			State{Role: RoleReplica, Detached: true}},
		{"multi-source worst lag", mysqlCols80, [][]sql.NullString{
			mysqlRow("Yes", "Yes", "2", "a"), mysqlRow("Yes", "Yes", "30", "b"), mysqlRow("Yes", "Yes", "5", "c")},
			State{Role: RoleReplica, Lag: 30 * time.Second}},
		{"multi-source one detached", mysqlCols80, [][]sql.NullString{
			mysqlRow("Yes", "Yes", "4", "a"), mysqlRow("No", "No", "NULL", "b")},
			State{Role: RoleReplica, Lag: 4 * time.Second, Detached: true}},
		{"no rows", mysqlCols80, nil,
			State{Role: RoleReplica, Detached: true}},
		{"no columns no rows", nil, nil,
			State{Role: RoleReplica, Detached: true}},
		{"missing lag column", mysqlCols80[:5], [][]sql.NullString{mysqlRow("Yes", "Yes", "0", "")[:5]},
			State{Role: RoleReplica, Detached: true}},
		{"missing thread columns", []string{"Seconds_Behind_Source"}, [][]sql.NullString{{{String: "0", Valid: true}}},
			State{Role: RoleReplica, Detached: true}},
		{"short row", mysqlCols80, [][]sql.NullString{mysqlRow("Yes", "Yes", "0", "")[:3]},
			State{Role: RoleReplica, Detached: true}},
		{"unparsable lag", mysqlCols80, [][]sql.NullString{mysqlRow("Yes", "Yes", "soon", "")},
			State{Role: RoleReplica, Detached: true}},
		{"negative lag", mysqlCols80, [][]sql.NullString{mysqlRow("Yes", "Yes", "-1", "")},
			State{Role: RoleReplica}},
		{"huge lag", mysqlCols80, [][]sql.NullString{mysqlRow("Yes", "Yes", "99999999999999999", "")},
			State{Role: RoleReplica, Lag: time.Duration(maxDurationSeconds) * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mysqlReplicaState(tt.cols, tt.rows); got != tt.want {
				t.Errorf("mysqlReplicaState = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMySQLOn(t *testing.T) {
	for _, tt := range []struct {
		v    sql.NullString
		want bool
	}{
		{sql.NullString{String: "1", Valid: true}, true},
		{sql.NullString{String: "0", Valid: true}, false},
		{sql.NullString{String: "ON", Valid: true}, true},
		{sql.NullString{String: "off", Valid: true}, false},
		{sql.NullString{String: "NO_LOCK", Valid: true}, true},
		{sql.NullString{}, false},
	} {
		if got := mysqlOn(tt.v); got != tt.want {
			t.Errorf("mysqlOn(%+v) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// mysqlFake is a database/sql connector that answers each query it knows
// with canned rows and every other query with errMySQLTest: enough to
// drive Probe through its fallbacks without a server.
type mysqlFake map[string]*mysqlResult

type mysqlResult struct {
	cols []string
	rows [][]driver.Value
	err  error
}

var errMySQLTest = errors.New("syntax error or connection refused")

func (f mysqlFake) Connect(context.Context) (driver.Conn, error) { return f, nil }
func (f mysqlFake) Driver() driver.Driver                        { return nil }
func (f mysqlFake) Prepare(string) (driver.Stmt, error)          { return nil, errMySQLTest }
func (f mysqlFake) Close() error                                 { return nil }
func (f mysqlFake) Begin() (driver.Tx, error)                    { return nil, errMySQLTest }

func (f mysqlFake) QueryContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	r, ok := f[q]
	if !ok || r.err != nil {
		return nil, errMySQLTest
	}
	return &mysqlFakeRows{r: r}, nil
}

type mysqlFakeRows struct {
	r *mysqlResult
	i int
}

func (r *mysqlFakeRows) Columns() []string { return r.r.cols }
func (r *mysqlFakeRows) Close() error      { return nil }
func (r *mysqlFakeRows) Next(dest []driver.Value) error {
	if r.i >= len(r.r.rows) {
		return io.EOF
	}
	copy(dest, r.r.rows[r.i])
	r.i++
	return nil
}

const (
	mysqlQRoles = "SELECT @@global.read_only, @@global.super_read_only"
	mysqlQRO    = "SELECT @@global.read_only"
)

func mysqlRoles(ro, sro any) *mysqlResult {
	return &mysqlResult{cols: []string{"ro", "sro"}, rows: [][]driver.Value{{ro, sro}}}
}

func mysqlStatus(cols []string, row ...driver.Value) *mysqlResult {
	return &mysqlResult{cols: cols, rows: [][]driver.Value{row}}
}

func TestMySQLProbe(t *testing.T) {
	tests := []struct {
		name string
		fake mysqlFake
		want State
	}{
		{"primary", mysqlFake{mysqlQRoles: mysqlRoles(int64(0), int64(0))},
			State{Role: RolePrimary}},
		{"read_only replica 8.0", mysqlFake{
			mysqlQRoles:           mysqlRoles(int64(1), int64(0)),
			"SHOW REPLICA STATUS": mysqlStatus(mysqlCols80, "", "h", "Yes", "Yes", "", int64(9), "")},
			State{Role: RoleReplica, Lag: 9 * time.Second}},
		{"super_read_only replica, text values", mysqlFake{
			mysqlQRoles:           mysqlRoles([]byte("0"), []byte("1")),
			"SHOW REPLICA STATUS": mysqlStatus(mysqlCols80, "", "h", []byte("Yes"), []byte("Yes"), nil, []byte("0"), "")},
			State{Role: RoleReplica}},
		{"5.7 falls back to SHOW SLAVE STATUS", mysqlFake{
			mysqlQRoles:         mysqlRoles(int64(1), int64(1)),
			"SHOW SLAVE STATUS": mysqlStatus(mysqlCols57, "", "h", "Yes", "Yes", "", nil, "")},
			State{Role: RoleReplica, Detached: true}},
		{"MariaDB primary without super_read_only", mysqlFake{
			mysqlQRO: {cols: []string{"ro"}, rows: [][]driver.Value{{int64(0)}}}},
			State{Role: RolePrimary}},
		{"MariaDB replica", mysqlFake{
			mysqlQRO:            {cols: []string{"ro"}, rows: [][]driver.Value{{"ON"}}},
			"SHOW SLAVE STATUS": mysqlStatus(mysqlCols57, "", "h", "Yes", "Yes", "", int64(2), "")},
			State{Role: RoleReplica, Lag: 2 * time.Second}},
		{"read_only, no replication", mysqlFake{
			mysqlQRoles:           mysqlRoles(int64(1), int64(1)),
			"SHOW REPLICA STATUS": {cols: mysqlCols80}},
			State{Role: RoleReplica, Detached: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := sql.OpenDB(tt.fake)
			defer db.Close()
			got, err := MySQL{}.Probe(context.Background(), db)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if got != tt.want {
				t.Errorf("Probe = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMySQLProbeError(t *testing.T) {
	for _, tt := range []struct {
		name string
		fake mysqlFake
	}{
		{"role query", mysqlFake{}},
		{"status query", mysqlFake{mysqlQRoles: mysqlRoles(int64(1), int64(0))}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := sql.OpenDB(tt.fake)
			defer db.Close()
			st, err := MySQL{}.Probe(context.Background(), db)
			if !errors.Is(err, errMySQLTest) {
				t.Fatalf("Probe error = %v, want it to wrap %v", err, errMySQLTest)
			}
			if !strings.HasPrefix(err.Error(), "replica: mysql: ") {
				t.Errorf("Probe error = %q, want the replica: mysql: prefix", err)
			}
			if st != (State{}) {
				t.Errorf("Probe state = %+v on error, want zero", st)
			}
		})
	}
}
