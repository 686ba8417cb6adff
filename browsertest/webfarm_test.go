package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/examples/webfarm/dashboard"
	"github.com/scaleout/scaleout/internal/testenv"
)

// Real-time test in this file: TestWebfarmDashboard runs the web farm and
// a browser on the wall clock; it asserts what the page shows, not
// durations: the waits are generous bounds against a hang.

// webfarm is the example web farm (examples/webfarm, a command) running
// in memory as a process of its own, with simulated users.
type webfarm struct{ admin string }

// startWebfarm builds examples/webfarm and runs it until the test ends.
func startWebfarm(t *testing.T) webfarm {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("..", "examples", "webfarm"))
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "webfarm")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir, build.Stderr = src, os.Stderr
	require.NoError(t, build.Run(), "go build %s", src)

	f := webfarm{admin: freeAddr(t)}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-addr", freeAddr(t), "-admin", f.admin, "-users", "4")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + f.admin + "/api/state")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the farm's dashboard never answered on %s", f.admin)
	return f
}

// state is what the farm's controller reports, as the dashboard reads it.
func (f webfarm) state(t *testing.T) dashboard.State {
	t.Helper()
	resp, err := http.Get("http://" + f.admin + "/api/state")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var st dashboard.State
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

// evaluate returns the value of the JavaScript expression js in the tab.
func evaluate[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, "evaluate %s", js)
	return v
}

// waitFor waits until the JavaScript expression js is true in the tab.
func waitFor(t *testing.T, ctx context.Context, js, what string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second)))
	require.NoError(t, err, "%s: waiting for %s", what, js)
}

const (
	clonesShown   = `document.querySelectorAll('#clones [data-clone]').length`
	clonesShownUp = `document.querySelectorAll('#clones [data-clone][data-up="true"]').length`
)

// TestWebfarmDashboard opens the web farm's dashboard in Chromium: it
// shows the farm's live figures and refreshes them, and its buttons act on
// the farm, as a person watching it would see.
func TestWebfarmDashboard(t *testing.T) {
	chromium := testenv.ChromiumPath(t)
	farm := startWebfarm(t)
	tb := openTab(t, chromium, "http://"+farm.admin+"/")
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Minute)
	defer cancel()

	waitFor(t, ctx, `Number(document.body.dataset.polls) >= 2`, "the page polls the farm")
	st := farm.state(t)
	before := evaluate[int](t, ctx, clonesShown)
	require.Equal(t, len(st.Clones), before, "one entry per clone of %+v", st.Clones)
	waitFor(t, ctx, fmt.Sprintf(`%s === %d`, clonesShownUp, before), "every clone shown up")
	waitFor(t, ctx, `[...document.querySelectorAll('#clones [data-clone] .requests')].some(e => Number(e.dataset.value) > 0)`,
		"live request counts")
	waitFor(t, ctx, `document.querySelector('#leader').textContent.trim().startsWith('clone-')`, "the leader shown")
	updated := evaluate[string](t, ctx, `document.querySelector('#updated').textContent`)
	waitFor(t, ctx, fmt.Sprintf(`document.querySelector('#updated').textContent !== %q`, updated), "the page refreshes")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#add-clone"))))
	waitFor(t, ctx, fmt.Sprintf(`%s === %d && %s === %d`, clonesShown, before+1, clonesShownUp, before+1),
		"the button's clone appears and comes up")
	waitFor(t, ctx, `document.querySelector('#action-result').dataset.ok === "true"`, "the page reports the action done")

	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#kill-clone"))))
	waitFor(t, ctx, fmt.Sprintf(`%s === %d && %s === %d`, clonesShown, before+1, clonesShownUp, before),
		"the killed clone shown down")

	require.Empty(t, tb.consoleProblems(), "the page's console")
}
