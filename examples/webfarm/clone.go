package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/shard"
)

// profile is one user's data, kept on the user's shard.
type profile struct {
	Name   string `json:"name"`
	Visits int    `json:"visits"`
}

// cloneStats are one clone's counters, served at /internal/stats.
type cloneStats struct {
	Requests     int64  `json:"requests"`
	CacheHits    uint64 `json:"cacheHits"`
	CacheMisses  uint64 `json:"cacheMisses"`
	JobsAccepted int64  `json:"jobsAccepted"`
	JobsDone     int64  `json:"jobsDone"`
	JobsFailed   int64  `json:"jobsFailed"`
	Leader       bool   `json:"leader"`
	LeaderToken  uint64 `json:"leaderToken"`
}

// clone is one stateless web server of the farm: everything a user has
// lives in the shared stores, so any clone can serve any request and a
// clone can die at any time.
type clone struct {
	name       string
	b          *backends
	controller string
	profiles   *cache.Loader[profile]
	top        *cache.Loader[[]profile]

	mu          sync.RWMutex
	cur, prev   shard.Sharder
	topoVersion int
	move        bool // every live clone knows prev: the migrator may move

	requests, accepted, done, failed atomic.Int64
	leaderToken                      atomic.Uint64 // 0 when not leading
}

const (
	profileTTL = 30 * time.Second
	reportWork = 800 * time.Millisecond // how long a report job takes
)

// runClone serves a clone on l until ctx ends.
func runClone(ctx context.Context, name string, l net.Listener, b *backends, controller string) error {
	c := &clone{name: name, b: b, controller: controller}
	var err error
	if c.profiles, err = cache.NewLoader[profile](b.cache, cache.LoaderConfig[profile]{NegativeTTL: time.Second}); err != nil {
		return err
	}
	defer c.profiles.Close()
	if c.top, err = cache.NewLoader[[]profile](b.cache, cache.LoaderConfig[[]profile]{}); err != nil {
		return err
	}
	defer c.top.Close()
	sessions, err := session.NewManager(b.sessions, session.Config{Cookie: session.CookieConfig{Insecure: true}})
	if err != nil {
		return err
	}
	worker, err := queue.NewWorker(b.jobs, queue.WorkerConfig{Concurrency: 4, Lease: 3 * time.Second})
	if err != nil {
		return err
	}
	if err := worker.Handle("report", queue.ResultFunc(c.report)); err != nil {
		return err
	}
	if err := worker.HandleFunc("precompute", c.precompute); err != nil {
		return err
	}
	sched, err := queue.NewScheduler(b.jobs, queue.SchedulerConfig{})
	if err != nil {
		return err
	}
	if err := sched.Add("precompute", "@every 5s", queue.Job{Type: "precompute"}); err != nil {
		return err
	}
	elector, err := b.elector(name)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { watchTopology(ctx, controller, c.name, 300*time.Millisecond, c.setTopology) })
	wg.Go(func() { _ = worker.Run(ctx) })
	wg.Go(func() { _ = sched.Run(ctx) })
	wg.Go(func() {
		_ = failover.Run(ctx, elector, failover.RunConfig{OnError: func(t *failover.Term, err error) {
			slog.Warn("webfarm: migration failed; resigned, campaigning again", "clone", c.name, "token", t.Token, "error", err)
		}}, c.lead)
	})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /internal/stats", c.stats)
	app := http.NewServeMux()
	app.HandleFunc("POST /login", c.login)
	app.HandleFunc("GET /me", c.me)
	app.HandleFunc("POST /visit", c.visit)
	app.HandleFunc("POST /report", c.enqueueReport)
	app.HandleFunc("GET /jobs/{id}", c.jobStatus)
	app.HandleFunc("GET /top", c.topUsers)
	mux.Handle("/", c.count(sessions.LoadAndSave(app)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }() // a killed clone drops its connections at once
	err = srv.Serve(l)
	cancel()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (c *clone) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		w.Header().Set("X-Served-By", c.name)
		next.ServeHTTP(w, r)
	})
}

func (c *clone) setTopology(t topology) {
	cur, prev, err := t.sharders()
	if err != nil {
		return
	}
	c.mu.Lock()
	c.cur, c.prev, c.topoVersion, c.move = cur, prev, t.Version, t.Move
	c.mu.Unlock()
}

