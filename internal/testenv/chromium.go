//go:build unix

package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EnvChromium names the Chromium binary; scripts/services.sh env exports it. Unset,
// StartChromium looks for chromium and chromium-browser in $PATH.
const EnvChromium = "SCALEOUT_CHROMIUM"

const (
	chromiumStartTimeout = 30 * time.Second // exec to "DevTools listening on": about 0.3s warm, seconds cold
	chromiumStopTimeout  = 5 * time.Second  // each step of the shutdown before the next, harder one
	waitForInterval      = 50 * time.Millisecond
)

// chromiumArgs is the command line before --user-data-dir and the URL. Each flag keeps
// a test browser quiet and self-contained: no sandbox (tests run as root in containers),
// no GPU, no first-run UI, no network traffic of its own (updates, sync, QUIC probes),
// and no reliance on a small /dev/shm in containers.
var chromiumArgs = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-dev-shm-usage", "--remote-debugging-port=0",
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

// Browser is a headless Chromium for one test, driven over the DevTools protocol. See
// the package doc.
type Browser struct {
	cdp        *cdpConn
	cmd        *exec.Cmd
	exited     chan struct{} // closed once cmd has been waited for
	stderr     *os.File      // read end of the pipe every Chromium process writes its log to
	stderrDone chan struct{} // closed at EOF on stderr: every process holding it has exited
	logTail    *lineTail
}

// StartChromium starts a headless Chromium with a fresh profile in t.TempDir() and
// connects to it. t.Cleanup closes it and waits for all its processes to exit. Without a
// Chromium binary the test is skipped (or fails under SCALEOUT_REQUIRE_SERVICES=1).
func StartChromium(t testing.TB) *Browser {
	t.Helper()
	bin, act, msg := findChromium(os.Getenv)
	apply(t, act, msg)
	b, err := startChromium(bin, t.TempDir())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// Registered after t.TempDir, so it runs before the profile is removed: Chromium
	// writes to it until it exits.
	t.Cleanup(b.close)
	return b
}

func startChromium(bin, profile string) (*Browser, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := append(append([]string{}, chromiumArgs...), "--user-data-dir="+profile, "about:blank")
	cmd := exec.Command(bin, args...)
	// An *os.File as Stderr is handed to the process as is (no copying goroutine in
	// exec), so the pipe reaches EOF only when Chromium and all its children are gone.
	cmd.Stderr = w
	cmd.SysProcAttr = sysProcAttr()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Its own process group, so the renderers and helpers can be killed with it.
	cmd.SysProcAttr.Setpgid = true
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	b := &Browser{
		cmd:        cmd,
		exited:     make(chan struct{}),
		stderr:     r,
		stderrDone: make(chan struct{}),
		logTail:    &lineTail{max: 30},
	}
	go func() {
		_ = cmd.Wait()
		close(b.exited)
	}()
	wsURL := make(chan string, 1)
	go b.readStderr(wsURL)

	ctx, cancel := context.WithTimeout(context.Background(), chromiumStartTimeout)
	defer cancel()
	var u string
	select {
	case u = <-wsURL:
	case <-b.exited:
		b.close()
		return nil, fmt.Errorf("chromium exited at start (%v); its log:\n%s", cmd.ProcessState, b.logTail)
	case <-ctx.Done():
		b.close()
		return nil, fmt.Errorf("chromium did not print its DevTools URL within %v; its log:\n%s", chromiumStartTimeout, b.logTail)
	}
	ws, err := dialWebSocket(ctx, u)
	if err != nil {
		b.close()
		return nil, fmt.Errorf("connect to chromium: %w", err)
	}
	b.cdp = newCDPConn(ws)
	return b, nil
}

// readStderr sends the DevTools URL from Chromium's log to wsURL and keeps the last
// lines for error messages. It reads to EOF, so Chromium never blocks on a full pipe.
func (b *Browser) readStderr(wsURL chan<- string) {
	defer close(b.stderrDone)
	const prefix = "DevTools listening on "
	sc := bufio.NewScanner(b.stderr)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		b.logTail.add(line)
		if !sent && strings.HasPrefix(line, prefix) {
			wsURL <- strings.TrimSpace(strings.TrimPrefix(line, prefix))
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, b.stderr) // after a line too long for the scanner
}

// close shuts Chromium down: politely over DevTools, then with SIGKILL to its process
// group, and waits until every process of it has exited.
func (b *Browser) close() {
	if b.cdp != nil {
		ctx, cancel := context.WithTimeout(context.Background(), chromiumStopTimeout)
		// The browser may drop the connection before it answers.
		_ = b.cdp.call(ctx, "", "Browser.close", nil, nil)
		cancel()
		select {
		case <-b.exited:
		case <-time.After(chromiumStopTimeout):
		}
		b.cdp.close()
	}
	pgid := b.cmd.Process.Pid
	select {
	case <-b.exited:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-b.exited
	}
	select {
	case <-b.stderrDone:
	case <-time.After(chromiumStopTimeout):
		// Helpers outlived the browser. The group still exists (they hold stderr), so its
		// id cannot have been reused.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-b.stderrDone:
		case <-time.After(chromiumStopTimeout):
		}
	}
	_ = b.stderr.Close()
}

