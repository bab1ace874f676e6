#!/usr/bin/env bash
# make bench: the mainnet-scale benchmark in one command.
#
# Builds lnsync and the benchmark tools, installs wrk and nginx from Debian
# when missing (as root), starts the private Postgres (scripts/pg.sh) unless
# LNSYNC_BENCH_DATABASE_URL names a server, generates the signed history once
# into .cache/bench/ (kept and reused while bench/gen is unchanged), then runs
# lnsync-bench, which prints the table and writes bench/results.json.
#
# Settings (environment): BENCH_SCALE (mainnet; also small, tiny, 3x or a
# channel count), BENCH_DAYS (14), BENCH_SEED (1), BENCH_ARGS (extra
# lnsync-bench flags, e.g. "-http-duration 15s"), LNSYNC_DATASETS (the source
# datasets the generator starts from; default the repository's testdata/).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
scale=${BENCH_SCALE:-mainnet}
days=${BENCH_DAYS:-14}
seed=${BENCH_SEED:-1}
datasets=${LNSYNC_DATASETS:-$repo/testdata}
log() { echo "bench: $*" >&2; }
began=$(date +%s)

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]} from Debian"
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

log "building"
mkdir -p bin
go build -trimpath -o bin/lnsync ./cmd/lnsync
go build -trimpath -o bin/lnsync-gen ./bench/cmd/lnsync-gen
go build -trimpath -o bin/lnsync-loadpeer ./bench/cmd/lnsync-loadpeer
go build -trimpath -o bin/lnsync-bench ./bench/cmd/lnsync-bench

db=${LNSYNC_BENCH_DATABASE_URL:-}
if [ -z "$db" ]; then
	db=$(scripts/pg.sh start)
fi

# The history depends only on the generator's code, its source data and its flags.
key=$(cat bench/gen/*.go "$datasets"/cln-mainnet-snapshots/* "$datasets"/gossip-observer-2025/* | sha256sum | cut -c1-12)
data=$repo/.cache/bench/gen-$scale-d$days-s$seed-$key
gen_seconds=-1
if [ ! -f "$data/manifest.json" ]; then
	if [ ! -d "$datasets/cln-mainnet-snapshots" ]; then
		log "no datasets in $datasets (set LNSYNC_DATASETS to the directory holding cln-mainnet-snapshots)"
		exit 1
	fi
	log "generating the $scale history ($days days) into $data"
	rm -rf "$data.tmp"
	t0=$(date +%s)
	bin/lnsync-gen -scale "$scale" -days "$days" -seed "$seed" -datasets "$datasets" -out "$data.tmp" >&2
	mv "$data.tmp" "$data"
	gen_seconds=$(($(date +%s) - t0))
	# Histories of other generator versions are of no further use.
	find "$repo/.cache/bench" -maxdepth 1 -name "gen-$scale-d$days-s$seed-*" ! -path "$data" -exec rm -rf {} +
else
	log "reusing the history in $data"
fi

# shellcheck disable=SC2086
bin/lnsync-bench -data "$data" -db "$db" -out bench/out/run -results bench/results.json \
	-generated-seconds "$gen_seconds" ${BENCH_ARGS:-}
log "done in $(($(date +%s) - began)) s"
