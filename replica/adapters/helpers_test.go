package adapters_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/scaleout/scaleout/internal/testenv"
)

// table returns a table name private to t, dropped on the primary when t
// ends.
func table(t *testing.T, prefix string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := prefix + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		_, _ = testenv.PostgresDB(t, testenv.PGPrimaryDSN(t)).Exec(fmt.Sprintf("DROP TABLE IF EXISTS %q", name))
	})
	return name
}
