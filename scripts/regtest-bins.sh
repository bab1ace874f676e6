#!/usr/bin/env bash
# regtest-bins.sh builds the pinned btcd, btcctl, lnd and lncli binaries used by
# the regtest integration tests and prints the directory holding them as the
# last line of stdout.
#
# Usage: scripts/regtest-bins.sh [DIR]
#
# The binaries go to DIR if given, else to $LNSYNC_REGTEST_BIN if set, else to
# <cache>/regtest/<versions>/bin, where <cache> is $LNSYNC_CACHE or
# ${XDG_CACHE_HOME:-$HOME/.cache}/lnsync: one build serves every checkout of
# the machine's user. A build is skipped when all four binaries
# already exist there, so repeated runs take well under a second. Builds run
# under an exclusive lock, so concurrent callers (parallel test packages) wait
# for one build instead of racing.
#
# lnd cannot be built with `go install pkg@version` because its go.mod has
# replace directives; it is built from a throwaway module inside the cache
# directory that requires lnd and repeats those replace lines. Nothing here
# touches the lnsync module's go.mod or go.sum.
set -euo pipefail

BTCD_VERSION=v0.24.2
LND_VERSION=v0.19.3-beta
VERSIONS="btcd-${BTCD_VERSION}_lnd-${LND_VERSION}"
BINARIES=(btcd btcctl lnd lncli)

log() { printf 'regtest-bins: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cache="${LNSYNC_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/lnsync}"
bin="${1:-${LNSYNC_REGTEST_BIN:-${cache}/regtest/${VERSIONS}/bin}}"

if [[ -d "${bin}" ]]; then
	bin="$(cd "${bin}" && pwd)"
fi

have_all() {
	local b
	for b in "${BINARIES[@]}"; do
		[[ -x "${bin}/${b}" ]] || return 1
	done
}

if have_all; then
	log "using cached binaries in ${bin}"
	echo "${bin}"
	exit 0
fi

command -v go >/dev/null || die "go not found in PATH"
command -v flock >/dev/null || die "flock not found in PATH (util-linux)"

mkdir -p "${bin}"
bin="$(cd "${bin}" && pwd)"
exec 9>"${bin}/.lock"
flock -n 9 || {
	log "waiting for another build holding ${bin}/.lock"
	flock 9
}
if have_all; then
	log "binaries were built by a concurrent run in ${bin}"
	echo "${bin}"
	exit 0
fi

# Reproducible, self-contained builds that ignore the caller's module setup.
export GOWORK=off GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
ldflags="-s -w"

# Build into a staging directory and move the binaries into place only on
# success, so an interrupted build never looks complete.
stage="${bin}/.stage"
rm -rf "${stage}"
mkdir -p "${stage}"

start=${SECONDS}
if [[ ! -x "${bin}/btcd" || ! -x "${bin}/btcctl" ]]; then
	log "building btcd and btcctl ${BTCD_VERSION}"
	GOBIN="${stage}" go install -ldflags="${ldflags}" \
		"github.com/btcsuite/btcd@${BTCD_VERSION}" \
		"github.com/btcsuite/btcd/cmd/btcctl@${BTCD_VERSION}" ||
		die "building btcd ${BTCD_VERSION} failed"
	mv -f "${stage}/btcd" "${stage}/btcctl" "${bin}/"
	log "built btcd and btcctl in $((SECONDS - start))s"
fi

if [[ ! -x "${bin}/lnd" || ! -x "${bin}/lncli" ]]; then
	mod="${bin}/.lnd-module"
	rm -rf "${mod}"
	mkdir -p "${mod}"
	cat >"${mod}/go.mod" <<GOMOD
module lnsync.invalid/regtest-lnd

go 1.23.12

require github.com/lightningnetwork/lnd ${LND_VERSION}

// The replace directives of lnd ${LND_VERSION}'s own go.mod, which do not apply
// when lnd is a dependency.
replace github.com/ulikunitz/xz => github.com/ulikunitz/xz v0.5.11

replace github.com/gogo/protobuf => github.com/gogo/protobuf v1.3.2

replace google.golang.org/protobuf => github.com/lightninglabs/protobuf-go-hex-display v1.30.0-hex-display
GOMOD
	lnd_start=${SECONDS}
	log "building lnd and lncli ${LND_VERSION} in ${mod} (takes minutes on a cold cache)"
	(
		cd "${mod}"
		# -mod=mod lets go build record the go.sum entries of the fresh module.
		go build -mod=mod -ldflags="${ldflags}" -o "${stage}/" \
			github.com/lightningnetwork/lnd/cmd/lnd \
			github.com/lightningnetwork/lnd/cmd/lncli
	) || die "building lnd ${LND_VERSION} failed (module in ${mod})"
	mv -f "${stage}/lnd" "${stage}/lncli" "${bin}/"
	rm -rf "${mod}"
	log "built lnd and lncli in $((SECONDS - lnd_start))s"
fi
rm -rf "${stage}"

have_all || die "binaries missing in ${bin} after build"
log "all binaries ready in ${bin} after $((SECONDS - start))s"
echo "${bin}"
