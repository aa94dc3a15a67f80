#!/bin/bash
# bench/index_rebuild.sh BIN DATA — the event index's cost per record
# (docs/PERFORMANCE.md, "The event index's own cost").
#
# Empties the event index of the data folder DATA (a trail written by
# bench/history_bench.py --data DATA), starts BIN on it, which indexes the
# whole trail again before it listens, and prints the process's CPU time
# (user + system) at its "listening on" line with the indexer's own log
# line (records read, wall time). Stops BIN after. Run binaries
# interleaved and repeat: the machine's noise is larger than small gains.
set -euo pipefail
BIN=$1
D=$2
rm -f "$D/audit/kinko-index.db" "$D/audit/kinko-index.db-wal" "$D/audit/kinko-index.db-shm"
LOG=$(mktemp)
"$BIN" serve --dev --listen 127.0.0.1:0 --data "$D" --log-level info >"$LOG" 2>&1 &
P=$!
for _ in $(seq 1 3000); do
	grep -q "listening on" "$LOG" && break
	kill -0 "$P" 2>/dev/null || { cat "$LOG" >&2; rm -f "$LOG"; exit 1; }
	sleep 0.2
done
read -r -a F <"/proc/$P/stat"
TICKS=$(getconf CLK_TCK)
CS=$(((F[13] + F[14]) * 100 / TICKS)) # hundredths of a second
printf '%s cpu_s=%d.%02d %s\n' "$(basename "$BIN")" $((CS / 100)) $((CS % 100)) "$(grep -o 'index at record.*' "$LOG")"
kill -TERM "$P"
wait "$P" || true
rm -f "$LOG"
