// Package kitcheck keeps the conformance kits honest. Catches keeps them
// able to fail: a kit's test runs each clause, in a child process of its
// test binary, against an implementation broken in that clause, and
// requires the clause to fail. InBubble keeps an unsupported clause run in
// a synctest bubble from reading as a pass.
//
// The child is a Test function of the same binary that runs the kit on the
// implementation its environment names (and skips when it names none);
// Catches runs just one clause of it.
package kitcheck

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Catches runs clause (a subtest path of the kit, "A" or "A/B") of the
// child Test function in a child process with env added to its
// environment, and fails t unless that clause failed: the kit passed
// broken, described as "a Balancer where Update is not atomic" and the
// like, or failed it only elsewhere.
func Catches(t *testing.T, child, clause, broken string, env ...string) {
	t.Helper()
	pattern := "^" + child + "$"
	for part := range strings.SplitSeq(clause, "/") {
		pattern += "/^" + regexp.QuoteMeta(part) + "$"
	}
	cmd := exec.Command(os.Args[0], "-test.run="+pattern, "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the kit passed %s: %s cannot catch it\n%s", broken, clause, tail(string(out)))
	}
	failed := regexp.MustCompile(`--- FAIL: ` + regexp.QuoteMeta(child+"/"+clause) + ` `)
	if !failed.Match(out) {
		t.Fatalf("%s did not fail %s:\n%s", broken, clause, tail(string(out)))
	}
}

// tail is the end of a child's output, where go test reports the failure.
func tail(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}
