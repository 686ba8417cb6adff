package failover_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/scaleout/scaleout/failover"
)

// Two servers in an active-passive pair: a is preferred; when it dies, b
// takes over.
func ExamplePair() {
	muxA, muxB := http.NewServeMux(), http.NewServeMux()
	srvA, srvB := httptest.NewServer(muxA), httptest.NewServer(muxB)
	defer srvB.Close()
	secret := make([]byte, 32) // shared by the members, e.g. from a secret store
	_, _ = rand.Read(secret)
	newPair := func(self string, prio int, peer string, url string) *failover.Pair {
		p, err := failover.NewPair(failover.PairConfig{
			Self: self, Priority: prio, Secret: secret, Interval: 50 * time.Millisecond,
			Peers:     []failover.Peer{{ID: peer, URL: url + "/failover/heartbeat"}},
			OnPromote: func(context.Context) { fmt.Println(self, "active: bind the service address here") },
		})
		if err != nil {
			panic(err)
		}
		return p
	}
	a := newPair("a", 2, "b", srvB.URL)
	b := newPair("b", 1, "a", srvA.URL)
	muxA.Handle("/failover/heartbeat", a.Handler())
	muxB.Handle("/failover/heartbeat", b.Handler())

	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	for a.Role() != failover.Active {
		time.Sleep(10 * time.Millisecond)
	}
	// b starts once a leads, as a standby joins a running service, so it
	// hears a's heartbeats from its first interval on.
	go func() { doneB <- b.Run(ctxB) }()
	time.Sleep(100 * time.Millisecond)
	fmt.Println("a:", a.Role(), "b:", b.Role())

	srvA.Close() // a's machine dies
	stopA()
	<-doneA
	for b.Role() != failover.Active {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("b:", b.Role())
	stopB()
	<-doneB
	// Output:
	// a active: bind the service address here
	// a: active b: passive
	// b active: bind the service address here
	// b: active
}
