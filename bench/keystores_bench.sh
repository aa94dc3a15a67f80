#!/usr/bin/env bash
# bench/keystores_bench.sh — KMS Encrypt under a software key, an HSM key
# and a key of an external key store, in one run.
#
# Starts two kinko servers in dev mode, audit trail off (--no-audit):
#   - the proxy: HTTPS under a certificate made here, serving the XKS proxy
#     API on port 443 of a loopback address picked at random (127.A.B.C;
#     XksProxyUriEndpoint has no port), its external key an alias its seed
#     file creates;
#   - the KMS (plain HTTP on loopback), with a throw-away SoftHSM2 token in
#     its configuration (hsm_tokens), trusting the proxy's certificate
#     (--xks-proxy-ca).
# Through boto3 it makes an AWS_CLOUDHSM store on the token and an
# EXTERNAL_KEY_STORE store on the proxy, connects both, and creates three
# SYMMETRIC_DEFAULT keys: a software key, a key in the token and a key with
# XksKeyId. Then wrk drives, over keep-alive connections, real
# SigV4-signed Encrypt requests of 100 bytes of plaintext under each key:
#
#   soft-Encrypt  AES-GCM in kinko's memory
#   hsm-Encrypt   CKM_AES_GCM inside the SoftHSM2 token (a session per call)
#   xks-Encrypt   kinko's layer, then the proxy's Encrypt over HTTPS (double
#                 encryption: one signed XKS call per request, on the
#                 request thread, through libcurl)
#
# and prints each run's rate and latency and its ratio to soft-Encrypt.
# Every signed request is checked once (200) before its run; any non-2xx
# answer during a run fails the benchmark. wrk, the KMS and the proxy share
# the machine.
#
# Needs root (or net.ipv4.ip_unprivileged_port_start <= 443), softhsm2, wrk.
# Settings (environment):
#   BENCH_DURATION     wrk -d per run     (default 10s, at most 120s)
#   BENCH_CONNECTIONS  wrk -c             (default 16)
#   BENCH_THREADS      wrk -t             (default 2)
#   KINKO_BIN          the kinko binary   (default: build it in build-bench-ks)
#   PYTHON             interpreter with boto3 (default /usr/bin/python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-16}"
THREADS="${BENCH_THREADS:-2}"
PYTHON="${PYTHON:-/usr/bin/python3}"
[ -x "$PYTHON" ] || PYTHON=python3
CPUS="$(nproc 2>/dev/null || echo 1)"
MODULE=/usr/lib/softhsm/libsofthsm2.so

die() { echo "keystores_bench: FAIL: $*" >&2; exit 1; }
[[ "$DURATION" =~ ^[0-9]+s$ ]] && [ "${DURATION%s}" -ge 1 ] && [ "${DURATION%s}" -le 120 ] ||
	die "BENCH_DURATION must be 1s..120s"
[[ "$CONNECTIONS" =~ ^[0-9]+$ ]] && [ "$CONNECTIONS" -ge 1 ] || die "BENCH_CONNECTIONS"
[[ "$THREADS" =~ ^[0-9]+$ ]] && [ "$THREADS" -ge 1 ] && [ "$THREADS" -le "$CONNECTIONS" ] ||
	die "BENCH_THREADS must be 1..BENCH_CONNECTIONS"
command -v wrk >/dev/null || die "wrk is not installed (scripts/setup.sh installs it)"
command -v softhsm2-util >/dev/null && [ -e "$MODULE" ] || die "softhsm2 is not installed"
if [ "$(id -u)" != 0 ] &&
	[ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)" -gt 443 ]; then
	die "the proxy must listen on port 443: run as root"
fi

if [ -z "${KINKO_BIN:-}" ]; then
	make -j"$CPUS" BUILD=build-bench-ks >/dev/null || die "build failed"
	KINKO_BIN="$ROOT/build-bench-ks/kinko"
