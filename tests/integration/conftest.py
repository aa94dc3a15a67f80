"""Shared fixtures: a real kinko server process and real AWS clients.

The binary is build/kinko unless KINKO_BIN names another (the sanitizer
build, for instance). Every server runs on a free loopback port with its
own temporary data folder.

KINKO_TEST_STORE=postgresql runs every server on the PostgreSQL backend:
one throw-away PostgreSQL for the session (the Postgres class below), and
one fresh database per data folder, so that a server restarted on the
same folder finds its records again. A test that names its own --store
keeps it. Tests that can only apply to SQLite (they open kinko.db
themselves) are skipped there through `sqlite_only`.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time

import boto3
import botocore.config
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINKO = os.environ.get("KINKO_BIN", os.path.join(ROOT, "build", "kinko"))
AWS_CLI = os.environ.get("KINKO_AWS_CLI", "/usr/bin/aws")
TEST_STORE = os.environ.get("KINKO_TEST_STORE", "sqlite")

# Tests that cannot apply to the PostgreSQL store, and why: they are
# skipped when KINKO_TEST_STORE=postgresql (pytest_collection_modifyitems).
SQLITE_ONLY = {
    "test_aliases_quota.py::test_quota_counts_aliases_made_before_the_index":
        "rewrites records in kinko.db with the sqlite3 module",
    "test_aliases_quota.py::test_key_deletion_removes_its_alias_index":
        "reads records from kinko.db with the sqlite3 module",
    "test_grants_scale.py::test_grants_of_older_key_documents_still_honoured":
        "rewrites key documents and grant records in kinko.db with the sqlite3 module",
    "test_grants_scale.py::test_key_deletion_deletes_its_grants":
        "reads records from kinko.db with the sqlite3 module",
    "test_lifecycle.py::test_deletion_carried_out_with_the_test_clock":
        "reads kinko.db and its -wal file for the deleted material",
    "test_process.py::test_store_without_check_value_adopts_only_its_root_key":
        "deletes the check value record from kinko.db with the sqlite3 module",
    "test_secrets_fidelity.py::test_documents_with_second_dates_still_read":
        "rewrites secret documents in kinko.db with the sqlite3 module",
    "test_hardening.py::test_check_detects_damage":
        "damages the pages of kinko.db (PostgreSQL's pages are the server's to check)",
    "test_hardening.py::test_fault_locked_database":
        "holds SQLite's write lock from another process",
    "test_hardening.py::test_fault_disk_full":
        "fills the filesystem under kinko.db (test_pg_store.py stops PostgreSQL instead)",
    "test_hardening.py::test_fault_read_only_folder":
        "remounts the folder of kinko.db read-only (test_pg_store.py stops PostgreSQL instead)",
    "test_audit.py::test_fail_closed_when_the_log_cannot_be_written":
        "its file-size limit stops the SQLite store's writes as well as the audit log's; "
        "a PostgreSQL store keeps taking the CreateKey whose audit event then fails",
}


def pytest_collection_modifyitems(config, items):
    if TEST_STORE == "sqlite":
        return
    for item in items:
        reason = SQLITE_ONLY.get("%s::%s" % (os.path.basename(str(item.fspath)), item.name))
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason="SQLite store only: " + reason))


def with_store(args):
    """A kinko command line with the test store added: on PostgreSQL, the
    database that stands for its --data folder (unless it names a --store)."""
    args = list(args)
    if TEST_STORE == "postgresql" and "--store" not in args and "--data" in args:
        args += ["--store", pg_database_for(args[args.index("--data") + 1])[1]]
    return args


class Server:
    """A kinko process; start() waits for its 'listening on' line."""

    def __init__(self, args, data_dir=None):
        self.args = list(args)
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="kinko-test-")
        self.proc = None
        self.endpoint = None
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.pg_db = None
        if TEST_STORE == "postgresql" and "--store" not in self.args:
            self.pg_db, url = pg_database_for(self.data_dir)
            self.args += ["--store", url]

    def start(self, port=0):
        listen = "127.0.0.1:%d" % port
        cmd = [KINKO, "serve", "--listen", listen, "--data", self.data_dir] + self.args
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError("kinko did not start: %r\n%s" % (line, open(self.log_path).read()))
        self.endpoint = line.split("listening on ")[1].split()[0]
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        return self

    def root_key_path(self):
        """The root key file: --root-key's, else the one in the data folder."""
        if "--root-key" in self.args:
            return self.args[self.args.index("--root-key") + 1]
        return os.path.join(self.data_dir, "root.key")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else 0
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "log", None):
            self.log.close()
        return rc

    def cleanup(self):
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            if self.pg_db is not None:
                pg_drop_database(self.pg_db)

    def client(self, service="kms", region="us-east-1", key="test", secret="test",
               validate=True, token=None):
        cfg = botocore.config.Config(parameter_validation=validate,
                                     retries={"max_attempts": 1, "mode": "standard"})
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            aws_session_token=token, config=cfg)

    # Test mode (a server started with --test-mode): the KinkoTest service.
    def test_call(self, operation, body=None, region="us-east-1", key="test", secret="test"):
        """Sends a signed KinkoTest.<operation> request; returns the parsed
        answer, or raises AssertionError with the error body."""
        import urllib.error
        import urllib.request
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        data = json.dumps(body or {}).encode()
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=self.endpoint + "/", data=data,
            headers={"Content-Type": "application/x-amz-json-1.1",
                     "X-Amz-Target": "KinkoTest." + operation})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret),
                                "kms", region).add_auth(req)
        prepared = req.prepare()
        r = urllib.request.Request(prepared.url, data=prepared.body, method="POST",
                                   headers=dict(prepared.headers.items()))
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise AssertionError("KinkoTest.%s failed (%d): %s" % (operation, e.code, e.read()))

    def advance_clock(self, seconds, **kw):
        """Moves the server clock forward (needs --test-mode); returns the server's new now."""
        return self.test_call("AdvanceClock", {"Seconds": int(seconds)}, **kw)["Now"]

    def run_scheduler(self, **kw):
        """Runs all due scheduled work (deletions, rotations, ...) now and waits for it."""
        return self.test_call("RunScheduler", {}, **kw)

    def reset(self, **kw):
        """Empties the caller's account: keys, aliases, grants, secrets, caches."""
        return self.test_call("Reset", {}, **kw)

    def aws(self, *args, region="us-east-1", key="test", secret="test", check=True):
        """Runs the AWS CLI against this server; returns (rc, stdout, stderr)."""
        env = dict(os.environ)
        env.update({
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": region,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
        })
        env.pop("AWS_PROFILE", None)
        p = subprocess.run([AWS_CLI, "--endpoint-url", self.endpoint, "--output", "json"] + list(args),
                           capture_output=True, text=True, env=env, timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("aws %s failed: %s" % (" ".join(args), p.stderr))
        return p.returncode, p.stdout, p.stderr


def _sanitizer_clean(server):
    """Under ASan/UBSan/TSan, a report in the server log is a failure."""
    try:
        text = open(server.log_path, errors="replace").read()
    except OSError:
        return
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                   "WARNING: ThreadSanitizer", "ThreadSanitizer:"):
        assert marker not in text, "sanitizer report in server log:\n" + text[-4000:]


