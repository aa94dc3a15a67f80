#!/usr/bin/env bash
# bench/sign_bench.sh — Sign, Verify and GenerateMac against their ceiling.
#
# Starts kinko in dev mode, creates an ECC_NIST_P256, an RSA_2048, an
# ECC_NIST_EDWARDS25519 and an HMAC_256 key, and drives with wrk, over
# keep-alive connections, real SigV4-signed requests:
#
#   Sign        ECC_NIST_P256          ECDSA_SHA_256              32-byte DIGEST
#   Verify      ECC_NIST_P256          ECDSA_SHA_256              32-byte DIGEST
#   Sign        RSA_2048               RSASSA_PKCS1_V1_5_SHA_256  32-byte DIGEST
#   Sign        RSA_2048               RSASSA_PSS_SHA_256         32-byte DIGEST
#   Verify      RSA_2048               RSASSA_PKCS1_V1_5_SHA_256  32-byte DIGEST
#   Sign        ECC_NIST_EDWARDS25519  ED25519_SHA_512            32-byte RAW
#   Verify      ECC_NIST_EDWARDS25519  ED25519_SHA_512            32-byte RAW
#   GenerateMac HMAC_256               HMAC_SHA_256               100-byte message
#
# The ceiling of each is `openssl speed` for the same primitive (ecdsap256,
# rsa2048, ed25519, -hmac sha256 over 100 bytes) on all cores (-multi =
# number of CPUs), measured in the same run, right after the wrk runs.
# A second `openssl speed` of the same primitives in one process gives
# OpenSSL's CPU time per operation (speed times itself by its user CPU
# time). Three ratios are printed:
#   - req/s: kinko req/s / openssl op/s (-multi), how much of the
#     machine's raw speed survives HTTP, SigV4, JSON and the key cache.
#     wrk shares the machine with kinko, so it is a lower bound; on a
#     machine that other jobs share both sides move with their load.
#   - CPU: OpenSSL's CPU time per operation / kinko's CPU time (user +
#     system, from /proc) per request: the share of kinko's work per
#     request that is the primitive itself. Both are CPU times, so the
#     machine's other load moves it little.
#   - path: (GenerateRandom's CPU time per request + OpenSSL's per
#     operation) / kinko's per request: 1.00 when the operation costs
#     kinko nothing beyond the request path every call has and the
#     primitive; where the primitive is cheap next to the path (ECDSA
#     sign, RSA verify, HMAC), HTTP is the bound and this is the ratio
#     that says whether anything else is in the way.
#
# A GenerateRandom run (32 bytes, no key cryptography) is printed beside
# them: kinko's per-request cost without the signature, so a low ratio can
# be told apart from a slow request path.
#
# Every signed request is checked once (200) before its run; any non-2xx
# answer during a run fails the benchmark. A SigV4 signature is valid for
# 5 minutes and each run is far shorter.
#
# Settings (environment):
#   BENCH_DURATION     wrk -d per run     (default 10s, at most 120s)
#   BENCH_CONNECTIONS  wrk -c             (default 32)
#   BENCH_THREADS      wrk -t             (default 2)
#   KINKO_BIN          the kinko binary   (default: build it in build-bench-sign)
#   BENCH_SERVER_THREADS  kinko --threads  (default: one per core)
#   BENCH_RUNS         the runs, by name  (default: all of the table above)
#   BENCH_PERF         a folder: `perf record -g` of kinko during each run,
#                      into FOLDER/RUN.data (perf: the linux-perf package)
#   PYTHON             interpreter with boto3 (default /usr/bin/python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
THREADS="${BENCH_THREADS:-2}"
PYTHON="${PYTHON:-/usr/bin/python3}"
[ -x "$PYTHON" ] || PYTHON=python3
CPUS="$(nproc 2>/dev/null || echo 1)"

die() { echo "sign_bench: FAIL: $*" >&2; exit 1; }
[[ "$DURATION" =~ ^[0-9]+s$ ]] && [ "${DURATION%s}" -ge 1 ] && [ "${DURATION%s}" -le 120 ] ||
	die "BENCH_DURATION must be 1s..120s"
