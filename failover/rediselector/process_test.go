package rediselector_test

// Real-time tests in this file, with candidates in child processes on a
// real Redis: TestLeaderKilled (SIGKILL), TestLeaderPaused (SIGSTOP) and
// TestFailoverTrials. Their bounds are Lease + RetryInterval plus
// boundSlack.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/rediselector"
	"github.com/scaleout/scaleout/internal/testenv"
)

// Process faults run this test binary as candidate children
// (TestElectorChild), which find their orders in these variables.
const (
	childEnv    = "SCALEOUT_ELECTOR_CHILD" // the candidate's ID
	childAddr   = "SCALEOUT_ELECTOR_ADDR"
	childPrefix = "SCALEOUT_ELECTOR_PREFIX"
)

// procConfig: a lease of 1 s, the defaults otherwise (renew 250 ms, retry
// 125 ms, margin 100 ms).
var procConfig = failover.Config{Lease: time.Second}

const procRole = "proc"

// resourceKey is the fenced resource every leader writes to.
func resourceKey(prefix string) string { return prefix + "{" + procRole + "}:resource" }

func childClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
}

// TestElectorChild is one candidate process; it does nothing when run on
// its own. It campaigns; leading, it writes its token to the fenced
// resource every 10 ms while its Term lasts, and reports on stdout:
//
//	LEADER <token> <unix ns of Campaign's return>
//	OVERLAP <token>    a write refused as stale while the Term still lasted
//	ENDED <token> <err>
//	REFUSED|ACCEPTED|WRITEERR <token>   one write with the old token after the end
//
// then campaigns again. It exits when its stdin closes.
func TestElectorChild(t *testing.T) {
	id := os.Getenv(childEnv)
	if id == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	c := childClient(os.Getenv(childAddr))
	defer c.Close()
	prefix := os.Getenv(childPrefix)
	cfg := procConfig
	cfg.ID = id
	e, err := rediselector.New(c, rediselector.Config{Role: procRole, Prefix: prefix, Config: cfg})
	if err != nil {
		fmt.Println("ERROR", err)
		return
	}
	defer e.Close()
	res := resourceKey(prefix)
	for ctx.Err() == nil {
		term, err := e.Campaign(ctx)
		if err != nil {
			continue
		}
		fmt.Println("LEADER", term.Token, time.Now().UnixNano())
		val := []byte(strconv.FormatUint(term.Token, 10))
		live := func() bool { return term.Err() == nil && time.Now().Before(term.Deadline()) }
		for live() && ctx.Err() == nil {
			wctx, wcancel := context.WithDeadline(ctx, term.Deadline())
			err := rediselector.FenceSet(wctx, c, res, val, term.Token)
			wcancel()
			if errors.Is(err, failover.ErrStaleToken) && live() {
				fmt.Println("OVERLAP", term.Token)
			}
			time.Sleep(10 * time.Millisecond)
		}
		<-term.Done()
		fmt.Println("ENDED", term.Token, term.Err())
		switch err := rediselector.FenceSet(ctx, c, res, val, term.Token); {
		case errors.Is(err, failover.ErrStaleToken):
			fmt.Println("REFUSED", term.Token)
		case err == nil:
			fmt.Println("ACCEPTED", term.Token)
		default:
			fmt.Println("WRITEERR", term.Token)
		}
	}
}

type event struct {
	c    *child
	line string
}

type child struct {
	id  string
	cmd *exec.Cmd
}