// Open opens url in a new tab and waits for its load event.
func (b *Browser) Open(ctx context.Context, url string) (*Page, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.cdp.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, fmt.Errorf("open %s: %w", url, err)
	}
	p := &Page{b: b, targetID: target.TargetID, loaded: make(map[string]bool), loadCh: make(chan struct{}, 1)}
	if err := p.open(ctx, url); err != nil {
		// Do not leave a half-opened tab running scripts for the rest of the test.
		cctx, cancel := context.WithTimeout(context.Background(), chromiumStopTimeout)
		defer cancel()
		_ = p.Close(cctx)
		return nil, fmt.Errorf("open %s: %w", url, err)
	}
	return p, nil
}

// Page is one tab of a Browser.
type Page struct {
	b         *Browser
	targetID  string
	sessionID string

	mu     sync.Mutex
	errors []string        // uncaught exceptions and console.error messages
	loaded map[string]bool // loader ids (one per navigation) whose load event fired
	loadCh chan struct{}   // signalled after each addition to loaded
}

func (p *Page) open(ctx context.Context, url string) error {
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := p.b.cdp.call(ctx, "", "Target.attachToTarget",
		map[string]any{"targetId": p.targetID, "flatten": true}, &att); err != nil {
		return err
	}
	p.sessionID = att.SessionID
	p.b.cdp.handle(p.sessionID, p.event)
	// Every domain is on before the navigation, so no event of the page is missed.
	for _, m := range []string{"Page.enable", "Runtime.enable"} {
		if err := p.call(ctx, m, nil, nil); err != nil {
			return err
		}
	}
	if err := p.call(ctx, "Page.setLifecycleEventsEnabled", map[string]any{"enabled": true}, nil); err != nil {
		return err
	}
	var nav struct {
		LoaderID  string `json:"loaderId"`
		ErrorText string `json:"errorText"`
	}
	if err := p.call(ctx, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return err
	}
	if nav.ErrorText != "" {
		return errors.New(nav.ErrorText)
	}
	if nav.LoaderID == "" {
		return nil // a same-document navigation: nothing to load
	}
	// The load event of the about:blank the tab started with may come late: only the
	// one of this navigation's loader counts.
	for {
		p.mu.Lock()
		done := p.loaded[nav.LoaderID]
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-p.loadCh:
		case <-ctx.Done():
			return fmt.Errorf("waiting for the load event: %w", ctx.Err())
		}
	}
}

func (p *Page) call(ctx context.Context, method string, params, result any) error {
	return p.b.cdp.call(ctx, p.sessionID, method, params, result)
}

// remoteObject is a JavaScript value as the DevTools protocol describes it.
type remoteObject struct {
	Type                string          `json:"type"`
	Subtype             string          `json:"subtype"`
	Value               json.RawMessage `json:"value"`
	UnserializableValue string          `json:"unserializableValue"`
	Description         string          `json:"description"`
}

// String is how console.error prints the value: strings bare, objects by description.
func (o remoteObject) String() string {
	var s string
	switch {
	case o.Type == "string" && json.Unmarshal(o.Value, &s) == nil:
		return s
	case o.UnserializableValue != "":
		return o.UnserializableValue
	case o.Description != "":
		return o.Description
	case len(o.Value) > 0:
		return string(o.Value)
	}
	return o.Type
}

// exceptionDetails describes an exception thrown in the page.
type exceptionDetails struct {
	Text      string        `json:"text"` // "Uncaught", or the like
	URL       string        `json:"url"`
	Line      int           `json:"lineNumber"` // 0-based
	Exception *remoteObject `json:"exception"`
}

func (d *exceptionDetails) String() string {
	msg := d.Text
	if d.Exception != nil {
		msg += ": " + d.Exception.String() // an Error's description holds its stack
	}
	if d.URL != "" {
		msg += fmt.Sprintf(" (%s:%d)", d.URL, d.Line+1)
	}
	return msg
}

// event runs on the DevTools reader goroutine; see cdpHandler.
func (p *Page) event(method string, params json.RawMessage) {
	switch method {
	case "Page.lifecycleEvent":
		var e struct {
			LoaderID string `json:"loaderId"`
			Name     string `json:"name"`
		}
		if json.Unmarshal(params, &e) != nil || e.Name != "load" {
			return
		}
		p.mu.Lock()
		p.loaded[e.LoaderID] = true
		p.mu.Unlock()
		select {
		case p.loadCh <- struct{}{}:
		default: // already signalled; the waiter rereads the map
		}
	case "Runtime.exceptionThrown":
		var e struct {
			Details exceptionDetails `json:"exceptionDetails"`
		}
		if json.Unmarshal(params, &e) == nil {
			p.addError(e.Details.String())
		}
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string         `json:"type"`
			Args []remoteObject `json:"args"`
		}
		if json.Unmarshal(params, &e) != nil || e.Type != "error" {
			return
		}
		parts := make([]string, len(e.Args))
		for i, a := range e.Args {
			parts[i] = a.String()
		}
		p.addError("console.error: " + strings.Join(parts, " "))
	}
}

