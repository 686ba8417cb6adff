#!/bin/bash
# bench-observe.sh: the overhead of package observe, interleaved so that a busy machine
# slows both sides alike. BenchmarkObserveOff is compiled from a checkout of $BASE (default
# the commit before observe) and from this tree, and run in turn with BenchmarkObserveProm
# (this tree, the Prometheus adapter on), $RUNS times (default 8).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${BASE:-5c37f68}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$root" archive "$base" | tar -x -C "$tmp"
cp "$root/bench/observe_off_bench_test.go" "$tmp/bench/"
(cd "$tmp/bench" && go test -c -o "$tmp/base.test" .)
(cd "$root/bench" && go test -c -o "$tmp/branch.test" .)
for _ in $(seq "${RUNS:-8}"); do
	"$tmp/base.test" -test.run '^$' -test.bench 'ObserveOff' -test.benchmem | sed -n 's/^Benchmark/base:Benchmark/p'
	"$tmp/branch.test" -test.run '^$' -test.bench 'ObserveOff|ObserveProm' -test.benchmem | sed -n 's/^Benchmark/branch:Benchmark/p'
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