[[ "$CONNECTIONS" =~ ^[0-9]+$ ]] && [ "$CONNECTIONS" -ge 1 ] || die "BENCH_CONNECTIONS"
[[ "$THREADS" =~ ^[0-9]+$ ]] && [ "$THREADS" -ge 1 ] && [ "$THREADS" -le "$CONNECTIONS" ] ||
	die "BENCH_THREADS must be 1..BENCH_CONNECTIONS"
[ -z "${BENCH_PERF:-}" ] || [ -d "$BENCH_PERF" ] || die "BENCH_PERF must be a folder"
[ -z "${BENCH_PERF:-}" ] || command -v perf >/dev/null || die "perf is not installed (apt-get install linux-perf)"
for tool in wrk openssl; do
	command -v "$tool" >/dev/null || die "$tool is not installed (scripts/setup.sh installs it)"
done

if [ -z "${KINKO_BIN:-}" ]; then
	make -j"$CPUS" BUILD=build-bench-sign >/dev/null || die "build failed"
	KINKO_BIN="$ROOT/build-bench-sign/kinko"
fi
[ -x "$KINKO_BIN" ] || die "no kinko binary at $KINKO_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kinko-sign-bench.XXXXXX")"
KINKO_PID=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$KINKO_PID" ] && kill -0 "$KINKO_PID" 2>/dev/null; then
		kill -TERM "$KINKO_PID" 2>/dev/null || true
		wait "$KINKO_PID" 2>/dev/null || true
	fi
	[ "$rc" -ne 0 ] && [ -s "$WORK/kinko.err" ] && tail -n 20 "$WORK/kinko.err" >&2
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
SERVER_THREADS=()
if [ -n "${BENCH_SERVER_THREADS:-}" ]; then
	[[ "$BENCH_SERVER_THREADS" =~ ^[0-9]+$ ]] && [ "$BENCH_SERVER_THREADS" -ge 1 ] ||
		die "BENCH_SERVER_THREADS must be a number of threads"
	SERVER_THREADS=(--threads "$BENCH_SERVER_THREADS")
fi
"$KINKO_BIN" serve --dev --listen "127.0.0.1:$PORT" --data "$WORK/data" "${SERVER_THREADS[@]}" \
	>"$WORK/kinko.out" 2>"$WORK/kinko.err" &
KINKO_PID=$!
for _ in $(seq 1 100); do
	grep -q "listening on" "$WORK/kinko.out" 2>/dev/null && break
	sleep 0.1
done
grep -q "listening on" "$WORK/kinko.out" || die "kinko did not start"
ENDPOINT="http://127.0.0.1:$PORT"

# Creates the keys and writes one signed wrk script per run.
PYTHONPATH="$ROOT/bench" "$PYTHON" - "$ENDPOINT" "$WORK" <<'PYEOF'
import hashlib, json, sys
import boto3, botocore.config
import wrkscript

endpoint, work = sys.argv[1], sys.argv[2]
kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test",
                   config=botocore.config.Config(retries={"max_attempts": 1}))
digest = hashlib.sha256(b"kinko sign benchmark").digest()
runs = {}
import base64
b = lambda x: base64.b64encode(x).decode()
for name, spec, alg, mtype in (("p256", "ECC_NIST_P256", "ECDSA_SHA_256", "DIGEST"),
                               ("rsa2048", "RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", "DIGEST"),
                               ("ed25519", "ECC_NIST_EDWARDS25519", "ED25519_SHA_512", "RAW")):
    kid = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    sig = kms.sign(KeyId=kid, Message=digest, MessageType=mtype, SigningAlgorithm=alg)["Signature"]
    runs["Sign-" + name] = ("Sign", {"KeyId": kid, "Message": b(digest), "MessageType": mtype,
                                     "SigningAlgorithm": alg})
    runs["Verify-" + name] = ("Verify", {"KeyId": kid, "Message": b(digest), "MessageType": mtype,
                                         "SigningAlgorithm": alg, "Signature": b(sig)})
    if name == "rsa2048":
        runs["Sign-rsa2048pss"] = ("Sign", {"KeyId": kid, "Message": b(digest),
                                            "MessageType": "DIGEST",
                                            "SigningAlgorithm": "RSASSA_PSS_SHA_256"})
