package browsertest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/admin"
	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
)

// Real-time test in this file: TestAdminPage runs real primitives and a
// browser on the wall clock; it asserts what the page shows and what the
// queue does, not durations: the waits are generous bounds against a hang.

// adminService is a service with the admin page mounted under /admin/,
// behind a login of its own (a cookie its Authorize hook checks), and the
// primitives the page shows, all in memory and busy.
type adminService struct {
	url     string
	q       *queue.Memory
	failing atomic.Bool // the worker fails "flaky" jobs for good while set
}

func startAdminService(t *testing.T) *adminService {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	quiet := slog.New(slog.DiscardHandler)
	secret := rand.Text()

	h, err := admin.New(admin.Config{
		Title:    "shop admin",
		Interval: 300 * time.Millisecond,
		Window:   time.Minute,
		Logger:   quiet,
		Authorize: func(r *http.Request) error {
			if c, err := r.Cookie("operator"); err == nil && c.Value == secret {
				return nil
			}
			return errors.New("operators only: log in at /login")
		},
	})
	require.NoError(t, err)
	s := &adminService{}

	// A queue with a worker.
	s.q, err = queue.NewMemory(queue.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.q.Close() })
	h.Queues("jobs", s.q)
	w, err := queue.NewWorker(s.q, queue.WorkerConfig{Queues: map[string]int{"mail": 1}, Concurrency: 2, Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, w.HandleFunc("send", func(ctx context.Context, d *queue.Delivery) error {
		time.Sleep(5 * time.Millisecond)
		return nil
	}))
	require.NoError(t, w.HandleFunc("flaky", func(ctx context.Context, d *queue.Delivery) error {
		if s.failing.Load() {
			return queue.Permanent(errors.New("upstream said no"))
		}
		return nil
	}))
	wg.Go(func() { _ = w.Run(ctx) })
	wg.Go(func() { // producers
		for ctx.Err() == nil {
			_, _ = s.q.Enqueue(ctx, queue.Job{Queue: "mail", Type: "send"})
			sleep(ctx, 40*time.Millisecond)
		}
	})

	// A balancer over three backends, with traffic.
	lb, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{Meter: h.Meter("web"), Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { _ = lb.Close() })
	require.NoError(t, lb.Update([]balance.Backend{{Addr: "10.0.0.1:8080"}, {Addr: "10.0.0.2:8080"}, {Addr: "10.0.0.3:8080"}}))
	wg.Go(func() {
		for ctx.Err() == nil {
			c, err := lb.Pick(ctx, "")
			if err == nil {
				sleep(ctx, 3*time.Millisecond)
				c.Done(nil)
			}
			sleep(ctx, 10*time.Millisecond)
		}
	})

	// A cache with readers: mostly hits.
	store, err := cache.NewMemory(cache.MemoryConfig{})
	require.NoError(t, err)
	loader, err := cache.NewLoader(store, cache.LoaderConfig[string]{Meter: h.Meter("catalog")})
	require.NoError(t, err)
	t.Cleanup(func() { _ = loader.Close() })
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			_, _ = loader.Get(ctx, fmt.Sprint("product:", i%8), time.Minute, func(context.Context) (string, error) {
				return "a product", nil
			})
			sleep(ctx, 10*time.Millisecond)
		}
	})

	// An elected migrator, this process its only candidate.
	elector, err := failover.NewMemoryStore().Candidate(failover.Config{ID: "node-1"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = elector.Close() })
	h.Election("migrator", elector, "node-1")
	wg.Go(func() {
		_ = failover.Run(ctx, elector, failover.RunConfig{Meter: h.Meter("migrator"), Logger: quiet},
			func(ctx context.Context, _ *failover.Term) error { <-ctx.Done(); return nil })
	})

	wg.Go(func() { _ = h.Run(ctx) })

	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h))
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "operator", Value: secret, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
	})
	// The browser asks the service's root for the icon of the refused
	// page, a plain text one.
	mux.HandleFunc("/favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	wg.Go(func() { _ = srv.Serve(l) })
	t.Cleanup(func() { _ = srv.Close() })
	s.url = "http://" + l.Addr().String()
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Selectors of the page.
const (
	mailPanel   = `document.querySelector('[data-queue="jobs/mail"]')`
	mailFigure  = mailPanel + `.querySelector('.value.%s').dataset.value`
	depthPoints = `Number(` + mailPanel + `.querySelector('[data-chart="depth"] canvas').dataset.points || 0)`
)

// linePixels counts the pixels of the canvas at selector %s that are
// about the colour of a chart's first line.
const linePixels = `(() => {
	const c = document.querySelector('%s');
	const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
	let n = 0;
	for (let i = 0; i < d.length; i += 4) if (d[i] < 90 && d[i+1] < 140 && d[i+2] > 180 && d[i+3] > 128) n++;
	return n;
})()`

func mailValue(name string) string { return fmt.Sprintf(`Number(`+mailFigure+`)`, name) }

// TestAdminPage opens the admin page in Chromium: refused before logging
// in, then panels with live figures, charts that grow, a dead letter
// retried back to pending from its button, and a pause that stops the
// worker's dequeues.
func TestAdminPage(t *testing.T) {
	chromium := testenv.ChromiumPath(t)
	s := startAdminService(t)
	tb := openTab(t, chromium, s.url+"/admin/")
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Minute)
	defer cancel()

	// Unauthorized: the hook refuses, and the page serves nothing.
	text := evaluate[string](t, ctx, `document.body.innerText`)
	require.Contains(t, text, "operators only", "the page before logging in")
	require.Eventually(t, func() bool { return len(tb.consoleProblems()) > 0 }, 30*time.Second, 10*time.Millisecond,
		"the browser logs the 403")
	refusals := len(tb.consoleProblems())
	require.False(t, evaluate[bool](t, ctx, `!!document.querySelector('#queues')`), "a refused page shows no panel")

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(s.url+"/login")))
	waitFor(t, ctx, `Number(document.body.dataset.polls) >= 2`, "the page polls its figures")
	// Live figures in every panel.
	waitFor(t, ctx, mailValue("done")+` > 0`, "jobs done shown")
	done := evaluate[int](t, ctx, mailValue("done"))
	waitFor(t, ctx, fmt.Sprintf(`%s > %d`, mailValue("done"), done), "the done count grows")
	waitFor(t, ctx, mailValue("throughput")+` > 0`, "a throughput")
	waitFor(t, ctx, `document.querySelectorAll('[data-balancer="web"] tr[data-backend]').length === 3`, "three backends")
	waitFor(t, ctx, `[...document.querySelectorAll('[data-balancer="web"] tr[data-backend] .picks')].every(e => Number(e.dataset.value) > 0)`,
		"picks of every backend")
	waitFor(t, ctx, `document.querySelector('[data-balancer="web"] tr[data-backend] .health').dataset.value === 'true'`, "backends up")
	waitFor(t, ctx, `Number(document.querySelector('[data-cache="catalog"] .value.hit-ratio-total').dataset.value) > 0.5`, "a hit ratio")
	waitFor(t, ctx, `document.querySelector('[data-election="migrator"] .value.role').dataset.value === 'leader'`, "this process leads")
	waitFor(t, ctx, `document.querySelector('[data-election="migrator"] .value.leader').dataset.value === 'node-1'`, "the leader's ID")

	// A chart grows.
	points := evaluate[int](t, ctx, depthPoints)
	waitFor(t, ctx, fmt.Sprintf(`%s > %d`, depthPoints, points+2), "the depth chart grows")
	waitFor(t, ctx, `Number(document.querySelector('[data-cache="catalog"] [data-chart="hit_ratio"] canvas').dataset.points) > 2`, "the hit ratio chart")
	// And the page draws it: pixels of the first line's colour (#2563eb).
	waitFor(t, ctx, fmt.Sprintf(linePixels, `[data-queue="jobs/mail"] [data-chart="throughput"] canvas`)+` > 20`, "the throughput line drawn")

	// A job dies.
	s.failing.Store(true)
	id, err := s.q.Enqueue(ctx, queue.Job{Queue: "mail", Type: "flaky", MaxAttempts: 1})
	require.NoError(t, err)
	row := fmt.Sprintf(`document.querySelector('[data-queue="jobs/mail"] tr[data-job=%q]')`, id)
	waitFor(t, ctx, row+` !== null`, "the dead letter listed")
	require.Equal(t, "upstream said no", evaluate[string](t, ctx, row+`.querySelector('.error').textContent`))
	s.failing.Store(false)

	// Pause stops dequeues.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-queue="jobs/mail"] button.pause`))))
	waitFor(t, ctx, mailPanel+`.dataset.paused === 'true'`, "the queue shown paused")
	waitFor(t, ctx, `document.querySelector('#action-result').dataset.ok === 'true'`, "the pause reported done")
	c, err := s.q.Counts(ctx, "mail")
	require.NoError(t, err)
	require.True(t, c.Paused, "the queue paused by the button")
	// Jobs leased before the pause may still end; after that, none.
	require.Eventually(t, func() bool { c, _ := s.q.Counts(ctx, "mail"); return c.Active == 0 }, 30*time.Second, 10*time.Millisecond)
	c, _ = s.q.Counts(ctx, "mail")
	time.Sleep(time.Second) // the producer goes on enqueueing
	c2, _ := s.q.Counts(ctx, "mail")
	require.Equal(t, c.DoneTotal, c2.DoneTotal, "jobs done while paused")
	require.Greater(t, c2.Ready, c.Ready, "the queue fills while paused")
	waitFor(t, ctx, fmt.Sprintf(`%s >= %d`, mailValue("ready"), c2.Ready), "the page shows the backlog")

	// Retry moves the dead letter back to pending: with the queue paused,
	// it waits there.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`tr[data-job=%q] button.retry`, id)))))
	waitFor(t, ctx, row+` === null`, "the retried dead letter gone from the list")
	waitFor(t, ctx, mailValue("dead")+` === 0`, "no dead letter left")
	info, err := s.q.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, queue.StateReady, info.State, "the retried job")

	// Resume: the worker takes the backlog, the retried job included.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-queue="jobs/mail"] button.pause`))))
	waitFor(t, ctx, mailPanel+`.dataset.paused === 'false'`, "the queue shown running")
	info, err = s.q.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, queue.StateDone, info.State, "the retried job, after resume")

	require.Empty(t, tb.consoleProblems()[refusals:], "the page's console once logged in (a CSP violation would show here)")

	// Without its cookie, the same browser's request is refused.
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('api/state', {credentials: 'omit'}).then(r => r.status)`,
		chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, status, "api/state without the login cookie")
}
