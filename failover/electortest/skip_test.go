package electortest_test

import (
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/electortest"
)

// A clause the Elector does not support must be reported SKIP, by
// RunSynctest as by Run: a PASS would tell a third party its Elector
// conforms where the kit never looked. Only go test's own report says
// whether a subtest was skipped, so TestUnsupportedClausesAreSkipped runs
// the kit in a child process (TestUnsupportedChild) and reads the report.

// unsupportedEnv names the runner ("Run" or "RunSynctest") the child
// process uses.
const unsupportedEnv = "ELECTORTEST_UNSUPPORTED_RUNNER"

// plainElector hides failover.Memory's Partitioner and Observer.
type plainElector struct{ failover.Elector }

func TestUnsupportedChild(t *testing.T) {
	runner := os.Getenv(unsupportedEnv)
	if runner == "" {
		t.Skip("run by TestUnsupportedClausesAreSkipped")
	}
	run := map[string]func(*testing.T, electortest.NewCandidates){
		"Run": electortest.Run, "RunSynctest": electortest.RunSynctest,
	}[runner]
	run(t, func(t *testing.T, n int, cfg failover.Config) []failover.Elector {
		return memoryCandidates(t, n, cfg, func(m *failover.Memory) failover.Elector { return plainElector{m} })
	})
}

func TestUnsupportedClausesAreSkipped(t *testing.T) {
	if os.Getenv(unsupportedEnv) != "" {
		t.Skip("in the child process")
	}
	unsupported := []string{"StoppedLeaderIsReplaced", "Observe"}
	for _, runner := range []string{"Run", "RunSynctest"} {
		t.Run(runner, func(t *testing.T) {
			// Leader is supported: it must still pass, so that the check
			// does not merely see a runner that skips everything.
			cmd := exec.Command(os.Args[0], "-test.run=^TestUnsupportedChild$/^(StoppedLeaderIsReplaced|Observe|Leader)$",
				"-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), unsupportedEnv+"="+runner)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			for _, clause := range unsupported {
				require.Regexp(t, regexp.MustCompile(`--- SKIP: TestUnsupportedChild/`+clause+` `), string(out),
					"%s reports an unsupported clause as not skipped", runner)
			}
			require.Regexp(t, regexp.MustCompile(`--- PASS: TestUnsupportedChild/Leader `), string(out))
		})
	}
}
