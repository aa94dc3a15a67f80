"""`kinko status`: a running server's /ready in readable text, with a few
numbers from /metrics; exit 0 ready, 1 not ready, 2 cannot connect."""
import resource
import socket
import subprocess
import time

from botocore.exceptions import ClientError

from conftest import KINKO


def status(*args):
    p = subprocess.run([KINKO, "status"] + list(args), capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout + p.stderr


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def test_ready_with_metrics(make_server):
    mport = free_port()
    s = make_server(["--dev", "--metrics-listen", "127.0.0.1:%d" % mport])
    kms = s.client()
    kms.list_keys()
    try:
        kms.describe_key(KeyId="alias/missing")
    except ClientError:
        pass
    rc, out = status("--endpoint", s.endpoint, "--metrics", "http://127.0.0.1:%d" % mport)
    assert rc == 0, out
    assert "%s: ready (HTTP 200)" % s.endpoint in out
    assert "store" in out and "audit" in out
    lines = dict(l.split(None, 1) for l in out.splitlines()
                 if l.startswith("  ") and not l.startswith("  live"))
    assert int(lines["requests"]) >= 2 and int(lines["errors"]) >= 1
    assert "live nodes" in out


def test_not_ready(make_server):
    s = make_server(["--dev", "--audit-max-file-bytes", "4000"])
    kms = s.client()
    kms.create_key()
    resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
    try:
        for _ in range(20):
            try:
                kms.list_keys()
            except ClientError:
                break
        rc, out = status("--endpoint", s.endpoint)
        assert rc == 1, out
        assert "NOT READY (HTTP 503)" in out and "failing" in out
    finally:
        resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def test_cannot_connect_and_usage():
    rc, out = status("--endpoint", "http://127.0.0.1:%d" % free_port())
    assert rc == 2 and "cannot connect" in out
    rc, out = status("--frob")
    assert rc == 2 and "usage: kinko status" in out
    rc, out = status("--help")
    assert rc == 0 and "--metrics" in out
