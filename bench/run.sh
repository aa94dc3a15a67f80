#!/usr/bin/env bash
# bench/run.sh — kinko's load benchmark (see docs/PERFORMANCE.md).
#
# Builds kinko (release flags), starts it in dev mode and an nginx that
# answers every request with a static 200 (the ceiling: what this machine's
# loopback HTTP stack and the load generator manage at best), then drives
# each with wrk over keep-alive connections:
#
#   ceiling          POST of the Encrypt request (same size) to nginx
#   Encrypt          100 bytes under a symmetric key
#   Decrypt          the ciphertext of that Encrypt
#   GenerateDataKey  KeySpec AES_256
#
# Every kinko request is a real, SigV4-signed KMS request; the signatures are
# made (bench/make_requests.py) right before each wrk run, and each run is
# far shorter than their 5-minute validity. Any non-2xx answer from kinko
# fails the run.
#
# Settings (environment):
#   BENCH_DURATION     wrk -d per target        (default 10s, at most 120s)
#   BENCH_CONNECTIONS  wrk -c                   (default 64)
#   BENCH_THREADS      wrk -t                   (default 2)
#   BENCH_WARMUP       unmeasured run first     (default 2s, 0 to skip)
#   BENCH_SERVER_THREADS  kinko --threads       (default: kinko's own, one per core)
#   BUILD              build folder             (default build-bench)
#   KINKO_BIN          benchmark this kinko binary instead of building one
#   PYTHON             interpreter with boto3   (default /usr/bin/python3)
#
# Everything listens on 127.0.0.1 only, on free ports, with its data in a
# temporary folder; everything started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD="${BUILD:-build-bench}"
DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
WARMUP="${BENCH_WARMUP:-2s}"
SERVER_THREADS="${BENCH_SERVER_THREADS:-}"
PYTHON="${PYTHON:-/usr/bin/python3}"
[ -x "$PYTHON" ] || PYTHON=python3
TARGETS=(ceiling Encrypt Decrypt GenerateDataKey)

die() { echo "bench: FAIL: $*" >&2; exit 1; }

# "10s", "2m", "30" -> seconds; refuses anything else.
seconds() {
	local v="$1"
	case "$v" in
	*[!0-9smSM]* | "") return 1 ;;
	*s | *S) v="${v%?}"; [[ "$v" =~ ^[0-9]+$ ]] || return 1; echo "$((10#$v))" ;;
	*m | *M) v="${v%?}"; [[ "$v" =~ ^[0-9]+$ ]] || return 1; echo "$((10#$v * 60))" ;;
	*) [[ "$v" =~ ^[0-9]+$ ]] || return 1; echo "$((10#$v))" ;;
	esac
}

DUR_S="$(seconds "$DURATION")" || die "BENCH_DURATION=$DURATION (want e.g. 10s)"
WARM_S="$(seconds "$WARMUP")" || die "BENCH_WARMUP=$WARMUP (want e.g. 2s or 0)"
# A signature is valid for 5 minutes: warm-up plus run must stay well inside.
[ "$DUR_S" -ge 1 ] && [ "$DUR_S" -le 120 ] || die "BENCH_DURATION must be 1s..120s"
[ "$WARM_S" -le 30 ] || die "BENCH_WARMUP must be at most 30s"
[[ "$CONNECTIONS" =~ ^[0-9]+$ ]] && [ "$CONNECTIONS" -ge 1 ] && [ "$CONNECTIONS" -le 4000 ] ||
	die "BENCH_CONNECTIONS must be 1..4000"
[[ "$THREADS" =~ ^[0-9]+$ ]] && [ "$THREADS" -ge 1 ] && [ "$THREADS" -le "$CONNECTIONS" ] ||
	die "BENCH_THREADS must be 1..BENCH_CONNECTIONS"
if [ -n "$SERVER_THREADS" ]; then
	[[ "$SERVER_THREADS" =~ ^[0-9]+$ ]] && [ "$SERVER_THREADS" -ge 1 ] ||
		die "BENCH_SERVER_THREADS must be a positive number"