// startChild starts a candidate process; its stdout lines go to events.
func startChild(t *testing.T, addr, prefix, id string, events chan<- event) *child {
	cmd := exec.Command(os.Args[0], "-test.run=^TestElectorChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+id, childAddr+"="+addr, childPrefix+"="+prefix)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	ch := &child{id: id, cmd: cmd}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			events <- event{ch, sc.Text()}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	})
	return ch
}

// nextLeader waits for a LEADER line; it fails the test on OVERLAP and
// ACCEPTED lines.
func nextLeader(t *testing.T, events <-chan event, timeout time.Duration, what ...any) (*child, uint64, time.Time) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-events:
			f := strings.Fields(ev.line)
			switch f[0] {
			case "LEADER":
				tok, _ := strconv.ParseUint(f[1], 10, 64)
				ns, _ := strconv.ParseInt(f[2], 10, 64)
				return ev.c, tok, time.Unix(0, ns)
			case "OVERLAP", "ACCEPTED":
				t.Fatalf("%s: %s: two leaders acted at once", ev.c.id, ev.line)
			default:
				if os.Getenv("SCALEOUT_FAILOVER_DEBUG") != "" {
					t.Logf("%s: %s", ev.c.id, ev.line)
				}
			}
		case <-deadline:
			t.Fatal(append([]any{"no leader elected "}, what...)...)
		}
	}
}

// TestLeaderKilled: a leader killed with SIGKILL is replaced, here by the
// parent, within Lease + RetryInterval + slack.
func TestLeaderKilled(t *testing.T) {
	c := testenv.RedisClient(t)
	prefix := testenv.Prefix(t)
	events := make(chan event, 1024)
	ch := startChild(t, testenv.RedisAddr(t), prefix, "child", events)
	_, tok, _ := nextLeader(t, events, 10*time.Second)
	e := newElector(t, c, procRole, "parent", procConfig)
	won := make(chan *failover.Term, 1)
	go func() { tm, _ := e.Campaign(t.Context()); won <- tm }()
	time.Sleep(time.Duration(rand.N(250)) * time.Millisecond)
	killed := time.Now()
	require.NoError(t, ch.cmd.Process.Kill())
	cfg := e.Config()
	select {
	case tm := <-won:
		took := time.Since(killed)
		t.Logf("new leader %v after SIGKILL", took)
		require.Greater(t, tm.Token, tok)
		require.Less(t, took, cfg.Lease+cfg.RetryInterval+boundSlack,
			"new leader %v after SIGKILL; Lease + RetryInterval is %v, and %v more is allowed for a loaded machine", took, cfg.Lease+cfg.RetryInterval, boundSlack)
	case <-time.After(5 * time.Second):
		t.Fatal("no new leader")
	}
}

// TestLeaderPaused: a leader stopped (SIGSTOP) past its lease is replaced;
// resumed, it finds its Term Done (ErrLeaseExpired) and its write with the
// old token is refused at the fenced resource.
func TestLeaderPaused(t *testing.T) {
	c := testenv.RedisClient(t)
	prefix := testenv.Prefix(t)
	events := make(chan event, 1024)
	ch := startChild(t, testenv.RedisAddr(t), prefix, "child", events)
	_, tok, _ := nextLeader(t, events, 10*time.Second)
	e := newElector(t, c, procRole, "parent", procConfig)
	require.NoError(t, ch.cmd.Process.Signal(syscall.SIGSTOP))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	tm, err := e.Campaign(ctx)
	require.NoError(t, err)
	require.Greater(t, tm.Token, tok)
	require.NoError(t, rediselector.FenceSet(t.Context(), c, resourceKey(prefix), []byte("parent"), tm.Token))
	require.NoError(t, ch.cmd.Process.Signal(syscall.SIGCONT))
	var lines []string
	timeout := time.After(5 * time.Second)
	for !slices.ContainsFunc(lines, func(s string) bool { return strings.HasPrefix(s, "REFUSED") }) {
		select {
		case ev := <-events:
			lines = append(lines, ev.line)
			require.False(t, strings.HasPrefix(ev.line, "OVERLAP") || strings.HasPrefix(ev.line, "ACCEPTED"), "%v", lines)
		case <-timeout:
			t.Fatalf("resumed leader reported %v", lines)
		}
	}
	require.Contains(t, lines, fmt.Sprintf("ENDED %d %v", tok, failover.ErrLeaseExpired))
	require.NoError(t, tm.Err(), "the new leader still leads")
}

