"""Secrets Manager rotation by an HTTP rotation function.

The function is an HTTP server started by the test. kinko POSTs it the
Lambda event {"SecretId", "ClientRequestToken", "Step"} as the body and the
credentials a Lambda's role would give it in X-Kinko-* headers (only when
the endpoint is on this machine); the function calls kinko back with boto3
and those credentials, as AWS's rotation templates do, for the four steps.
"""
import http.server
import json
import socket
import threading
import time
import uuid

import boto3
import botocore.config
import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError

from helpers import config_server, create_pending, finish_pending, wait_rotation

A = "111122223333"
ROOT = ("AKIAHTTPROTROOTAAAAA", "http-rot-root-secret-key")
ROTATOR = ("AKIAHTTPROTATORAAAAA", "http-rot-rotator-secret-key")
NOBODY = ("AKIAHTTPROTNOBODYAAA", "http-rot-nobody-secret-key")
FN = "arn:aws:lambda:us-east-1:%s:function:" % A
CRED_HEADERS = ("X-Kinko-Access-Key-Id", "X-Kinko-Secret-Access-Key")


def non_loopback_ip():
    """An address of this machine that is not loopback, or None."""
    for target in ("192.0.2.1", "10.255.255.254", "8.8.8.8"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.connect((target, 9))  # no packet is sent
            ip = s.getsockname()[0]
            if not ip.startswith("127."):
                return ip
        except OSError:
            pass
        finally:
            s.close()
    return None


class Function:
    """A rotation function served over HTTP. Each call is recorded with the
    event, which credential headers came, the step's outcome and, on
    failure, the AWS error code kinko answered the callback with."""

    def __init__(self):
        self.calls = []
        fn = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                event = json.loads(body)
                call = {"path": self.path, "event": event,
                        "headers": {h: self.headers.get(h) for h in
                                    CRED_HEADERS + ("X-Kinko-Region", "X-Kinko-Endpoint")},
                        "peer": self.client_address[0], "error": None}
                fn.calls.append(call)
                try:
                    fn.step(self.path, event, self.headers)
                    code = 200
                except ClientError as e:
                    call["error"] = e.response["Error"]["Code"]
                    code = 500
                except Exception as e:  # noqa: BLE001 - reported to kinko as a failure
                    call["error"] = type(e).__name__
                    code = 500
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def client(self, path, headers):
        endpoint, region = headers["X-Kinko-Endpoint"], headers["X-Kinko-Region"]
        ak, sk = headers.get("X-Kinko-Access-Key-Id"), headers.get("X-Kinko-Secret-Access-Key")
        if path == "/unsigned" or ak is None:
            return boto3.client("secretsmanager", endpoint_url=endpoint, region_name=region,
                                config=botocore.config.Config(signature_version=UNSIGNED))
        if path == "/tamper":
            sk = sk + "x"
        return boto3.client("secretsmanager", endpoint_url=endpoint, region_name=region,
                            aws_access_key_id=ak, aws_secret_access_key=sk)

    def step(self, path, event, headers):
        """The four steps of AWS's rotation template for a JSON secret."""
        sm = self.client(path, headers)
        arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
        if step == "createSecret":
            create_pending(sm, arn, token, 12)
        elif step == "setSecret":
            sm.describe_secret(SecretId=arn)
        elif step == "testSecret":
            json.loads(sm.get_secret_value(SecretId=arn, VersionId=token,
                                           VersionStage="AWSPENDING")["SecretString"])
        elif step == "finishSecret":
            finish_pending(sm, arn, token)
        else:
            raise ValueError(step)

    def steps_for(self, token):
        return [c for c in self.calls if c["event"]["ClientRequestToken"] == token]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def function():
    f = Function()
    yield f
    f.stop()


REMOTE_IP = non_loopback_ip()


@pytest.fixture
def srv(make_server, tmp_path, function):
    p = function.port
    fns = [
        {"arn": FN + "http-rotation", "url": "http://127.0.0.1:%d/rotate" % p,
         "access_key_id": ROTATOR[0]},
        {"arn": FN + "http-nobody", "url": "http://127.0.0.1:%d/rotate" % p,
         "access_key_id": NOBODY[0]},
        {"arn": FN + "http-tamper", "url": "http://localhost:%d/tamper" % p,
         "access_key_id": ROTATOR[0]},
        {"arn": FN + "http-dev-default", "url": "http://127.0.0.1:%d/rotate" % p},
    ]
    if REMOTE_IP:
        fns.append({"arn": FN + "http-remote", "url": "http://%s:%d/rotate" % (REMOTE_IP, p)})
    cfg = {
        "accounts": [{
            "id": A,
            "root_access_keys": [{"access_key_id": ROOT[0], "secret_access_key": ROOT[1]}],
            "users": [
                {"name": "rotator",
                 "access_keys": [{"access_key_id": ROTATOR[0], "secret_access_key": ROTATOR[1]}],
                 "policies": [{"Version": "2012-10-17", "Statement": [{
                     "Effect": "Allow",
                     "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                                "secretsmanager:PutSecretValue",
                                "secretsmanager:UpdateSecretVersionStage",
                                "kms:Decrypt", "kms:GenerateDataKey"],
                     "Resource": "*"}]}]},
                {"name": "nobody",
                 "access_keys": [{"access_key_id": NOBODY[0], "secret_access_key": NOBODY[1]}]},
            ]}],
        "rotation_functions": fns,
    }
    return config_server(make_server, tmp_path, cfg)


