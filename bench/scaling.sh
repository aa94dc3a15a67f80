#!/usr/bin/env bash
# bench/scaling.sh — kinko at 1, 2, ... request threads, and the locks.
#
# For each thread count (BENCH_THREAD_COUNTS, default "1 2") it starts
# kinko in dev mode with --threads N, creates an ECC_NIST_P256, an
# RSA_2048 and an HMAC_256 key, and drives with wrk real SigV4-signed
# GenerateRandom, GenerateMac (HMAC_SHA_256, 100 bytes), Sign
# (ECDSA_SHA_256) and Sign (RSASSA_PSS_SHA_256) requests, while
# `perf stat` counts kinko's futex system calls and context switches.
# A lock that serializes the request threads shows as futex calls per
# request (an uncontended pthread mutex or rwlock makes none) and as
# requests/s that stop growing with the threads; kinko's CPU time per
# request (user + system, /proc) is printed beside them.
#
# wrk shares the machine with kinko: on 2 cores, 2 request threads and
# wrk's own 2 threads compete, so 2 threads cannot double 1 thread's
# rate there; the futex count is the figure that does not depend on it.
#
# Settings (environment):
#   BENCH_THREAD_COUNTS  kinko --threads values     (default "1 2")
#   BENCH_DURATION       wrk -d per run             (default 5s)
#   BENCH_CONNECTIONS    wrk -c                     (default 32)
#   KINKO_BIN            the kinko binary           (default build/kinko)
#   PYTHON               interpreter with boto3     (default /usr/bin/python3)
# Needs wrk and perf (the linux-perf package).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${BENCH_DURATION:-5s}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
COUNTS="${BENCH_THREAD_COUNTS:-1 2}"
PYTHON="${PYTHON:-/usr/bin/python3}"
KINKO_BIN="${KINKO_BIN:-$ROOT/build/kinko}"
die() { echo "scaling: FAIL: $*" >&2; exit 1; }
[[ "$DURATION" =~ ^[0-9]+s$ ]] && [ "${DURATION%s}" -ge 1 ] && [ "${DURATION%s}" -le 120 ] ||
	die "BENCH_DURATION must be 1s..120s"
for tool in wrk perf; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
[ -x "$KINKO_BIN" ] || die "no kinko binary at $KINKO_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kinko-scaling.XXXXXX")"
KINKO_PID=""
stop_kinko() {
	if [ -n "$KINKO_PID" ] && kill -0 "$KINKO_PID" 2>/dev/null; then
		kill -TERM "$KINKO_PID" 2>/dev/null || true
		wait "$KINKO_PID" 2>/dev/null || true
	fi
	KINKO_PID=""
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_kinko
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_kinko() {
	local threads="$1"
	PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
	rm -rf "$WORK/data"
	"$KINKO_BIN" serve --dev --listen "127.0.0.1:$PORT" --data "$WORK/data" --threads "$threads" \
		>"$WORK/kinko.out" 2>/dev/null &
	KINKO_PID=$!
	for _ in $(seq 1 100); do
		grep -q "listening on" "$WORK/kinko.out" 2>/dev/null && return 0
		sleep 0.1
	done
	die "kinko did not start"
}

# Creates the keys and writes one signed wrk script per run.
write_requests() {
	PYTHONPATH="$ROOT/bench" "$PYTHON" - "http://127.0.0.1:$PORT" "$WORK" <<'PYEOF'
import base64, hashlib, json, sys
import boto3, botocore.config
import wrkscript

endpoint, work = sys.argv[1], sys.argv[2]
kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test",
                   config=botocore.config.Config(retries={"max_attempts": 1}))
b = lambda x: base64.b64encode(x).decode()
digest = hashlib.sha256(b"kinko scaling benchmark").digest()
ec = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
mac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
runs = {
    "GenerateRandom": ("GenerateRandom", {"NumberOfBytes": 32}),
    "GenerateMac-hmac256": ("GenerateMac", {"KeyId": mac, "Message": b(bytes(100)),
                                            "MacAlgorithm": "HMAC_SHA_256"}),
    "Sign-p256": ("Sign", {"KeyId": ec, "Message": b(digest), "MessageType": "DIGEST",
                           "SigningAlgorithm": "ECDSA_SHA_256"}),
    "Sign-rsa2048pss": ("Sign", {"KeyId": rsa, "Message": b(digest), "MessageType": "DIGEST",
                                 "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
}
for run, (op, body) in runs.items():
    wrkscript.write(work, run, endpoint + "/", json.dumps(body), wrkscript.kms_target(op))
PYEOF
}

TICK="$(getconf CLK_TCK)"
kinko_ticks() { awk '{ print $14 + $15 }' "/proc/$KINKO_PID/stat"; }
printf '%-8s %-20s %10s %10s %11s %11s\n' threads run "req/s" "CPU us/r" "futex/req" "cswitch/req"
for n in $COUNTS; do
	[[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "BENCH_THREAD_COUNTS: $n is not a thread count"
	start_kinko "$n"
	write_requests
	for run in GenerateRandom GenerateMac-hmac256 Sign-p256 Sign-rsa2048pss; do
		before="$(kinko_ticks)"
		perf stat -x, -o "$WORK/stat" -e syscalls:sys_enter_futex,context-switches \
			-p "$KINKO_PID" -- sleep "${DURATION%s}" >/dev/null 2>&1 &
		perf_pid=$!
		line="$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/$run.lua" \
			"http://127.0.0.1:$PORT/" | grep '^BENCH ' || true)"
		wait "$perf_pid" || true
		after="$(kinko_ticks)"
		[ -n "$line" ] || die "$run: no result from wrk"
		bad="$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$line")"
		[ "$bad" -eq 0 ] || die "$run: $bad non-2xx or socket errors"
		requests="$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")"
		rps="$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")"
		futex="$(awk -F, '/sys_enter_futex/ { print $1 }' "$WORK/stat")"
		cs="$(awk -F, '/context-switches/ { print $1 }' "$WORK/stat")"
		awk -v n="$n" -v run="$run" -v rps="$rps" -v t="$((after - before))" -v hz="$TICK" \
			-v req="$requests" -v f="${futex:-0}" -v c="${cs:-0}" 'BEGIN {
			printf "%-8s %-20s %10.1f %10.1f %11.3f %11.3f\n", n, run, rps,
				(req > 0 ? t * 1e6 / hz / req : 0), (req > 0 ? f / req : 0),
				(req > 0 ? c / req : 0) }'
	done
	stop_kinko
done
