#!/usr/bin/env bash
# bench/run.sh — kinko's load benchmark (see docs/PERFORMANCE.md).
#
# Builds kinko (release flags), starts it in dev mode and an nginx that
# answers every request with a static 200 (the ceiling: what this machine's
# loopback HTTP stack and the load generator manage at best), then drives
# each with wrk over keep-alive connections:
#
#   Encrypt          100 bytes under a symmetric key
#   Decrypt          the ciphertext of that Encrypt
#   GenerateDataKey  KeySpec AES_256
#
# Each operation's run is paired with a ceiling run just before it: the
# same wrk settings posting the Encrypt request (same headers and body size)
# to nginx. The ratio is operation requests/s over its paired ceiling.
#
# With --compare BASELINE_BIN it runs two kinko binaries, the baseline and
# the current one (KINKO_BIN or the build), interleaved: BENCH_RUNS rounds,
# each measuring every operation on both, each run paired with its own
# nginx ceiling run just before it, the binary that goes first alternating
# from round to round. It prints per operation the medians over the rounds
# of requests/s, ratio to nginx, CPU us per request and p99 for both, and
# the ratio new/baseline: the regression gate for reviewers.
#
# Every kinko request is a real, SigV4-signed KMS request; the signatures are
# made (bench/make_requests.py) right before each wrk run, and each run is
# far shorter than their 5-minute validity. Any non-2xx answer from kinko
# fails the run.
#
# Settings (environment):
#   BENCH_DURATION     wrk -d per run           (default 10s, at most 120s)
#   BENCH_CONNECTIONS  wrk -c                   (default 64)
#   BENCH_THREADS      wrk -t                   (default 2)
#   BENCH_WARMUP       unmeasured run first     (default 2s, 0 to skip)
#   BENCH_SERVER_THREADS  kinko --threads       (default: kinko's own, one per core)
#   BENCH_OPS          operations to measure    (default "Encrypt Decrypt GenerateDataKey";
#                      also GetSecretValue)
#   BUILD              build folder             (default build-bench)
#   KINKO_BIN          benchmark this kinko binary instead of building one
#   BENCH_RUNS         rounds of --compare      (default 5)
#   PYTHON             interpreter with boto3   (default /usr/bin/python3)
#
# Everything listens on 127.0.0.1 only, on free ports, with its data in a
# temporary folder; everything started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

BASELINE=""
case "${1:-}" in
--compare)
	[ $# -eq 2 ] || { echo "usage: bench/run.sh [--compare BASELINE_BIN]" >&2; exit 2; }
	BASELINE="$2"
	[ -x "$BASELINE" ] || { echo "bench: FAIL: --compare $BASELINE is not an executable" >&2; exit 1; }
	BASELINE="$(cd "$(dirname "$BASELINE")" && pwd)/$(basename "$BASELINE")"
	;;
"") ;;
*) echo "usage: bench/run.sh [--compare BASELINE_BIN]" >&2; exit 2 ;;
esac
if [ -n "${KINKO_BIN:-}" ] && [ -x "$KINKO_BIN" ]; then
	KINKO_BIN="$(cd "$(dirname "$KINKO_BIN")" && pwd)/$(basename "$KINKO_BIN")"
fi
cd "$ROOT"

BUILD="${BUILD:-build-bench}"
DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
WARMUP="${BENCH_WARMUP:-2s}"
SERVER_THREADS="${BENCH_SERVER_THREADS:-}"
RUNS="${BENCH_RUNS:-5}"
PYTHON="${PYTHON:-/usr/bin/python3}"
[ -x "$PYTHON" ] || PYTHON=python3
read -r -a OPS <<<"${BENCH_OPS:-Encrypt Decrypt GenerateDataKey}"
for op in "${OPS[@]}"; do
	case "$op" in Encrypt | Decrypt | GenerateDataKey | GetSecretValue) ;; *) echo "bench: FAIL: unknown operation in BENCH_OPS: $op" >&2; exit 1 ;; esac