@pytest.fixture(scope="session")
def server():
    if os.environ.get("KINKO_TEST_CLUSTER") == "nginx":  # through a cluster: pgcluster.py
        from pgcluster import cluster_session_server
        yield from cluster_session_server()
        return
    s = Server(["--dev"]).start()
    yield s
    rc = s.stop()
    _sanitizer_clean(s)
    s.cleanup()
    assert rc == 0, "server exited with %s" % rc


@pytest.fixture
def direct_server(server):
    """One kinko node itself: the session server, or through a cluster
    (KINKO_TEST_CLUSTER=nginx) node-1 directly rather than nginx, for the
    tests of a node's own HTTP layer and files."""
    return getattr(server, "direct", server)


@pytest.fixture
def make_server():
    """Starts extra servers (own data folders) and stops them at the end."""
    started = []

    def make(args, data_dir=None):
        s = Server(args, data_dir=data_dir).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()
        _sanitizer_clean(s)
        s.cleanup()


@pytest.fixture
def kms(server):
    return server.client()


@pytest.fixture
def kms_raw(server):
    """A client without client-side validation, to reach the server's own checks."""
    return server.client(validate=False)


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)
    os.chmod(path, 0o600)
    return path


def audit_ring_positions(audit_dir):
    """(head, tail) of the write-mode ring (docs/AUDIT.md): the bytes ever
    written into it and drained from it into the log files."""
    with open(os.path.join(audit_dir, "kinko-audit.ring"), "rb") as f:
        hdr = f.read(40)
    assert hdr[:8] == b"KINKORNG"
    return struct.unpack_from("<QQ", hdr, 24)


