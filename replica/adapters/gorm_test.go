package adapters_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/replica"
)

// GORM takes *replica.DB as its connection pool (postgres.Config.Conn is
// a gorm.ConnPool: ExecContext, QueryContext, QueryRowContext,
// PrepareContext), and its transactions through BeginTx, which returns
// the primary's *sql.Tx. Three settings matter:
//
//   - SkipDefaultTransaction: GORM otherwise wraps every Create, Save and
//     Delete in a transaction, which keeps a Track context's reads on the
//     primary for the rest of the request (see replica.DB.BeginTx); with
//     it, each write is a single statement, recorded at its position.
//   - Leave PrepareStmt off: a statement prepared once for the process
//     stays bound to the node it was prepared on (pgx caches prepared
//     statements per connection anyway).
//   - Migrate under replica.UsePrimary: AutoMigrate reads the catalog
//     before it writes, and a lagging replica's catalog would have it
//     create a table that already exists.
//
// gorm.DB.DB() has no single *sql.DB to return (it fails with
// gorm.ErrInvalidDB): set pool limits on each node's own *sql.DB.
func Example_gorm() {
	primary, _ := sql.Open("pgx", os.Getenv("SCALEOUT_PG_PRIMARY_DSN"))
	standby, _ := sql.Open("pgx", os.Getenv("SCALEOUT_PG_REPLICA_DSN"))
	r, err := replica.New(replica.Config{Probe: new(replica.PostgreSQL), MaxLag: 5 * time.Second},
		replica.Node{Name: "pg-a", DB: primary}, replica.Node{Name: "pg-b", DB: standby})
	if err != nil {
		return
	}
	defer r.Close()

	db, err := gorm.Open(postgres.New(postgres.Config{Conn: r.DB()}), &gorm.Config{SkipDefaultTransaction: true})
	if err != nil {
		return
	}
	type User struct {
		ID   int64
		Name string
	}
	ctx := context.Background()
	_ = db.WithContext(replica.UsePrimary(ctx)).AutoMigrate(&User{})

	req := replica.Track(ctx) // one user's request
	u := User{Name: "Ada"}
	db.WithContext(req).Create(&u)           // on the primary
	db.WithContext(req).First(&User{}, u.ID) // sees the row: the primary, or a replica that has it
	db.WithContext(ctx).Find(&[]User{})      // any fit replica
}

type gormUser struct {
	ID   int64
	Name string
}

func gormRouter(t *testing.T) (*replica.Router, *gorm.DB) {
	t.Helper()
	primary, standby := testenv.PGPrimaryDSN(t), testenv.PGReplicaDSN(t)
	// Given in the wrong order on purpose: roles come from the servers.
	r, err := replica.New(replica.Config{Probe: new(replica.PostgreSQL), ProbeInterval: 100 * time.Millisecond},
		replica.Node{Name: "b", DB: testenv.PostgresDB(t, standby)},
		replica.Node{Name: "a", DB: testenv.PostgresDB(t, primary)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	db, err := gorm.Open(postgres.New(postgres.Config{Conn: r.DB()}), &gorm.Config{
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
	})
	require.NoError(t, err)
	return r, db
}

func TestGORM(t *testing.T) {
	ctx := t.Context()
	_, db := gormRouter(t)
	users := table(t, "scaleout_gorm")
	require.NoError(t, db.WithContext(replica.UsePrimary(ctx)).Table(users).AutoMigrate(&gormUser{}))

	for range 10 {
		var standby bool
		require.NoError(t, db.WithContext(ctx).Raw("SELECT pg_is_in_recovery()").Scan(&standby).Error)
		require.True(t, standby, "GORM's reads land on the standby")
	}

	// Read-your-writes: each request Creates (INSERT … RETURNING, sent
	// through QueryContext) and Updates (ExecContext), and reads its row
	// straight back through GORM.
	for i := range 20 {
		req := replica.Track(ctx)
		u := gormUser{Name: "v0"}
		require.NoError(t, db.WithContext(req).Table(users).Create(&u).Error, "a write lands on the primary")
		var got gormUser
		require.NoError(t, db.WithContext(req).Table(users).First(&got, u.ID).Error, "request %d reads its Create", i)
		require.Equal(t, "v0", got.Name)
		require.NoError(t, db.WithContext(req).Table(users).Where("id = ?", u.ID).Update("name", "v1").Error)
		require.NoError(t, db.WithContext(req).Table(users).First(&got, u.ID).Error)
		require.Equal(t, "v1", got.Name, "request %d reads its Update", i)
	}

	// A GORM transaction runs on the primary, reads included.
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var standby bool
		if err := tx.Raw("SELECT pg_is_in_recovery()").Scan(&standby).Error; err != nil {
			return err
		}
		require.False(t, standby, "a GORM transaction runs on the primary")
		return tx.Table(users).Create(&gormUser{Name: "in tx"}).Error
	})
	require.NoError(t, err)
	var n int64
	require.NoError(t, db.WithContext(replica.UsePrimary(ctx)).Table(users).Where("name = ?", "in tx").Count(&n).Error)
	require.Equal(t, int64(1), n, "the transaction committed")

	// A GORM transaction through a Track context keeps its reads on the
	// primary afterwards (its commit is not visible to the Router).
	req := replica.Track(ctx)
	require.NoError(t, db.WithContext(req).Transaction(func(tx *gorm.DB) error {
		return tx.Table(users).Create(&gormUser{Name: "tracked tx"}).Error
	}))
	var standby bool
	require.NoError(t, db.WithContext(req).Raw("SELECT pg_is_in_recovery()").Scan(&standby).Error)
	require.False(t, standby, "after a transaction the tracked request reads the primary")
	require.NoError(t, db.WithContext(req).Table(users).Where("name = ?", "tracked tx").Count(&n).Error)
	require.Equal(t, int64(1), n)

	_, err = db.DB()
	require.ErrorIs(t, err, gorm.ErrInvalidDB, "no single *sql.DB behind a routed pool")
}
