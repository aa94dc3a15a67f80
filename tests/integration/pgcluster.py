"""A real cluster for the tests: one PostgreSQL, three kinko nodes on it,
and nginx in front of them as the load balancer (docs/CLUSTER.md, "Behind
nginx").

    c = PgCluster()            # PostgreSQL, node-1..node-3, nginx
    kms = c.front.client()     # boto3 through nginx
    c.front.aws("kms", ...)    # the AWS CLI through nginx
    c.nodes[0].client()        # one node directly
    c.stop()

PostgreSQL is conftest's throw-away server (Debian's binaries, a temporary
folder, a loopback port, run as the postgres user when root): a fresh one
per cluster by default, so that a test may stop and start it, or the
session's shared one. The nodes are cluster.py's: each its own data folder
and audit trail, one root key file, node ids node-1..node-3, the test mode
on (the test clock, KinkoTest.*).

nginx runs from its own configuration in the cluster's temporary folder
(pid file, logs and temporary files there too, nothing under /var), so it
runs the same as root and as a user. Its choices, and why:

- Round robin over the three nodes, with keep-alive connections to them
  (closed by nginx after 20 s idle, before kinko's own 60 s idle timeout,
  so nginx never sends a request on a connection kinko is closing).
- Passive health checks only (max_fails=1 fail_timeout=2s): the open
  source upstream module cannot probe a node's GET /ready, so a node is
  taken out for 2 s when a connection to it fails or times out.
- proxy_next_upstream error timeout, without non_idempotent: every AWS
  call is a POST, and nginx passes a POST to the next node only when it
  could not send it to the first (connection refused, connect timeout).
  A POST that reached a node which then died is not replayed on another
  node, since the first may have applied it; the client sees a 502 and
  retries as the SDKs do (standard retry mode retries 502), which is the
  same choice an SDK makes about a request whose answer was lost. 502 and
  503 answers of a node are not retried by nginx for the same reason.
- The Host header is passed unchanged (SigV4 signs it) and each answer
  names the node that served it (X-Kinko-Upstream), for the tests.
"""
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
import urllib.error
import urllib.request

import pytest

from cluster import Cluster
from conftest import Postgres, Server, shared_postgres

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NODES = 3

NGINX_CONF = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 2m;
    keepalive_timeout 60s;

    upstream kinko {{
{servers}
        keepalive 32;
        keepalive_timeout 20s;
    }}

    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://kinko;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_connect_timeout 1s;
            proxy_read_timeout 30s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 5s;
            add_header X-Kinko-Upstream $upstream_addr always;
        }}
        location = /nginx-static {{
            return 200 "ok";
        }}
    }}
}}
"""


def have_binaries():
    """None, or the reason the cluster cannot run on this machine."""
    import glob
    if not os.path.exists(NGINX):
        return "nginx is not installed (scripts/setup.sh installs nginx-light)"
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        return "PostgreSQL is not installed (scripts/setup.sh installs it)"
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Front:
    """The cluster's endpoint as clients see it: nginx. Clients made here
    talk to nginx only; client() and aws() are Server's."""

    client = Server.client
    aws = Server.aws
    test_call = Server.test_call

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def retrying_client(self, service="kms", attempts=5):
        """A client with the SDKs' standard retries (502, 500, throttling)."""
        import boto3
        import botocore.config
        cfg = botocore.config.Config(retries={"max_attempts": attempts, "mode": "standard"},
                                     connect_timeout=5, read_timeout=30)
        return boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test", config=cfg)


class Nginx:
    """nginx from a configuration of its own in folder `dir`."""

    def __init__(self, dir, ports, port=None):
        self.dir = dir
        self.port = port or free_port()
        servers = "\n".join("        server 127.0.0.1:%d max_fails=1 fail_timeout=2s;" % p
                            for p in ports)
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(dir, sub), exist_ok=True)
        self.conf = os.path.join(dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(dir=dir, port=self.port, servers=servers))
        self.stderr = open(os.path.join(dir, "stderr"), "ab")
        # -e: the early error log before the configuration is read (nginx
        # 1.19.5+), else nginx opens /var/log/nginx/error.log first.
        cmd = [NGINX, "-e", os.path.join(dir, "error.log"), "-p", dir, "-c", self.conf,
               "-g", "daemon off;" + (" user root;" if os.geteuid() == 0 else "")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.endpoint = "http://127.0.0.1:%d" % self.port
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/nginx-static", timeout=2).read()
                return
            except (urllib.error.URLError, OSError):
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError("nginx did not start:\n" + self.error_log())
                time.sleep(0.05)

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


class PgCluster:
    """PostgreSQL, NODES kinko nodes on one fresh database, nginx in front."""

    def __init__(self, n=NODES, own_postgres=True):
        reason = have_binaries()
        if reason:
            pytest.skip(reason)
        self.own_pg = own_postgres
        self.pg = Postgres() if own_postgres else shared_postgres()
        self.dbname = "kinko_cluster_%d_%d" % (os.getpid(), free_port())
        url = self.pg.create_database(self.dbname)
        self.cluster = Cluster(store_url=url)
        self.nginx = None
        try:
            for _ in range(n):
                self.cluster.add()
            self.nginx = Nginx(os.path.join(self.cluster.tmp, "nginx"),
                               [node.port for node in self.cluster.nodes])
        except Exception:
            self.stop()
            raise
        self.front = Front(self.nginx.endpoint)

    @property
    def nodes(self):
        return self.cluster.nodes

    def advance_clock(self, seconds):
        self.cluster.advance_clock(seconds)

    def restart(self, node):
        """Starts a stopped or killed node again on its port and data folder."""
        node.stop()
        node.start(node.port)

    def stop(self):
        """Stops nginx, the nodes (returns their exit codes) and PostgreSQL."""
        rcs = []
        try:
            if self.nginx is not None:
                self.nginx.stop()
            rcs = self.cluster.stop()
        finally:
            if self.own_pg:
                try:
                    self.pg.stop()
                except subprocess.CalledProcessError:  # already stopped (a test failed halfway)
                    shutil.rmtree(self.pg.dir, ignore_errors=True)
            else:
                try:
                    c = self.pg.connect()
                    c.cursor().execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.dbname)
                    c.close()
                except Exception:
                    pass
        return rcs


