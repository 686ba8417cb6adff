#!/bin/bash
# bench-observe.sh: the overhead of package observe, interleaved so that a busy machine
# slows both sides alike. BenchmarkObserveOff is compiled from a checkout of $BASE (default
# the commit before observe) and from this tree, each test binary built once, then run in
# turn for $ROUNDS rounds (default 20) of -benchtime $BENCHTIME (default 300ms), the order
# of the two swapped every round (base first, then branch first) so that neither always
# meets the warmer or the busier machine; BenchmarkObserveProm (this tree, the Prometheus
# adapter on) runs once a round after them. The figure compared is cpu-ns/op, the CPU time of
# the benchmark's thread per iteration (bench/observe_cpu_bench_test.go): ns/op also counts
# the time other processes held the core. A round's ratio is branch/base of that round's
# two runs, taken a few seconds apart; the summary gives, per path, the median of the
# per-round ratios, a 95% bootstrap interval of that median (resampling the rounds, 4000
# times), the lowest and highest ratio, and the ratio of the two sides' lowest figures
# (interference only ever adds time, so the lowest is the least disturbed). A 2% overhead is resolved when the interval is
# narrower than 2%. The raw lines go to $OUT (default a temporary file, removed).
# SUMMARIZE=<raw file> prints the summary of an earlier run's raw lines and runs nothing.
set -euo pipefail

# summarize <raw file>: the table. Each line is "<side> <round> Benchmark<Name>/<Path>-<procs>
# <n> <ns> ns/op ...".
summarize() {
	gawk -v seed="${SEED:-1}" '
function median(a, n,   s, i) {
	for (i = 1; i <= n; i++) s[i] = a[i]
	asort(s)
	return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
{
	name = $3; sub(/^Benchmark[^\/]*\//, "", name); sub(/-[0-9]+$/, "", name)
	v = $5 # ns/op, or cpu-ns/op when the benchmark reports it
	for (i = 6; i < NF; i++) if ($(i + 1) == "cpu-ns/op") v = $i
	ns[$1, name, $2] = v; paths[name] = 1; if ($2 > R) R = $2
}
END {
	srand(seed)
	printf "%-16s %9s %9s %24s %16s %9s %9s\n", "path", "base", "off", "off/base [95% boot]", "min-max", "of mins", "prom/off"
	for (p in paths) {
		n = 0; m = 0
		for (r = 1; r <= R; r++) {
			if ((("base", p, r) in ns) && (("branch", p, r) in ns)) {
				b[++n] = ns["base", p, r]; o[n] = ns["branch", p, r]; ratio[n] = o[n] / b[n]
			}
			if ((("prom", p, r) in ns) && (("branch", p, r) in ns)) pr[++m] = ns["prom", p, r] / ns["branch", p, r]
		}
		if (n == 0) continue
		lo = hi = ratio[1]; bmin = b[1]; omin = o[1]
		for (i = 2; i <= n; i++) {
			if (ratio[i] < lo) lo = ratio[i]; if (ratio[i] > hi) hi = ratio[i]
			if (b[i] < bmin) bmin = b[i]; if (o[i] < omin) omin = o[i]
		}
		for (k = 1; k <= 4000; k++) {
			for (i = 1; i <= n; i++) rs[i] = ratio[int(rand() * n) + 1]
			boot[k] = median(rs, n)
		}
		asort(boot)
		printf "%-16s %9.1f %9.1f %7.3f [%.3f, %.3f] %7.3f-%.3f %9.3f %9s\n", p, median(b, n), median(o, n),
			median(ratio, n), boot[100], boot[3901], lo, hi, omin / bmin, m ? sprintf("%.2fx", median(pr, m)) : "-"
		delete b; delete o; delete ratio; delete pr; delete boot
	}
	printf "rounds paired: %d\n", n
}' "$1"
}

if [[ -n ${SUMMARIZE:-} ]]; then
	summarize "$SUMMARIZE"
	exit
fi
root=$(cd "$(dirname "$0")/.." && pwd)
base=${BASE:-5c37f68}
rounds=${ROUNDS:-20}
benchtime=${BENCHTIME:-300ms}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=${OUT:-$tmp/raw.txt}
: >"$out"
git -C "$root" archive "$base" | tar -x -C "$tmp"
cp "$root"/bench/observe_{off,cpu,cpunone}_bench_test.go "$tmp/bench/"
(cd "$tmp/bench" && go test -c -o "$tmp/base.test" .)
(cd "$root/bench" && go test -c -o "$tmp/branch.test" .)

run() { # run <side> <binary> <pattern>: one round's lines, prefixed with the side and round
	"$2" -test.run '^$' -test.bench "$3" -test.benchtime "$benchtime" -test.benchmem |
		sed -n "s/^Benchmark/$1 $r Benchmark/p" | tee -a "$out"
}
for r in $(seq "$rounds"); do
	if ((r % 2)); then
		run base "$tmp/base.test" ObserveOff
		run branch "$tmp/branch.test" ObserveOff
	else
		run branch "$tmp/branch.test" ObserveOff
		run base "$tmp/base.test" ObserveOff
	fi
	run prom "$tmp/branch.test" ObserveProm
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
summarize "$out"

