#!/usr/bin/env bash
# bench/xks_bench.sh — Encrypt through kinko's XKS proxy on loopback.
#
# Starts kinko in dev mode over HTTPS (--tls-self-signed) with the XKS
# listener (--xks-listen) and one AES key served as an external key, then
# drives with wrk, over keep-alive TLS connections, real SigV4-signed
# requests of 100 bytes of plaintext:
#
#   kms-Encrypt   KMS Encrypt under the same key (the software key's path)
#   xks-Encrypt   XKS proxy Encrypt, service kms-xks-proxy, no AAD
#   xks-Encrypt-aad-cdiv  the same with 64 bytes of AAD and the CDIV asked
#                 for (one more SHA-256 and a decryption, Appendix C)
#
# and prints each run's rate and latency, and each XKS run as a ratio to
# kms-Encrypt in the same run. The audit trail is off (--no-audit) in both,
# so the runs compare the request paths. wrk shares the machine with kinko.
#
# Every signed request is checked once (200) before its run; any non-2xx
# answer during a run fails the benchmark. A SigV4 signature is valid for
# 5 minutes and each run is far shorter.
#
# Settings (environment):
#   BENCH_DURATION     wrk -d per run     (default 10s, at most 120s)
#   BENCH_CONNECTIONS  wrk -c             (default 32)
#   BENCH_THREADS      wrk -t             (default 2)
#   KINKO_BIN          the kinko binary   (default: build it in build-bench-xks)
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

die() { echo "xks_bench: FAIL: $*" >&2; exit 1; }
[[ "$DURATION" =~ ^[0-9]+s$ ]] && [ "${DURATION%s}" -ge 1 ] && [ "${DURATION%s}" -le 120 ] ||
	die "BENCH_DURATION must be 1s..120s"
[[ "$CONNECTIONS" =~ ^[0-9]+$ ]] && [ "$CONNECTIONS" -ge 1 ] || die "BENCH_CONNECTIONS"
[[ "$THREADS" =~ ^[0-9]+$ ]] && [ "$THREADS" -ge 1 ] && [ "$THREADS" -le "$CONNECTIONS" ] ||
	die "BENCH_THREADS must be 1..BENCH_CONNECTIONS"
command -v wrk >/dev/null || die "wrk is not installed (scripts/setup.sh installs it)"

if [ -z "${KINKO_BIN:-}" ]; then
	make -j"$CPUS" BUILD=build-bench-xks >/dev/null || die "build failed"
	KINKO_BIN="$ROOT/build-bench-xks/kinko"
fi
[ -x "$KINKO_BIN" ] || die "no kinko binary at $KINKO_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kinko-xks-bench.XXXXXX")"
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

# The proxy's credential and key: an alias the seed file creates at start.
SECRET="$(head -c 32 /dev/urandom | base64)"
cat >"$WORK/seed.json" <<JSON
{"keys": [{"AliasName": "alias/xks-bench"}]}
JSON
cat >"$WORK/kinko.json" <<JSON
{"xks": {"uri_path": "/bench/kms/xks/v1",
         "credentials": [{"access_key_id": "BENCHXKSACCESSKEY234567", "secret_access_key": "$SECRET"}],
         "keys": {"bench-key": "arn:aws:kms:us-east-1:000000000000:alias/xks-bench"}}}
JSON
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
PORT="$(free_port)"
XPORT="$(free_port)"
"$KINKO_BIN" serve --dev --no-audit --tls-self-signed --listen "127.0.0.1:$PORT" \
	--data "$WORK/data" --config "$WORK/kinko.json" --seed "$WORK/seed.json" \
	--xks-listen "127.0.0.1:$XPORT" >"$WORK/kinko.out" 2>"$WORK/kinko.err" &
KINKO_PID=$!
for _ in $(seq 1 100); do
	grep -q "XKS proxy listening on" "$WORK/kinko.out" 2>/dev/null && break
	sleep 0.1
done
grep -q "XKS proxy listening on" "$WORK/kinko.out" || die "kinko did not start"

# Writes one signed wrk script per run, each checked once.
PYTHONPATH="$ROOT/bench" "$PYTHON" - "$PORT" "$XPORT" "$WORK" "$SECRET" <<'PYEOF'
import base64, json, os, ssl, sys
import wrkscript

port, xport, work, secret = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=os.path.join(work, "data", "tls-cert.pem"))
pt = base64.b64encode(os.urandom(100)).decode()
md = {"awsPrincipalArn": "arn:aws:iam::000000000000:user/bench", "kmsOperation": "Encrypt",
      "kmsKeyArn": "arn:aws:kms:us-east-1:000000000000:key/bench", "kmsRequestId": "bench"}
xks = "https://127.0.0.1:%s/bench/kms/xks/v1/keys/bench-key/encrypt" % xport
runs = {
    "kms-Encrypt": ("https://127.0.0.1:%s/" % port, "kms", ("test", "test"),
                    {"X-Amz-Target": "TrentService.Encrypt",
                     "Content-Type": "application/x-amz-json-1.1"},
                    {"KeyId": "alias/xks-bench", "Plaintext": pt}),
    "xks-Encrypt": (xks, "kms-xks-proxy", ("BENCHXKSACCESSKEY234567", secret),
                    {"Content-Type": "application/json"},
                    {"requestMetadata": md, "plaintext": pt, "encryptionAlgorithm": "AES_GCM"}),
    "xks-Encrypt-aad-cdiv": (xks, "kms-xks-proxy", ("BENCHXKSACCESSKEY234567", secret),
                             {"Content-Type": "application/json"},
                             {"requestMetadata": md, "plaintext": pt, "encryptionAlgorithm": "AES_GCM",
                              "additionalAuthenticatedData": base64.b64encode(os.urandom(64)).decode(),
                              "ciphertextDataIntegrityValueAlgorithm": "SHA_256"}),
}
for run, (url, service, creds, headers, body) in runs.items():
    wrkscript.write(work, run, url, json.dumps(body), headers, service, creds, ctx)
    with open(os.path.join(work, run + ".url"), "w") as f:
        f.write(url)
PYEOF

echo "xks_bench: $DURATION per run, $CONNECTIONS connections, $THREADS wrk threads, $CPUS cores, HTTPS"
base=""
for run in kms-Encrypt xks-Encrypt xks-Encrypt-aad-cdiv; do
	line="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/$run.lua" "$(cat "$WORK/$run.url")" |
		grep '^BENCH ')" || die "$run: wrk failed"
	rps="$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")"
	bad="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$line")"
	[ "$bad" = 0 ] || die "$run: $bad failed requests"
	[ -n "$base" ] || base="$rps"
	ratio="$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
	printf '%-22s %s  ratio to kms-Encrypt %s\n' "$run" "${line#BENCH }" "$ratio"
done
