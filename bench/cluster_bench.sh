#!/usr/bin/env bash
# bench/cluster_bench.sh — kinko as a cluster, on this machine (docs/PERFORMANCE.md,
# "Cluster: nginx in front, PostgreSQL behind").
#
# Starts, through scripts/cluster.sh in a temporary folder, one PostgreSQL,
# two kinko nodes on it and nginx in front of them (with nginx's static
# answer on a second port of the same nginx), plus one kinko node on SQLite,
# then drives each with wrk over keep-alive connections:
#
#   Encrypt through nginx to the two nodes, and nginx's static answer just
#     before it (same request, same nginx): the ratio of the two
#   CreateKey and PutSecretValue (writes) on one node on SQLite, one node on
#     PostgreSQL, and through nginx to the two PostgreSQL nodes
#
# Every kinko request is a real SigV4-signed request (bench/make_requests.py,
# bench/write_requests.py), signed right before its run. Any non-2xx answer
# fails the run.
#
# Settings (environment):
#   BENCH_DURATION     seconds per run      (default 8)
#   BENCH_CONNECTIONS  wrk -c               (default 32)
#   BENCH_THREADS      wrk -t               (default 2)
#   BENCH_PORT         first of the fixed ports scripts/cluster.sh uses (default 4700)
#   KINKO_BIN          the kinko binary     (default build/kinko)
#   PYTHON             interpreter with boto3 (default /usr/bin/python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DUR="${BENCH_DURATION:-8}"
CONNS="${BENCH_CONNECTIONS:-32}"
THREADS="${BENCH_THREADS:-2}"
PORT="${BENCH_PORT:-4700}"
KINKO="${KINKO_BIN:-$ROOT/build/kinko}"
PYTHON="${PYTHON:-/usr/bin/python3}"

die() { echo "cluster_bench: FAIL: $*" >&2; exit 1; }
[[ "$DUR" =~ ^[0-9]+$ ]] && [ "$DUR" -ge 1 ] && [ "$DUR" -le 60 ] || die "BENCH_DURATION must be 1..60"
for tool in wrk nginx curl timeout; do
	command -v "$tool" >/dev/null || die "$tool is not installed (scripts/setup.sh installs it)"
done
[ -x "$KINKO" ] || die "$KINKO is not built (run make)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kinko-cluster-bench.XXXXXX")"
chmod 711 "$WORK" # PostgreSQL runs as the postgres user when this runs as root
SQLITE_PID=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$SQLITE_PID" ] && kill -0 "$SQLITE_PID" 2>/dev/null; then
		kill -TERM "$SQLITE_PID"; wait "$SQLITE_PID" 2>/dev/null || true
	fi
	KINKO_CLUSTER_PORT="$PORT" KINKO_CLUSTER_NODES=2 KINKO_BIN="$KINKO" \
		scripts/cluster.sh stop "$WORK/cluster" >/dev/null 2>&1 || true
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

KINKO_CLUSTER_PORT="$PORT" KINKO_CLUSTER_NODES=2 KINKO_BIN="$KINKO" \
	scripts/cluster.sh start "$WORK/cluster" >"$WORK/cluster.out" || die "the cluster did not start"
FRONT="http://127.0.0.1:$PORT"
STATIC_HOST="127.0.0.1:$((PORT + 9))"
NODE1="http://127.0.0.1:$((PORT + 1))"

mkdir -m 700 "$WORK/sqlite"
"$KINKO" serve --dev --listen 127.0.0.1:0 --data "$WORK/sqlite" </dev/null >"$WORK/sqlite.out" 2>"$WORK/sqlite.err" &
SQLITE_PID=$!
SQLITE=""
for _ in $(seq 1 100); do
	SQLITE="$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/sqlite.out" | head -n1)"
	[ -n "$SQLITE" ] && break
	sleep 0.1
done
[ -n "$SQLITE" ] || die "the SQLite node did not start"

CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "cluster_bench: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores, ${CPU:-unknown CPU}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cluster_bench: wrk -t$THREADS -c$CONNS -d${DUR}s; nginx $FRONT -> 2 nodes on PostgreSQL; SQLite node $SQLITE"

