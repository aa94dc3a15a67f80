#!/bin/bash
# bench/index_rebuild.sh BIN DATA — the event index's cost per record, and
# the time to listen with the whole trail as the index's backlog
# (docs/PERFORMANCE.md, "The event index's own cost" and "Start-up with a
# backlog").
#
# Empties the event index of the data folder DATA (a trail written by
# bench/history_bench.py --data DATA, or any audit folder moved to
# DATA/audit), starts BIN on it, which indexes the whole trail again, and
# prints the seconds to its "listening on" line, the seconds to the
# indexer's own log line (records read: the backlog is indexed), and the
# process's CPU time (user + system) at that line. Stops BIN after. Run
# binaries interleaved and repeat: the machine's noise is larger than
# small gains.
set -euo pipefail
BIN=$1
D=$2
rm -f "$D/audit/kinko-index.db" "$D/audit/kinko-index.db-wal" "$D/audit/kinko-index.db-shm"
LOG=$(mktemp)
T0=$(date +%s.%N)
"$BIN" serve --dev --listen 127.0.0.1:0 --data "$D" --log-level info >"$LOG" 2>&1 &
P=$!
LISTEN=""
DONE=""
for _ in $(seq 1 30000); do
	if [ -z "$LISTEN" ] && grep -q "listening on" "$LOG"; then
		LISTEN=$(echo "$(date +%s.%N) - $T0" | bc)
	fi
	if [ -z "$DONE" ] && grep -q "records after record" "$LOG"; then
		DONE=$(echo "$(date +%s.%N) - $T0" | bc)
		read -r -a F <"/proc/$P/stat"
	fi
	[ -n "$LISTEN" ] && [ -n "$DONE" ] && break
	kill -0 "$P" 2>/dev/null || { cat "$LOG" >&2; rm -f "$LOG"; exit 1; }
	sleep 0.02
done
TICKS=$(getconf CLK_TCK)
CS=$(((F[13] + F[14]) * 100 / TICKS)) # hundredths of a second
printf '%s listen_s=%.2f indexed_s=%.2f cpu_s=%d.%02d %s\n' "$(basename "$BIN")" "$LISTEN" \
	"$DONE" $((CS / 100)) $((CS % 100)) "$(grep -o 'index at record.*read, in [0-9]* ms' "$LOG")"
kill -TERM "$P"
wait "$P" || true
rm -f "$LOG"
