"""The kinko process: who may use a data folder, which root key, signals.

- One server per data folder: a second `kinko serve` on a running server's
  folder is refused before it touches the store or the audit trail (so the
  running server's trail still verifies), and so is a server whose listen
  address is taken, whatever its folder.
- The root key must be the store's: a valid 32-byte key of another store
  is refused at start (the store keeps the root key's check value), and
  `kinko check` says so.
- Outside dev mode the root key file may not live in the data folder
  unless the operator says so (--allow-root-key-in-data or
  "root_key_in_data_dir_ok": true).
- SIGTERM during a rotation step ends the rotation function (its whole
  process group) within a bounded time, starts no further step, records
  the rotation as failed at that step before sealing the audit file, and
  the next RotateSecret with the same token runs it again.
- SIGHUP reopens the log file (--log-file) and the server goes on serving.
"""
import json
import os
import signal
import sqlite3
import subprocess
import textwrap
import time
import uuid

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import KINKO, Server, _sanitizer_clean, with_store, write_json
from helpers import (TEMPLATE_STEPS, config_server, raw_describe, rotation_function,
                     wait_rotation, write_function)

ACCOUNT = "111122223333"
AK, SK = "AKIAPROCESSTEST00001", "process-test-secret"
CONFIG = {"accounts": [{"id": ACCOUNT,
                        "root_access_keys": [{"access_key_id": AK, "secret_access_key": SK}]}]}


def audit_verify(audit_dir):
    p = subprocess.run([KINKO, "audit", "verify", audit_dir], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


def run_serve(args, timeout=20):
    """A kinko serve expected to refuse to start: (exit status, stderr)."""
    p = subprocess.run([KINKO, "serve"] + with_store(args), capture_output=True, text=True,
                       timeout=timeout)
    assert "listening on" not in p.stdout, p.stdout
    return p.returncode, p.stderr


def client(endpoint, key=AK, secret=SK, service="kms"):
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)


