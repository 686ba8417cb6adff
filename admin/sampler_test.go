package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
)

// queueHandlerDurationDesc is queue's handler latency as the queue
// package reports it (its Desc lives there).
var queueHandlerDurationDesc = observe.Desc{Name: queueHandlerDuration, Kind: observe.KindHistogram, Unit: "s", Labels: []string{"queue"}}

// TestFigures runs a known workload through the instrumentation the
// primitives use, on the fake clock of a synctest bubble, and checks the
// figures and charts the page is given: rates and means over the last
// interval, totals, gauges, and the window the charts keep.
func TestFigures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		h := newHandler(t, Config{Authorize: func(*http.Request) error { return nil }, Interval: time.Second, Window: 5 * time.Second})
		q, err := queue.NewMemory(queue.MemoryConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = q.Close() }()
		h.Queues("jobs", q)
		web := h.Meter("web")
		if h.Meter("web") != web {
			t.Fatal("Meter of the same name returned another Meter")
		}
		jobsMeter := h.Meter("jobs")

		pickA := observe.NewCounter(web, observe.BalancePicks, "a:80")
		pickB := observe.NewCounter(web, observe.BalancePicks, "b:80")
		durA := observe.NewHistogram(web, observe.BalanceDuration, "a:80")
		healthyB := observe.NewGauge(web, observe.BalanceHealthy, "b:80")
		inFlightA := observe.NewUpDownCounter(web, observe.BalanceInFlight, "a:80")
		hits := observe.NewCounter(web, observe.CacheHits, "shared")
		misses := observe.NewCounter(web, observe.CacheMisses)
		lag := observe.NewGauge(web, observe.ReplicaLag, "r1")
		primary := observe.NewGauge(web, observe.ReplicaPrimary, "p1")
		handled := observe.NewHistogram(jobsMeter, queueHandlerDurationDesc, "mail")

		runErr := make(chan error, 1)
		go func() { runErr <- h.Run(ctx) }()
		synctest.Wait() // the first sample, at once
		if err := h.Run(ctx); !errors.Is(err, ErrAlreadyRunning) {
			t.Errorf("a second Run = %v, want ErrAlreadyRunning", err)
		}

		// One interval of work.
		pickA.Add(10)
		pickB.Add(5)
		for _, d := range []float64{0.1, 0.1, 0.3, 0.3} {
			durA.Observe(d)
		}
		healthyB.Set(0)
		inFlightA.Add(3)
		hits.Add(3)
		misses.Inc()
		lag.Set(0.5)
		primary.Set(1)
		for range 4 {
			if _, err := q.Enqueue(ctx, queue.Job{Queue: "mail", Type: "send"}); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range []float64{0.5, 1.5} {
			dl, err := q.Dequeue(ctx, []string{"mail"}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := dl.Ack(ctx, nil); err != nil {
				t.Fatal(err)
			}
			handled.Observe(d)
		}
		time.Sleep(time.Second)
		synctest.Wait()

		st := h.state(h.read(ctx, true))
		if !st.Sampling || st.Interval != 1 || st.Window != 5 {
			t.Errorf("sampling %v every %v s over %v s", st.Sampling, st.Interval, st.Window)
		}
		if len(st.Balancers) != 1 || len(st.Balancers[0].Backends) != 2 {
			t.Fatalf("balancers %+v, want web with a:80 and b:80", st.Balancers)
		}
		a, b := st.Balancers[0].Backends[0], st.Balancers[0].Backends[1]
		if a.Addr != "a:80" || a.Picks != 10 || a.Rate != 10 || a.InFlight != 3 || !near(a.Latency, 0.2) || a.Healthy != nil {
			t.Errorf("backend a: %+v, want 10 picks at 10/s, 3 in flight, mean 0.2 s, health unknown", a)
		}
		if b.Rate != 5 || b.Healthy == nil || *b.Healthy || !math.IsNaN(float64(b.Latency)) {
			t.Errorf("backend b: %+v, want 5/s, down, no latency", b)
		}
		if len(st.Caches) != 1 || st.Caches[0].HitRatio != 0.75 || st.Caches[0].HitRatioTotal != 0.75 || st.Caches[0].Hits != 3 {
			t.Errorf("caches %+v, want a hit ratio of 0.75", st.Caches)
		}
		if len(st.Replicas) != 1 || len(st.Replicas[0].Nodes) != 2 {
			t.Fatalf("replicas %+v, want nodes p1 and r1", st.Replicas)
		}
		if p1, r1 := st.Replicas[0].Nodes[0], st.Replicas[0].Nodes[1]; p1.Role != "primary" || r1.Role != "replica" || r1.Lag != 0.5 {
			t.Errorf("nodes %+v %+v", p1, r1)
		}
		if len(st.Queues) != 1 {
			t.Fatalf("queues %+v", st.Queues)
		}
		mq := st.Queues[0]
		if mq.Pending != 2 || mq.DoneTotal != 2 || mq.Throughput != 2 || !near(mq.Latency, 1) {
			t.Errorf("mail: %+v, want 2 pending, 2 done at 2/s, mean handler time 1 s", mq)
		}
		if n := len(mq.Charts[0].Lines[0].V); n != 1 {
			t.Errorf("the depth chart has %d points after the sample that first saw the queue", n)
		}

		// An idle interval: no gets, nothing to divide by.
		time.Sleep(time.Second)
		synctest.Wait()
		st = h.state(h.read(ctx, true))
		if c := st.Caches[0]; !math.IsNaN(float64(c.HitRatio)) || c.HitRatioTotal != 0.75 {
			t.Errorf("idle cache: ratio now %v, total %v; want none now and 0.75 overall", c.HitRatio, c.HitRatioTotal)
		}
		if a := st.Balancers[0].Backends[0]; a.Rate != 0 {
			t.Errorf("idle backend a: %v/s", a.Rate)
		}
		if n := len(st.Queues[0].Charts[0].Lines[0].V); n != 2 {
			t.Errorf("the depth chart did not grow: %d points", n)
		}
		raw, _ := json.Marshal(st)
		if !strings.Contains(string(raw), `"hitRatio":null`) {
			t.Errorf("an unknown ratio is not null in JSON: %s", raw)
		}

		// The charts keep Window/Interval points.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		st = h.state(h.read(ctx, true))
		for _, c := range st.Queues[0].Charts {
			if n := len(c.Lines[0].V); n != 5 {
				t.Errorf("chart %s keeps %d points, want 5 (Window/Interval)", c.ID, n)
			}
		}
		line := st.Caches[0].Charts[0].Lines[0]
		if last := line.T[len(line.T)-1]; last != st.Now {
			t.Errorf("the chart's last point is at %d, the reading at %d", last, st.Now)
		}

		cancel()
		if err := <-runErr; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
		if h.state(h.read(t.Context(), false)).Sampling {
			t.Error("still sampling after Run returned")
		}
	})
}

