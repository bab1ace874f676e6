#!/usr/bin/env bash
# Manages the private Postgres cluster lnsync uses when no database is
# configured: installs PostgreSQL from Debian's packages if it is missing,
# creates the cluster, starts and stops it.
#
#   scripts/pg.sh start   ensure installed, initialised and running; print the URL
#   scripts/pg.sh stop    stop the cluster if it runs
#   scripts/pg.sh url     print the connection URL
#   scripts/pg.sh bindir  print the PostgreSQL bin directory (installing if needed)
#
# Settings: LNSYNC_PGDATA (default .data/postgres under the repository),
# LNSYNC_PGPORT (default 54329). The server listens on 127.0.0.1 only and
# trusts local connections; it is for development, tests and single-host use.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
port=${LNSYNC_PGPORT:-54329}
pgdata=${LNSYNC_PGDATA:-$repo/.data/postgres}

log() { echo "pg.sh: $*" >&2; }

find_bindir() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

ensure_installed() {
	if find_bindir >/dev/null; then
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		log "PostgreSQL is not installed and installing it needs root: run 'sudo apt-get install -y postgresql'"
		exit 1
	fi
	log "installing PostgreSQL from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql postgresql-contrib >&2
	find_bindir >/dev/null || { log "PostgreSQL still missing after install"; exit 1; }
}

# as_owner runs a command as the cluster owner: postgres refuses to run as root.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

prepare_datadir() {
	mkdir -p "$(dirname "$pgdata")"
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || { log "no 'postgres' user: is PostgreSQL installed?"; exit 1; }
		mkdir -p "$pgdata"
		chown postgres: "$pgdata" "$(dirname "$pgdata")"
		chmod 700 "$pgdata"
		if ! runuser -u postgres -- test -w "$pgdata"; then
			log "user postgres cannot reach $pgdata (a parent directory is not traversable); set LNSYNC_PGDATA"
			exit 1
		fi
	else
		mkdir -p "$pgdata"
		chmod 700 "$pgdata"
	fi
}

url() {
	echo "postgres://postgres@127.0.0.1:$port/lnsync?sslmode=disable"
}

start() {
	ensure_installed
	local bin
	bin=$(find_bindir)
	prepare_datadir
	if [ ! -f "$pgdata/PG_VERSION" ]; then
		log "initialising cluster in $pgdata"
		as_owner "$bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
	fi
	if as_owner "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
		log "already running on port $port"
	else
		log "starting on 127.0.0.1:$port"
		as_owner "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 start \
			-o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pgdata -c max_connections=300 -c fsync=on -c shared_buffers=256MB" >/dev/null \
			|| { tail -n 20 "$pgdata/server.log" >&2; exit 1; }
	fi
	if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'lnsync'" | grep -q 1; then
		"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc "CREATE DATABASE lnsync" >/dev/null
	fi
	url
}

stop() {
	local bin
	bin=$(find_bindir) || exit 0
	if [ -f "$pgdata/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
		as_owner "$bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
		log "stopped"
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
url) url ;;
bindir) ensure_installed; find_bindir ;;
*) echo "usage: $0 start|stop|url|bindir" >&2; exit 2 ;;
esac