declare -A RPS P50 P99
declare -A NON2XX
# run LABEL SCRIPT URL [conflicts-ok]: with conflicts-ok, non-2xx answers
# are counted (NON2XX) instead of failing the run, and req/s counts the
# 2xx answers only.
run() {
	local out="$WORK/wrk-$1.txt" res
	timeout -k 5 $((DUR + 30)) wrk -t"$THREADS" -c"$CONNS" -d1s -s "$2" "$3" >/dev/null 2>&1 || true
	timeout -k 5 $((DUR + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency --timeout 10s \
		-s "$2" "$3" >"$out" 2>&1 || { cat "$out" >&2; die "wrk for $1 failed"; }
	res="$(grep -m1 '^BENCH ' "$out")" || { cat "$out" >&2; die "no result from wrk for $1"; }
	get() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$res"; }
	NON2XX[$1]="$(get non2xx)"
	[ "${NON2XX[$1]}" = 0 ] || [ "${4:-}" = conflicts-ok ] ||
		die "$1: ${NON2XX[$1]} of $(get requests) answers were not 2xx"
	RPS[$1]="$(awk -v n="$(get requests)" -v e="${NON2XX[$1]}" -v d="$(get duration_s)" 'BEGIN { printf "%.2f", (n - e) / d }')"
	P50[$1]="$(get p50_us)"; P99[$1]="$(get p99_us)"
	printf '  %-40s %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %s\n' "$1" "${RPS[$1]}" \
		"$(awk -v v="${P50[$1]}" 'BEGIN{print v/1000}')" "$(awk -v v="${P99[$1]}" 'BEGIN{print v/1000}')" \
		"${NON2XX[$1]}"
}

sign_reads() {
	"$PYTHON" bench/make_requests.py --endpoint "$FRONT" --out "$WORK/req" \
		--ceiling-host "$STATIC_HOST" >"$WORK/sign.log" 2>&1 || { cat "$WORK/sign.log" >&2; die "signing failed"; }
}
sign_writes() { # ENDPOINT FOLDER
	"$PYTHON" bench/write_requests.py --endpoint "$1" --out "$2" >"$WORK/sign-w.log" 2>&1 ||
		{ cat "$WORK/sign-w.log" >&2; die "signing the writes against $1 failed"; }
}

sign_reads
run "nginx static answer" "$WORK/req/ceiling.lua" "http://$STATIC_HOST/"
sign_reads
run "Encrypt, nginx -> 2 nodes" "$WORK/req/Encrypt.lua" "$FRONT/"
for target in "SQLite, 1 node|$SQLITE" "PostgreSQL, 1 node|$NODE1" "PostgreSQL, nginx -> 2 nodes|$FRONT"; do
	name="${target%%|*}" url="${target#*|}"
	for op in CreateKey PutSecretValue; do
		sign_writes "$url" "$WORK/w"
		# Two nodes writing one secret at once: one of them may lose the
		# versioned write and answer 500 (InternalServiceError), which the
		# SDKs retry; counted, not fatal (docs/CLUSTER.md).
		run "$op, $name" "$WORK/w/$op.lua" "$url/" "$([ "$url" = "$FRONT" ] && echo conflicts-ok)"
	done
done

echo
ratio="$(awk -v a="${RPS[Encrypt, nginx -> 2 nodes]}" -v b="${RPS[nginx static answer]}" 'BEGIN { printf "%.1f", 100 * a / b }')"
echo "Encrypt through nginx to 2 nodes: ${ratio}% of nginx's static answer in the same run"
for op in CreateKey PutSecretValue; do
	awk -v op="$op" -v s="${RPS[$op, SQLite, 1 node]}" -v p="${RPS[$op, PostgreSQL, 1 node]}" \
		-v c="${RPS[$op, PostgreSQL, nginx -> 2 nodes]}" 'BEGIN {
		printf "%s: PostgreSQL %.0f/s (%.0f%% of SQLite %.0f/s); 2 nodes through nginx %.0f/s", op, p, 100 * p / s, s, c }'
	echo " (${NON2XX[$op, PostgreSQL, nginx -> 2 nodes]} conflicts answered 500)"
done