func near(n number, want float64) bool { return math.Abs(float64(n)-want) < 1e-9 }

// TestElection checks the election panel: who leads, with which token,
// this process's role, and since when, as leadership moves.
func TestElection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		store := failover.NewMemoryStore()
		a, err := store.Candidate(failover.Config{ID: "a"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = a.Close() }()
		b, err := store.Candidate(failover.Config{ID: "b"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = b.Close() }()
		h := newHandler(t, open())
		h.Election("migrator", b, "b")
		panel := func() electionPanel {
			st := h.state(h.read(ctx, false))
			if len(st.Elections) != 1 {
				t.Fatalf("elections %+v", st.Elections)
			}
			return st.Elections[0]
		}

		if p := panel(); !p.Vacant || p.Role != "follower" || p.Leader != "" || p.Error != "" {
			t.Errorf("before any campaign: %+v, want vacant, b a follower", p)
		}
		ta, err := a.Campaign(ctx)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		p := panel()
		if p.Vacant || p.Leader != "a" || p.Token != "1" || p.Role != "follower" {
			t.Errorf("a leads: %+v", p)
		}
		if !p.SinceChange || p.Since != time.Now().UnixMilli() {
			t.Errorf("a leads since %d (seen change %v), want now, %d", p.Since, p.SinceChange, time.Now().UnixMilli())
		}
		firstSince := p.Since
		time.Sleep(time.Second)
		if p := panel(); p.Since != firstSince {
			t.Errorf("the same term's since moved from %d to %d", firstSince, p.Since)
		}

		if err := a.Resign(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Campaign(ctx); err != nil {
			t.Fatal(err)
		}
		_ = ta
		p = panel()
		if p.Leader != "b" || p.Role != "leader" || p.Token != "2" || p.Since != time.Now().UnixMilli() {
			t.Errorf("b leads: %+v", p)
		}
	})
}

// TestElectionFromMetricsOnly checks the panel of an election known only
// from failover.Run's metrics: this process's role and token.
func TestElectionFromMetricsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		e, err := failover.NewMemoryStore().Candidate(failover.Config{ID: "solo"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = e.Close() }()
		h := newHandler(t, open())
		done := make(chan error, 1)
		go func() {
			done <- failover.Run(ctx, e, failover.RunConfig{Meter: h.Meter("cron"), Logger: slog.New(slog.DiscardHandler)},
				func(ctx context.Context, _ *failover.Term) error { <-ctx.Done(); return nil })
		}()
		synctest.Wait()
		st := h.state(h.read(ctx, false))
		if len(st.Elections) != 1 {
			t.Fatalf("elections %+v", st.Elections)
		}
		if p := st.Elections[0]; p.Name != "cron" || p.Role != "leader" || p.Token != "1" || p.Terms != 1 {
			t.Errorf("panel %+v, want cron led by this process with token 1", p)
		}
		cancel()
		<-done
		synctest.Wait()
		if p := h.state(h.read(t.Context(), false)).Elections[0]; p.Role != "follower" {
			t.Errorf("after Run ended: role %q, want follower", p.Role)
		}
	})
}

// TestFailingSource checks that a source that fails is told on the page
// and does not hide the others.
func TestFailingSource(t *testing.T) {
	h := newHandler(t, open())
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h.Queues("jobs", q)
	_ = q.Close()
	observe.NewCounter(h.Meter("web"), observe.BalancePicks, "a:80").Inc()
	st := h.state(h.read(t.Context(), true))
	if len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "jobs") || !strings.Contains(st.Problems[0], queue.ErrClosed.Error()) {
		t.Errorf("problems %q, want the closed queue store told", st.Problems)
	}
	if len(st.Balancers) != 1 || st.Balancers[0].Backends[0].Picks != 1 {
		t.Errorf("balancers %+v, want web shown still", st.Balancers)
	}
}