fi

for tool in wrk nginx curl timeout; do
	command -v "$tool" >/dev/null || die "$tool is not installed (scripts/setup.sh installs it)"
done
"$PYTHON" -c 'import boto3, botocore' 2>/dev/null || die "$PYTHON cannot import boto3"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kinko-bench.XXXXXX")"
KINKO_PID=""
NGINX_PID=""

stop_pid() { # pid name
	local pid="$1" i
	[ -n "$pid" ] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "bench: $2 did not stop in 10 s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_pid "$KINKO_PID" kinko
	stop_pid "$NGINX_PID" nginx
	if [ "$rc" -ne 0 ] && [ -d "$WORK" ]; then
		for f in "$WORK"/kinko.err "$WORK"/nginx/stderr; do
			[ -s "$f" ] && { echo "--- ${f#"$WORK"/} (last lines)"; tail -n 20 "$f"; } >&2
		done
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free TCP port on 127.0.0.1 (the kernel's choice).
free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---- build ---------------------------------------------------------------
if [ -n "${KINKO_BIN:-}" ]; then
	KINKO="$KINKO_BIN"
	[ -x "$KINKO" ] || die "KINKO_BIN=$KINKO is not an executable"
	echo "bench: using $KINKO (not rebuilt)"
else
	echo "bench: building kinko (release) in $BUILD/"
	make -s BUILD="$BUILD" "$BUILD/kinko" >"$WORK/build.log" 2>&1 ||
		{ cat "$WORK/build.log" >&2; die "build failed"; }
	KINKO="$BUILD/kinko"
fi

# ---- nginx: the ceiling ----------------------------------------------------
mkdir -p "$WORK/nginx/logs"
NGINX_PORT="$(free_port)"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
pid nginx.pid;
error_log stderr warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    keepalive_timeout 65s;
    keepalive_requests 100000000;
    client_body_temp_path client_body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            return 200 "ok";
        }
    }
}
EOF
nginx -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
	>"$WORK/nginx/stdout" 2>"$WORK/nginx/stderr" &
NGINX_PID=$!
up=""
for _ in $(seq 1 100); do
	kill -0 "$NGINX_PID" 2>/dev/null || break
	code="$(curl -s -m 2 -o /dev/null -w '%{http_code}' -X POST --data-binary x \
		"http://127.0.0.1:$NGINX_PORT/" 2>/dev/null || true)"
	if [ "$code" = 200 ]; then up=1; break; fi
	sleep 0.1
done
[ -n "$up" ] || die "nginx did not answer 200 on 127.0.0.1:$NGINX_PORT"

# ---- kinko ---------------------------------------------------------------
mkdir -m 700 "$WORK/kinko-data"
KINKO_ARGS=(serve --dev --listen 127.0.0.1:0 --data "$WORK/kinko-data")
[ -n "$SERVER_THREADS" ] && KINKO_ARGS+=(--threads "$SERVER_THREADS")
"$KINKO" "${KINKO_ARGS[@]}" >"$WORK/kinko.out" 2>"$WORK/kinko.err" &
KINKO_PID=$!
ENDPOINT=""
for _ in $(seq 1 150); do
	kill -0 "$KINKO_PID" 2>/dev/null || break
	line="$(grep -m1 'listening on' "$WORK/kinko.out" 2>/dev/null || true)"
	if [ -n "$line" ]; then
		ENDPOINT="$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' <<<"$line")"
		break
	fi
	sleep 0.1
done
[ -n "$ENDPOINT" ] || die "kinko did not start (no 'listening on' line)"

# ---- the runs ------------------------------------------------------------
CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "bench: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, ${CPU:-unknown CPU}"
echo "bench: kinko at $ENDPOINT (pid $KINKO_PID), nginx ceiling at http://127.0.0.1:$NGINX_PORT (pid $NGINX_PID)"
echo "bench: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up ${WARMUP})"

