#!/bin/bash
# bench/index_load.sh BIN [SECONDS] — the event index's CPU per record on
# a loaded server (docs/PERFORMANCE.md, "The event index's own cost").
#
# Starts BIN in dev mode on a fresh data folder, replays one signed Encrypt
# request with wrk (-t2 -c64) for SECONDS (default 10), waits until the
# index has caught up with the trail, and prints: the calls per second,
# the records indexed (the index's checkpoint), the CPU time of the
# indexer thread (the thread named "kinko-index": user + system) and that
# time per record, and the whole process's CPU time per record (the
# calls and their indexing, once it has caught up). Unlike bench/index_rebuild.sh (a start that indexes a
# whole trail, parsing every line), this measures the path a running
# server takes. Run binaries interleaved and repeat on a shared machine.
set -euo pipefail
BIN=$1
SECS=${2:-10}
HERE=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d)
trap 'kill -TERM $P 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
"$BIN" serve --dev --listen 127.0.0.1:0 --data "$W/data" --log-level warn >"$W/out" 2>&1 &
P=$!
for _ in $(seq 1 300); do
	grep -q "listening on" "$W/out" && break
	kill -0 "$P" 2>/dev/null || { cat "$W/out" >&2; exit 1; }
	sleep 0.1
done
EP=$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$W/out")
/usr/bin/python3 "$HERE/make_requests.py" --endpoint "$EP" --out "$W/req" >/dev/null 2>&1
RPS=$(wrk -t2 -c64 -d"${SECS}s" -s "$W/req/Encrypt.lua" "$EP/" 2>/dev/null |
	sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
TID=""
for t in /proc/$P/task/*; do
	[ "$(cat "$t/comm")" = kinko-index ] && TID=${t##*/}
done
[ -n "$TID" ] || { echo "no thread named kinko-index in $BIN" >&2; exit 1; }
seq_of() {
	/usr/bin/python3 -c 'import sqlite3,sys
db = sqlite3.connect(sys.argv[1]); r = db.execute("SELECT seq FROM pos WHERE id = 1").fetchone()
print(r[0] if r else 0)' "$W/data/audit/kinko-index.db"
}
# Caught up: the checkpoint stops moving (the thread runs at least once a second).
last=-1
for _ in $(seq 1 120); do
	sleep 2
	now=$(seq_of)
	[ "$now" = "$last" ] && break
	last=$now
done
read -r -a F <"/proc/$P/task/$TID/stat"
read -r -a G <"/proc/$P/stat"
TICKS=$(getconf CLK_TCK)
CPU_US=$(((F[13] + F[14]) * 1000000 / TICKS))
ALL_US=$(((G[13] + G[14]) * 1000000 / TICKS))
REC=$(seq_of)
per() { awk -v c="$1" -v r="$REC" 'BEGIN { printf "%.2f", (r > 0 ? c / r : 0) }'; }
printf '%s: %s calls/s, %s records indexed, indexer thread %d.%02d s CPU (%s us per record), whole process %s us per record\n' \
	"$(basename "$BIN")" "$RPS" "$REC" $((CPU_US / 1000000)) $((CPU_US % 1000000 / 10000)) \
	"$(per "$CPU_US")" "$(per "$ALL_US")"
