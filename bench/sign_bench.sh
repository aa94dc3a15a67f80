#!/usr/bin/env bash
# bench/sign_bench.sh — Sign and Verify throughput against their ceiling.
#
# Starts kinko in dev mode, creates an ECC_NIST_P256 and an RSA_2048
# SIGN_VERIFY key, and drives with wrk, over keep-alive connections, real
# SigV4-signed requests:
#
#   Sign   ECC_NIST_P256  ECDSA_SHA_256              32-byte DIGEST
#   Verify ECC_NIST_P256  ECDSA_SHA_256              32-byte DIGEST
#   Sign   RSA_2048       RSASSA_PKCS1_V1_5_SHA_256  32-byte DIGEST
#   Verify RSA_2048       RSASSA_PKCS1_V1_5_SHA_256  32-byte DIGEST
#
# The ceiling of each is `openssl speed` for the same primitive (ecdsap256,
# rsa2048 — both sign a digest, rsa2048 with PKCS#1 v1.5 padding) on all
# cores (-multi = number of CPUs), measured in the same run, right after
# the wrk runs. The ratio kinko req/s / openssl op/s says how much of the
# machine's raw signing speed survives HTTP, SigV4, JSON and the key cache.
# wrk shares the machine with kinko, so the ratio is a lower bound.
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
"$KINKO_BIN" serve --dev --listen "127.0.0.1:$PORT" --data "$WORK/data" >"$WORK/kinko.out" 2>"$WORK/kinko.err" &
KINKO_PID=$!
for _ in $(seq 1 100); do
	grep -q "listening on" "$WORK/kinko.out" 2>/dev/null && break
	sleep 0.1
done
grep -q "listening on" "$WORK/kinko.out" || die "kinko did not start"
ENDPOINT="http://127.0.0.1:$PORT"

# Creates the keys and writes one signed wrk script per run.
"$PYTHON" - "$ENDPOINT" "$WORK" <<'PYEOF'
import hashlib, json, os, sys, urllib.request
import boto3, botocore.config
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint, work = sys.argv[1], sys.argv[2]
kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test",
                   config=botocore.config.Config(retries={"max_attempts": 1}))
digest = hashlib.sha256(b"kinko sign benchmark").digest()
runs = {}
for name, spec, alg in (("p256", "ECC_NIST_P256", "ECDSA_SHA_256"),
                        ("rsa2048", "RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256")):
    kid = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    sig = kms.sign(KeyId=kid, Message=digest, MessageType="DIGEST", SigningAlgorithm=alg)["Signature"]
    import base64
    b = lambda x: base64.b64encode(x).decode()
    runs["Sign-" + name] = ("Sign", {"KeyId": kid, "Message": b(digest), "MessageType": "DIGEST",
                                     "SigningAlgorithm": alg})
    runs["Verify-" + name] = ("Verify", {"KeyId": kid, "Message": b(digest), "MessageType": "DIGEST",
                                         "SigningAlgorithm": alg, "Signature": b(sig)})
# kinko's own per-request ceiling: a request with no key cryptography.
runs["GenerateRandom"] = ("GenerateRandom", {"NumberOfBytes": 32})
creds = Credentials("test", "test")
for run, (op, body) in runs.items():
    data = json.dumps(body)
    req = AWSRequest(method="POST", url=endpoint + "/", data=data,
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": "TrentService." + op})
    SigV4Auth(creds, "kms", "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    check = urllib.request.Request(endpoint + "/", data=data.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(check) as r:
        assert r.status == 200, (run, r.status)
    lua = ['wrk.method = "POST"', "wrk.body = %s" % json.dumps(data)]
    for k, v in headers.items():
        if k.lower() not in ("host", "content-length"):
            lua.append("wrk.headers[%s] = %s" % (json.dumps(k), json.dumps(v)))
    lua.append('''
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
            + summary.errors.write + summary.errors.timeout
  io.write(string.format("BENCH requests=%d rps=%.1f p50_us=%d p99_us=%d non2xx=%d\\n",
    summary.requests, summary.requests / secs, latency:percentile(50),
    latency:percentile(99), bad))
end''')
    with open(os.path.join(work, run + ".lua"), "w") as f:
        f.write("\n".join(lua) + "\n")
PYEOF

declare -A RPS P50 P99
for run in GenerateRandom Sign-p256 Verify-p256 Sign-rsa2048 Verify-rsa2048; do
	out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/$run.lua" "$ENDPOINT/")"
	line="$(printf '%s\n' "$out" | grep '^BENCH ' || true)"
	[ -n "$line" ] || die "$run: no result from wrk"
	bad="$(sed -E 's/.*non2xx=([0-9]+).*/\1/' <<<"$line")"
	[ "$bad" -eq 0 ] || die "$run: $bad non-2xx or socket errors"
	RPS[$run]="$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")"
	P50[$run]="$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$line")"
	P99[$run]="$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")"
done

# The ceiling: OpenSSL's own sign/verify rate on all cores, same machine, now.
speed="$(openssl speed -seconds "${DURATION%s}" -mr -multi "$CPUS" rsa2048 ecdsap256 2>/dev/null)"
rsa="$(grep -E '^\+F2:[0-9]+:2048:' <<<"$speed" | tail -n 1)"
ecd="$(grep -E '^\+F4:[0-9]+:256:' <<<"$speed" | tail -n 1)"
[ -n "$rsa" ] && [ -n "$ecd" ] || die "cannot read openssl speed output"
declare -A CEIL
CEIL[Sign-rsa2048]="$(cut -d: -f4 <<<"$rsa")"
CEIL[Verify-rsa2048]="$(cut -d: -f5 <<<"$rsa")"
CEIL[Sign-p256]="$(cut -d: -f4 <<<"$ecd")"
CEIL[Verify-p256]="$(cut -d: -f5 <<<"$ecd")"

printf 'GenerateRandom (no key cryptography: the HTTP + SigV4 + JSON path alone): %.1f req/s\n' "${RPS[GenerateRandom]}"
echo "kinko Sign/Verify vs openssl speed (-multi $CPUS), wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
printf '%-16s %12s %10s %10s %16s %8s\n' run "kinko req/s" "p50 us" "p99 us" "openssl op/s" ratio
for run in Sign-p256 Verify-p256 Sign-rsa2048 Verify-rsa2048; do
	ratio="$(awk -v a="${RPS[$run]}" -v b="${CEIL[$run]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
	printf '%-16s %12.1f %10s %10s %16.1f %8s\n' "$run" "${RPS[$run]}" "${P50[$run]}" "${P99[$run]}" \
		"${CEIL[$run]}" "$ratio"
done