declare -A RPS P50 P99
# run_wrk TARGET SECONDS OUTFILE
run_wrk() {
	local target="$1" secs="$2" out="$3" url="$ENDPOINT/"
	[ "$target" = ceiling ] && url="http://127.0.0.1:$NGINX_PORT/"
	timeout -k 5 $((secs + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${secs}s" --latency \
		--timeout 10s -s "$WORK/req/$target.lua" "$url" >"$out" 2>&1
}

for target in "${TARGETS[@]}"; do
	# Fresh signatures for this target's runs (warm-up + measurement).
	"$PYTHON" bench/make_requests.py --endpoint "$ENDPOINT" --out "$WORK/req" \
		--ceiling-host "127.0.0.1:$NGINX_PORT" >"$WORK/sign.log" 2>&1 ||
		{
			tail -n 5 "$WORK/sign.log" >&2
			kill -0 "$KINKO_PID" 2>/dev/null || die "kinko exited during the setup requests"
			die "could not sign the requests"
		}
	if [ "$WARM_S" -gt 0 ]; then
		run_wrk "$target" "$WARM_S" "$WORK/warm-$target.txt" ||
			{ cat "$WORK/warm-$target.txt" >&2; die "wrk warm-up for $target failed"; }
	fi
	out="$WORK/wrk-$target.txt"
	run_wrk "$target" "$DUR_S" "$out" || { cat "$out" >&2; die "wrk for $target failed"; }
	kill -0 "$KINKO_PID" 2>/dev/null || die "kinko exited during the $target run"
	res="$(grep -m1 '^BENCH ' "$out" || true)"
	[ -n "$res" ] || { cat "$out" >&2; die "no result line from wrk for $target"; }
	get() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$res"; }
	requests="$(get requests)"
	non2xx="$(get non2xx)"
	sockerr=$(($(get connect_err) + $(get read_err) + $(get write_err) + $(get timeout_err)))
	echo
	echo "== $target"
	sed '/^BENCH /d' "$out"
	[ "${requests:-0}" -gt 0 ] || die "$target: no request completed"
	if [ "$target" != ceiling ]; then
		if [ "$non2xx" -ne 0 ] || grep -q 'Non-2xx' "$out"; then
			die "$target: kinko answered $non2xx of $requests requests with a non-2xx status"
		fi
		[ "$sockerr" -eq 0 ] || die "$target: $sockerr socket errors against kinko"
	else
		[ "$non2xx" -eq 0 ] || die "ceiling: nginx answered $non2xx requests with a non-2xx status"
	fi
	RPS[$target]="$(get rps)"
	P50[$target]="$(get p50_us)"
	P99[$target]="$(get p99_us)"
done

# ---- the table -----------------------------------------------------------
echo
echo "kinko benchmark: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, keep-alive, $(nproc) cores, ${CPU:-unknown CPU}"
printf '%-22s %12s %10s %10s %10s\n' target 'requests/s' p50 p99 'vs nginx'
for target in "${TARGETS[@]}"; do
	name="$target"
	[ "$target" = ceiling ] && name="nginx static 200"
	awk -v n="$name" -v r="${RPS[$target]}" -v a="${P50[$target]}" -v b="${P99[$target]}" \
		-v c="${RPS[ceiling]}" 'BEGIN {
		printf "%-22s %12.0f %8.2fms %8.2fms %9.1f%%\n", n, r, a / 1000, b / 1000, 100 * r / c }'
done
echo
enc_pct="$(awk -v r="${RPS[Encrypt]}" -v c="${RPS[ceiling]}" 'BEGIN { printf "%.1f", 100 * r / c }')"
if awk -v p="$enc_pct" 'BEGIN { exit !(p >= 40) }'; then
	echo "target: Encrypt at least 40% of the nginx ceiling: met (${enc_pct}%)"
else
	echo "target: Encrypt at least 40% of the nginx ceiling: NOT met (${enc_pct}%)"
fi
