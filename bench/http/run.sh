#!/usr/bin/env bash
# HTTP load benchmark: lnsync's snapshot routes against nginx serving the same
# generation's static tree, on loopback, in the same run.
#
#   bench/http/run.sh            synthetic history of CHANNELS channels
#
# Settings (environment): CHANNELS (5000), NODES (CHANNELS*2/5), DAYS (35),
# UPDATE_EVERY (48h), DURATION per wrk run (10s), CONNECTIONS ("64 256"),
# THREADS (2), ROUNDS (3), ENCODING (gzip; "identity" sends no
# Accept-Encoding), FRESH=1 to refill the database. Installs wrk and nginx-light from Debian when
# missing (root), starts the private Postgres (scripts/pg.sh), and writes
# everything under bench/out/http/. Both servers listen on 127.0.0.1 only;
# nginx serves DIR/current/static/ under /snapshot/ with gzip_static, so both
# answer /snapshot/{ts}.bin and /snapshot/v2/{ts}.bin from the same files.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
channels=${CHANNELS:-5000}
nodes=${NODES:-$((channels * 2 / 5))}
days=${DAYS:-35}
update_every=${UPDATE_EVERY:-48h}
duration=${DURATION:-10s}
connections=${CONNECTIONS:-"64 256"}
threads=${THREADS:-2}
encoding=${ENCODING:-gzip}
lnsync_port=18080
nginx_port=18081
out=$repo/bench/out/http
data=$out/c$channels
mkdir -p "$data"

log() { echo "run.sh: $*" >&2; }

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]} from Debian"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
fi

pg=$("$repo/scripts/pg.sh" start)
db=$(echo "$pg" | sed "s#/lnsync?#/lnsync_bench_http_c$channels?#")
tool=$out/lnsync-bench-http
(cd "$repo" && go build -o "$tool" ./bench/http)

if [ "${FRESH:-0}" = 1 ] || [ ! -e "$data/filled" ]; then
	log "filling database with $channels channels, $nodes nodes, $days days"
	"$tool" fill -db "$db" -channels "$channels" -nodes "$nodes" -days "$days" -update-every "$update_every" | tee "$data/fill.txt"
	touch "$data/filled"
fi
rm -rf "$data/snapshots"
log "computing snapshot generations"
"$tool" snapshot -db "$db" -dir "$data/snapshots" | tee "$data/snapshot.txt"
ref=$(sed -n 's/^  "reference": \([0-9]*\),$/\1/p' "$data/snapshots/current/manifest.json")

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$data/nginx/nginx.pid" ] && kill "$(cat "$data/nginx/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT

"$tool" serve -dir "$data/snapshots" -listen "127.0.0.1:$lnsync_port" >"$data/lnsync.log" 2>&1 &
lnsync_pid=$!
pids+=($lnsync_pid)

mkdir -p "$data/nginx/logs"
cat >"$data/nginx/nginx.conf" <<EOF
worker_processes 2;
pid $data/nginx/nginx.pid;
error_log $data/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	types { }
	default_type application/octet-stream;
	gzip_static on;
	open_file_cache max=10000 inactive=30s;
	open_file_cache_valid 5s;
	client_body_temp_path $data/nginx/tmp;
	proxy_temp_path $data/nginx/tmp;
	fastcgi_temp_path $data/nginx/tmp;
	uwsgi_temp_path $data/nginx/tmp;
	scgi_temp_path $data/nginx/tmp;
	server {
		listen 127.0.0.1:$nginx_port;
		location /snapshot/ {
			alias $data/snapshots/current/static/;
		}
	}
}
EOF
mkdir -p "$data/nginx/tmp"
nginx -p "$data/nginx" -c "$data/nginx/nginx.conf" -e "$data/nginx/logs/error.log"

for _ in $(seq 50); do
	curl -sf "http://127.0.0.1:$lnsync_port/healthz" >/dev/null && curl -sf "http://127.0.0.1:$nginx_port/snapshot/0.bin" >/dev/null && break
	sleep 0.1
done

# The request mix: clients polling every few hours ask for recent grid points
# most often; a few come back after days, a few start from scratch. Half v1,
# half v2.
h=10800
mix=()
for spec in "$ref:6" "$((ref - h)):6" "$((ref - 2 * h)):3" "$((ref - 3 * h)):2" "$((ref - 4 * h)):2" \
	"$((ref - 8 * h)):2" "$((ref - 16 * h)):1" "$((ref - 56 * h)):1" "0:1"; do
	ts=${spec%%:*}
	for _ in $(seq "${spec##*:}"); do
		mix+=("/snapshot/$ts.bin" "/snapshot/v2/$ts.bin")
	done
done