done

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
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] && [ "$RUNS" -le 50 ] || die "BENCH_RUNS must be 1..50"
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
BASE_PID=""
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
	stop_pid "$BASE_PID" "baseline kinko"
	stop_pid "$NGINX_PID" nginx
	if [ "$rc" -ne 0 ] && [ -d "$WORK" ]; then
		for f in "$WORK"/kinko.err "$WORK"/base/kinko.err "$WORK"/nginx/stderr; do
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
# start_kinko BIN DIR: starts BIN in dev mode with its data in DIR/kinko-data;
# sets STARTED_PID and STARTED_ENDPOINT.
start_kinko() {
	local bin="$1" dir="$2" line args
	mkdir -p "$dir"
	mkdir -m 700 "$dir/kinko-data"
	args=(serve --dev --listen 127.0.0.1:0 --data "$dir/kinko-data")
	[ -n "$SERVER_THREADS" ] && args+=(--threads "$SERVER_THREADS")
	"$bin" "${args[@]}" >"$dir/kinko.out" 2>"$dir/kinko.err" &
	STARTED_PID=$!
	STARTED_ENDPOINT=""
	for _ in $(seq 1 150); do
		kill -0 "$STARTED_PID" 2>/dev/null || break
		line="$(grep -m1 'listening on' "$dir/kinko.out" 2>/dev/null || true)"
		if [ -n "$line" ]; then
			STARTED_ENDPOINT="$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' <<<"$line")"
			break
		fi
		sleep 0.1
	done
	[ -n "$STARTED_ENDPOINT" ] || die "$bin did not start (no 'listening on' line)"
}
start_kinko "$KINKO" "$WORK"
KINKO_PID="$STARTED_PID"
ENDPOINT="$STARTED_ENDPOINT"
if [ -n "$BASELINE" ]; then
	start_kinko "$BASELINE" "$WORK/base"
	BASE_PID="$STARTED_PID"
	BASE_ENDPOINT="$STARTED_ENDPOINT"
fi
NEW_PID="$KINKO_PID"
NEW_ENDPOINT="$ENDPOINT"
REQ="$WORK/req"

# ---- the runs ------------------------------------------------------------
CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "bench: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, ${CPU:-unknown CPU}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: kinko $KINKO at $ENDPOINT (pid $KINKO_PID), nginx ceiling at http://127.0.0.1:$NGINX_PORT (pid $NGINX_PID)"
[ -z "$BASELINE" ] || echo "bench: baseline $BASELINE at $BASE_ENDPOINT (pid $BASE_PID), $RUNS rounds"
echo "bench: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up ${WARMUP})"

declare -A RPS P50 P99 CPU_US
CLK_TCK="$(getconf CLK_TCK)"

