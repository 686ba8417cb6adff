package bench

import (
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// BenchmarkHTTPClient: one GET per op to one loopback backend through
// each client of impls.HTTPClients (net/http bare, ours at defaults and
// tuned, bufbuild/httplb at defaults and tuned).
//
//	cd bench && go test -run XXX -bench HTTPClient -count 5
func BenchmarkHTTPClient(b *testing.B) {
	env, err := impls.NewHTTPClientEnv()
	if err != nil {
		b.Fatal(err)
	}
	defer env.Close()
	for _, name := range impls.HTTPClients {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := env.Get(name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
