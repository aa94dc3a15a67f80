#!/usr/bin/env bash
# Runs every kinko test: the layer check of the includes, the format check
# (scripts/check-format.sh), a check that no
# function in src/ is over 80 lines (scripts/long_functions.py), builds with
# gcc and clang, the C unit tests (also under valgrind), the integration
# suite through real clients (with the wire tests of tests/wire/), once more
# with every server on the PostgreSQL store (gcc build), optionally once more
# through a three-node cluster behind nginx, both again against
# the ASan+UBSan build, and the concurrency tests against a ThreadSanitizer
# build. Ends with
# "N passed, N failed".
#
# Environment:
#   KINKO_QUICK=1     only the gcc build (no clang, sanitizers, valgrind, fuzzing)
#   KINKO_PG=0        skip the integration suite on PostgreSQL through a
#                     three-node cluster behind nginx
#   KINKO_FUZZ_SECONDS=N  seconds each fuzz harness runs (default 20; 0 skips)
#   PYTEST_ARGS=...   extra arguments for pytest (e.g. "-k encrypt")
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc 2>/dev/null || echo 2)
PY=/usr/bin/python3
RESULTS=$(mktemp -d)
trap 'rm -rf "$RESULTS"' EXIT
total_pass=0
total_fail=0

note() { printf '\n== %s\n' "$*"; }

# Adds a suite's counts to the totals.
tally() { # name passed failed
	printf '%-40s %5d passed, %d failed\n' "$1" "$2" "$3" >>"$RESULTS/summary"
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
}

build() { # label, make args...
	local label=$1
	shift
	note "build ($label)"
	if ! make -j"$JOBS" "$@" all >"$RESULTS/build-$label.log" 2>&1; then
		cat "$RESULTS/build-$label.log"
		tally "build $label" 0 1
		return 1
	fi
	tally "build $label" 1 0
}

unit_tests() { # label, build dir, [runner...]; UNIT_ONLY: a regex of the tests to run
	local label=$1 dir=$2
	shift 2
	note "unit tests ($label)"
	local p=0 f=0
	while IFS= read -r t; do
		local out
		out=$("$@" "$t" 2>&1)
		local rc=$?
		local line
		line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
		if [ -z "$line" ] || [ $rc -ne 0 ]; then
			printf '%s\n' "$out" | tail -n 30
			echo "FAILED: $t (exit $rc)"
		fi
		if [ -n "$line" ]; then
			local tp tf
			tp=$(echo "$line" | awk '{print $1}')
			tf=$(echo "$line" | awk '{print $3}')
			p=$((p + tp))
			f=$((f + tf))
			[ $rc -ne 0 ] && [ "$tf" -eq 0 ] && f=$((f + 1))
		else
			f=$((f + 1))
		fi
		printf '  %-50s %s\n' "${t#$dir/tests/}" "${line:-no result (exit $rc)}"
	done < <(find "$dir/tests" -type f -name '*_test' | sort | grep -E "${UNIT_ONLY:-.}")
	tally "unit $label" "$p" "$f"
}