# Both servers must answer every path of the mix with the same bytes.
for p in "${mix[@]}"; do
	for enc in identity gzip; do
		a=$(curl -sf -H "Accept-Encoding: $enc" "http://127.0.0.1:$lnsync_port$p" | sha256sum)
		b=$(curl -sf -H "Accept-Encoding: $enc" "http://127.0.0.1:$nginx_port$p" | sha256sum)
		if [ "$a" != "$b" ]; then
			log "lnsync and nginx differ on $p ($enc)"
			exit 1
		fi
	done
done
log "both servers answer the ${#mix[@]} mix paths identically"

lua=$data/mix.lua
{
	echo "local paths = {"
	for p in "${mix[@]}"; do echo "  \"$p\","; done
	echo "}"
	if [ "$encoding" = gzip ]; then
		echo 'local headers = {["Accept-Encoding"] = "gzip"}'
	else
		echo 'local headers = {}'
	fi
	cat <<'EOF'
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], headers)
end
EOF
} >"$lua"

# Rounds alternate the order of the two servers; the summary gives the
# median of each figure over the rounds (the host's other load varies). Server
# CPU per request (user + system time of the lnsync process, or of the nginx
# workers, divided by the requests wrk completed) does not depend on what
# else runs on the host, so it compares the servers' efficiency directly.
tck=$(getconf CLK_TCK)
cputicks() { # utime + stime of the given pids, in clock ticks
	local t=0 p
	for p in "$@"; do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$t"
}
nginx_workers=$(pgrep -P "$(cat "$data/nginx/nginx.pid")" | tr '\n' ' ')
ms() { # wrk latency ("950.12us", "3.21ms", "1.02s") in milliseconds
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
rounds=${ROUNDS:-3}
raw=$data/raw-$encoding.txt
: >"$raw"
for c in $connections; do
	for round in $(seq "$rounds"); do
		order="lnsync nginx"
		[ $((round % 2)) = 0 ] && order="nginx lnsync"
		for target in $order; do
			port=$lnsync_port
			[ "$target" = nginx ] && port=$nginx_port
			res=$data/wrk-$target-c$c-r$round-$encoding.txt
			server_pids=$lnsync_pid
			[ "$target" = nginx ] && server_pids=$nginx_workers
			# shellcheck disable=SC2086
			before=$(cputicks $server_pids)
			wrk -t"$threads" -c"$c" -d"$duration" --latency -s "$lua" "http://127.0.0.1:$port" >"$res"
			# shellcheck disable=SC2086
			after=$(cputicks $server_pids)
			if grep -q "Non-2xx" "$res"; then
				log "$target answered errors at $c connections: $(grep Non-2xx "$res")"
				exit 1
			fi
			rps=$(awk '/^Requests\/sec:/ {print $2}' "$res")
			p50=$(ms "$(awk '$1 == "50%" {print $2}' "$res")")
			p99=$(ms "$(awk '$1 == "99%" {print $2}' "$res")")
			reqs=$(awk '/requests in/ {print $1}' "$res")
			cpu=$(awk -v d=$((after - before)) -v t="$tck" -v n="$reqs" 'BEGIN { printf "%.1f", d / t * 1e6 / n }')
			echo "$target $c $round $rps $p50 $p99 $cpu" | tee -a "$raw" >&2
		done
	done
done

summary=$data/summary-$encoding.txt
{
	printf "%-8s %5s %12s %10s %10s %14s\n" server conns "req/s" "p50 ms" "p99 ms" "CPU us/req"
	for c in $connections; do
		for target in lnsync nginx; do
			rps=$(awk -v t="$target" -v c="$c" '$1 == t && $2 == c {print $4}' "$raw" | median)
			p50=$(awk -v t="$target" -v c="$c" '$1 == t && $2 == c {print $5}' "$raw" | median)
			p99=$(awk -v t="$target" -v c="$c" '$1 == t && $2 == c {print $6}' "$raw" | median)
			cpu=$(awk -v t="$target" -v c="$c" '$1 == t && $2 == c {print $7}' "$raw" | median)
			printf "%-8s %5s %12.0f %10.2f %10.2f %14.1f\n" "$target" "$c" "$rps" "$p50" "$p99" "$cpu"
		done
		l=$(awk -v c="$c" '$1 == "lnsync" && $2 == c {print $4}' "$raw" | median)
		n=$(awk -v c="$c" '$1 == "nginx" && $2 == c {print $4}' "$raw" | median)
		lc=$(awk -v c="$c" '$1 == "lnsync" && $2 == c {print $7}' "$raw" | median)
		nc=$(awk -v c="$c" '$1 == "nginx" && $2 == c {print $7}' "$raw" | median)
		awk -v l="$l" -v n="$n" -v c="$c" -v lc="$lc" -v nc="$nc" 'BEGIN { printf "ratio lnsync/nginx at %s connections: %.2f in req/s, %.2f in CPU efficiency (nginx CPU per request / lnsync CPU per request)\n", c, l / n, nc / lc }'
	done
	echo "median of $rounds rounds; reference $ref; $channels channels; encoding $encoding; $duration per run; $threads wrk threads; $(nproc) cores"
} >"$summary"
cat "$summary"
