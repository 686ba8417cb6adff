package admin

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/scaleout/scaleout/observe"
)

// state is what the page polls (GET api/state): every panel's figures and
// charts. Rates and means are over the last sampling interval; they and
// the charts are empty while Run is not running.
type state struct {
	Title     string          `json:"title"`
	Now       int64           `json:"now"` // Unix milliseconds
	Sampling  bool            `json:"sampling"`
	Interval  float64         `json:"interval"` // seconds
	Window    float64         `json:"window"`   // seconds
	Queues    []queuePanel    `json:"queues"`
	Elections []electionPanel `json:"elections"`
	Balancers []balancerPanel `json:"balancers"`
	Replicas  []replicaPanel  `json:"replicas"`
	Caches    []cachePanel    `json:"caches"`
	Problems  []string        `json:"problems"`
}

// A chart is drawn by the page: one line per series, the last Window.
type chart struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	Unit  string `json:"unit"`
	Lines []line `json:"lines"`
}

type line struct {
	Label string   `json:"label"`
	T     []int64  `json:"t"` // Unix milliseconds
	V     []number `json:"v"` // null: a gap
}

type queuePanel struct {
	Store       string       `json:"store"`
	Queue       string       `json:"queue"`
	Ready       int          `json:"ready"`
	Scheduled   int          `json:"scheduled"`
	Active      int          `json:"active"`
	Dead        int          `json:"dead"`
	Pending     int          `json:"pending"`
	Paused      bool         `json:"paused"`
	OldestReady number       `json:"oldestReady"` // seconds
	DoneTotal   int64        `json:"doneTotal"`
	Throughput  number       `json:"throughput"` // jobs done per second
	Failures    number       `json:"failures"`   // failed attempts per second
	Latency     number       `json:"latency"`    // mean handler time, seconds
	DeadLetters []deadLetter `json:"deadLetters"`
	Charts      []chart      `json:"charts"`
}

// deadLetter is a dead job as the page lists it: never its payload,
// result or headers, which may hold what an operator must not see.
type deadLetter struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Attempt int    `json:"attempt"`
	Error   string `json:"error"`
	Died    int64  `json:"died"` // Unix milliseconds
}

type electionPanel struct {
	Name string `json:"name"`
	// Role is this process's: leader, follower (a candidate not leading)
	// or observer (no candidate of this process registered).
	Role   string `json:"role"`
	Leader string `json:"leader"` // "" when vacant or unknown
	Token  string `json:"token"`  // decimal: tokens may pass 2^53
	Vacant bool   `json:"vacant"`
	// Since is when the Handler saw this leader take over; when
	// SinceChange is false, it is when the Handler first looked, and the
	// leader led already.
	Since         int64  `json:"since"`
	SinceChange   bool   `json:"sinceChange"`
	Terms         number `json:"terms"`         // terms this candidate won, from Meter(Name)
	LeaderChanges number `json:"leaderChanges"` // from Meter(Name)
	Error         string `json:"error,omitempty"`
}

type balancerPanel struct {
	Name      string       `json:"name"`
	Backends  []backendRow `json:"backends"`
	NoBackend int64        `json:"noBackend"`
	Panic     bool         `json:"panic"`
	Charts    []chart      `json:"charts"`
}

type backendRow struct {
	Addr     string `json:"addr"`
	Healthy  *bool  `json:"healthy"` // nil when no Health reports it
	InFlight int64  `json:"inFlight"`
	Picks    int64  `json:"picks"`
	Errors   int64  `json:"errors"`
	Rate     number `json:"rate"`    // picks per second
	Latency  number `json:"latency"` // mean, seconds
}

type replicaPanel struct {
	Name   string    `json:"name"`
	Nodes  []nodeRow `json:"nodes"`
	Charts []chart   `json:"charts"`
}

type nodeRow struct {
	Name    string `json:"name"`
	Role    string `json:"role"` // primary or replica
	Lag     number `json:"lag"`  // seconds
	Serving bool   `json:"serving"`
	Reads   int64  `json:"reads"`
	Writes  int64  `json:"writes"`
}

