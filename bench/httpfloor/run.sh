#!/usr/bin/env bash
# bench/httpfloor/run.sh — what an HTTP server alone costs per request on
# this machine: nginx's static answer, a minimal epoll server
# (static_epoll.c), and libmicrohttpd set up as kinko sets it up
# (static_mhd.c, a response made per request, and one shared response),
# each answering the same static "200 ok" to a request of the size and
# shape of the benchmark's Encrypt (bench/run.sh). The servers run in turn,
# ROUNDS times, with wrk -t2 -c64 (2 s warm-up, DURATION s measured); the
# table gives each one's requests/s and its CPU time (user + system) per
# request, medians over the rounds. Not part of kinko's build: the two
# programs are compiled into a temporary folder.
#
#   ROUNDS=3 DURATION=8 THREADS=2 bench/httpfloor/run.sh
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8}"
THREADS="${THREADS:-$(nproc)}"
WORK="$(mktemp -d /tmp/kinko-httpfloor.XXXXXX)"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

cc -O2 -o "$WORK/static_epoll" static_epoll.c -lpthread
cc -O2 -o "$WORK/static_mhd" static_mhd.c $(pkg-config --cflags --libs libmicrohttpd)

free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# The request: the benchmark's Encrypt in size and headers (never checked here).
cat >"$WORK/req.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"KeyId": "0f3c5c3e-8a7e-4b1c-9d55-2b1f3a9c7e10", "Plaintext": "' .. string.rep("QUFB", 34) .. '"}'
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "TrentService.Encrypt"
wrk.headers["X-Amz-Date"] = "20261207T120000Z"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=test/20261207/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" .. string.rep("ab", 32)
LUA

start() { # NAME COMMAND...: starts a server, records its pid and port
	local name="$1"; shift
	"$@" >"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	eval "PID_$name=$!"
}
NGINX_PORT="$(free_port)"; EPOLL_PORT="$(free_port)"; MHD_PORT="$(free_port)"; MHDS_PORT="$(free_port)"
mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
pid nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 65s;
    keepalive_requests 100000000;
    client_body_temp_path client_body;
    server { listen 127.0.0.1:$NGINX_PORT; location / { return 200 "ok"; } }
}
CONF
start nginx nginx -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -g 'daemon off;'
start epoll "$WORK/static_epoll" "$EPOLL_PORT" "$THREADS"
start mhd "$WORK/static_mhd" "$MHD_PORT" "$THREADS" per-request
start mhds "$WORK/static_mhd" "$MHDS_PORT" "$THREADS" shared
sleep 1

cpu_ticks() { # CPU ticks of a process and its children
	local total=0 p f
	for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null || true); do
		f="$(cat "/proc/$p/stat" 2>/dev/null || true)"
		[ -n "$f" ] || continue
		f="${f##*) }"; set -- $f
		total=$((total + ${12} + ${13}))
	done
	echo "$total"
}
TCK="$(getconf CLK_TCK)"
declare -A RES
echo "httpfloor: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $THREADS server threads"
for r in $(seq 1 "$ROUNDS"); do
	for s in nginx epoll mhd mhds; do
		port_var="${s^^}_PORT"; pid_var="PID_$s"
		url="http://127.0.0.1:${!port_var}/"
		wrk -t2 -c64 -d2s -s "$WORK/req.lua" "$url" >/dev/null 2>&1
		c0="$(cpu_ticks "${!pid_var}")"
		out="$(wrk -t2 -c64 -d"${DURATION}s" -s "$WORK/req.lua" "$url" 2>&1)"
		c1="$(cpu_ticks "${!pid_var}")"
		n="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")"
		rps="$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")"
		us="$(awk -v d=$((c1 - c0)) -v t="$TCK" -v n="$n" 'BEGIN { printf "%.1f", d * 1e6 / t / n }')"
		echo "round $r $s: ${rps} req/s, ${us} us CPU/req"
		RES[$s]+="$rps $us;"
	done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-34s %12s %14s\n' server 'req/s (med)' 'CPU us/req (med)'
for s in nginx epoll mhd mhds; do
	case $s in
	nginx) label="nginx return 200" ;;
	epoll) label="minimal epoll server" ;;
	mhd) label="libmicrohttpd, response per request" ;;
	mhds) label="libmicrohttpd, one shared response" ;;
	esac
	rps="$(tr ';' '\n' <<<"${RES[$s]}" | awk 'NF { print $1 }' | median)"
	us="$(tr ';' '\n' <<<"${RES[$s]}" | awk 'NF { print $2 }' | median)"
	printf '%-34s %12.0f %14.1f\n' "$label" "$rps" "$us"
done
