package testenv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

type recordingSwitcher struct{ log *[]string }

func (r recordingSwitcher) Forced() { *r.log = append(*r.log, "forced") }
func (r recordingSwitcher) Kill(killed func()) {
	*r.log = append(*r.log, "kill")
	killed()
	*r.log = append(*r.log, "switched")
}

// TestRunSwitches: Failovers() switches, forced first, then alternately a
// kill, whose killed runs before the switch is over and afterKill after it.
func TestRunSwitches(t *testing.T) {
	t.Setenv(EnvFailovers, "5")
	var log []string
	RunSwitches(recordingSwitcher{&log}, 0, func() { log = append(log, "killed") }, func() { log = append(log, "after") })
	require.Equal(t, []string{
		"forced", "kill", "killed", "switched", "after",
		"forced", "kill", "killed", "switched", "after",
		"forced",
	}, log)
}