func (c *clone) sharders() (cur, prev shard.Sharder, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.cur == nil {
		return nil, nil, errors.New("webfarm: no topology yet")
	}
	return c.cur, c.prev, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers a server error without its detail, which could name a
// backend, and logs nothing: the counters show it.
func fail(w http.ResponseWriter, status int, what string) {
	writeJSON(w, status, map[string]string{"error": what})
}

// unavailable answers 503 for a backend that failed, and logs why: the
// client is told only which part is down, never a backend's address.
func (c *clone) unavailable(w http.ResponseWriter, r *http.Request, backend string, err error) {
	slog.Warn("webfarm: backend unavailable", "clone", c.name, "backend", backend, "path", r.URL.Path, "error", err)
	fail(w, http.StatusServiceUnavailable, backend+" unavailable")
}

func (c *clone) login(w http.ResponseWriter, r *http.Request) {
	user := r.FormValue("user")
	if !validName.MatchString(user) {
		fail(w, http.StatusBadRequest, "user: 1 to 40 of a-z, 0-9 and _")
		return
	}
	if err := session.Login(r.Context(), user); err != nil {
		fail(w, http.StatusInternalServerError, "login failed")
		return
	}
	ctx := replica.Track(r.Context())
	_, err := c.loadProfile(replica.UsePrimary(ctx), user)
	if errors.Is(err, cache.ErrNotFound) {
		if err = c.saveProfile(ctx, profile{Name: user}); err == nil {
			c.wrote(r.Context(), ctx, user)
		}
	}
	if err != nil {
		c.unavailable(w, r, "database", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": user, "servedBy": c.name})
}

// readCtx carries the user's read-your-writes mark from the session, so
// a read after the user's own write sees it, whichever clone wrote.
func readCtx(ctx context.Context) context.Context {
	if text, ok := session.Get[string](ctx, "mark"); ok {
		var m replica.Mark
		if m.UnmarshalText([]byte(text)) == nil {
			return replica.TrackFrom(ctx, m)
		}
	}
	return ctx
}

func (c *clone) me(w http.ResponseWriter, r *http.Request) {
	user := session.User(r.Context())
	if user == "" {
		fail(w, http.StatusUnauthorized, "not logged in")
		return
	}
	p, err := c.profiles.Get(r.Context(), "profile:"+user, profileTTL, func(ctx context.Context) (profile, error) {
		return c.loadProfile(readCtx(r.Context()), user)
	})
	if err != nil {
		c.unavailable(w, r, "database", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": p.Name, "visits": p.Visits, "servedBy": c.name})
}

func (c *clone) visit(w http.ResponseWriter, r *http.Request) {
	user := session.User(r.Context())
	if user == "" {
		fail(w, http.StatusUnauthorized, "not logged in")
		return
	}
	ctx := replica.Track(r.Context())
	p, err := c.loadProfile(replica.UsePrimary(ctx), user)
	if errors.Is(err, cache.ErrNotFound) {
		p, err = profile{Name: user}, nil
	}
	if err == nil {
		p.Visits++
		err = c.saveProfile(ctx, p)
	}
	if err != nil {
		c.unavailable(w, r, "database", err)
		return
	}
	c.wrote(r.Context(), ctx, user)
	writeJSON(w, http.StatusOK, map[string]any{"user": user, "visits": p.Visits, "servedBy": c.name})
}

// wrote follows a write of user's profile through tracked: the session
// keeps the write's mark, so the user's next reads, on any clone, see it;
// and the cached profile goes, so the next /me reloads it from a node
// that has the write.
func (c *clone) wrote(ctx, tracked context.Context, user string) {
	if m, ok := replica.MarkOf(tracked); ok {
		if text, err := m.MarshalText(); err == nil {
			_ = session.Put(ctx, "mark", string(text)) // ctx carries the session: a string always encodes
		}
	}
	_ = c.profiles.Delete(ctx, "profile:"+user)
}

// loadProfile reads user's profile from its shard, or from its previous
// shard while data moves.
func (c *clone) loadProfile(ctx context.Context, user string) (profile, error) {
	cur, prev, err := c.sharders()
	if err != nil {
		return profile{}, err
	}
	p, err := c.readRow(ctx, cur.Shard(user), user)
	if errors.Is(err, cache.ErrNotFound) && prev != nil && prev.Shard(user) != cur.Shard(user) {
		p, err = c.readRow(ctx, prev.Shard(user), user)
		if errors.Is(err, cache.ErrNotFound) {
			// The row moved between the two reads: the migrator copies it
			// to its new shard before deleting the old copy, so a row gone
			// from prev is on cur, on the primary at least.
			p, err = c.readRow(replica.UsePrimary(ctx), cur.Shard(user), user)
		}
	}
	return p, err
}

func (c *clone) readRow(ctx context.Context, shardName, user string) (profile, error) {
	t, err := table(c.b.prefix, shardName)
	if err != nil {
		return profile{}, err
	}
	var v string
	err = c.b.db.DB().QueryRowContext(ctx, "SELECT v FROM "+t+" WHERE k = $1", user).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return profile{}, cache.ErrNotFound
	}
	if err != nil {
		return profile{}, err
	}
	var p profile
	return p, json.Unmarshal([]byte(v), &p)
}

func (c *clone) saveProfile(ctx context.Context, p profile) error {
	cur, _, err := c.sharders()
	if err != nil {
		return err
	}
	t, err := table(c.b.prefix, cur.Shard(p.Name))
	if err != nil {
		return err
	}
	v, _ := json.Marshal(p)
	_, err = c.b.db.DB().ExecContext(ctx, upsertSQL(t), p.Name, string(v))
	return err
}

func upsertSQL(t string) string {
	return "INSERT INTO " + t + " (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v"
}

func (c *clone) enqueueReport(w http.ResponseWriter, r *http.Request) {
	user := session.User(r.Context())
	if user == "" {
		fail(w, http.StatusUnauthorized, "not logged in")
		return
	}
	id, err := c.b.jobs.Enqueue(r.Context(), queue.Job{Type: "report", Payload: []byte(user), MaxAttempts: 10})
	if err != nil {
		c.unavailable(w, r, "queue", err)
		return
	}
	c.accepted.Add(1)
	writeJSON(w, http.StatusAccepted, map[string]string{"job": string(id), "status": "/jobs/" + string(id)})
}

func (c *clone) jobStatus(w http.ResponseWriter, r *http.Request) {
	info, err := c.b.jobs.Status(r.Context(), queue.JobID(r.PathValue("id")))
	if errors.Is(err, queue.ErrNotFound) {
		fail(w, http.StatusNotFound, "no such job")
		return
	}
	if err != nil {
		c.unavailable(w, r, "queue", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"state": string(info.State), "result": string(info.Result)})
}

// report is the slow work: it takes reportWork, then answers.
func (c *clone) report(ctx context.Context, d *queue.Delivery) ([]byte, error) {
	select {
	case <-time.After(reportWork):
	case <-ctx.Done():
		c.failed.Add(1)
		return nil, ctx.Err()
	}
	c.done.Add(1)
	return fmt.Appendf(nil, "report for %s, made by %s", d.Job.Payload, c.name), nil
}

// precompute is the periodic job: the five users with the most visits,
// put in the cache so /top never touches the database.
func (c *clone) precompute(ctx context.Context, _ *queue.Delivery) error {
	cur, _, err := c.sharders()
	if err != nil {
		return err
	}
	var all []profile
	for _, s := range cur.Shards() {
		t, err := table(c.b.prefix, s)
		if err != nil {
			return err
		}
		rows, err := c.b.db.DB().QueryContext(ctx, "SELECT k, v FROM "+t+" ORDER BY k")
		if err != nil {
			return err
		}
		for rows.Next() {
			var k, v string
			var p profile
			if rows.Scan(&k, &v) == nil && json.Unmarshal([]byte(v), &p) == nil {
				all = append(all, p)
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Visits > all[j].Visits })
	return c.top.Set(ctx, "top", all[:min(5, len(all))], time.Minute)
}

func (c *clone) topUsers(w http.ResponseWriter, r *http.Request) {
	top, err := c.top.Get(r.Context(), "top", time.Minute, func(context.Context) ([]profile, error) {
		return nil, cache.ErrNotFound // only the periodic job computes it
	})
	if err != nil && !errors.Is(err, cache.ErrNotFound) {
		c.unavailable(w, r, "cache", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"top": top, "servedBy": c.name})
}

func (c *clone) stats(w http.ResponseWriter, _ *http.Request) {
	st := c.profiles.Stats()
	tok := c.leaderToken.Load()
	writeJSON(w, http.StatusOK, cloneStats{
		Requests: c.requests.Load(), CacheHits: st.Hits, CacheMisses: st.Misses,
		JobsAccepted: c.accepted.Load(), JobsDone: c.done.Load(), JobsFailed: c.failed.Load(),
		Leader: tok != 0, LeaderToken: tok,
	})
}
