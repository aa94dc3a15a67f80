#!/usr/bin/env bash
# scripts/cluster.sh — a local three-node kinko cluster (docs/CLUSTER.md,
# "Try it: a local three-node cluster").
#
#   scripts/cluster.sh start  [DIR]   PostgreSQL, node-1..node-3, nginx; prints the endpoint
#   scripts/cluster.sh status [DIR]   what runs, and each node's GET /ready
#   scripts/cluster.sh stop   [DIR]   stops all of it (the folder and its data stay)
#
# DIR (default ${TMPDIR:-/tmp}/kinko-cluster) holds everything: PostgreSQL's
# data (Debian's binaries, run as the postgres user when started as root),
# the root key, each node's data folder and log, nginx's configuration,
# logs and pid file. A second start on the same folder reuses its data.
# Remove the folder after stop to start afresh.
#
# Fixed loopback ports, from KINKO_CLUSTER_PORT (default 4600):
#   nginx  PORT        the endpoint clients use
#   nodes  PORT+1..+3  node-1..node-3 (addressable directly)
#   PORT+9             nginx's static answer (200 "ok"), the ceiling for
#                      bench/cluster_bench.sh
#   PostgreSQL PORT+10
# KINKO_CLUSTER_NODES (default 3, at most 8) starts another number of nodes.
# The nodes run in dev mode (access key "test", secret "test"; see
# docs/CONFIG.md for a real configuration). KINKO_BIN names the binary
# (default build/kinko).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CMD="${1:-}"
DIR="${2:-${TMPDIR:-/tmp}/kinko-cluster}"
BASE="${KINKO_CLUSTER_PORT:-4600}"
KINKO="${KINKO_BIN:-$ROOT/build/kinko}"
NODES="${KINKO_CLUSTER_NODES:-3}"
PG_PORT=$((BASE + 10))

die() { echo "cluster: $*" >&2; exit 1; }
usage() { echo "usage: scripts/cluster.sh start|stop|status [DIR]" >&2; exit 2; }

[[ "$NODES" =~ ^[1-8]$ ]] || die "KINKO_CLUSTER_NODES must be 1..8"
[[ "$BASE" =~ ^[0-9]+$ ]] && [ "$BASE" -ge 1024 ] && [ "$BASE" -le 65000 ] ||
	die "KINKO_CLUSTER_PORT must be a port from 1024 to 65000"

PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"

as_pg() { # runs a PostgreSQL tool as the postgres user when root
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

pg_url() { echo "postgresql://postgres:$(cat "$DIR/pg.password")@127.0.0.1:$PG_PORT/kinko"; }

start_pg() {
	[ -n "$PG_BIN" ] || die "PostgreSQL is not installed (scripts/setup.sh installs it)"
	if [ ! -f "$DIR/pg/data/PG_VERSION" ]; then
		mkdir -p "$DIR/pg"
		head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/pg.password"
		chmod 600 "$DIR/pg.password"
		cp "$DIR/pg.password" "$DIR/pg/pwfile"
		if [ "$(id -u)" = 0 ]; then
			chmod 711 "$DIR"
			chown -R postgres:postgres "$DIR/pg"
			runuser -u postgres -- test -r "$DIR/pg/pwfile" ||
				die "the postgres user cannot reach $DIR (a parent folder is closed to it)"
		fi
		chmod 700 "$DIR/pg"
		as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres --auth=scram-sha-256 \
			--pwfile="$DIR/pg/pwfile" -E UTF8 >"$DIR/initdb.log" 2>&1 ||
			{ cat "$DIR/initdb.log" >&2; die "initdb failed"; }
		rm -f "$DIR/pg/pwfile"
	fi
	if ! as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1; then
		as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -w -l "$DIR/pg/pg.log" \
			-o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $DIR/pg" start >/dev/null ||
			die "PostgreSQL did not start (see $DIR/pg/pg.log)"
	fi
	if ! PGPASSWORD="$(cat "$DIR/pg.password")" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" \
		-U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'kinko'" | grep -q 1; then
		PGPASSWORD="$(cat "$DIR/pg.password")" "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" \
			-U postgres -E UTF8 kinko || die "could not create the database kinko"
	fi
}

start_node() { # N
	local n="$1" port=$((BASE + $1)) d="$DIR/node-$1"
	alive "$d.pid" && return 0
	mkdir -p "$d" && chmod 700 "$d"
	: >"$d/out"
	"$KINKO" serve --dev --listen "127.0.0.1:$port" --data "$d" --root-key "$DIR/root.key" \
		--store "$(pg_url)" --node-id "node-$n" </dev/null >"$d/out" 2>>"$d/server.log" &
	echo $! >"$d.pid"
	for _ in $(seq 1 100); do
		grep -q 'listening on' "$d/out" && return 0
		alive "$d.pid" || break
		sleep 0.1
	done
	tail -n 20 "$d/server.log" >&2
	die "node-$n did not start (see $d/server.log)"
}

write_nginx_conf() {
	local d="$DIR/nginx" n servers=""
	mkdir -p "$d"/{client_body,proxy,fastcgi,uwsgi,scgi}
	for n in $(seq 1 $NODES); do
		servers+="        server 127.0.0.1:$((BASE + n)) max_fails=1 fail_timeout=2s;"$'\n'
	done
	# The choices are explained in tests/integration/pgcluster.py and
	# docs/CLUSTER.md ("Behind nginx"): round robin, passive health checks,
	# a POST moved to another node only if it was never sent.
	cat >"$d/nginx.conf" <<EOF
worker_processes auto;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
    access_log off; # each answer names its node (X-Kinko-Upstream); errors go to error.log
    keepalive_requests 100000;
    client_body_temp_path $d/client_body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    client_max_body_size 2m;
    upstream kinko {
$servers        keepalive 32;
        keepalive_timeout 20s;
    }
    server {
        listen 127.0.0.1:$BASE;
        location / {
            proxy_pass http://kinko;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 5s;
            add_header X-Kinko-Upstream \$upstream_addr always;
        }
    }
    server {
        listen 127.0.0.1:$((BASE + 9));
        location / { return 200 "ok"; }
    }
}
EOF
}

