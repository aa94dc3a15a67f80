#!/usr/bin/env bash
# Installs everything kinko needs to build, test and benchmark on Debian 12.
# Idempotent: safe to run again. As root it runs apt-get directly; as any
# other user it runs apt-get through sudo.
set -euo pipefail

PKGS=(
  build-essential make pkg-config gcc clang clang-format
  libssl-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev sqlite3
  libgnutls28-dev              # the XKS listener checks client certificates (mTLS)
  libcurl4-openssl-dev
  libpq-dev                    # the postgresql:// store backend
  libclang-rt-14-dev
  valgrind
  python3 python3-boto3 python3-botocore python3-cryptography python3-pytest
  awscli jq openssl curl
  nginx-light wrk
  python3-prometheus-client   # audit/metrics tests parse /metrics with it
  softhsm2 libp11-kit-dev       # custom key stores: a PKCS#11 token in tests, its headers
  postgresql python3-psycopg2  # Secrets Manager: the PostgreSQL rotation function and its tests
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# tests/js needs Node.js with npm (the JS SDK: DeriveSharedSecret, an
# Ethereum signer). A machine may already have a Node.js build that bundles
# npm (and conflicts with Debian's npm package): install Debian's only when
# the commands are absent.
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# tests/js: the exact versions of its package-lock.json.
(cd "$(dirname "$0")/../tests/js" && npm ci --no-audit --no-fund)
echo "setup: all dependencies present"