def sm(server, key=ROOT):
    return server.client("secretsmanager", key=key[0], secret=key[1])


def new_secret(client, password="p0"):
    n = "http-rot/%s" % uuid.uuid4().hex[:12]
    arn = client.create_secret(Name=n, SecretString=json.dumps({"username": "app",
                                                                "password": password}))["ARN"]
    return n, arn


def test_http_function_rotates_with_the_credentials_it_receives(srv, function):
    c = sm(srv)
    n, arn = new_secret(c)
    first = c.describe_secret(SecretId=n)["VersionIdsToStages"]
    token = c.rotate_secret(SecretId=n, RotationLambdaARN=FN + "http-rotation",
                            RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
    st = wait_rotation(srv, arn, token, key=ROOT[0], secret=ROOT[1])
    assert st["Status"] == "Succeeded", (st, function.steps_for(token))
    calls = function.steps_for(token)
    assert [x["event"]["Step"] for x in calls] == ["createSecret", "setSecret", "testSecret",
                                                   "finishSecret"]
    for x in calls:
        # The body is exactly the Lambda event.
        assert x["event"] == {"SecretId": arn, "ClientRequestToken": token,
                              "Step": x["event"]["Step"]}
        assert x["headers"]["X-Kinko-Access-Key-Id"] == ROTATOR[0]
        assert x["headers"]["X-Kinko-Secret-Access-Key"] == ROTATOR[1]
        assert x["headers"]["X-Kinko-Region"] == "us-east-1"
        assert x["headers"]["X-Kinko-Endpoint"].startswith("http://127.0.0.1:")
        assert x["error"] is None
    got = c.get_secret_value(SecretId=n)
    assert got["VersionId"] == token
    assert json.loads(got["SecretString"])["password"] != "p0"
    stages = c.describe_secret(SecretId=n)["VersionIdsToStages"]
    # "AWSPENDING ... might be attached to the same version as the AWSCURRENT version"
    assert set(stages[token]) <= {"AWSCURRENT", "AWSPENDING"} and "AWSCURRENT" in stages[token]
    assert stages[list(first)[0]] == ["AWSPREVIOUS"]
    # The function's writes were made by its own identity.
    v = c.list_secret_version_ids(SecretId=n)["Versions"]
    assert {x["VersionId"] for x in v} == {token, list(first)[0]}
    # Neither the secret key nor the new value reaches kinko's log.
    log = open(srv.log_path).read()
    assert ROTATOR[1] not in log
    assert json.loads(got["SecretString"])["password"] not in log


def test_identity_without_permission_fails_like_a_lambda_role(srv, function):
    c = sm(srv)
    n, arn = new_secret(c)
    token = c.rotate_secret(SecretId=n, RotationLambdaARN=FN + "http-nobody",
                            RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
    st = wait_rotation(srv, arn, token, key=ROOT[0], secret=ROOT[1])
    assert st["Status"] == "Failed" and st["Step"] == "createSecret", st
    assert "HTTP 500" in st["Message"]
    calls = function.steps_for(token)
    assert len(calls) == 1 and calls[0]["headers"]["X-Kinko-Access-Key-Id"] == NOBODY[0]
    assert calls[0]["error"] == "AccessDeniedException"
    # As in AWS: the value is unchanged and AWSPENDING stays on the reserved version.
    assert json.loads(c.get_secret_value(SecretId=n)["SecretString"])["password"] == "p0"
    assert c.describe_secret(SecretId=n)["VersionIdsToStages"][token] == ["AWSPENDING"]
    with pytest.raises(ClientError) as e:
        c.rotate_secret(SecretId=n)
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"


def test_wrong_secret_key_is_refused(srv, function):
    c = sm(srv)
    n, arn = new_secret(c)
    token = c.rotate_secret(SecretId=n, RotationLambdaARN=FN + "http-tamper",
                            RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
    st = wait_rotation(srv, arn, token, key=ROOT[0], secret=ROOT[1])
    assert st["Status"] == "Failed" and st["Step"] == "createSecret", st
    calls = function.steps_for(token)
    # "localhost" is this machine: the credentials were sent...
    assert calls[0]["headers"]["X-Kinko-Access-Key-Id"] == ROTATOR[0]
    # ... and a request signed with another secret key is refused.
    assert calls[0]["error"] == "InvalidSignatureException"
    assert json.loads(c.get_secret_value(SecretId=n)["SecretString"])["password"] == "p0"


def test_loopback_endpoint_without_access_key_gets_the_dev_identity(srv, function):
    # Dev mode: like an executable, the endpoint gets "test" (account 000000000000).
    c = srv.client("secretsmanager")
    n = "http-rot/%s" % uuid.uuid4().hex[:12]
    arn = c.create_secret(Name=n, SecretString=json.dumps({"password": "p0"}))["ARN"]
    token = c.rotate_secret(SecretId=n, RotationLambdaARN=FN + "http-dev-default")["VersionId"]
    st = wait_rotation(srv, arn, token, key="test", secret="test")
    assert st["Status"] == "Succeeded", (st, function.steps_for(token))
    assert all(x["headers"]["X-Kinko-Access-Key-Id"] == "test" for x in function.steps_for(token))
    # Account 111122223333's secret: "test" belongs to another account, so the
    # endpoint gets no credentials and its unsigned call is refused.
    c2 = sm(srv)
    n2, arn2 = new_secret(c2)
    token2 = c2.rotate_secret(SecretId=n2, RotationLambdaARN=FN + "http-dev-default")["VersionId"]
    st = wait_rotation(srv, arn2, token2, key=ROOT[0], secret=ROOT[1])
    assert st["Status"] == "Failed" and st["Step"] == "createSecret"
    call = function.steps_for(token2)[0]
    assert call["headers"]["X-Kinko-Access-Key-Id"] is None
    assert call["headers"]["X-Kinko-Secret-Access-Key"] is None
    assert call["error"] == "MissingAuthenticationTokenException"


@pytest.mark.skipif(REMOTE_IP is None, reason="this machine has no non-loopback address")
def test_no_credentials_to_a_remote_endpoint(srv, function):
    # In dev mode a loopback endpoint would get "test"; one reached over the
    # network gets the event alone, and its unsigned call is refused.
    c = srv.client("secretsmanager")
    n = "http-rot/%s" % uuid.uuid4().hex[:12]
    arn = c.create_secret(Name=n, SecretString=json.dumps({"password": "p0"}))["ARN"]
    token = c.rotate_secret(SecretId=n, RotationLambdaARN=FN + "http-remote")["VersionId"]
    st = wait_rotation(srv, arn, token, key="test", secret="test")
    assert st["Status"] == "Failed" and st["Step"] == "createSecret"
    call = function.steps_for(token)[0]
    assert call["peer"] == REMOTE_IP
    assert call["headers"]["X-Kinko-Access-Key-Id"] is None
    assert call["headers"]["X-Kinko-Secret-Access-Key"] is None
    assert call["headers"]["X-Kinko-Region"] == "us-east-1"
    assert call["error"] == "MissingAuthenticationTokenException"


@pytest.mark.parametrize("url", ["http://192.0.2.10:9000/rotate", "http://rotation.example:80/",
                                 "http://[2001:db8::1]:9000/"])
def test_remote_endpoint_with_credentials_is_refused(make_server, tmp_path, url):
    cfg = {"rotation_functions": [{"arn": FN + "remote", "url": url, "access_key_id": "test"}]}
    with pytest.raises(RuntimeError) as e:
        config_server(make_server, tmp_path, cfg, ["--dev"], data_dir=str(tmp_path))
    assert "must be on this machine" in str(e.value)


@pytest.mark.parametrize("url", ["http://localhost:9/", "http://127.0.0.2:9/x", "http://[::1]:9/"])
def test_loopback_endpoint_with_credentials_is_accepted(make_server, tmp_path, url):
    cfg = {"rotation_functions": [{"arn": FN + "local", "url": url, "access_key_id": "test"}]}
    s = config_server(make_server, tmp_path, cfg, ["--dev"], data_dir=str(tmp_path))
    assert s.port > 0


class Stall:
    """An endpoint that reads the event, then either never answers
    ("silent") or answers 200 with a body it never sends ("headers")."""

    def __init__(self, mode):
        self.release = threading.Event()
        self.steps = []
        stall = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stall.steps.append(json.loads(body)["Step"])
                if mode == "headers":
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.flush()
                stall.release.wait(30)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_endpoint_that_does_not_answer_times_out(make_server, tmp_path):
    stall = Stall("silent")
    try:
        cfg = {"rotation_functions": [{"arn": FN + "silent", "url": stall.url,
                                       "timeout_seconds": 1}]}
        s = config_server(make_server, tmp_path, cfg, ["--dev"], data_dir=str(tmp_path))
        c = s.client("secretsmanager")
        arn = c.create_secret(Name="stall", SecretString="{}")["ARN"]
        t0 = time.monotonic()
        token = c.rotate_secret(SecretId=arn, RotationLambdaARN=FN + "silent")["VersionId"]
        st = wait_rotation(s, arn, token, timeout=20, key="test", secret="test")
        took = time.monotonic() - t0
    finally:
        stall.stop()
    assert st["Status"] == "Failed" and st["Step"] == "createSecret", st
    assert "did not answer in time" in st["Message"], st
    assert stall.steps == ["createSecret"]
    assert took < 6, "the step took %.1f s with a 1 s timeout" % took


def test_endpoint_status_is_enough(make_server, tmp_path):
    # A 2xx status line ends the call: the answer's body is not waited for.
    stall = Stall("headers")
    try:
        cfg = {"rotation_functions": [{"arn": FN + "headers", "url": stall.url,
                                       "timeout_seconds": 20}]}
        s = config_server(make_server, tmp_path, cfg, ["--dev"], data_dir=str(tmp_path))
        c = s.client("secretsmanager")
        arn = c.create_secret(Name="headers", SecretString="{}")["ARN"]
        t0 = time.monotonic()
        token = c.rotate_secret(SecretId=arn, RotationLambdaARN=FN + "headers",
                                RotateImmediately=False)["VersionId"]
        st = wait_rotation(s, arn, token, timeout=20, key="test", secret="test")
        took = time.monotonic() - t0
    finally:
        stall.stop()
    assert st["Status"] == "Succeeded" and st.get("Test") is True, st
    assert stall.steps == ["testSecret"]
    assert took < 10, "the step waited %.1f s for a body" % took