mac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
runs["GenerateMac-hmac256"] = ("GenerateMac", {"KeyId": mac, "Message": b(bytes(100)),
                                               "MacAlgorithm": "HMAC_SHA_256"})
# kinko's own per-request ceiling: a request with no key cryptography.
runs["GenerateRandom"] = ("GenerateRandom", {"NumberOfBytes": 32})
for run, (op, body) in runs.items():
    wrkscript.write(work, run, endpoint + "/", json.dumps(body), wrkscript.kms_target(op))
PYEOF

RUNS="${BENCH_RUNS:-Sign-p256 Verify-p256 Sign-rsa2048 Sign-rsa2048pss Verify-rsa2048 Sign-ed25519 Verify-ed25519 GenerateMac-hmac256}"
TICK="$(getconf CLK_TCK)"
# kinko's CPU time so far (user + system), in clock ticks.
kinko_ticks() { awk '{ print $14 + $15 }' "/proc/$KINKO_PID/stat"; }
declare -A RPS P50 P99 CPU
for run in GenerateRandom $RUNS; do
	before="$(kinko_ticks)"
	PERF_PID=""
	if [ -n "${BENCH_PERF:-}" ]; then # a profile of kinko during the run, for `perf report`
		perf record -q -g -o "$BENCH_PERF/$run.data" -p "$KINKO_PID" -- \
			sleep "$((${DURATION%s} > 1 ? ${DURATION%s} - 1 : 1))" >/dev/null 2>&1 &
		PERF_PID=$!
	fi
	out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/$run.lua" "$ENDPOINT/")"
	after="$(kinko_ticks)"
	[ -z "$PERF_PID" ] || wait "$PERF_PID" || true
	line="$(printf '%s\n' "$out" | grep '^BENCH ' || true)"
	[ -n "$line" ] || die "$run: no result from wrk"
	bad="$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$line")"
	[ "$bad" -eq 0 ] || die "$run: $bad non-2xx or socket errors"
	RPS[$run]="$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")"
	P50[$run]="$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$line")"
	P99[$run]="$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")"
	requests="$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")"
	CPU[$run]="$(awk -v t="$((after - before))" -v hz="$TICK" -v n="$requests" \
		'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')"
done

# The ceiling: OpenSSL's own sign/verify rate on all cores, same machine, now.
speed="$(openssl speed -seconds "${DURATION%s}" -mr -multi "$CPUS" rsa2048 ecdsap256 ed25519 2>/dev/null)"
hmac="$(openssl speed -seconds "${DURATION%s}" -mr -multi "$CPUS" -hmac sha256 -bytes 100 2>/dev/null |
	grep -E '^\+F:' | tail -n 1)"
rsa="$(grep -E '^\+F2:[0-9]+:2048:' <<<"$speed" | tail -n 1)"
ecd="$(grep -E '^\+F4:[0-9]+:256:' <<<"$speed" | tail -n 1)"
edd="$(grep -E '^\+F6:[0-9]+:253:' <<<"$speed" | tail -n 1)"
[ -n "$rsa" ] && [ -n "$ecd" ] && [ -n "$edd" ] && [ -n "$hmac" ] ||
	die "cannot read openssl speed output"
# One process: its rates are per second of its own CPU time.
one="$(openssl speed -seconds "${DURATION%s}" -mr rsa2048 ecdsap256 ed25519 2>/dev/null)"
one_hmac="$(openssl speed -seconds "${DURATION%s}" -mr -hmac sha256 -bytes 100 2>/dev/null |
	grep -E '^\+F:' | tail -n 1)"