integration() { # label, kinko binary, [test files or ids; default: all]
	local label=$1 bin=$2
	shift 2
	[ $# -eq 0 ] && set -- tests/integration
	note "integration ($label)"
	local xml="$RESULTS/junit-$label.xml"
	KINKO_BIN="$bin" $PY -m pytest -q -p no:cacheprovider --junitxml="$xml" ${PYTEST_ARGS:-} "$@"
	local counts
	counts=$($PY - "$xml" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 1"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f if t else 1)
PYEOF
)
	tally "integration $label" ${counts}
}

# The layers (docs/ARCHITECTURE.md): no include cycle between folders of
# src/, and no include that goes up the layer table.
note "layers"
if $PY scripts/include_graph.py --quiet; then
	tally "layers" 1 0
else
	tally "layers" 0 1
fi

# Every C file as .clang-format lays it out (clang-format 14, Debian 12's).
note "format"
if sh scripts/check-format.sh; then
	tally "format" 1 0
else
	tally "format" 0 1
fi

# No function in src/ over 80 lines, but those scripts/long_functions.py allows (and says why).
note "function length"
if $PY scripts/long_functions.py; then
	tally "function length" 1 0
else
	tally "function length" 0 1
fi

build gcc CC=gcc BUILD=build && {
	unit_tests gcc build
	integration gcc "$ROOT/build/kinko"
	# The whole suite again on PostgreSQL, through a cluster: the session
	# server is three nodes on one PostgreSQL behind nginx (docs/CLUSTER.md,
	# "The suite through the cluster"), and every server a test starts for
	# itself is a single node on the PostgreSQL store (a fresh database per
	# data folder, conftest.py). Left out, to keep the phase short:
	# test_pg_store and test_cluster_nginx (they use PostgreSQL and the
	# cluster in the phase above already), the four RSA import variants,
	# whose minute goes to RSA key generation, not to the store, and the
	# 50,000 grants (minutes of durable writes; the grant records are
	# tested on PostgreSQL by the other grant tests). KINKO_PG=0 skips the
	# phase.
	if [ "${KINKO_PG:-1}" != 0 ]; then
		pg_start=$(date +%s)
		KINKO_TEST_STORE=postgresql KINKO_TEST_CLUSTER=nginx \
			integration postgresql-cluster "$ROOT/build/kinko" \
			--ignore=tests/integration/test_pg_store.py --ignore=tests/integration/test_cluster_nginx.py \
			--deselect tests/integration/test_asymmetric.py::test_import_with_openssl_commands \
			--deselect tests/integration/test_grants_scale.py::test_50000_grants_on_one_key \
			tests/integration
		echo "PostgreSQL and cluster phase: $(($(date +%s) - pg_start)) s"
	fi
}

if [ "${KINKO_QUICK:-0}" != 1 ]; then
	build clang CC=clang BUILD=build-clang && unit_tests clang build-clang
	if command -v valgrind >/dev/null; then
		unit_tests valgrind build valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --error-exitcode=99
	fi
	# ASan+UBSan: the unit tests and the whole integration suite again (but
	# the 50,000 grants, minutes of writes under the sanitizers).
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	build sanitizers CC=clang SAN=1 BUILD=build-san && {
		unit_tests sanitizers build-san
		integration sanitizers "$ROOT/build-san/kinko" \
			--deselect tests/integration/test_grants_scale.py::test_50000_grants_on_one_key \
			tests/integration
	}
	# ThreadSanitizer: the unit tests that start threads, and the
	# integration tests that put concurrent load on one server (requests,
	# the scheduler, rotation jobs, shutdown under load; the peer deployments'
	# outbox workers, the event index thread). A report stops the
	# process (halt_on_error) with exit status 66 and is found in the server
	# log (conftest.py); tests/tsan.supp lists what is suppressed, and why.
	tsan_start=$(date +%s)
	export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp"
	build tsan CC=clang TSAN=1 BUILD=build-tsan && {
		UNIT_ONLY="/($(grep -rl pthread_create tests/unit --include='*_test.c' |
			sed 's|^tests/unit/||; s|\.c$||' | paste -sd'|'))$" unit_tests tsan build-tsan
		integration tsan "$ROOT/build-tsan/kinko" \
			tests/integration/test_concurrency.py \
			tests/integration/test_wire.py \
			tests/integration/test_hardening.py::test_crash_consistency_sigkill_under_load \
			tests/integration/test_hardening.py::test_slowloris_does_not_stop_service \
			tests/integration/test_hardening.py::test_per_address_connection_cap \
			tests/integration/test_aliases_quota.py::test_concurrent_creates_never_exceed_the_quota \
			tests/integration/test_audit.py::test_throttling_under_a_burst_and_boto3_retries \
			tests/integration/test_audit.py::test_every_answered_call_is_in_the_log_after_kill9 \
			tests/integration/test_lifecycle.py::test_background_scheduler_runs_by_itself \
			tests/integration/test_lifecycle.py::test_automatic_and_on_demand_rotation \
			tests/integration/test_secrets.py::test_rotate_secret_runs_four_steps \
			tests/integration/test_secrets.py::test_scheduled_rotation_with_test_clock \
			tests/integration/test_secrets_http_rotation.py \
			tests/integration/test_keygen_offload.py \
			tests/integration/test_xks_proxy.py \
			tests/integration/test_custom_keystores.py \
			tests/integration/test_external_keystores.py \
			tests/integration/test_multiregion_peers.py \
			tests/integration/test_multiregion_peers_back.py \
			tests/integration/test_multiregion_peers_primary.py \
			tests/integration/test_audit_index.py \
			tests/integration/test_sts_jwks_url.py
	}
	unset TSAN_OPTIONS
	echo "ThreadSanitizer phase: $(($(date +%s) - tsan_start)) s"
	# Fuzzing: every libFuzzer harness (fuzz/) for a bounded time under
	# ASan+UBSan, over its committed seed corpus (docs/SECURITY.md).
	if [ "${KINKO_FUZZ_SECONDS:-20}" != 0 ]; then
		note "fuzzing (${KINKO_FUZZ_SECONDS:-20}s per harness)"
		if make -j"$JOBS" fuzz >"$RESULTS/build-fuzz.log" 2>&1; then
			fuzz_out=$(./fuzz/run.sh "${KINKO_FUZZ_SECONDS:-20}")
			printf '%s\n' "$fuzz_out"
			tally "fuzz" "$(printf '%s\n' "$fuzz_out" | grep -c '^PASS')" \
				"$(printf '%s\n' "$fuzz_out" | grep -c '^FAIL')"
		else
			cat "$RESULTS/build-fuzz.log"
			tally "build fuzz" 0 1
		fi
	fi
fi

note "summary"
cat "$RESULTS/summary"
echo "${total_pass} passed, ${total_fail} failed"
[ "$total_fail" -eq 0 ]
