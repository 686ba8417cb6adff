package main

// Real-time tests in this file: TestInMemoryFarm (the whole farm on real
// HTTP sockets, with its elections, leases and workers on the wall clock;
// it asserts what users see, not durations: the waits are generous bounds
// against a hang).

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/examples/webfarm/dashboard"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// farmClient talks to a running farm's controller.
type farmClient struct {
	t      *testing.T
	admin  string
	public string
}

func (c farmClient) state() dashboard.State {
	c.t.Helper()
	resp, err := http.Get("http://" + c.admin + "/api/state")
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var st dashboard.State
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

// adminState is what the farm's admin page (package admin, at /admin/)
// polls: the parts of it the farm's tests read.
type adminState struct {
	Queues []struct {
		Store     string `json:"store"`
		Pending   int    `json:"pending"`
		DoneTotal int64  `json:"doneTotal"`
	} `json:"queues"`
	Elections []struct {
		Name   string `json:"name"`
		Leader string `json:"leader"`
	} `json:"elections"`
	Replicas []struct {
		Name  string `json:"name"`
		Nodes []struct {
			Name  string `json:"name"`
			Role  string `json:"role"`
			Reads int64  `json:"reads"`
		} `json:"nodes"`
	} `json:"replicas"`
}

func (c farmClient) adminState() adminState {
	c.t.Helper()
	resp, err := http.Get("http://" + c.admin + "/admin/api/state")
	require.NoError(c.t, err)
	defer resp.Body.Close()
	require.Equal(c.t, http.StatusOK, resp.StatusCode, "the admin page refused a request from loopback")
	var st adminState
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&st))
	return st
}

func (c farmClient) action(name string) string {
	c.t.Helper()
	resp, err := http.Post("http://"+c.admin+"/api/actions/"+name, "", nil)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(c.t, http.StatusOK, resp.StatusCode, "%s: %s", name, b)
	c.t.Logf("%s", strings.TrimSpace(string(b)))
	return string(b)
}

// waitUp waits until the farm answers on its public address.
func (c farmClient) waitUp() {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		resp, err := http.Get("http://" + c.public + "/top")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the farm never answered")
}

// killSettle bounds how long after a process was reaped its peers may
// still use a connection to it without having read its end: a goroutine's
// wait to be scheduled on a loaded machine, with room.
const killSettle = 500 * time.Millisecond