type cachePanel struct {
	Name          string  `json:"name"`
	Hits          int64   `json:"hits"`
	LocalHits     int64   `json:"localHits"`
	Misses        int64   `json:"misses"`
	HitRatio      number  `json:"hitRatio"`      // over the last interval
	HitRatioTotal number  `json:"hitRatioTotal"` // since the start
	Loads         int64   `json:"loads"`
	LoadRate      number  `json:"loadRate"`    // loads per second
	LoadLatency   number  `json:"loadLatency"` // mean, seconds
	LoadErrors    int64   `json:"loadErrors"`
	StaleServed   int64   `json:"staleServed"`
	Refreshes     int64   `json:"refreshes"`
	Evictions     int64   `json:"evictions"`
	Charts        []chart `json:"charts"`
}

// serveState answers the page's poll.
func (h *Handler) serveState(w http.ResponseWriter, r *http.Request) {
	st := h.state(h.read(r.Context(), true))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// state builds the panels of reading rd.
func (h *Handler) state(rd reading) state {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.noteLeaders(&rd)
	hs := &h.hist
	st := state{
		Title: h.cfg.Title, Now: rd.at.UnixMilli(), Sampling: h.running.Load(),
		Interval: h.cfg.Interval.Seconds(), Window: h.cfg.Window.Seconds(),
		Problems: rd.problems,
	}
	for _, q := range rd.queues {
		c := q.counts
		key := func(fig string) string { return queueKey(q.store, c.Queue, fig) }
		p := queuePanel{
			Store: q.store, Queue: c.Queue,
			Ready: c.Ready, Scheduled: c.Scheduled, Active: c.Active, Dead: c.Dead, Pending: c.Pending(),
			Paused: c.Paused, OldestReady: number(c.OldestReady.Seconds()), DoneTotal: c.DoneTotal,
			Throughput: number(hs.lastValue(key("throughput"))),
			Failures:   number(hs.lastValue(key("failures"))),
			Latency:    number(hs.lastValue(key("latency"))),
			Charts: []chart{
				{ID: "depth", Title: "depth", Unit: "jobs", Lines: []line{hs.line("pending", key("depth"))}},
				{ID: "throughput", Title: "throughput", Unit: "jobs/s", Lines: []line{hs.line("done", key("throughput"))}},
			},
		}
		for _, j := range q.dead {
			p.DeadLetters = append(p.DeadLetters, deadLetter{
				ID: string(j.ID), Type: j.Type, Attempt: j.Attempt, Error: j.LastErr, Died: j.EndedAt.UnixMilli(),
			})
		}
		st.Queues = append(st.Queues, p)
	}
	named := map[string]bool{}
	for _, e := range rd.elections {
		named[e.src.name] = true
		st.Elections = append(st.Elections, electionOf(e, rd.meter(e.src.name)))
	}
	for _, m := range rd.meters {
		if m.has("failover") && !named[m.name] {
			st.Elections = append(st.Elections, electionOf(electionReading{src: &electionSource{name: m.name}}, m))
		}
		if m.has("balance") {
			st.Balancers = append(st.Balancers, balancerOf(hs, m))
		}
		if m.has("replica") {
			st.Replicas = append(st.Replicas, replicaOf(hs, m))
		}
		if m.has("cache") {
			st.Caches = append(st.Caches, cacheOf(hs, m))
		}
	}
	return st
}

// electionOf is the panel of one election: from its Elector when one was
// registered, from the metrics of failover.Run in m otherwise.
func electionOf(e electionReading, m meterReading) electionPanel {
	s := e.src
	p := electionPanel{Name: s.name, Role: "observer", Terms: nan(), LeaderChanges: nan()}
	if v, _, ok := m.sum(observe.FailoverTerms.Name); ok {
		p.Terms = number(v)
	}
	if v, _, ok := m.sum(observe.FailoverLeaderChanges.Name); ok {
		p.LeaderChanges = number(v)
	}
	leading, gauge := false, false
	if v, _, ok := m.sum(observe.FailoverLeader.Name); ok {
		leading, gauge = v == 1, true
	}
	switch {
	case s.e == nil: // metrics only
		if v, _, ok := m.sum(observe.FailoverToken.Name); ok {
			p.Token = strconv.FormatUint(uint64(v), 10)
		}
	case e.err != nil:
		p.Error = e.err.Error()
	default:
		l := e.leader
		p.Vacant = l.Vacant
		if !p.Vacant {
			p.Leader = l.ID
			p.Token = strconv.FormatUint(l.Token, 10)
			leading = leading || (s.self != "" && l.ID == s.self)
		}
		if s.known {
			p.Since, p.SinceChange = s.since.UnixMilli(), s.changed
		}
	}
	switch {
	case leading:
		p.Role = "leader"
	case s.self != "" || gauge:
		p.Role = "follower"
	}
	return p
}

func balancerOf(hs *history, m meterReading) balancerPanel {
	p := balancerPanel{Name: m.name}
	noBackend, _, _ := m.sum(observe.BalanceNoBackend.Name)
	p.NoBackend = int64(noBackend)
	panicking, _, _ := m.sum(observe.BalancePanic.Name)
	p.Panic = panicking == 1
	rates := chart{ID: "rate", Title: "requests", Unit: "/s"}
	for _, b := range backends(m) {
		key := func(fig string) string { return backendKey(m.name, b, fig) }
		row := backendRow{Addr: b, Rate: number(hs.lastValue(key("rate"))), Latency: number(hs.lastValue(key("latency")))}
		if v, _, ok := m.sum(observe.BalanceHealthy.Name, "backend", b); ok {
			healthy := v == 1
			row.Healthy = &healthy
		}
		inFlight, _, _ := m.sum(observe.BalanceInFlight.Name, "backend", b)
		picks, _, _ := m.sum(observe.BalancePicks.Name, "backend", b)
		errs, _, _ := m.sum(observe.BalanceErrors.Name, "backend", b)
		row.InFlight, row.Picks, row.Errors = int64(inFlight), int64(picks), int64(errs)
		p.Backends = append(p.Backends, row)
		rates.Lines = append(rates.Lines, hs.line(b, key("rate")))
	}
	p.Charts = []chart{rates}
	return p
}

func replicaOf(hs *history, m meterReading) replicaPanel {
	p := replicaPanel{Name: m.name}
	lag := chart{ID: "lag", Title: "replication lag", Unit: "s"}
	for _, n := range nodes(m) {
		row := nodeRow{Name: n, Role: "replica", Lag: nan()}
		if v, _, ok := m.sum(observe.ReplicaPrimary.Name, "node", n); ok && v == 1 {
			row.Role = "primary"
		}
		if v, _, ok := m.sum(observe.ReplicaLag.Name, "node", n); ok {
			row.Lag = number(v)
		}
		serving, _, _ := m.sum(observe.ReplicaServing.Name, "node", n)
		reads, _, _ := m.sum(observe.ReplicaReads.Name, "node", n)
		writes, _, _ := m.sum(observe.ReplicaWrites.Name, "node", n)
		row.Serving, row.Reads, row.Writes = serving == 1, int64(reads), int64(writes)
		p.Nodes = append(p.Nodes, row)
		lag.Lines = append(lag.Lines, hs.line(n, nodeKey(m.name, n, "lag")))
	}
	p.Charts = []chart{lag}
	return p
}

func cacheOf(hs *history, m meterReading) cachePanel {
	total := func(d observe.Desc, labels ...string) int64 {
		v, _, _ := m.sum(d.Name, labels...)
		return int64(v)
	}
	key := func(fig string) string { return cacheKey(m.name, fig) }
	p := cachePanel{
		Name: m.name, Hits: total(observe.CacheHits), LocalHits: total(observe.CacheHits, "tier", "local"),
		Misses: total(observe.CacheMisses), Loads: total(observe.CacheLoads), LoadErrors: total(observe.CacheLoadErrors),
		StaleServed: total(observe.CacheStaleServed), Refreshes: total(observe.CacheRefreshes), Evictions: total(observe.CacheEvictions),
		HitRatio: number(hs.lastValue(key("hit_ratio"))), HitRatioTotal: nan(),
		LoadRate: number(hs.lastValue(key("loads"))), LoadLatency: number(hs.lastValue(key("load_latency"))),
		Charts: []chart{{ID: "hit_ratio", Title: "hit ratio", Unit: "", Lines: []line{hs.line("hits/gets", key("hit_ratio"))}}},
	}
	if gets := p.Hits + p.Misses; gets > 0 {
		p.HitRatioTotal = number(float64(p.Hits) / float64(gets))
	}
	return p
}

func nan() number { return number(math.NaN()) }
