#!/usr/bin/env bash
# bench/audit_bench.sh — Encrypt throughput with the audit log off and on
# (docs/PERFORMANCE.md, "Audit log"). Runs bench/run.sh once per setting
# against the same release binary, each time with kinko started with
# different audit flags:
#
#   off     --no-audit
#   fsync   the default: each call waits for its batch's fdatasync
#   write   --audit-sync write: each call waits for its batch's write(2)
#
# Settings: those of bench/run.sh (BENCH_DURATION, BENCH_CONNECTIONS, ...),
# plus AUDIT_BENCH_MODES (default "off fsync write"),
# AUDIT_BENCH_THREADS: kinko --threads for every run (default: kinko's own),
# and AUDIT_BENCH_ROUNDS (default 1): the modes are run in turn this many
# times (off, write, off, write, ...), so that a slow spell of the machine
# falls on both, and each mode's median is compared.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${BUILD:-build-bench}"
MODES="${AUDIT_BENCH_MODES:-off fsync write}"

if [ -z "${KINKO_BIN:-}" ]; then
	echo "audit-bench: building kinko (release) in $BUILD/"
	make -s BUILD="$BUILD" "$BUILD/kinko" >/dev/null
	KINKO_BIN="$ROOT/$BUILD/kinko"
fi
REAL="$(cd "$(dirname "$KINKO_BIN")" && pwd)/$(basename "$KINKO_BIN")"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kinko-audit-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

ROUNDS="${AUDIT_BENCH_ROUNDS:-1}"
declare -A RESULT
for mode in $MODES; do
	case "$mode" in
	off) extra="--no-audit" ;;
	fsync) extra="--audit-sync fsync" ;;
	write) extra="--audit-sync write" ;;
	*) echo "audit-bench: unknown mode $mode" >&2; exit 2 ;;
	esac
	[ -n "${AUDIT_BENCH_THREADS:-}" ] && extra="$extra --threads $AUDIT_BENCH_THREADS"
	# bench/run.sh starts "$KINKO_BIN serve --dev ..."; this wrapper adds the flags.
	cat >"$WORK/kinko-$mode" <<WRAP
#!/bin/sh
exec "$REAL" "\$@" $extra
WRAP
	chmod +x "$WORK/kinko-$mode"
	RESULT[$mode]=""
done
for round in $(seq "$ROUNDS"); do
	for mode in $MODES; do
		echo "== audit $mode, round $round ($(tail -n1 "$WORK/kinko-$mode" | sed 's/.*"\$@" //'))"
		KINKO_BIN="$WORK/kinko-$mode" ./bench/run.sh | tee "$WORK/out-$mode"
		RESULT[$mode]="${RESULT[$mode]} $(awk '$1 == "Encrypt" { print $2 }' "$WORK/out-$mode" | head -n1)"
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo
echo "audit benchmark: Encrypt requests/s (median of $ROUNDS round(s))"
declare -A MED
for mode in $MODES; do
	MED[$mode]="$(echo "${RESULT[$mode]}" | median)"
	printf '  %-6s %10s   runs:%s\n' "$mode" "${MED[$mode]}" "${RESULT[$mode]}"
done
if [ -n "${MED[off]:-}" ]; then
	for mode in $MODES; do
		[ "$mode" = off ] && continue
		awk -v m="$mode" -v on="${MED[$mode]}" -v off="${MED[off]}" 'BEGIN {
			printf "  %s vs off: %.1f%%%s\n", m, 100 * on / off, (on >= 0.9 * off) ? " (within 10%)" : " (NOT within 10%)" }'
	done
fi