// exercise drives users through the farm while it loses a clone and its
// active balancer and gains a shard and a clone, then checks what a user
// relies on: only requests in flight when a process was killed failed (at
// most one per user and kill: a POST cut off mid-way cannot be replayed,
// everything else is retried or served), nobody was logged out, no
// accepted job was lost, no user's data was lost in the move.
func exercise(t *testing.T, c farmClient, users int) {
	c.waitUp()
	ctx, stop := context.WithCancel(t.Context())
	var tr traffic
	done := make(chan struct{})
	go func() { defer close(done); runUsers(ctx, "http://"+c.public, users, &tr) }()
	// kills are the spans in which a kill can fail a request: from the
	// action's start until killSettle after it returned. The process died
	// somewhere before the action returned, but another process learns it
	// only when it reads the end of a connection it holds to the dead one:
	// a balancer that reuses a pooled connection to the dead clone before
	// its read loop ran sends a POST into it, and a POST that may have
	// reached a backend is never sent twice (CI saw one sent 0.5 ms after
	// the kill returned fail with EOF).
	var kills [][2]time.Time
	step := func(action string) {
		before := tr.ok.Load()
		time.Sleep(2 * time.Second)
		// Every phase is judged on traffic: each user was served in it.
		require.GreaterOrEqual(t, tr.ok.Load()-before, int64(users), "too little traffic before %q to judge", action)
		if action != "" {
			began := time.Now()
			c.action(action)
			t.Logf("%s–%s %s", began.Format("15:04:05.000"), time.Now().Format("15:04:05.000"), action)
			if strings.HasPrefix(action, "kill-") {
				kills = append(kills, [2]time.Time{began, time.Now().Add(killSettle)})
			}
		}
	}
	step("kill-clone")
	step("kill-balancer")
	step("add-shard")
	step("add-clone")
	step("")
	stop()
	<-done

	ok, failed := tr.ok.Load(), tr.failed.Load()
	t.Logf("%d requests, %d failed (%.2f%%), %d jobs accepted", ok+failed, failed, 100*float64(failed)/float64(ok+failed), len(tr.acceptedJobs()))
	for _, f := range tr.failedRequests() {
		require.True(t, slices.ContainsFunc(kills, func(k [2]time.Time) bool { return !f.sent.After(k[1]) && !f.failed.Before(k[0]) }),
			"a request failed that was not in flight at a kill (kills at %v):\n%v", kills, f)
	}
	require.Zero(t, tr.sessionLost.Load(), "a logged-in user was logged out")

	jobs := tr.acceptedJobs()
	require.NotEmpty(t, jobs)
	for _, id := range jobs {
		require.Eventually(t, func() bool {
			state, err := jobState(t.Context(), "http://"+c.public, id)
			return err == nil && state == "done"
		}, 30*time.Second, 50*time.Millisecond, "accepted job %s never finished", id)
	}
	// The dashboard's depth is the queue's own count, whichever clone
	// accepted a job and whichever died: with every accepted job done it
	// drains to 0 (the periodic precompute job may be running at times).
	require.Eventually(t, func() bool { return c.state().Queue.Pending == 0 }, 15*time.Second, 50*time.Millisecond,
		"the dashboard's queue depth never drained once the accepted jobs were done")

	st := c.state()
	require.Len(t, st.Shards, 3)
	var keys int64
	for _, s := range st.Shards {
		keys += s.Keys
	}
	require.Equal(t, int64(users), keys, "every user's profile is on exactly one shard after the move: %v", st.Shards)
	active := 0
	for _, b := range st.Balancers {
		if b.Role == dashboard.RoleActive {
			active++
		}
	}
	require.Equal(t, 1, active, "one active balancer: %v", st.Balancers)
	// Leadership may be between two terms at any instant (a lease renewed
	// late under load ends the term; another clone takes over within a
	// retry interval): a leader must be there within a few seconds.
	require.Eventually(t, func() bool {
		l := c.state().Leader
		return !l.Vacant && l.Token > 0
	}, 5*time.Second, 50*time.Millisecond, "no migrator leads")
	// The admin page shows the same farm: the queue drained, its jobs
	// done, the migrator's leader, the database's nodes serving reads.
	require.Eventually(t, func() bool {
		a := c.adminState()
		return len(a.Queues) == 1 && a.Queues[0].Pending == 0 && a.Queues[0].DoneTotal >= int64(len(jobs)) &&
			len(a.Elections) == 1 && a.Elections[0].Leader != ""
	}, 5*time.Second, 50*time.Millisecond, "the admin page: %+v", c.adminState())
	a := c.adminState()
	require.Len(t, a.Replicas, 1)
	require.Len(t, a.Replicas[0].Nodes, len(st.Database), "the database's nodes on the admin page: %+v", a.Replicas[0].Nodes)
	var reads int64
	for _, n := range a.Replicas[0].Nodes {
		reads += n.Reads
	}
	require.Positive(t, reads, "the admin page counts the controller's reads")
	up := 0
	for _, cl := range st.Clones {
		if cl.Up {
			up++
		}
	}
	require.Equal(t, 3, up, "three clones up after one killed and one added: %v", st.Clones)
}

// startFarm runs the farm in this process with flags (besides free
// addresses and no simulated users) until the test ends.
func startFarm(t *testing.T, flags ...string) farmClient {
	t.Helper()
	o, err := parseFlags(append([]string{"-addr", freeAddr(t), "-admin", freeAddr(t), "-users", "0"}, flags...))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, o, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
	})
	return farmClient{t: t, admin: o.admin, public: o.addr}
}

func TestInMemoryFarm(t *testing.T) {
	exercise(t, startFarm(t), 8)
}

func TestFlags(t *testing.T) {
	_, err := parseFlags([]string{"-procs"})
	require.ErrorContains(t, err, "-procs needs")
	_, err = parseFlags([]string{"-prefix", "Bad-Prefix"})
	require.Error(t, err)
	o, err := parseFlags(nil)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:8080", o.addr)
}
