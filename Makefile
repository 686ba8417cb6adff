# scaleout developer targets. `make test` starts the real servers the integration tests
# need (scripts/services.sh) and runs every test with the race detector.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: services services-down benchtools test test-stress chaos failover-figures lint bench bench-compare

services:
	scripts/services.sh up

services-down:
	scripts/services.sh down

benchtools:
	scripts/benchtools.sh

# NESTED_MODULES are modules of their own, so that their heavy dependencies stay out of
# the root go.mod (the browser tests on chromedp, the GORM and pgx adapters, the Prometheus
# and OpenTelemetry adapters); make test
# runs their tests too. bench/ is run by bench-compare.
NESTED_MODULES := replica/adapters browsertest observe/promobserve observe/otelobserve balance/grpcbalance

test: services
	eval "$$(scripts/services.sh env)"; \
	SCALEOUT_REQUIRE_SERVICES=1 $(GO) test -race -count=1 ./...; \
	for m in $(NESTED_MODULES); do \
		(cd "$$m" && SCALEOUT_REQUIRE_SERVICES=1 $(GO) test -race -count=1 ./...); \
	done

# test-stress runs the same suite STRESS_RUNS times in a row (3 by default) while a CPU
# hog of the project's own (internal/cmd/cpuhog) keeps every core busy, as a shared CI
# runner or a busy laptop would; each run's time and load average are printed.
STRESS_RUNS ?= 3
HOG := $(or $(TMPDIR),/tmp)/scaleout-cpuhog

test-stress: services
	$(GO) build -o "$(HOG)" ./internal/cmd/cpuhog
	eval "$$(scripts/services.sh env)"; \
	"$(HOG)" & hog=$$!; trap 'kill $$hog' EXIT; \
	for i in $$(seq $(STRESS_RUNS)); do \
		start=$$(date +%s); \
		SCALEOUT_REQUIRE_SERVICES=1 $(GO) test -race -count=1 ./... || { echo "test-stress: run $$i failed"; exit 1; }; \
		for m in $(NESTED_MODULES); do \
			(cd "$$m" && SCALEOUT_REQUIRE_SERVICES=1 $(GO) test -race -count=1 ./...) || { echo "test-stress: run $$i failed in $$m"; exit 1; }; \
		done; \
		echo "test-stress: run $$i of $(STRESS_RUNS) passed in $$(( $$(date +%s) - start )) s; load average $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	done

# chaos runs the models of internal/chaos side by side, each for CHAOS_DURATION shared
# among its backends, under a random seed (logged, to replay with -chaos.seed) and
# writes the figures to CHAOS.md.
CHAOS_DURATION ?= 5m

chaos: services
	eval "$$(scripts/services.sh env)"; \
	SCALEOUT_REQUIRE_SERVICES=1 $(GO) test -count=1 -timeout 0 -v ./internal/chaos \
		-test.parallel 8 -chaos.model-duration $(CHAOS_DURATION) -chaos.parallel -chaos.seed 0 -chaos.report "$(CURDIR)/CHAOS.md" \
		-chaos.commit "$$(git rev-parse --short HEAD 2>/dev/null)"

# failover-figures runs the failover tests of the Redis-backed primitives (queue, session,
# elector, cache) through FAILOVERS master switches each on Sentinel and on a Cluster,
# default and durable, then the durable settings' benchmarks, in one run, and prints the
# figures side by side (internal/cmd/failoverfigures); the raw output is kept in
# FIGURES_LOG.
FAILOVERS ?= 20
FIGURES_LOG ?= $(or $(TMPDIR),/tmp)/scaleout-failover-figures.log
FAILOVER_PKGS := ./queue/redisqueue ./session/redisstore ./failover/rediselector ./cache/rediscache

failover-figures: services
	eval "$$(scripts/services.sh env)"; \
	{ SCALEOUT_FAILOVERS=$(FAILOVERS) SCALEOUT_REQUIRE_SERVICES=1 $(GO) test -count=1 -p 1 -timeout 60m -v -run '^TestFailover(Sentinel|Cluster|Election)?$$' $(FAILOVER_PKGS); \
	  SCALEOUT_REQUIRE_SERVICES=1 $(GO) test -count=5 -run '^$$' -bench 'EnqueueDurable|Commit$$' -benchtime 2000x ./queue/redisqueue ./session/redisstore; \
	} > "$(FIGURES_LOG)" 2>&1 || { tail -50 "$(FIGURES_LOG)"; echo "failover-figures: a run failed; the log is $(FIGURES_LOG)"; exit 1; }
	$(GO) run ./internal/cmd/failoverfigures < "$(FIGURES_LOG)"

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "gofmt -l: these files need gofmt -w:"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	for m in $(NESTED_MODULES); do \
		(cd "$$m" && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...); \
	done
# API compatibility against api/BASELINE (see README, Compatibility), and proof that
# the check catches a removed exported function.
	scripts/apicheck.sh -selftest
	scripts/apicheck.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-compare: services benchtools
	eval "$$(scripts/services.sh env)"; \
	cd bench && $(GO) run ./cmd/compare -out ../BENCHMARKS.md && $(GO) run ./cmd/proxybench -out ../BENCHMARKS.md