func (p *Page) addError(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errors = append(p.errors, msg)
}

// ConsoleErrors returns the uncaught exceptions and console.error messages the page has
// produced so far, oldest first, so a test can assert that its page ran without errors.
func (p *Page) ConsoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// evalError is an exception thrown by the expression given to Eval.
type evalError struct{ details exceptionDetails }

func (e *evalError) Error() string { return "javascript: " + e.details.String() }

// Eval evaluates the JavaScript expression js in the page, awaiting it if it is a
// promise, and JSON-decodes its value into out (nil ignores it). An exception thrown by
// js is returned as an error with its message.
func (p *Page) Eval(ctx context.Context, js string, out any) error {
	var r struct {
		Result           remoteObject      `json:"result"`
		ExceptionDetails *exceptionDetails `json:"exceptionDetails"`
	}
	err := p.call(ctx, "Runtime.evaluate", map[string]any{
		"expression":    js,
		"returnByValue": true,
		"awaitPromise":  true,
	}, &r)
	if err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return &evalError{*r.ExceptionDetails}
	}
	if out == nil {
		return nil
	}
	switch {
	case r.Result.UnserializableValue != "":
		return fmt.Errorf("eval: result %s has no JSON form", r.Result.UnserializableValue)
	case len(r.Result.Value) == 0:
		return fmt.Errorf("eval: result is %s", r.Result.String()) // undefined, usually
	}
	if err := json.Unmarshal(r.Result.Value, out); err != nil {
		return fmt.Errorf("eval: decode %.100s: %w", r.Result.Value, err)
	}
	return nil
}

// WaitFor evaluates the boolean JavaScript expression jsCondition every 50ms until it is
// true or ctx ends. While the page is still changing, an exception or a lost execution
// context (a navigation) only means "not yet"; a result that is not a boolean, or a lost
// browser, ends the wait at once.
func (p *Page) WaitFor(ctx context.Context, jsCondition string) error {
	var last error
	err := poll(ctx, waitForInterval, func() (bool, error) {
		var ok bool
		err := p.Eval(ctx, jsCondition, &ok)
		var ee *evalError
		var ce *cdpError
		if errors.As(err, &ee) || errors.As(err, &ce) {
			last = err
			return false, nil
		}
		return ok, err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && last != nil {
		return fmt.Errorf("wait for %s: %w (last evaluation: %v)", jsCondition, err, last)
	}
	return fmt.Errorf("wait for %s: %w", jsCondition, err)
}

// querySelector returns a JavaScript expression that finds selector, throws when nothing
// matches and otherwise evaluates body with the element bound to el.
func querySelector(selector, body string) string {
	lit, _ := json.Marshal(selector) // a JSON string is a JavaScript string literal
	return fmt.Sprintf(`(() => {
	const el = document.querySelector(%s);
	if (el === null) throw new Error("no element matches " + %s);
	%s
})()`, lit, lit, body)
}

// Click clicks the first element matching the CSS selector (HTMLElement.click, which
// runs its click handlers and default action).
func (p *Page) Click(ctx context.Context, selector string) error {
	if err := p.Eval(ctx, querySelector(selector, "el.click();"), nil); err != nil {
		return fmt.Errorf("click %s: %w", selector, err)
	}
	return nil
}

// Text returns the textContent of the first element matching the CSS selector.
func (p *Page) Text(ctx context.Context, selector string) (string, error) {
	var s string
	if err := p.Eval(ctx, querySelector(selector, "return el.textContent;"), &s); err != nil {
		return "", fmt.Errorf("text of %s: %w", selector, err)
	}
	return s, nil
}

// Attr returns the attribute name of the first element matching the CSS selector; an
// element without that attribute is an error.
func (p *Page) Attr(ctx context.Context, selector, name string) (string, error) {
	lit, _ := json.Marshal(name)
	js := querySelector(selector, fmt.Sprintf(`const v = el.getAttribute(%s);
	if (v === null) throw new Error("no attribute " + %s);
	return v;`, lit, lit))
	var s string
	if err := p.Eval(ctx, js, &s); err != nil {
		return "", fmt.Errorf("attribute %s of %s: %w", name, selector, err)
	}
	return s, nil
}

// Close closes the tab. The Browser's cleanup closes every tab, so this is only for
// tests that open many.
func (p *Page) Close(ctx context.Context) error {
	err := p.b.cdp.call(ctx, "", "Target.closeTarget", map[string]any{"targetId": p.targetID}, nil)
	if p.sessionID != "" {
		p.b.cdp.handle(p.sessionID, nil)
	}
	return err
}

// lineTail keeps the last max lines written to it.
type lineTail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (l *lineTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > l.max {
		l.lines = l.lines[len(l.lines)-l.max:]
	}
}

func (l *lineTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