# CPU time (user + system, in clock ticks) used so far by a process and its
# children still alive: kinko's threads, or nginx's master and workers.
cpu_ticks() {
	local root="$1" pids p total=0 fields
	pids="$root $(ps -o pid= --ppid "$root" 2>/dev/null || true)"
	for p in $pids; do
		fields="$(cat "/proc/$p/stat" 2>/dev/null || true)"
		[ -n "$fields" ] || continue
		fields="${fields##*) }" # fields from the 3rd on; the name may hold spaces
		set -- $fields
		total=$((total + ${12} + ${13}))
	done
	echo "$total"
}
# run_wrk SCRIPT URL SECONDS OUTFILE
run_wrk() {
	timeout -k 5 $(($3 + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$3s" --latency \
		--timeout 10s -s "$REQ/$1.lua" "$2" >"$4" 2>&1
}

# Fresh signatures (kinko accepts each for 5 minutes).
sign() {
	"$PYTHON" bench/make_requests.py --endpoint "$ENDPOINT" --out "$REQ" \
		--ceiling-host "127.0.0.1:$NGINX_PORT" >"$WORK/sign.log" 2>&1 && return 0
	tail -n 5 "$WORK/sign.log" >&2
	kill -0 "$CUR_PID" 2>/dev/null || die "kinko exited during the setup requests"
	die "could not sign the requests"
}

# measure LABEL SCRIPT: warm-up, then the measured run; fills RPS/P50/P99[LABEL].
measure() {
	local label="$1" script="$2" url="$ENDPOINT/" out res requests non2xx sockerr
	[ "$script" = ceiling ] && url="http://127.0.0.1:$NGINX_PORT/"
	if [ "$WARM_S" -gt 0 ]; then
		run_wrk "$script" "$url" "$WARM_S" "$WORK/warm-${label//\//-}.txt" ||
			{ cat "$WORK/warm-${label//\//-}.txt" >&2; die "wrk warm-up for $label failed"; }
	fi
	out="$WORK/wrk-${label//\//-}.txt"
	local server_pid="$CUR_PID" cpu0 cpu1
	[ "$script" = ceiling ] && server_pid="$NGINX_PID"
	cpu0="$(cpu_ticks "$server_pid")"
	run_wrk "$script" "$url" "$DUR_S" "$out" || { cat "$out" >&2; die "wrk for $label failed"; }
	cpu1="$(cpu_ticks "$server_pid")"
	kill -0 "$CUR_PID" 2>/dev/null || die "kinko exited during the $label run"
	kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited during the $label run"
	res="$(grep -m1 '^BENCH ' "$out" || true)"
	[ -n "$res" ] || { cat "$out" >&2; die "no result line from wrk for $label"; }
	get() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$res"; }
	requests="$(get requests)"
	non2xx="$(get non2xx)"
	sockerr=$(($(get connect_err) + $(get read_err) + $(get write_err) + $(get timeout_err)))
	if [ -n "${QUIET:-}" ]; then
		echo "  $label: $(get rps | cut -d. -f1) requests/s, p99 $(get p99_us) us"
	else
		echo
		echo "== $label"
		sed '/^BENCH /d' "$out"
	fi
	[ "${requests:-0}" -gt 0 ] || die "$label: no request completed"
	if [ "$non2xx" -ne 0 ] || grep -q 'Non-2xx' "$out"; then
		die "$label: $non2xx of $requests requests answered with a non-2xx status"
	fi
	if [ "$script" != ceiling ] && [ "$sockerr" -ne 0 ]; then
		die "$label: $sockerr socket errors against kinko"
	fi
	RPS[$label]="$(get rps)"
	CPU_US[$label]="$(awk -v d="$((cpu1 - cpu0))" -v t="$CLK_TCK" -v n="$requests" \
		'BEGIN { printf "%.1f", d * 1e6 / t / n }')"
	P50[$label]="$(get p50_us)"
	P99[$label]="$(get p99_us)"
}

# use_kinko new|base: the binary the next sign and measure talk to.
use_kinko() {
	if [ "$1" = base ]; then
		CUR_PID="$BASE_PID" ENDPOINT="$BASE_ENDPOINT" REQ="$WORK/req-base"
	else
		CUR_PID="$NEW_PID" ENDPOINT="$NEW_ENDPOINT" REQ="$WORK/req"
	fi
}
use_kinko new

# ---- --compare: the baseline and the current binary, interleaved ---------
# median V...: the median of the numbers given (the mean of the middle two
# for an even count).
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) printf "%.6g", v[(NR + 1) / 2]; else printf "%.6g", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# col WHICH OP FIELD: the median over the rounds of one figure of one
# operation on one binary (FIELD: rps, pct, cpu, p99).
col() {
	local which="$1" op="$2" field="$3" r label vals=()
	for r in $(seq 1 "$RUNS"); do
		label="$op/$which/$r"
		case "$field" in
		rps) vals+=("${RPS[$label]}") ;;
		pct) vals+=("$(awk -v a="${RPS[$label]}" -v b="${RPS[nginx-$label]}" 'BEGIN { printf "%.4f", 100 * a / b }')") ;;
		cpu) vals+=("${CPU_US[$label]}") ;;
		p99) vals+=("${P99[$label]}") ;;
		esac
	done
	median "${vals[@]}"
}

