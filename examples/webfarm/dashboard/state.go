package dashboard

import "time"

// State is the JSON document the dashboard page polls (GET stateURL) and
// renders. The farm's controller fills it; the json tags are the wire
// contract with static/app.js and must not change.
//
// Slices may be nil (they marshal as null); the page treats null as empty.
type State struct {
	Time      time.Time  `json:"time"`      // when the controller took the snapshot
	Public    string     `json:"public"`    // public address of the farm, e.g. "127.0.0.1:8080"
	Mode      string     `json:"mode"`      // backing mode, e.g. "in-memory", "redis+postgres"
	Clones    []Clone    `json:"clones"`    // web server clones behind the balancers
	Balancers []Balancer `json:"balancers"` // load balancers (one active, others passive/dead)
	Cache     Cache      `json:"cache"`     // shared cache statistics
	Queue     Queue      `json:"queue"`     // background job queue statistics
	Shards    []Shard    `json:"shards"`    // key-value shards and their sizes
	Leader    Leader     `json:"leader"`    // elected leader and its fencing token
	Database  []DBNode   `json:"database"`  // database nodes
	Traffic   Traffic    `json:"traffic"`   // load generator outcome counters
	Events    []string   `json:"events"`    // recent events, oldest first
}

// Clone is one web server clone.
type Clone struct {
	Name     string  `json:"name"`
	Addr     string  `json:"addr"`
	Up       bool    `json:"up"`
	Requests int64   `json:"requests"` // requests served since start
	RPS      float64 `json:"rps"`      // recent requests per second
}

// Balancer roles.
const (
	RoleActive  = "active"
	RolePassive = "passive"
	RoleDead    = "dead"
)

// Balancer is one load balancer.
type Balancer struct {
	Name  string `json:"name"`
	Role  string `json:"role"`  // RoleActive, RolePassive or RoleDead
	Epoch int64  `json:"epoch"` // failover epoch
}

// Cache holds shared cache statistics.
type Cache struct {
	Hits     int64   `json:"hits"`
	Misses   int64   `json:"misses"`
	HitRatio float64 `json:"hitRatio"` // hits/(hits+misses), 0..1
}

// CacheStats returns a Cache with HitRatio computed from hits and misses
// (0 when there were no lookups).
func CacheStats(hits, misses int64) Cache {
	c := Cache{Hits: hits, Misses: misses}
	if total := hits + misses; total > 0 {
		c.HitRatio = float64(hits) / float64(total)
	}
	return c
}

// Queue holds job queue statistics.
type Queue struct {
	Accepted int64 `json:"accepted"`
	Done     int64 `json:"done"`
	Pending  int64 `json:"pending"`
	Failed   int64 `json:"failed"`
}

// Shard is one key-value shard.
type Shard struct {
	Name string `json:"name"`
	Keys int64  `json:"keys"`
}

// Leader describes the current leader election result.
type Leader struct {
	ID     string `json:"id"`     // leader's name; empty when vacant
	Token  int64  `json:"token"`  // fencing token of the current lease
	Vacant bool   `json:"vacant"` // true when nobody holds the lease
}

// Database node roles.
const (
	DBPrimary = "primary"
	DBReplica = "replica"
)

// DBNode is one database node.
type DBNode struct {
	Name    string  `json:"name"`
	Role    string  `json:"role"` // DBPrimary or DBReplica
	Healthy bool    `json:"healthy"`
	Serving bool    `json:"serving"`
	LagMs   float64 `json:"lagMs"` // replication lag in milliseconds
}

// Traffic counts the outcome of the farm's generated traffic.
type Traffic struct {
	OK     int64 `json:"ok"`
	Failed int64 `json:"failed"`
}
