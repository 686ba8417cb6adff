# scaleout developer targets. `make test` starts the real servers the integration tests
# need (scripts/services.sh) and runs every test with the race detector.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: services services-down benchtools test lint bench bench-compare

services:
	scripts/services.sh up

services-down:
	scripts/services.sh down

benchtools:
	scripts/benchtools.sh

test: services
	eval "$$(scripts/services.sh env)"; \
	SCALEOUT_REQUIRE_SERVICES=1 $(GO) test -race -count=1 ./...

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [[ -n "$$unformatted" ]]; then \
		echo "gofmt -l: these files need gofmt -w:"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-compare: services benchtools
	eval "$$(scripts/services.sh env)"; \
	cd bench && $(GO) run ./cmd/compare -out ../BENCHMARKS.md && $(GO) run ./cmd/proxybench -out ../BENCHMARKS.md
