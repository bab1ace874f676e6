# lnsync: the two commands a fresh machine needs are `make run` and `make test`.
#
#   make run     install and start a private Postgres if LNSYNC_DATABASE_URL is
#                unset, migrate, and run `lnsync serve` with ./config.toml
#   make test    start Postgres and the test dependencies, then lint and
#                `go test -race` (see the test target)
#   make bench   mainnet-scale benchmarks (see README)
#   make build   build ./bin/lnsync
#   make pg-stop stop the private Postgres cluster

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO ?= go
STATICCHECK_VERSION := v0.8.2
# Tools built once per user and shared by every checkout (as the regtest
# binaries of scripts/regtest-bins.sh are).
TOOLS := $(or $(LNSYNC_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/lnsync)
STATICCHECK := $(TOOLS)/bin/staticcheck-$(STATICCHECK_VERSION)
LDK_MODULES := conformance/ldk/node_modules/.package-lock.json
DUCKDB_MODULES := cmd/lnsync/testdata/duckdb/node_modules/.package-lock.json
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build run test lint vet staticcheck tree-check test-deps pg-start pg-stop bench clean

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/lnsync ./cmd/lnsync

run: build
	@if [ -z "$${LNSYNC_DATABASE_URL:-}" ]; then \
		export LNSYNC_DATABASE_URL=$$(scripts/pg.sh start); \
		echo "using private Postgres: $$LNSYNC_DATABASE_URL"; \
	fi; \
	./bin/lnsync migrate -config ./config.toml && exec ./bin/lnsync serve -config ./config.toml

pg-start:
	@scripts/pg.sh start

pg-stop:
	@scripts/pg.sh stop

# npm ci only when the lockfile changed since the last install.
$(LDK_MODULES): conformance/ldk/package-lock.json conformance/ldk/package.json
	npm ci --prefix conformance/ldk --no-audit --no-fund
	@touch $@

# DuckDB, which the export tests read the Parquet files with.
$(DUCKDB_MODULES): cmd/lnsync/testdata/duckdb/package-lock.json cmd/lnsync/testdata/duckdb/package.json
	npm ci --prefix cmd/lnsync/testdata/duckdb --no-audit --no-fund
	@touch $@

$(STATICCHECK):
	@mkdir -p $(TOOLS)/bin
	@tmp=$$(mktemp -d) && GOBIN=$$tmp $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) \
		&& mv $$tmp/staticcheck $@ && rmdir $$tmp

test-deps: $(LDK_MODULES) $(DUCKDB_MODULES)
	@scripts/pg.sh start >/dev/null
	@scripts/regtest-bins.sh >/dev/null

vet:
	$(GO) vet ./...

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

lint: vet staticcheck tree-check
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

# The repository must be complete: no tracked file may read from outside it.
tree-check:
	@files=$$(git ls-files 2>/dev/null || find . -type f -not -path './.git/*' -not -path './.cache/*' -not -path './.data/*' -not -path '*/node_modules/*'); \
	bad=$$(echo "$$files" | xargs grep -l -E '\.\./shared' -- 2>/dev/null || true); \
	if [ -n "$$bad" ]; then echo "these files read from a folder beside the repository instead of its own testdata/: $$bad"; exit 1; fi

# Packages whose tests are single-goroutine computation over signed
# histories run at full speed: under the race detector, where signing and
# verifying cost 25 times more, they took minutes and found nothing, for
# there is nothing concurrent in them to check. They are the benchmark
# generator's statistical and signature checks (its concurrent signing,
# TestDeterminism, runs under the detector), the benchmark harness and
# lnsync-bench (drivers of product code that is raced in its own packages),
# and sketch's decoding sweeps (no goroutines). Everything else runs under
# the detector. The three runs go on at once (the race run often waits on
# lnd, Node and Postgres); their outputs are printed one after the other.
FULL_SPEED := ./bench/gen ./bench/harness ./bench/cmd/lnsync-bench ./sketch
FULL_SPEED_RE := /(bench/gen|bench/harness|bench/cmd/lnsync-bench|sketch)$$

test: test-deps lint
	@admin=$$(scripts/pg.sh url | sed 's#/lnsync?#/postgres?#'); \
	export LNSYNC_TEST_DATABASE_URL=$$admin; \
	export LNSYNC_PG_BINDIR=$$(scripts/pg.sh bindir); \
	export LNSYNC_REGTEST_BIN=$$(scripts/regtest-bins.sh); \
	out=$$(mktemp -d); status=0; \
	$(GO) test -count=1 -timeout 20m $(FULL_SPEED) >$$out/full 2>&1 & full=$$!; \
	$(GO) test -race -count=1 -run '^TestDeterminism$$' ./bench/gen >$$out/determinism 2>&1 & determinism=$$!; \
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -E -v '$(FULL_SPEED_RE)') || status=$$?; \
	wait $$full || status=1; cat $$out/full; \
	wait $$determinism || status=1; cat $$out/determinism; \
	rm -rf $$out; \
	if [ $$status -ne 0 ]; then echo "tests failed"; exit 1; fi; \
	echo "tests passed. Left running for the next run: the private Postgres, $$(scripts/pg.sh status); make pg-stop stops it."

# One command, one table: see scripts/bench.sh and the README's Benchmarks.
bench:
	scripts/bench.sh

clean:
	rm -rf bin