def alive(pid):
    """True if pid is a live process (a zombie is not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def folder(path):
    """A data folder for a Server (it keeps its log there, so it must exist)."""
    os.makedirs(str(path), mode=0o700, exist_ok=True)
    return str(path)


def new_root_key(path):
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(path, 0o600)
    return str(path)


# ---- one server per data folder -------------------------------------------------

def test_second_server_on_same_folder_refused(make_server, tmp_path):
    data = folder(tmp_path / "data")
    a = make_server(["--dev"], data_dir=data)
    kms = a.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"first")["CiphertextBlob"]
    audit_before = sorted(os.listdir(os.path.join(data, "audit")))

    # On the running server's own port (it would fail to listen) and on a
    # free one: both refused, naming the running server.
    for listen in ("127.0.0.1:%d" % a.port, "127.0.0.1:0"):
        rc, err = run_serve(["--dev", "--listen", listen, "--data", data])
        assert rc != 0
        assert "another kinko (pid %d) is using %s" % (a.proc.pid, data) in err, err
    assert sorted(os.listdir(os.path.join(data, "audit"))) == audit_before

    # The running server goes on, and its trail verifies: nothing was sealed
    # or written behind its back.
    for i in range(5):
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"first"
        kms.encrypt(KeyId=key, Plaintext=b"more %d" % i)
    assert a.stop() == 0
    rc, out = audit_verify(os.path.join(data, "audit"))
    assert rc == 0, out


def test_shared_audit_folder_refused(make_server, tmp_path):
    audit = folder(tmp_path / "audit")
    a = make_server(["--dev", "--audit-dir", audit], data_dir=folder(tmp_path / "a"))
    a.client().create_key()
    rc, err = run_serve(["--dev", "--listen", "127.0.0.1:0", "--data", str(tmp_path / "b"),
                         "--audit-dir", audit])
    assert rc != 0
    assert "another kinko (pid %d) is using %s" % (a.proc.pid, audit) in err, err
    a.client().create_key()
    assert a.stop() == 0
    rc, out = audit_verify(audit)
    assert rc == 0, out


def test_lock_of_killed_server_does_not_block_restart(make_server, tmp_path):
    data = folder(tmp_path / "data")
    a = make_server(["--dev"], data_dir=data)
    key = a.client().create_key()["KeyMetadata"]["KeyId"]
    a.kill9()
    assert os.path.exists(os.path.join(data, "kinko.lock"))
    b = make_server(["--dev"], data_dir=data)
    assert b.client().describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    with open(os.path.join(data, "kinko.lock")) as f:
        assert f.read().strip() == str(b.proc.pid)


def test_taken_listen_address_changes_nothing(make_server, tmp_path):
    a = make_server(["--dev"], data_dir=folder(tmp_path / "a"))
    other = tmp_path / "b"
    rc, err = run_serve(["--dev", "--listen", "127.0.0.1:%d" % a.port, "--data", str(other)])
    assert rc != 0
    assert "cannot listen on 127.0.0.1:%d" % a.port in err, err
    # No store, no audit trail, no root key made for a server that never ran.
    left = set(os.listdir(other)) if other.exists() else set()
    assert left <= {"kinko.lock"}, left


# ---- the root key belongs to its store ------------------------------------------

def config_args(tmp_path, root_key, extra=()):
    cfg = write_json(str(tmp_path / "kinko.json"), CONFIG)
    return ["--config", cfg, "--root-key", root_key] + list(extra)


def test_wrong_root_key_refused_at_start(tmp_path):
    data = folder(tmp_path / "data")
    keys = tmp_path / "keys"
    keys.mkdir()
    right = new_root_key(keys / "root.key")
    wrong = new_root_key(keys / "other.key")
    s = Server(config_args(tmp_path, right), data_dir=data).start()
    try:
        kms = client(s.endpoint)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key, Plaintext=b"kept")["CiphertextBlob"]
    finally:
        assert s.stop() == 0
        _sanitizer_clean(s)

    rc, err = run_serve(["--listen", "127.0.0.1:0", "--data", data] + config_args(tmp_path, wrong))
    assert rc != 0
    assert "the root key %s does not match the store in %s (key check value differs)" % (
        wrong, data) in err, err

    p = subprocess.run([KINKO] + with_store(["check", "--data", data, "--root-key", wrong]),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "key check value differs" in p.stderr, p.stdout + p.stderr
    p = subprocess.run([KINKO] + with_store(["check", "--data", data, "--root-key", right]),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "matches the store's key check value" in p.stdout, p.stdout + p.stderr

    # The right key still starts, and everything decrypts.
    s = Server(config_args(tmp_path, right), data_dir=data).start()
    try:
        assert client(s.endpoint).decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    finally:
        assert s.stop() == 0
        _sanitizer_clean(s)


def test_store_without_check_value_adopts_only_its_root_key(tmp_path):
    """A store from before check values: a wrong key is refused by its key
    material, and the right key records the check value."""
    data = folder(tmp_path / "data")
    keys = tmp_path / "keys"
    keys.mkdir()
    right = new_root_key(keys / "root.key")
    wrong = new_root_key(keys / "other.key")
    s = Server(config_args(tmp_path, right), data_dir=data).start()
    try:
        key = client(s.endpoint).create_key()["KeyMetadata"]["KeyId"]
    finally:
        assert s.stop() == 0
    db = sqlite3.connect(os.path.join(data, "kinko.db"))
    db.execute("DELETE FROM docs WHERE kind = 'meta'")
    db.commit()
    db.close()

    rc, err = run_serve(["--listen", "127.0.0.1:0", "--data", data] + config_args(tmp_path, wrong))
    assert rc != 0
    assert "does not match the store in %s" % data in err, err

    s = Server(config_args(tmp_path, right), data_dir=data).start()
    try:
        assert client(s.endpoint).describe_key(KeyId=key)["KeyMetadata"]["Enabled"]
    finally:
        assert s.stop() == 0
        _sanitizer_clean(s)
    rc, err = run_serve(["--listen", "127.0.0.1:0", "--data", data] + config_args(tmp_path, wrong))
    assert rc != 0 and "key check value differs" in err, err


# ---- the root key outside the data folder ------------------------------------------

def test_root_key_in_data_folder_refused_outside_dev_mode(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    inside = new_root_key(data / "root.key")
    cfg = write_json(str(tmp_path / "kinko.json"), CONFIG)
    # The default root key file (DATA/root.key) and a named one inside.
    for extra in ([], ["--root-key", inside]):
        rc, err = run_serve(["--listen", "127.0.0.1:0", "--data", str(data), "--config", cfg] + extra)
        assert rc != 0
        assert "is inside the data folder" in err and "--allow-root-key-in-data" in err, err
    assert not (data / "kinko.db").exists()

    # Allowed by the flag, and by the configuration.
    s = Server(["--config", cfg, "--allow-root-key-in-data"], data_dir=str(data)).start()
    try:
        client(s.endpoint).create_key()
    finally:
        assert s.stop() == 0
        _sanitizer_clean(s)
    cfg_ok = write_json(str(tmp_path / "kinko-ok.json"), dict(CONFIG, root_key_in_data_dir_ok=True))
    s = Server(["--config", cfg_ok], data_dir=str(data)).start()
    try:
        assert len(client(s.endpoint).list_keys()["Keys"]) == 1
    finally:
        assert s.stop() == 0
        _sanitizer_clean(s)


# ---- shutdown during a rotation --------------------------------------------------

SLOW_FUNCTION = textwrap.dedent('''\
    #!/usr/bin/python3
    # Records each step with its pid; while HANG exists, createSecret ignores
    # SIGTERM and waits on a child of its own (which ignores it too), as a
    # function stuck in a slow database call would.
    import json, os, secrets, signal, subprocess, sys
    import boto3


''') + TEMPLATE_STEPS + textwrap.dedent('''

    event = json.load(sys.stdin)
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    with open(os.environ["STEP_LOG"], "a") as f:
        f.write("%s %d\\n" % (step, os.getpid()))
    sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"],
                      region_name=os.environ["AWS_REGION"])
    if step == "createSecret":
        create_pending(sm, arn, token, 8)
        if os.path.exists(os.environ["HANG"]):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            child = subprocess.Popen(["sleep", "120"])
            with open(os.environ["CHILD_PID"], "w") as f:
                f.write(str(child.pid))
            child.wait()
    elif step == "finishSecret":
        finish_pending(sm, arn, token)
''')

SLOW_ARN = "arn:aws:lambda:us-east-1:000000000000:function:slow-rotation"


def test_sigterm_during_rotation_step(make_server, tmp_path):
    fn = write_function(tmp_path / "slow.py", SLOW_FUNCTION)
    steps, hang, child_pid = tmp_path / "steps", tmp_path / "hang", tmp_path / "child.pid"
    hang.write_text("")
    cfg = {"rotation_functions": [rotation_function(
        SLOW_ARN, fn, tmp_path / "fn.log", STEP_LOG=str(steps), HANG=str(hang),
        CHILD_PID=str(child_pid))]}
    data = folder(tmp_path / "data")
    s = config_server(make_server, tmp_path, cfg, data_dir=data)
    sm = s.client("secretsmanager")
    arn = sm.create_secret(Name="db", SecretString=json.dumps({"password": "old"}))["ARN"]
    token = str(uuid.uuid4())
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=SLOW_ARN, ClientRequestToken=token,
                     RotationRules={"AutomaticallyAfterDays": 30})
    deadline = time.time() + 60
    while not (child_pid.exists() and child_pid.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    function_pid = int(steps.read_text().split()[1])
    sleeper = int(child_pid.read_text())
    assert alive(function_pid) and alive(sleeper)

    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(timeout=40)
    took = time.monotonic() - t0
    assert rc == 0
    # 5 s of grace before SIGKILL, then the outcome is recorded.
    assert took < 12, "shutdown took %.1f s" % took
    time.sleep(0.2)
    assert not alive(function_pid), "the rotation function was left running"
    assert not alive(sleeper), "the rotation function's own child was left running"
    # No step after the interrupted one; none logged after "shutting down".
    assert [line.split()[0] for line in steps.read_text().splitlines()] == ["createSecret"]
    log = open(s.log_path).read()
    after = log[log.index("shutting down"):]
    assert "ending the rotation function (pid %d)" % function_pid in after, after
    for step in ("setSecret", "testSecret", "finishSecret"):
        assert ": %s" % step not in after, after
    rc, out = audit_verify(os.path.join(data, "audit"))
    assert rc == 0, out
    assert "RotationFailed" in "".join(
        open(os.path.join(data, "audit", f), errors="replace").read()
        for f in os.listdir(os.path.join(data, "audit")) if f.endswith(".jsonl"))

    # As AWS leaves an interrupted rotation: AWSPENDING stays on the new
    # version, the rotation failed at its step, and RotateSecret with the
    # same token runs it again.
    hang.unlink()
    s2 = config_server(make_server, tmp_path, cfg, data_dir=data)
    sm2 = s2.client("secretsmanager")
    st = raw_describe(sm2, arn)
    assert "AWSPENDING" in st["VersionIdsToStages"][token], st
    assert st["KinkoRotationStatus"]["Status"] == "Failed", st
    assert st["KinkoRotationStatus"]["Step"] == "createSecret", st
    with pytest.raises(ClientError) as e:
        sm2.rotate_secret(SecretId=arn)
    assert "A previous rotation isn't complete" in str(e.value)
    sm2.rotate_secret(SecretId=arn, ClientRequestToken=token)
    assert wait_rotation(sm2, arn, token)["Status"] == "Succeeded"
    assert sm2.get_secret_value(SecretId=arn)["VersionId"] == token
    assert [line.split()[0] for line in steps.read_text().splitlines()] == [
        "createSecret", "createSecret", "setSecret", "testSecret", "finishSecret"]


def test_sigterm_during_endpoint_step(make_server, tmp_path):
    """An http:// rotation function that does not answer: the call is
    abandoned at shutdown instead of waited for."""
    import http.server
    import threading
    release = threading.Event()
    calls = []

    class Hang(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["Step"])
            release.wait(60)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hang)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/" % httpd.server_address[1]
        cfg = {"rotation_functions": [{"arn": SLOW_ARN, "url": url}]}
        data = folder(tmp_path / "data")
        s = config_server(make_server, tmp_path, cfg, data_dir=data)
        sm = s.client("secretsmanager")
        arn = sm.create_secret(Name="db", SecretString="{}")["ARN"]
        token = str(uuid.uuid4())
        sm.rotate_secret(SecretId=arn, RotationLambdaARN=SLOW_ARN, ClientRequestToken=token)
        deadline = time.time() + 30
        while not calls and time.time() < deadline:
            time.sleep(0.05)
        assert calls == ["createSecret"]
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=40) == 0
        took = time.monotonic() - t0
        assert took < 5, "shutdown took %.1f s" % took
        rc, out = audit_verify(os.path.join(data, "audit"))
        assert rc == 0, out
    finally:
        release.set()
        httpd.shutdown()
    assert calls == ["createSecret"]
    s2 = config_server(make_server, tmp_path, cfg, data_dir=data)
    st = raw_describe(s2.client("secretsmanager"), arn)["KinkoRotationStatus"]
    assert st["Status"] == "Failed" and st["Step"] == "createSecret", st
    assert "shutdown" in st["Message"], st


# ---- SIGHUP ------------------------------------------------------------------------

def test_sighup_keeps_serving(make_server, tmp_path):
    data = folder(tmp_path / "data")
    s = make_server(["--dev"], data_dir=data)
    kms = s.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(2):
        s.proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        assert s.proc.poll() is None, "SIGHUP killed the server"
        kms.encrypt(KeyId=key, Plaintext=b"after SIGHUP")
    assert s.stop() == 0
    rc, out = audit_verify(os.path.join(data, "audit"))
    assert rc == 0, out


def test_sighup_reopens_log_file(make_server, tmp_path):
    log = tmp_path / "kinko.log"
    data = folder(tmp_path / "data")
    s = make_server(["--dev", "--log-file", str(log)], data_dir=data)
    kms = s.client()
    kms.create_key()
    assert "audit: logging to" in log.read_text()
    # What logrotate does: rename, then SIGHUP.
    rotated = tmp_path / "kinko.log.1"
    os.rename(log, rotated)
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while not log.exists() and time.time() < deadline:
        time.sleep(0.05)
    kms.create_key()
    assert s.stop() == 0
    new = log.read_text()
    assert "SIGHUP: log file reopened" in new and "shutting down" in new, new
    old = rotated.read_text()
    assert "shutting down" not in old and "SIGHUP" not in old, old
    assert oct(os.stat(log).st_mode & 0o777) == "0o600"
    rc, out = audit_verify(os.path.join(data, "audit"))
    assert rc == 0, out