fi
[ -x "$KINKO_BIN" ] || die "no kinko binary at $KINKO_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kinko-ks-bench.XXXXXX")"
PIDS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
		fi
	done
	if [ "$rc" -ne 0 ]; then
		for f in "$WORK"/*.err; do [ -s "$f" ] && tail -n 20 "$f" >&2; done
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The proxy: its certificate, credential and external key.
IP="127.$((RANDOM % 254 + 1)).$((RANDOM % 255)).$((RANDOM % 252 + 2))"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$IP" \
	-addext "subjectAltName=IP:$IP" -addext "basicConstraints=critical,CA:TRUE" \
	-keyout "$WORK/proxy.key" -out "$WORK/proxy.pem" 2>/dev/null || die "openssl"
SECRET="$(head -c 32 /dev/urandom | base64)"
cat >"$WORK/proxy-seed.json" <<JSON
{"keys": [{"AliasName": "alias/external"}]}
JSON
cat >"$WORK/proxy.json" <<JSON
{"xks": {"uri_path": "/kms/xks/v1",
         "credentials": [{"access_key_id": "BENCHXKSACCESSKEY234567", "secret_access_key": "$SECRET"}],
         "keys": {"bench-key": "arn:aws:kms:us-east-1:000000000000:alias/external"}}}
JSON

# The token.
mkdir -m 700 "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$WORK/tokens" >"$WORK/softhsm2.conf"
export SOFTHSM2_CONF="$WORK/softhsm2.conf"
softhsm2-util --init-token --free --label bench --pin 1234567 --so-pin 7654321 >/dev/null ||
	die "softhsm2-util"
cat >"$WORK/kms.json" <<JSON
{"hsm_tokens": [{"id": "cluster-benchbenchb", "module": "$MODULE", "token_label": "bench",
                 "trust_anchor_file": "$WORK/proxy.pem"}]}
JSON

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
start() { # name, then kinko serve's arguments
	local name=$1
	shift
	"$KINKO_BIN" serve "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	PIDS+=($!)
	for _ in $(seq 1 100); do
		grep -q "listening on" "$WORK/$name.out" 2>/dev/null && return 0
		sleep 0.1
	done
	die "$name did not start"
}
PORT="$(free_port)"
start proxy --dev --no-audit --listen "127.0.0.1:$(free_port)" --data "$WORK/proxy-data" \
	--tls-cert "$WORK/proxy.pem" --tls-key "$WORK/proxy.key" --config "$WORK/proxy.json" \
	--seed "$WORK/proxy-seed.json" --xks-listen "$IP:443"
start kms --dev --no-audit --listen "127.0.0.1:$PORT" --data "$WORK/kms-data" \
	--config "$WORK/kms.json" --xks-proxy-ca "$WORK/proxy.pem"

# The stores and keys, then one signed wrk script per run, each checked once.
PYTHONPATH="$ROOT/bench" "$PYTHON" - "$PORT" "$WORK" "$IP" "$SECRET" <<'PYEOF'
import base64, json, os, sys
import boto3
import wrkscript

port, work, ip, secret = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
url = "http://127.0.0.1:%s/" % port
kms = boto3.client("kms", endpoint_url=url, region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
hsm = kms.create_custom_key_store(
    CustomKeyStoreName="bench-hsm", CloudHsmClusterId="cluster-benchbenchb",
    TrustAnchorCertificate=open(os.path.join(work, "proxy.pem")).read(),
    KeyStorePassword="1234567")["CustomKeyStoreId"]
xks = kms.create_custom_key_store(
    CustomKeyStoreName="bench-xks", CustomKeyStoreType="EXTERNAL_KEY_STORE",
    XksProxyUriEndpoint="https://" + ip, XksProxyUriPath="/kms/xks/v1",
    XksProxyConnectivity="PUBLIC_ENDPOINT",
    XksProxyAuthenticationCredential={"AccessKeyId": "BENCHXKSACCESSKEY234567",
                                      "RawSecretAccessKey": secret})["CustomKeyStoreId"]
for sid in (hsm, xks):
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    st = kms.describe_custom_key_stores(CustomKeyStoreId=sid)["CustomKeyStores"][0]
    assert st["ConnectionState"] == "CONNECTED", st
keys = {
    "soft-Encrypt": kms.create_key()["KeyMetadata"]["KeyId"],
    "hsm-Encrypt": kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=hsm)["KeyMetadata"]["KeyId"],
    "xks-Encrypt": kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=xks,
                                  XksKeyId="bench-key")["KeyMetadata"]["KeyId"],
}
pt = base64.b64encode(os.urandom(100)).decode()
for run, key in keys.items():
    data = json.dumps({"KeyId": key, "Plaintext": pt, "EncryptionContext": {"bench": run}})
    wrkscript.write(work, run, url, data, wrkscript.kms_target("Encrypt"))
PYEOF

echo "keystores_bench: $DURATION per run, $CONNECTIONS connections, $THREADS wrk threads, $CPUS cores"
base=""
for run in soft-Encrypt hsm-Encrypt xks-Encrypt; do
	line="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/$run.lua" \
		"http://127.0.0.1:$PORT/" | grep '^BENCH ')" || die "$run: wrk failed"
	rps="$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$line")"
	bad="$(sed -n 's/.* non2xx=\([0-9]*\).*/\1/p' <<<"$line")"
	[ "$bad" = 0 ] || die "$run: $bad failed requests"
	[ -n "$base" ] || base="$rps"
	ratio="$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.3f", a / b }')"
	printf '%-14s %s  ratio to soft-Encrypt %s\n' "$run" "${line#BENCH }" "$ratio"
done