start_nginx() {
	local d="$DIR/nginx" user=""
	command -v nginx >/dev/null || die "nginx is not installed (scripts/setup.sh installs nginx-light)"
	alive "$d/nginx.pid" && return 0
	write_nginx_conf
	[ "$(id -u)" = 0 ] && user="user root;" # the workers read and write in DIR
	nginx -e "$d/error.log" -p "$d" -c "$d/nginx.conf" -g "$user" || die "nginx did not start (see $d/error.log)"
	for _ in $(seq 1 50); do
		curl -s -m 1 -o /dev/null "http://127.0.0.1:$BASE/ready" && return 0
		sleep 0.1
	done
	die "nginx does not answer on 127.0.0.1:$BASE (see $d/error.log)"
}

cmd_start() {
	[ -x "$KINKO" ] || die "$KINKO is not built (run make)"
	mkdir -p "$DIR"
	DIR="$(cd "$DIR" && pwd)"
	start_pg
	if [ ! -f "$DIR/root.key" ]; then
		(umask 077 && head -c 32 /dev/urandom >"$DIR/root.key")
	fi
	local n
	for n in $(seq 1 $NODES); do start_node "$n"; done
	start_nginx
	cat <<EOF
kinko cluster in $DIR: nginx on 127.0.0.1:$BASE, node-1..node-$NODES on 127.0.0.1:$((BASE + 1))..$((BASE + NODES)), PostgreSQL on 127.0.0.1:$PG_PORT
endpoint: http://127.0.0.1:$BASE

export AWS_ENDPOINT_URL=http://127.0.0.1:$BASE
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_DEFAULT_REGION=us-east-1

then: aws kms create-key    (AWS CLI 1.29+/2.13+ read AWS_ENDPOINT_URL; older ones: --endpoint-url http://127.0.0.1:$BASE)
stop: scripts/cluster.sh stop $DIR
EOF
}

cmd_status() {
	[ -d "$DIR" ] || die "no cluster in $DIR"
	local n code rc=0
	if [ -n "$PG_BIN" ] && as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1; then
		echo "postgresql  127.0.0.1:$PG_PORT  running"
	else
		echo "postgresql  127.0.0.1:$PG_PORT  stopped"; rc=1
	fi
	for n in $(seq 1 $NODES); do
		if alive "$DIR/node-$n.pid"; then
			code="$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((BASE + n))/ready" || true)"
			echo "node-$n      127.0.0.1:$((BASE + n))  running, pid $(cat "$DIR/node-$n.pid"), /ready $code"
			[ "$code" = 200 ] || rc=1
		else
			echo "node-$n      127.0.0.1:$((BASE + n))  stopped"; rc=1
		fi
	done
	if alive "$DIR/nginx/nginx.pid"; then
		code="$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BASE/ready" || true)"
		echo "nginx       127.0.0.1:$BASE  running, pid $(cat "$DIR/nginx/nginx.pid"), /ready through it $code"
	else
		echo "nginx       127.0.0.1:$BASE  stopped"; rc=1
	fi
	return $rc
}

stop_pid() { # PIDFILE NAME SIGNAL
	local pid
	alive "$1" || { rm -f "$1"; return 0; }
	pid="$(cat "$1")"
	kill -"$3" "$pid"
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
		sleep 0.1
	done
	echo "cluster: $2 (pid $pid) did not stop in 10 s; killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$1"
}

cmd_stop() {
	[ -d "$DIR" ] || die "no cluster in $DIR"
	local n
	stop_pid "$DIR/nginx/nginx.pid" nginx QUIT
	for n in $(seq 1 $NODES); do stop_pid "$DIR/node-$n.pid" "node-$n" TERM; done
	if [ -n "$PG_BIN" ] && [ -f "$DIR/pg/data/PG_VERSION" ] &&
		as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1; then
		as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null
	fi
	echo "kinko cluster in $DIR stopped (its data stays there; remove the folder to start afresh)"
}

case "$CMD" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