// TestFailoverTrials kills (SIGKILL) the leader among 3 candidate
// processes, SCALEOUT_FAILOVER_TRIALS times (default 20), and measures the
// time from the kill to the new leader's Campaign return: p99 must be at
// most 1.5 s (Lease 1 s) in the measurement run (SCALEOUT_FAILOVER_TRIALS
// set), the median in the test suite. Every leader writes its token to a fenced
// resource every 10 ms; a write refused as stale while its writer's Term
// still lasted (two leaders at once), or accepted after its Term ended,
// fails the test. With SCALEOUT_FAILOVER_TRIALS set, each trial picks at
// random a kill or a pause (SIGSTOP past the lease, then SIGCONT); Redis
// restarts are TestRedisRestart's (a restart shorter than the lease
// rightly keeps the leader, whose lease survives in the append-only file).
// The long run:
//
//	SCALEOUT_FAILOVER_TRIALS=1000 go test -race -count=1 -timeout=2h \
//	    -run '^TestFailoverTrials$' -v ./failover/rediselector/
func TestFailoverTrials(t *testing.T) {
	trials, random := 20, false
	if s := os.Getenv("SCALEOUT_FAILOVER_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		trials, random = n, true
	}
	srv := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: true})
	prefix := testenv.Prefix(t)
	events := make(chan event, 4096)
	next := 0
	spawn := func() {
		startChild(t, srv.Addr(), prefix, fmt.Sprint("c", next), events)
		next++
	}
	for range 3 {
		spawn()
	}
	leader, tok, _ := nextLeader(t, events, 20*time.Second)
	var lat []time.Duration
	counts := map[string]int{}
	for i := range trials {
		kind := "kill"
		if random {
			kind = []string{"kill", "pause"}[rand.N(2)]
		}
		counts[kind]++
		time.Sleep(time.Duration(rand.N(250)) * time.Millisecond) // any phase of the renewals
		at := time.Now()
		switch kind {
		case "kill":
			require.NoError(t, leader.cmd.Process.Kill())
			spawn()
		case "pause":
			require.NoError(t, leader.cmd.Process.Signal(syscall.SIGSTOP))
		}
		paused := leader
		nl, ntok, when := nextLeader(t, events, 20*time.Second, "after trial ", i, " (", kind, ")")
		require.Greater(t, ntok, tok, "trial %d (%s): tokens must increase", i, kind)
		lat = append(lat, when.Sub(at))
		if when.Sub(at) > time.Second+300*time.Millisecond {
			t.Logf("trial %d (%s): slow take-over %v: %s (token %d) after %s (token %d)", i, kind, when.Sub(at), nl.id, ntok, leader.id, tok)
		}
		if kind == "pause" {
			time.Sleep(50 * time.Millisecond) // the new leader writes first
			require.NoError(t, paused.cmd.Process.Signal(syscall.SIGCONT))
		}
		leader, tok = nl, ntok
	}
	// Drain: late OVERLAP or ACCEPTED lines fail the test.
	for drain := time.After(300 * time.Millisecond); ; {
		select {
		case ev := <-events:
			require.False(t, strings.HasPrefix(ev.line, "OVERLAP") || strings.HasPrefix(ev.line, "ACCEPTED"), "%s: %s", ev.c.id, ev.line)
			continue
		case <-drain:
		}
		break
	}
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("%d trials %v: kill/pause to new leader p50 %v, p99 %v, max %v", trials, counts, pct(0.50), pct(0.99), lat[len(lat)-1])
	if random {
		// The measurement run: the target itself.
		require.LessOrEqual(t, pct(0.99), 1500*time.Millisecond)
		return
	}
	// In the test suite, 20 trials share two cores with every other
	// package's tests, so p99 is one starved process away from the
	// target: hold the median to it, and every trial to what a working
	// elector can never exceed (the lease, a retry, and scheduling).
	require.LessOrEqual(t, pct(0.50), 1500*time.Millisecond)
	require.LessOrEqual(t, lat[len(lat)-1], 5*time.Second)
}