@pytest.fixture(scope="module")
def pg_cluster():
    """One three-node cluster behind nginx for a whole test module."""
    c = PgCluster()
    yield c
    for node_id, rc in c.stop():
        assert rc == 0, "%s exited with %s" % (node_id, rc)


# Operations that change nothing a cache holds: no feed barrier after them.
READ_PREFIXES = ("Describe", "Get", "List")
READS = {"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
         "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "GenerateRandom", "Sign",
         "Verify", "GenerateMac", "VerifyMac", "DeriveSharedSecret", "BatchGetSecretValue",
         "ValidateResourcePolicy", "LookupEvents", "DecodeAuthorizationMessage"}
# Test-mode operations that act on one node's clock, scheduler or caches:
# in a cluster they go to every node.
EVERY_NODE = {"AdvanceClock", "RunScheduler", "Reset", "HoldLeases"}
BARRIER_TIMEOUT = 5.0


def is_read(operation):
    return operation.startswith(READ_PREFIXES) or operation in READS


class ClusterServer(Front):
    """Stands in for conftest's session `server` when KINKO_TEST_CLUSTER=nginx:
    the tests' clients talk to nginx; the test mode's calls go to every node
    (the clock, the scheduler, Reset), and the data folder and log named
    are node-1's, so tests that read one server's audit trail or log see a
    third of the calls.

    Read-your-writes, as one node gives it: after every call that may
    write (each botocore call of clients made here except the reads
    above, each AWS CLI command but describe/get/list ones, and each
    helpers.signed_call through this endpoint), feed_barrier() waits until
    every live node's change feed has delivered the write (docs/TESTING.md,
    "The feed barrier")."""

    def __init__(self, pgc):
        super().__init__(pgc.front.endpoint)
        self.pgc = pgc
        first = pgc.nodes[0]
        self.data_dir, self.log_path, self.proc = first.data_dir, first.log_path, first.proc
        self.port = pgc.nginx.port
        self.direct = first
        self.kinko_cluster = self
        self.EVERY_NODE = EVERY_NODE
        self.barriers = 0

    def live_nodes(self):
        return [n for n in self.pgc.nodes if n.proc.poll() is None]

    def feed_barrier(self):
        """Sends a barrier through one node and waits until every live node's
        feed has delivered it, so every node has seen every earlier write."""
        token = uuid.uuid4().hex
        nodes = self.live_nodes()
        nodes[0].test_call("FeedBarrier", {"Token": token})
        self.barriers += 1
        deadline = time.monotonic() + BARRIER_TIMEOUT
        waiting = nodes
        while True:
            waiting = [n for n in waiting
                       if not n.test_call("FeedBarrierSeen", {"Token": token})["Seen"]]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise AssertionError("feed barrier %s not seen by %s within %.0f s" % (
                    token, [n.node_id for n in waiting], BARRIER_TIMEOUT))
            time.sleep(0.002)

    def after_call(self, operation):
        """What a call through the front leaves to do: a barrier after a write."""
        if not is_read(operation):
            self.feed_barrier()

    def _after_botocore_call(self, model=None, **kw):
        if model is not None:
            self.after_call(model.name)

    def client(self, *args, **kw):
        c = Server.client(self, *args, **kw)
        c.meta.events.register("after-call", self._after_botocore_call)
        c.kinko_cluster = self
        return c

    def aws(self, *args, **kw):
        try:
            return Server.aws(self, *args, **kw)
        finally:
            words = [a for a in args if not a.startswith("-")]
            command = words[1] if len(words) > 1 else ""
            if not command.startswith(("describe-", "get-", "list-")):
                self.feed_barrier()

    def test_call(self, operation, body=None, **kw):
        if operation in EVERY_NODE:
            return [n.test_call(operation, body, **kw) for n in self.live_nodes()][0]
        return Front.test_call(self, operation, body, **kw)

    def advance_clock(self, seconds, **kw):
        return [n.advance_clock(seconds, **kw) for n in self.live_nodes()][0]

    def run_scheduler(self, **kw):
        return [n.run_scheduler(**kw) for n in self.live_nodes()][0]

    def reset(self, **kw):
        return [n.reset(**kw) for n in self.live_nodes()][0]


def cluster_session_server():
    """The generator behind conftest's `server` fixture under
    KINKO_TEST_CLUSTER=nginx: a cluster on the session's PostgreSQL."""
    c = PgCluster(own_postgres=False)
    try:
        yield ClusterServer(c)
    finally:
        rcs = c.stop()
    assert all(rc == 0 for _, rc in rcs), rcs
