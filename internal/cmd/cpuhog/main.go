// Command cpuhog keeps every CPU busy until it is killed or its -for
// elapses, so that the test suite can be run as on a loaded machine
// (make test-stress). It spins one goroutine per CPU (or -procs) at full
// speed; it writes nothing and allocates nothing while it runs.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	procs := flag.Int("procs", runtime.NumCPU(), "busy goroutines (default: one per CPU)")
	duration := flag.Duration("for", 0, "stop after this long (0: run until killed)")
	flag.Parse()
	if *procs < 1 {
		fmt.Fprintln(os.Stderr, "cpuhog: -procs must be at least 1")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*procs)
	var stop atomic.Bool
	for range *procs {
		go func() {
			x := uint64(1)
			for !stop.Load() {
				for range 1 << 16 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var timeout <-chan time.Time
	if *duration > 0 {
		timeout = time.After(*duration)
	}
	select {
	case <-sig:
	case <-timeout:
	}
	stop.Store(true)
}