rsa1="$(grep -E '^\+F2:[0-9]+:2048:' <<<"$one" | tail -n 1)"
ecd1="$(grep -E '^\+F4:[0-9]+:256:' <<<"$one" | tail -n 1)"
edd1="$(grep -E '^\+F6:[0-9]+:253:' <<<"$one" | tail -n 1)"
[ -n "$rsa1" ] && [ -n "$ecd1" ] && [ -n "$edd1" ] && [ -n "$one_hmac" ] ||
	die "cannot read openssl speed output"
us() { awk -v r="$1" 'BEGIN { printf "%.1f", (r > 0 ? 1e6 / r : 0) }'; }
declare -A OPUS
OPUS[Sign-rsa2048]="$(us "$(cut -d: -f4 <<<"$rsa1")")"
OPUS[Sign-rsa2048pss]="${OPUS[Sign-rsa2048]}"
OPUS[Verify-rsa2048]="$(us "$(cut -d: -f5 <<<"$rsa1")")"
OPUS[Sign-p256]="$(us "$(cut -d: -f4 <<<"$ecd1")")"
OPUS[Verify-p256]="$(us "$(cut -d: -f5 <<<"$ecd1")")"
OPUS[Sign-ed25519]="$(us "$(cut -d: -f5 <<<"$edd1")")"
OPUS[Verify-ed25519]="$(us "$(cut -d: -f6 <<<"$edd1")")"
OPUS[GenerateMac-hmac256]="$(awk -v b="$(cut -d: -f4 <<<"$one_hmac")" 'BEGIN { printf "%.2f", (b > 0 ? 1e8 / b : 0) }')"
declare -A CEIL
CEIL[Sign-rsa2048]="$(cut -d: -f4 <<<"$rsa")"
CEIL[Sign-rsa2048pss]="${CEIL[Sign-rsa2048]}" # the private-key operation is the cost
CEIL[Verify-rsa2048]="$(cut -d: -f5 <<<"$rsa")"
CEIL[Sign-p256]="$(cut -d: -f4 <<<"$ecd")"
CEIL[Verify-p256]="$(cut -d: -f5 <<<"$ecd")"
CEIL[Sign-ed25519]="$(cut -d: -f5 <<<"$edd")"
CEIL[Verify-ed25519]="$(cut -d: -f6 <<<"$edd")"
CEIL[GenerateMac-hmac256]="$(awk -v b="$(cut -d: -f4 <<<"$hmac")" 'BEGIN { printf "%.1f", b / 100 }')"

printf 'GenerateRandom (no key cryptography: the HTTP + SigV4 + JSON path alone): %.1f req/s, %s CPU us/req\n' \
	"${RPS[GenerateRandom]}" "${CPU[GenerateRandom]}"
echo "kinko vs openssl speed (-multi $CPUS), wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
printf '%-20s %11s %8s %8s %9s %13s %9s %6s %6s %6s\n' run "kinko req/s" "p50 us" "p99 us" \
	"CPU us/r" "openssl op/s" "CPU us/op" ratio CPU path
for run in $RUNS; do
	line="$(awk -v a="${RPS[$run]}" -v b="${CEIL[$run]}" -v c="${CPU[$run]}" \
		-v op="${OPUS[$run]}" -v g="${CPU[GenerateRandom]}" 'BEGIN {
		printf "%.2f %.2f %.2f", (b > 0 ? a / b : 0), (c > 0 ? op / c : 0),
			(c > 0 ? (g + op) / c : 0) }')"
	read -r ratio cpu_ratio path_ratio <<<"$line"
	printf '%-20s %11.1f %8s %8s %9s %13.1f %9s %6s %6s %6s\n' "$run" "${RPS[$run]}" \
		"${P50[$run]}" "${P99[$run]}" "${CPU[$run]}" "${CEIL[$run]}" "${OPUS[$run]}" "$ratio" \
		"$cpu_ratio" "$path_ratio"
done
