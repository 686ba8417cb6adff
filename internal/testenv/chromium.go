package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// EnvChromium names the Chromium binary; scripts/services.sh env exports it. Unset,
// ChromiumPath looks for chromium and chromium-browser in $PATH.
const EnvChromium = "SCALEOUT_CHROMIUM"

// ChromiumPath returns the path of the Chromium binary for a browser test. Without one
// the test is skipped (or fails under SCALEOUT_REQUIRE_SERVICES=1). The browser tests
// themselves live in the module browsertest, which drives Chromium with chromedp.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	bin, act, msg := findChromium(os.Getenv)
	apply(t, act, msg)
	return bin
}

// findChromium returns the path of the Chromium binary, or what to do when it is missing.
func findChromium(getenv func(string) string) (string, action, string) {
	how := "install the Debian package chromium (apt-get install chromium) or run scripts/services.sh up, which installs it"
	if p := strings.TrimSpace(getenv(EnvChromium)); p != "" {
		// An explicit path that is wrong is a mistake to report, not to paper over.
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, use, ""
		}
		act, msg := missing(getenv, fmt.Sprintf(
			"testenv: %s=%s is not an executable file; %s", EnvChromium, p, how))
		return "", act, msg
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, use, ""
		}
	}
	act, msg := missing(getenv, "testenv: chromium not found in $PATH and "+EnvChromium+" is not set; "+how)
	return "", act, msg
}
