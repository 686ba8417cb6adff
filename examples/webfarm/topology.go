package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/scaleout/scaleout/shard"
)

// topology is what the controller tells every node: the clones the
// balancers spread requests over, and the shards user data lives on.
// While data moves after a shard was added, Previous holds the shards
// before the change: a key not found on its new owner is read from its
// old one. Move says that every live clone has heard of Previous: only
// then may the migrator move rows, since a clone that still knew only the
// old shards would read a moved row where it no longer is, and write it
// there, behind the migrator.
type topology struct {
	Version  int         `json:"version"`
	Clones   []cloneAddr `json:"clones"`
	Shards   []string    `json:"shards"`
	Previous []string    `json:"previous,omitempty"`
	Move     bool        `json:"move,omitempty"`
}

type cloneAddr struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

// sharders builds the current and previous Sharders (previous nil when
// no data is moving). Rendezvous hashing moves only the keys the new
// shard takes.
func (t topology) sharders() (cur, prev shard.Sharder, err error) {
	if cur, err = shard.NewRendezvous(shard.Members(t.Shards...)); err != nil {
		return nil, nil, err
	}
	if len(t.Previous) > 0 {
		if prev, err = shard.NewRendezvous(shard.Members(t.Previous...)); err != nil {
			return nil, nil, err
		}
	}
	return cur, prev, nil
}

var validName = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// table is the table that holds shard s's users.
func table(prefix, s string) (string, error) {
	t := prefix + s
	if !validName.MatchString(t) {
		return "", fmt.Errorf("webfarm: bad table name %q", t)
	}
	return t, nil
}

// fetchTopology asks the controller for the topology, telling it which
// version node applied last (have).
func fetchTopology(ctx context.Context, client *http.Client, controller, node string, have int) (topology, error) {
	var t topology
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	q := url.Values{"node": {node}, "have": {strconv.Itoa(have)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, controller+"/internal/topology?"+q.Encode(), nil)
	if err != nil {
		return t, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return t, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return t, fmt.Errorf("webfarm: topology: %s", resp.Status)
	}
	return t, json.NewDecoder(resp.Body).Decode(&t)
}

// watchTopology calls apply with the topology whenever its version
// changes, polling every interval until ctx ends; each poll tells the
// controller the version node applied.
func watchTopology(ctx context.Context, controller, node string, interval time.Duration, apply func(topology)) {
	client := &http.Client{Timeout: 2 * time.Second}
	last := -1
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if t, err := fetchTopology(ctx, client, controller, node, last); err == nil && t.Version != last {
			last = t.Version
			apply(t)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
