"""GET /health and GET /ready: unauthenticated, unaudited, leaking nothing;
/ready names a failing dependency (the audit trail that cannot be written)
with 503 and recovers by itself."""
import json
import resource
import time
import urllib.error
import urllib.request

from botocore.exceptions import ClientError


def get(s, path, method="GET"):
    req = urllib.request.Request(s.endpoint + path, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def test_health_and_ready(make_server):
    s = make_server(["--dev"])
    status, ctype, body = get(s, "/health")
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == {"status": "ok"}
    status, _, body = get(s, "/ready")
    assert status == 200
    assert json.loads(body) == {"checks": {"store": "ok", "audit": "ok"}, "status": "ready"}
    # HEAD answers the same status, without a body.
    assert get(s, "/health", "HEAD")[0] == 200
    # Other paths and methods are not health checks.
    assert get(s, "/healthz")[0] == 404
    # Nothing about the server: no version, no paths.
    assert b"kinko" not in body and b"/" not in body


def test_health_checks_are_not_audited(make_server):
    s = make_server(["--dev"])
    for _ in range(5):
        get(s, "/ready")
    kms = s.client()
    kms.list_keys()
    s.stop()
    import glob
    import os
    text = "".join(open(f).read() for f in glob.glob(os.path.join(s.data_dir, "audit", "*.jsonl")))
    assert "ListKeys" in text and "/ready" not in text and "health" not in text.lower()


def test_ready_fails_while_the_audit_trail_cannot_be_written(make_server):
    s = make_server(["--dev", "--audit-max-file-bytes", "4000"])
    kms = s.client()
    kms.create_key()
    resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
    try:
        failed = False
        for _ in range(20):
            try:
                kms.list_keys()
            except ClientError:
                failed = True
                break
        assert failed, "calls kept succeeding with no space for the audit log"
        status, _, body = get(s, "/ready")
        assert status == 503
        doc = json.loads(body)
        assert doc["status"] == "not ready" and doc["checks"]["audit"] == "failing"
        assert get(s, "/health")[0] == 200  # alive, not ready
    finally:
        resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    # Space is back: calls succeed, and once the window passes /ready says so.
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            kms.list_keys()
            if get(s, "/ready")[0] == 200:
                break
        except ClientError:
            pass
        time.sleep(0.5)
    assert get(s, "/ready")[0] == 200
