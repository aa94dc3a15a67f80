#!/usr/bin/env bash
# bench/thread_cpu.sh — kinko's CPU per request, split by thread kind, for
# two (or more) binaries run in turn: the request threads (libmicrohttpd's
# workers, where the request path runs) and the rest (the audit log's
# flusher and indexer, housekeeping). On a machine other jobs share, the
# request threads' CPU per request is the figure that moves least with the
# load, and the one a change to the request path moves.
#
#   OP=Encrypt ROUNDS=3 DURATION=8 bench/thread_cpu.sh BIN_A BIN_B ...
#
# Each round starts each binary in turn (dev mode, a fresh data folder),
# signs the requests (bench/make_requests.py), runs wrk -t2 -c64 for a 2 s
# warm-up and DURATION s measured, and prints: requests/s, the request
# threads' CPU µs per request, the other threads', and the whole process's.
set -euo pipefail
cd "$(dirname "$0")/.."
OP="${OP:-Encrypt}"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-8}"
[ $# -ge 1 ] || { echo "usage: bench/thread_cpu.sh BIN..." >&2; exit 2; }
WORK="$(mktemp -d /tmp/kinko-thread-cpu.XXXXXX)"
KPID=""
cleanup() {
	[ -n "$KPID" ] && { kill "$KPID" 2>/dev/null || true; wait "$KPID" 2>/dev/null || true; }
	rm -rf "$WORK"
}
trap cleanup EXIT

# Ticks (user + system) of the process's threads: "workers others".
ticks() {
	local w=0 o=0 t f comm
	for t in /proc/"$1"/task/*; do
		f="$(cat "$t/stat" 2>/dev/null || true)"
		[ -n "$f" ] || continue
		comm="${f#*(}"; comm="${comm%%)*}"
		f="${f##*) }"; set -- $f
		if [ "$comm" = MHD-worker ]; then w=$((w + ${12} + ${13})); else o=$((o + ${12} + ${13})); fi
	done
	echo "$w $o"
}
TCK="$(getconf CLK_TCK)"
echo "thread_cpu: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $OP"
printf '%-5s %-40s %10s %14s %14s %14s\n' round binary 'req/s' 'request thr' 'other thr' 'process'
for r in $(seq 1 "$ROUNDS"); do
	for bin in "$@"; do
		rm -rf "$WORK/data" "$WORK/req"; mkdir -m 700 "$WORK/data"
		"$bin" serve --dev --listen 127.0.0.1:0 --data "$WORK/data" >"$WORK/out" 2>"$WORK/err" &
		KPID=$!
		ep=""
		for _ in $(seq 1 150); do
			ep="$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$WORK/out" | head -n1)"
			[ -n "$ep" ] && break
			sleep 0.1
		done
		[ -n "$ep" ] || { echo "$bin did not start" >&2; exit 1; }
		/usr/bin/python3 bench/make_requests.py --endpoint "$ep" --out "$WORK/req" >/dev/null
		wrk -t2 -c64 -d2s -s "$WORK/req/$OP.lua" "$ep/" >/dev/null 2>&1
		read -r w0 o0 < <(ticks "$KPID")
		out="$(wrk -t2 -c64 -d"${DURATION}s" -s "$WORK/req/$OP.lua" "$ep/" 2>&1)"
		read -r w1 o1 < <(ticks "$KPID")
		n="$(sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p' <<<"$out")"
		rps="$(sed -n 's/^BENCH .* rps=\([0-9.]*\).*/\1/p' <<<"$out")"
		non2xx="$(sed -n 's/^BENCH .* non2xx=\([0-9]*\).*/\1/p' <<<"$out")"
		[ "${non2xx:-1}" = 0 ] || { echo "$bin: non-2xx answers" >&2; exit 1; }
		awk -v r="$r" -v b="$bin" -v rps="$rps" -v n="$n" -v w=$((w1 - w0)) -v o=$((o1 - o0)) -v t="$TCK" \
			'BEGIN { printf "%-5s %-40s %10.0f %11.1f us %11.1f us %11.1f us\n", r, b, rps,
				w * 1e6 / t / n, o * 1e6 / t / n, (w + o) * 1e6 / t / n }'
		kill "$KPID"; wait "$KPID" 2>/dev/null || true; KPID=""
	done
done