def wait_audit_drained(audit_dir, timeout=10):
    """Waits until the write-mode ring of audit_dir has been drained into
    the log files (within AUDIT_FLUSH_MS on a running server), so that a
    test reading the files sees every answered call."""
    if not os.path.exists(os.path.join(audit_dir, "kinko-audit.ring")):
        return
    deadline = time.time() + timeout
    while True:
        head, tail = audit_ring_positions(audit_dir)
        if head == tail or time.time() > deadline:
            return
        time.sleep(0.05)


# Secrets Manager: a temporary PostgreSQL server for the rotation-function
# tests (Debian's postgresql package). It listens on a free loopback port
# only, keeps its data in a temporary folder, and runs as the postgres
# user, because PostgreSQL refuses to run as root.
class Postgres:
    def __init__(self):
        import glob
        import secrets as pysecrets
        import socket
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            pytest.skip("PostgreSQL is not installed (scripts/setup.sh installs it)")
        self.bin = os.path.dirname(bins[-1])
        self.dir = tempfile.mkdtemp(prefix="kinko-pg-")
        self.data = os.path.join(self.dir, "data")
        self.password = pysecrets.token_hex(16)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.host = "127.0.0.1"
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        self.as_root = os.geteuid() == 0
        if self.as_root:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chmod(self.dir, 0o700)
            for p in (self.dir, pwfile):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=scram-sha-256",
                  "--pwfile=" + pwfile, "-E", "UTF8")
        os.unlink(pwfile)
        self._run("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.dir, "pg.log"),
                  "-o", "-c listen_addresses=127.0.0.1 -p %d -k %s" % (self.port, self.dir),
                  "start")

    def _run(self, tool, *args):
        cmd = [os.path.join(self.bin, tool)] + list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def halt(self):
        """Stops the server (fast shutdown: sessions are cut), keeping its data."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def resume(self):
        """Starts the server again on the same port and data."""
        self._run("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.dir, "pg.log"),
                  "-o", "-c listen_addresses=127.0.0.1 -p %d -k %s" % (self.port, self.dir),
                  "start")

    def connect(self, user="postgres", password=None, dbname="postgres"):
        import psycopg2
        conn = psycopg2.connect(host=self.host, port=self.port, user=user, dbname=dbname,
                                password=self.password if password is None else password,
                                connect_timeout=5)
        conn.autocommit = True
        return conn

    def can_login(self, user, password):
        import psycopg2
        try:
            self.connect(user, password).close()
            return True
        except psycopg2.OperationalError:
            return False

    def stop(self):
        try:
            self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


    def url(self, dbname):
        return "postgresql://postgres:%s@%s:%d/%s" % (self.password, self.host, self.port, dbname)

    def create_database(self, dbname):
        c = self.connect()
        try:
            c.cursor().execute('CREATE DATABASE "%s"' % dbname)
        finally:
            c.close()
        return self.url(dbname)


_shared_pg = None
_pg_dbs = {}
_pg_count = [0]


def shared_postgres():
    """The session's one PostgreSQL (started on first use, stopped at exit)."""
    global _shared_pg
    if _shared_pg is None:
        import atexit
        _shared_pg = Postgres()
        atexit.register(_shared_pg.stop)
    return _shared_pg


def pg_database_for(data_dir):
    """The database that stands for a data folder: (name, URL), made on first use."""
    pg = shared_postgres()
    key = os.path.realpath(data_dir)
    if key not in _pg_dbs:
        _pg_count[0] += 1
        name = "kinko_%d" % _pg_count[0]
        pg.create_database(name)
        _pg_dbs[key] = name
    return _pg_dbs[key], pg.url(_pg_dbs[key])


def pg_drop_database(name):
    try:
        c = shared_postgres().connect()
        c.cursor().execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        c.close()
    except Exception:
        pass
    for k, v in list(_pg_dbs.items()):
        if v == name:
            del _pg_dbs[k]


@pytest.fixture(scope="session")
def postgres():
    yield shared_postgres()
