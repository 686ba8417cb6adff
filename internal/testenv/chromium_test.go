package testenv

import (
	"strings"
	"testing"
)

func TestChromiumFind(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	_, act, msg := findChromium(env(EnvChromium, "/nonexistent/chromium"))
	if act != skip || !strings.Contains(msg, "/nonexistent/chromium") || !strings.Contains(msg, "package chromium") ||
		!strings.Contains(msg, "scripts/services.sh") {
		t.Errorf("missing binary: %v %q", act, msg)
	}
	if _, act, _ := findChromium(env(EnvChromium, "/nonexistent/chromium", EnvRequireServices, "1")); act != fail {
		t.Errorf("missing binary with %s=1: %v, want fail", EnvRequireServices, act)
	}
	if p, act, msg := findChromium(env(EnvChromium, "/bin/sh")); act != use || p != "/bin/sh" {
		t.Errorf("%s=/bin/sh: %q %v %q", EnvChromium, p, act, msg)
	}
}
