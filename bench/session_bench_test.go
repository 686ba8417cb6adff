package bench

import (
	"errors"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// Session benchmarks: one HTTP request per op through scaleout's
// session.Manager and alexedwards/scs, on the same Redis and in memory;
// see impls/session.go for the libraries and workloads.
//
//	cd bench && eval "$(../scripts/services.sh env)"
//	go test -run '^$' -bench 'Session' -benchmem -count 3 .
//
// The Redis rows are skipped without SCALEOUT_REDIS_ADDR. make
// bench-compare runs the same workloads interleaved and checks the
// targets (BENCHMARKS.md, Sessions).

// BenchmarkSessionIncrement: read "n", store n+1, on every request.
func BenchmarkSessionIncrement(b *testing.B) { benchSessions(b, impls.SessionIncrement) }

// BenchmarkSessionRead: read "n" only.
func BenchmarkSessionRead(b *testing.B) { benchSessions(b, impls.SessionRead) }

// BenchmarkSessionWrites: one increment per 10 requests.
func BenchmarkSessionWrites(b *testing.B) { benchSessions(b, impls.SessionWrites) }

func benchSessions(b *testing.B, w impls.SessionWorkload) {
	env, err := impls.NewSessionEnv()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := env.Close(); err != nil {
			b.Error(err)
		}
	})
	for _, name := range impls.SessionLibs {
		b.Run(name, func(b *testing.B) {
			lib, err := env.Build(name)
			if errors.Is(err, impls.ErrSessionRedisUnset) {
				b.Skip(err)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer lib.Close()
			lib.Body(w)(b)
		})
	}
}
