#!/usr/bin/env bash
# Manages the private Postgres cluster lnsync uses when no database is
# configured: installs PostgreSQL from Debian's packages if it is missing,
# creates the cluster, starts and stops it.
#
#   scripts/pg.sh start   ensure installed, initialised and running; print the URL
#   scripts/pg.sh stop    stop the cluster if it runs
#   scripts/pg.sh url     print the connection URL
#   scripts/pg.sh status  say whether the cluster runs, and on which port
#   scripts/pg.sh bindir  print the PostgreSQL bin directory (installing if needed)
#
# Settings: LNSYNC_PGDATA (default .data/postgres under the repository),
# LNSYNC_PGPORT (default: the first free port from 54329 up, chosen when the
# cluster first starts and remembered in <LNSYNC_PGDATA>.port, so that two
# checkouts on one machine each keep their own). The server listens on
# 127.0.0.1 only and trusts local connections; it is for development, tests
# and single-host use.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
pgdata=${LNSYNC_PGDATA:-$repo/.data/postgres}
portfile=$pgdata.port

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

# in_use reports whether something accepts connections on 127.0.0.1:$1.
in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port prints the first port from $1 up that nothing listens on.
free_port() {
	local p=$1
	while in_use "$p"; do
		p=$((p + 1))
		[ "$p" -lt 65536 ] || { log "no free port from $1 up"; exit 1; }
	done
	echo "$p"
}

# port prints the cluster's port: LNSYNC_PGPORT, else the remembered one,
# else 54329 (not yet chosen).
port() {
	if [ -n "${LNSYNC_PGPORT:-}" ]; then
		echo "$LNSYNC_PGPORT"
	elif [ -s "$portfile" ]; then
		cat "$portfile"
	else
		echo 54329
	fi
}

url() {
	echo "postgres://postgres@127.0.0.1:$(port)/lnsync?sslmode=disable"
}

# launch starts the server on port $1; it fails (leaving the log) when the
# port is taken.
launch() {
	as_owner "$bin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 60 start \
		-o "-p $1 -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pgdata -c max_connections=300 -c fsync=on -c shared_buffers=256MB" >/dev/null 2>&1 8>&-
}

start() {
	ensure_installed
	bin=$(find_bindir)
	prepare_datadir
	# One start at a time per data directory.
	exec 8>"$pgdata.lock"
	flock 8
	if [ ! -f "$pgdata/PG_VERSION" ]; then
		log "initialising cluster in $pgdata"
		as_owner "$bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
	fi
	if as_owner "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
		# The running server's port is the fourth line of postmaster.pid.
		sed -n 4p "$pgdata/postmaster.pid" >"$portfile"
		log "already running on 127.0.0.1:$(port)"
	else
		local p tries=0
		p=$(port)
		if [ -z "${LNSYNC_PGPORT:-}" ] && in_use "$p"; then
			p=$(free_port "$p")
		fi
		until launch "$p"; do
			# Another server may have taken the port between the check and
			# the start: choose again, unless the port was set explicitly.
			tries=$((tries + 1))
			if [ -n "${LNSYNC_PGPORT:-}" ] || [ "$tries" -ge 20 ] || ! in_use "$p"; then
				log "could not start on 127.0.0.1:$p"
				tail -n 20 "$pgdata/server.log" >&2
				exit 1
			fi
			p=$(free_port "$((p + 1))")
		done
		echo "$p" >"$portfile"
		log "started on 127.0.0.1:$p (data in $pgdata)"
	fi
	if ! "$bin/psql" -h 127.0.0.1 -p "$(port)" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'lnsync'" | grep -q 1; then
		"$bin/psql" -h 127.0.0.1 -p "$(port)" -U postgres -d postgres -qc "CREATE DATABASE lnsync" >/dev/null
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

# status prints whether the cluster runs, and where.
status() {
	local bin
	if bin=$(find_bindir) && [ -f "$pgdata/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
		echo "running on 127.0.0.1:$(port) (data in $pgdata)"
	else
		echo "not running"
		return 1
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
url) url ;;
status) status ;;
bindir) ensure_installed; find_bindir ;;
*) echo "usage: $0 start|stop|url|status|bindir" >&2; exit 2 ;;
esac
