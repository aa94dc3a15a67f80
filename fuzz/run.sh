#!/usr/bin/env bash
# Runs every fuzz harness for SECONDS each (default 25) over its seed
# corpus, with its dictionary, under ASan+UBSan (build them first with
# `make fuzz`). New corpus entries go to fuzz/out/<harness>/ (ignored by
# git), so the seeds in fuzz/corpus/ stay as committed; crash reproducers
# are written to fuzz/out/crash-*. Prints one "PASS name" / "FAIL name"
# line per harness and exits non-zero if any failed.
#
#   fuzz/run.sh 600            the maintainers' 10-minute run of each
#   fuzz/run.sh 30 api sigv4   only some harnesses
#   FUZZ_BUILD=dir             where the harnesses are (default build-fuzz)
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-25}
shift || true
BIN=${FUZZ_BUILD:-build-fuzz}/fuzz
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in fuzz/*_fuzz.c; do
		n=$(basename "$f" _fuzz.c)
		names+=("$n")
	done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fail=0
for n in "${names[@]}"; do
	bin="$BIN/${n}_fuzz"
	if [ ! -x "$bin" ]; then
		echo "FAIL $n (no harness at $bin; run make fuzz)"
		fail=1
		continue
	fi
	out="fuzz/out/$n"
	mkdir -p "$out" fuzz/corpus/"$n"
	dict=()
	[ -f "fuzz/dict/$n.dict" ] && dict=(-dict="fuzz/dict/$n.dict")
	log="fuzz/out/$n.log"
	# The committed corpus (seeds and regress-* inputs) is run in full first.
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=60 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="fuzz/out/crash-$n-" "${dict[@]}" \
		"$out" "fuzz/corpus/$n" >"$log" 2>&1
	rc=$?
	runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
	if [ $rc -eq 0 ]; then
		echo "PASS $n (${runs:-?} runs in ${SECONDS_EACH}s)"
	else
		echo "FAIL $n (exit $rc; log $log)"
		grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -n 20
		fail=1
	fi
done
exit $fail
