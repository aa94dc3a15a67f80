"""Shared fixtures: a real kinko server process and real AWS clients.

The binary is build/kinko unless KINKO_BIN names another (the sanitizer
build, for instance). Every server runs on a free loopback port with its
own temporary data folder.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import boto3
import botocore.config
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINKO = os.environ.get("KINKO_BIN", os.path.join(ROOT, "build", "kinko"))
AWS_CLI = os.environ.get("KINKO_AWS_CLI", "/usr/bin/aws")


class Server:
    """A kinko process; start() waits for its 'listening on' line."""

    def __init__(self, args, data_dir=None):
        self.args = list(args)
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="kinko-test-")
        self.proc = None
        self.endpoint = None
        self.log_path = os.path.join(self.data_dir, "server.log")

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

    def client(self, service="kms", region="us-east-1", key="test", secret="test",
               validate=True, token=None):
        cfg = botocore.config.Config(parameter_validation=validate,
                                     retries={"max_attempts": 1, "mode": "standard"})
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            aws_session_token=token, config=cfg)

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
    """Under ASan/UBSan, a report in the server log is a failure."""
    try:
        text = open(server.log_path, errors="replace").read()
    except OSError:
        return
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert marker not in text, "sanitizer report in server log:\n" + text[-4000:]


@pytest.fixture(scope="session")
def server():
    s = Server(["--dev"]).start()
    yield s
    rc = s.stop()
    _sanitizer_clean(s)
    s.cleanup()
    assert rc == 0, "server exited with %s" % rc


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