compare_rounds() {
	local r op which order
	for r in $(seq 1 "$RUNS"); do
		# The binary that goes first alternates, so neither always runs on
		# the machine the other just warmed (or just loaded).
		if [ $((r % 2)) -eq 1 ]; then order="base new"; else order="new base"; fi
		echo "bench: round $r of $RUNS ($order), load average $(cut -d' ' -f1-3 /proc/loadavg)"
		for op in "${OPS[@]}"; do
			for which in $order; do
				use_kinko "$which"
				sign
				measure "nginx-$op/$which/$r" ceiling
				sign
				measure "$op/$which/$r" "$op"
			done
		done
	done
	echo
	echo "kinko --compare: medians of $RUNS rounds, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores, ${CPU:-unknown CPU}"
	echo "  baseline: $BASELINE"
	echo "  new:      $KINKO"
	printf '%-16s %-5s %11s %9s %11s %9s\n' operation '' 'requests/s' 'vs nginx' 'CPU us/req' p99
	for op in "${OPS[@]}"; do
		for which in base new; do
			awk -v o="$op" -v w="$which" -v r="$(col "$which" "$op" rps)" \
				-v p="$(col "$which" "$op" pct)" -v u="$(col "$which" "$op" cpu)" \
				-v l="$(col "$which" "$op" p99)" 'BEGIN {
				printf "%-16s %-5s %11.0f %8.1f%% %11.1f %7.2fms\n", o, w, r, p, u, l / 1000 }'
		done
		awk -v o="$op" -v rb="$(col base "$op" rps)" -v rn="$(col new "$op" rps)" \
			-v pb="$(col base "$op" pct)" -v pn="$(col new "$op" pct)" \
			-v ub="$(col base "$op" cpu)" -v un="$(col new "$op" cpu)" \
			-v lb="$(col base "$op" p99)" -v ln="$(col new "$op" p99)" 'BEGIN {
			printf "%-16s %-5s %10.2fx %8.2fx %10.2fx %8.2fx\n", o, "new/base", rn / rb, pn / pb, un / ub, ln / lb }'
	done
	echo "(medians over the rounds of each figure on its own; vs nginx: each run against the nginx"
	echo " run just before it; new/base above 1 is better for requests/s and vs nginx, worse for"
	echo " CPU us/req and p99.)"
}

if [ -n "$BASELINE" ]; then
	QUIET=1
	compare_rounds
	exit 0
fi

# Each operation is paired with a ceiling run just before it, so both see
# the same machine (other load on a shared machine moves both together).
for op in "${OPS[@]}"; do
	sign
	measure "nginx-$op" ceiling
	sign
	measure "$op" "$op"
done

# ---- the table -----------------------------------------------------------
echo
echo "kinko benchmark: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, keep-alive, $(nproc) cores, ${CPU:-unknown CPU}"
printf '%-29s %11s %9s %9s %12s %13s %9s\n' operation 'requests/s' p50 p99 'CPU us/req' \
	'nginx req/s' 'vs nginx'
row() { # label rps p50_us p99_us cpu_us_per_request ceiling_rps
	awk -v n="$1" -v r="$2" -v a="$3" -v b="$4" -v u="$5" -v c="$6" 'BEGIN {
		printf "%-29s %11.0f %7.2fms %7.2fms %12.1f %13.0f %8.1f%%\n", n, r, a / 1000, b / 1000, u, c,
			100 * r / c }'
}
for op in "${OPS[@]}"; do
	row "$op" "${RPS[$op]}" "${P50[$op]}" "${P99[$op]}" "${CPU_US[$op]}" "${RPS[nginx-$op]}"
done
for op in "${OPS[@]}"; do
	row "nginx, before $op" "${RPS[nginx-$op]}" "${P50[nginx-$op]}" "${P99[nginx-$op]}" \
		"${CPU_US[nginx-$op]}" "${RPS[nginx-$op]}"
done
echo "(CPU us/req: user + system CPU time of the server process, kinko or nginx, per answered"
echo " request during the measured run; it does not count the load generator.)"
echo
[ -n "${RPS[Encrypt]:-}" ] || exit 0
enc_pct="$(awk -v r="${RPS[Encrypt]}" -v c="${RPS[nginx-Encrypt]}" 'BEGIN { printf "%.1f", 100 * r / c }')"
enc_cpu="$(awk -v k="${CPU_US[Encrypt]}" -v n="${CPU_US[nginx-Encrypt]}" 'BEGIN { printf "%.1f", (n > 0) ? k / n : 0 }')"
# The target (docs/PERFORMANCE.md, "Target"): Encrypt at 65% of the nginx
# ceiling or more, at most 2.5 times nginx's CPU per request (one run: the
# target is the median of five, e.g. with --compare).
if awk -v p="$enc_pct" -v x="$enc_cpu" 'BEGIN { exit !(p >= 65 && x > 0 && x <= 2.5) }'; then
	echo "target: Encrypt at least 65% of the nginx ceiling, at most 2.5x its CPU per request: met (${enc_pct}%, ${enc_cpu}x)"
else
	echo "target: Encrypt at least 65% of the nginx ceiling, at most 2.5x its CPU per request: NOT met (${enc_pct}%, ${enc_cpu}x)"
fi
