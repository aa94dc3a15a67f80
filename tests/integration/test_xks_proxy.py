"""kinko as an XKS proxy (`kinko serve --xks-listen`), driven as AWS KMS
drives one: the XKS Proxy API v1 (github.com/aws/aws-kms-xksproxy-api-spec)
over HTTPS, each request signed with SigV4 under the service name
kms-xks-proxy (botocore's SigV4Auth), against the spec's examples: every
operation, every error with its HTTP status, the audit trail. Then kinko's
own XKS client (`kinko xks check`) against it, and against a proxy that is
down, slow, or answers garbage."""
import base64
import datetime
import glob
import hashlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from unittest import mock

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import KINKO, Server, _sanitizer_clean
from helpers import TOKEN_SESSION

URI_PATH = "/keystores/ks-1/kms/xks/v1"
ACCESS_KEY = "BA6ALBUAHQZQ3SXO3IVDI6ONPE"
SECRET = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE="
# A second credential: "XKS proxies SHOULD support simultaneous usage of at
# least two sets of SigV4 credentials" (rotation).
ACCESS_KEY_2 = "CA7BLCUBHRZR4TXP4JWEJ7POQF"
SECRET_2 = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8="
ACCOUNT = "000000000000"

# The spec's request metadata and values (Encrypt's example).
METADATA = {
    "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
    "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "kmsOperation": "Encrypt",
    "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
    "kmsViaService": "ebs",
}
HELLO = "SGVsbG8gV29ybGQh"  # "Hello World!"
AAD = "cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n"  # "project=nile,department=marketing"


def alias_arn(name):
    return "arn:aws:kms:us-east-1:%s:alias/%s" % (ACCOUNT, name)


@pytest.fixture(scope="module")
def proxy():
    """A dev server with the XKS listener on a free port, its keys seeded:
    ext-1 (AES), ext-off (disabled below), ext-hmac (an HMAC key) and
    ext-gone (an ARN that names no key)."""
    d = tempfile.mkdtemp(prefix="kinko-xks-")
    seed = os.path.join(d, "seed.json")
    with open(seed, "w") as f:
        json.dump({"keys": [{"AliasName": "alias/xks-1"}, {"AliasName": "alias/xks-off"},
                            {"AliasName": "alias/xks-hmac", "KeySpec": "HMAC_256",
                             "KeyUsage": "GENERATE_VERIFY_MAC"}]}, f)
    cfg = os.path.join(d, "kinko.json")
    with open(cfg, "w") as f:
        json.dump({"xks": {
            "uri_path": URI_PATH, "region": "us-east-1",
            "credentials": [{"access_key_id": ACCESS_KEY, "secret_access_key": SECRET},
                            {"access_key_id": ACCESS_KEY_2, "secret_access_key": SECRET_2}],
            "keys": {"ext-1": alias_arn("xks-1"), "ext-off": alias_arn("xks-off"),
                     "ext-hmac": alias_arn("xks-hmac"), "ext-guarded": alias_arn("xks-1"),
                     "ext-gone": "arn:aws:kms:us-east-1:%s:key/"
                                 "00000000-0000-4000-8000-000000000000" % ACCOUNT},
            # ext-guarded: the same key, for Alice's Encrypt, Decrypt and DescribeKey only.
            "authorization": [{"external_key_id": "ext-guarded",
                               "aws_principal_arns": ["arn:aws:iam::123456789012:user/Ali*"],
                               "kms_operations": ["Encrypt", "Decrypt", "Describe*"]}]}}, f)
    data = os.path.join(d, "data")
    os.mkdir(data)
    s = Server(["--dev", "--tls-self-signed", "--config", cfg, "--seed", seed,
                "--xks-listen", "127.0.0.1:0"], data_dir=data).start()
    line = s.proc.stdout.readline().decode()
    assert "XKS proxy listening on https://" in line, line
    s.xks = line.split("listening on ")[1].split()[0]  # https://127.0.0.1:PORT/PATH
    s.xks_endpoint = s.xks[:-len(URI_PATH)]
    s.ca = os.path.join(data, "tls-cert.pem")
    s.ctx = ssl.create_default_context(cafile=s.ca)
    kms = boto3.client("kms", endpoint_url=s.endpoint, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test", verify=s.ca)
    kms.disable_key(KeyId=kms.describe_key(KeyId="alias/xks-off")["KeyMetadata"]["KeyId"])
    yield s
    rc = s.stop()
    _sanitizer_clean(s)
    shutil.rmtree(d, ignore_errors=True)
    assert rc == 0


def call(p, path, body, key=ACCESS_KEY, secret=SECRET, service="kms-xks-proxy",
         region="us-east-1", method="POST", raw=None, sign=True, date=None):
    """One request to the proxy: returns (status, parsed body or text)."""
    url = p.xks + path
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if sign:
        req = AWSRequest(method=method, url=url, data=data, headers=headers)
        if date is None:
            SigV4Auth(Credentials(key, secret), service, region).add_auth(req)
        else:
            class Then(datetime.datetime):
                @classmethod
                def utcnow(cls):
                    return date
            with mock.patch("botocore.auth.datetime.datetime", Then):
                SigV4Auth(Credentials(key, secret), service, region).add_auth(req)
        headers = dict(req.headers.items())
    r = urllib.request.Request(url, data=data if method == "POST" else None, method=method,
                               headers=headers)
    try:
        with urllib.request.urlopen(r, timeout=30, context=p.ctx) as resp:
            text = resp.read()
            return resp.status, json.loads(text)
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


def encrypt_body(**extra):
    b = {"requestMetadata": METADATA, "plaintext": HELLO, "encryptionAlgorithm": "AES_GCM"}
    b.update(extra)
    return b


def decrypt_body(enc, **extra):
    b = {"requestMetadata": dict(METADATA, kmsOperation="Decrypt"),
         "encryptionAlgorithm": "AES_GCM", "ciphertext": enc["ciphertext"],
         "ciphertextMetadata": enc["ciphertextMetadata"],
         "initializationVector": enc["initializationVector"],
         "authenticationTag": enc["authenticationTag"]}
    b.update(extra)
    return {k: v for k, v in b.items() if v is not None}


def assert_error(got, status, name):
    code, body = got
    assert code == status, got
    assert isinstance(body, dict) and body["errorName"] == name, got
    msg = body.get("errorMessage", "")
    assert len(msg) < 512 and all(0x20 <= ord(c) <= 0x7e for c in msg), msg


# ---- the four operations -------------------------------------------------------------------

def test_get_health_status(proxy):
    code, body = call(proxy, "/health", {"requestMetadata": {
        "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
        "kmsOperation": "CreateCustomKeyStore"}})
    assert code == 200
    assert isinstance(body["xksProxyFleetSize"], int) and body["xksProxyFleetSize"] > 0
    for k in ("xksProxyVendor", "xksProxyModel", "ekmVendor"):
        assert isinstance(body[k], str) and body[k]
    fleet = body["ekmFleetDetails"]
    assert 1 <= len(fleet) <= 10
    assert fleet[0]["healthStatus"] == "ACTIVE"
    assert set(fleet[0]) == {"id", "model", "healthStatus"}


def test_get_key_metadata(proxy):
    # The spec's example: kmsOperation DescribeKey with kmsKeyArn; CreateKey without it.
    code, body = call(proxy, "/keys/ext-1/metadata",
                      {"requestMetadata": dict(METADATA, kmsOperation="DescribeKey")})
    assert (code, body) == (200, {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"],
                                  "keyStatus": "ENABLED"})
    md = {k: v for k, v in METADATA.items() if k != "kmsKeyArn"}
    code, body = call(proxy, "/keys/ext-1/metadata",
                      {"requestMetadata": dict(md, kmsOperation="CreateKey")})
    assert code == 200 and body["keyStatus"] == "ENABLED"
    # A disabled kinko key is a DISABLED external key.
    code, body = call(proxy, "/keys/ext-off/metadata", {"requestMetadata": METADATA})
    assert code == 200 and body["keyStatus"] == "DISABLED"
    # Not an AES key: described as it is (KMS refuses it at CreateKey).
    code, body = call(proxy, "/keys/ext-hmac/metadata", {"requestMetadata": METADATA})
    assert code == 200 and body["keySpec"] != "AES_256"


def cdiv(aad, enc):
    d = lambda k: base64.b64decode(enc.get(k, ""))
    return base64.b64encode(hashlib.sha256(
        aad + d("ciphertextMetadata") + d("initializationVector") + d("ciphertext")
        + d("authenticationTag")).digest()).decode()


def test_encrypt_decrypt_spec_example(proxy):
    """The spec's Encrypt example (with AAD and the CDIV), then its Decrypt."""
    code, enc = call(proxy, "/keys/ext-1/encrypt", encrypt_body(
        additionalAuthenticatedData=AAD, ciphertextDataIntegrityValueAlgorithm="SHA_256"))
    assert code == 200, enc
    assert len(base64.b64decode(enc["ciphertext"])) == len(base64.b64decode(HELLO))
    assert len(base64.b64decode(enc["initializationVector"])) in (12, 16)
    assert len(base64.b64decode(enc["authenticationTag"])) == 16
    assert len(base64.b64decode(enc["ciphertextMetadata"])) <= 20
    assert enc["ciphertextDataIntegrityValue"] == cdiv(base64.b64decode(AAD), enc)
    code, dec = call(proxy, "/keys/ext-1/decrypt",
                     decrypt_body(enc, additionalAuthenticatedData=AAD))
    assert (code, dec) == (200, {"plaintext": HELLO})


def test_encrypt_without_aad_or_cdiv(proxy):
    code, enc = call(proxy, "/keys/ext-1/encrypt", encrypt_body())
    assert code == 200 and "ciphertextDataIntegrityValue" not in enc
    code, dec = call(proxy, "/keys/ext-1/decrypt", decrypt_body(enc))
    assert (code, dec) == (200, {"plaintext": HELLO})
    # The same plaintext twice: two IVs, two ciphertexts.
    code, enc2 = call(proxy, "/keys/ext-1/encrypt", encrypt_body())
    assert enc2["initializationVector"] != enc["initializationVector"]


def test_largest_sizes_the_spec_requires(proxy):
    """4300 bytes of plaintext and 8192 bytes of AAD must work."""
    pt = base64.b64encode(os.urandom(4300)).decode()
    aad = base64.b64encode(os.urandom(8192)).decode()
    code, enc = call(proxy, "/keys/ext-1/encrypt", encrypt_body(
        plaintext=pt, additionalAuthenticatedData=aad,
        ciphertextDataIntegrityValueAlgorithm="SHA_256"))
    assert code == 200, enc
    code, dec = call(proxy, "/keys/ext-1/decrypt", decrypt_body(enc, additionalAuthenticatedData=aad))
    assert (code, dec) == (200, {"plaintext": pt})


def test_second_credential_and_any_kms_operation(proxy):
    code, body = call(proxy, "/keys/ext-1/metadata",
                      {"requestMetadata": dict(METADATA, kmsOperation="BulkDescribeKey")},
                      key=ACCESS_KEY_2, secret=SECRET_2)
    assert code == 200, body


# ---- errors, with the spec's names and HTTP statuses ------------------------------------------

def test_validation_exception(proxy):
    for body in ({}, {"requestMetadata": METADATA},
                 encrypt_body(encryptionAlgorithm="AES_CBC"),
                 encrypt_body(plaintext="not base64!"),
                 encrypt_body(ciphertextDataIntegrityValueAlgorithm="MD5"),
                 {"requestMetadata": {"kmsOperation": "Encrypt"}, "plaintext": HELLO,
                  "encryptionAlgorithm": "AES_GCM"}):
        assert_error(call(proxy, "/keys/ext-1/encrypt", body), 400, "ValidationException")
    assert_error(call(proxy, "/keys/ext-1/encrypt", None, raw=b"{not json"), 400,
                 "ValidationException")
    # ValidationException is for "ALL except GetHealthStatus": a health check
    # without its requestMetadata is still answered.
    code, body = call(proxy, "/health", {})
    assert code == 200 and body["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"


def test_invalid_ciphertext_exception(proxy):
    _, enc = call(proxy, "/keys/ext-1/encrypt", encrypt_body(additionalAuthenticatedData=AAD))
    other_aad = base64.b64encode(b"project=amazon").decode()
    flipped = bytearray(base64.b64decode(enc["authenticationTag"]))
    flipped[0] ^= 1
    for changes in ({"additionalAuthenticatedData": other_aad},
                    {"additionalAuthenticatedData": None},
                    {"additionalAuthenticatedData": AAD,
                     "authenticationTag": base64.b64encode(bytes(flipped)).decode()},
                    {"additionalAuthenticatedData": AAD, "ciphertextMetadata": None},
                    {"additionalAuthenticatedData": AAD,
                     "ciphertextMetadata": base64.b64encode(b"key_version=1").decode()}):
        assert_error(call(proxy, "/keys/ext-1/decrypt", decrypt_body(enc, **changes)), 400,
                     "InvalidCiphertextException")


def test_invalid_key_usage_and_state(proxy):
    assert_error(call(proxy, "/keys/ext-hmac/encrypt", encrypt_body()), 400,
                 "InvalidKeyUsageException")
    assert_error(call(proxy, "/keys/ext-off/encrypt", encrypt_body()), 400,
                 "InvalidStateException")


def test_key_not_found_exception(proxy):
    assert_error(call(proxy, "/keys/no-such-key/metadata", {"requestMetadata": METADATA}), 404,
                 "KeyNotFoundException")
    assert_error(call(proxy, "/keys/ext-gone/encrypt", encrypt_body()), 404,
                 "KeyNotFoundException")


def test_invalid_uri_path_exception(proxy):
    base = proxy.xks
    try:
        for path in ("/keys/ext-1/sign", "/healthz", "/keys/ext-1", "/keys/a%20b/encrypt"):
            assert_error(call(proxy, path, {"requestMetadata": METADATA}), 404,
                         "InvalidUriPathException")
        proxy.xks = proxy.xks_endpoint + "/kms/xks/v1"  # without the configured prefix
        assert_error(call(proxy, "/health", {"requestMetadata": METADATA}), 404,
                     "InvalidUriPathException")
    finally:
        proxy.xks = base


def test_authentication_failed_exception(proxy):
    body = {"requestMetadata": METADATA}
    for kw in ({"secret": "wrong"}, {"key": "AKIAUNKNOWNUNKNOWN2345"},
               {"service": "kms"}, {"region": "eu-west-1"}, {"sign": False},
               {"date": datetime.datetime.utcnow() - datetime.timedelta(minutes=6)},
               {"date": datetime.datetime.utcnow() + datetime.timedelta(minutes=6)}):
        assert_error(call(proxy, "/keys/ext-1/metadata", body, **kw), 401,
                     "AuthenticationFailedException")
    # The signature covers the body: a changed body after signing is refused.
    req = AWSRequest(method="POST", url=proxy.xks + "/health",
                     data=json.dumps({"requestMetadata": {"kmsRequestId": "a",
                                                          "kmsOperation": "b"}}).encode(),
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET), "kms-xks-proxy", "us-east-1").add_auth(req)
    r = urllib.request.Request(proxy.xks + "/health", method="POST",
                               data=json.dumps({"requestMetadata": {"kmsRequestId": "c",
                                                                    "kmsOperation": "b"}}).encode(),
                               headers=dict(req.headers.items()))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(r, timeout=30, context=proxy.ctx)
    assert e.value.code == 401


def test_get_is_method_not_allowed(proxy):
    code, _ = call(proxy, "/health", None, method="GET")
    assert code == 405


def test_unsupported_operation_exception(proxy):
    """Past kinko's 8192-byte plaintext (the spec's minimum is 4300)."""
    big = base64.b64encode(os.urandom(8193)).decode()
    assert_error(call(proxy, "/keys/ext-1/encrypt", encrypt_body(plaintext=big)), 501,
                 "UnsupportedOperationException")


def test_request_metadata_in_the_audit_trail(proxy):
    rid = "audit-%d" % time.time_ns()
    code, _ = call(proxy, "/keys/ext-1/encrypt",
                   encrypt_body(requestMetadata=dict(METADATA, kmsRequestId=rid)))
    assert code == 200
    events = []
    for _ in range(50):
        time.sleep(0.1)
        events = []
        for path in glob.glob(os.path.join(proxy.data_dir, "audit", "kinko-audit-*.jsonl")):
            with open(path) as f:
                events += [json.loads(l)["event"] for l in f if rid in l]
        if events:
            break
    assert len(events) == 1, events
    ev = events[0]
    assert ev["eventSource"] == "kms-xks-proxy" and ev["eventName"] == "Encrypt"
    assert ev["requestParameters"]["requestMetadata"]["kmsRequestId"] == rid
    assert ev["requestParameters"]["requestMetadata"]["awsPrincipalArn"] == METADATA["awsPrincipalArn"]
    assert ev["requestParameters"]["externalKeyId"] == "ext-1"
    assert ev["userIdentity"]["accessKeyId"] == ACCESS_KEY
    text = json.dumps(ev)
    assert HELLO not in text and "plaintext" not in text


def audit_events(p, needle):
    """The audit events whose line holds needle, once written."""
    events = []
    for _ in range(50):
        time.sleep(0.1)
        events = []
        for path in glob.glob(os.path.join(p.data_dir, "audit", "kinko-audit-*.jsonl")):
            with open(path) as f:
                events += [json.loads(l)["event"] for l in f if needle in l]
        if events:
            break
    return events


def test_authorization_on_request_metadata(proxy):
    """xks.authorization: ext-guarded takes Alice's Encrypt, Decrypt and DescribeKey
    only; anyone else (a service principal too) or another operation is the
    spec's 403 AccessDeniedException, recorded in the audit trail with the metadata
    and the list that refused it. Keys without a rule, and health, are not refused."""
    code, enc = call(proxy, "/keys/ext-guarded/encrypt", encrypt_body())
    assert code == 200, enc
    code, dec = call(proxy, "/keys/ext-guarded/decrypt", decrypt_body(enc))
    assert (code, dec) == (200, {"plaintext": HELLO})
    code, body = call(proxy, "/keys/ext-guarded/metadata",
                      {"requestMetadata": dict(METADATA, kmsOperation="DescribeKey")})
    assert code == 200 and body["keyStatus"] == "ENABLED"
    rid = "denied-%d" % time.time_ns()
    bob = dict(METADATA, awsPrincipalArn="arn:aws:iam::123456789012:user/Bob", kmsRequestId=rid)
    assert_error(call(proxy, "/keys/ext-guarded/encrypt", encrypt_body(requestMetadata=bob)),
                 403, "AccessDeniedException")
    assert_error(call(proxy, "/keys/ext-guarded/decrypt",
                      decrypt_body(enc, requestMetadata=dict(bob, kmsOperation="Decrypt"))),
                 403, "AccessDeniedException")
    # Alice, through an operation the rule does not list.
    assert_error(call(proxy, "/keys/ext-guarded/encrypt", encrypt_body(
        requestMetadata=dict(METADATA, kmsOperation="GenerateDataKey"))),
        403, "AccessDeniedException")
    # A service principal (an AWS service calling KMS on Alice's behalf) is not Alice.
    assert_error(call(proxy, "/keys/ext-guarded/metadata", {"requestMetadata": dict(
        METADATA, awsPrincipalArn="ec2.amazonaws.com", kmsOperation="DescribeKey")}),
        403, "AccessDeniedException")
    # The same key under ext-1, which has no rule, takes Bob.
    assert call(proxy, "/keys/ext-1/encrypt", encrypt_body(requestMetadata=bob))[0] == 200
    assert call(proxy, "/health", {"requestMetadata": {"kmsRequestId": "r",
                                                       "kmsOperation": "KmsHealthCheck"}})[0] == 200
    # An unknown key stays KeyNotFoundException.
    assert_error(call(proxy, "/keys/ext-none/encrypt", encrypt_body(requestMetadata=bob)), 404,
                 "KeyNotFoundException")
    events = [e for e in audit_events(proxy, rid) if e.get("errorCode") == "AccessDeniedException"]
    assert len(events) == 2, events
    for ev in events:
        assert ev["eventSource"] == "kms-xks-proxy"
        assert ev["errorCode"] == "AccessDeniedException", ev
        assert "aws_principal_arns" in ev["errorMessage"] and "Bob" in ev["errorMessage"]
        md = ev["requestParameters"]["requestMetadata"]
        assert md["kmsRequestId"] == rid and md["awsPrincipalArn"].endswith("user/Bob")
        assert ev["requestParameters"]["externalKeyId"] == "ext-guarded"
        assert ev["recipientAccountId"] == ACCOUNT
    assert sorted(e["eventName"] for e in events) == ["Decrypt", "Encrypt"]


def test_authorization_config_errors(tmp_path):
    """A rule for a key that is not configured, a duplicate, an empty list, or no list
    at all: kinko refuses to start and says why."""
    base = {"uri_path": URI_PATH,
            "credentials": [{"access_key_id": ACCESS_KEY, "secret_access_key": SECRET}],
            "keys": {"k": alias_arn("k")}}
    cases = [
        ([{"external_key_id": "other", "kms_operations": ["Encrypt"]}], "must name a key"),
        ([{"external_key_id": "k", "kms_operations": ["Encrypt"]},
          {"external_key_id": "k", "kms_operations": ["Decrypt"]}], "two rules"),
        ([{"external_key_id": "k", "aws_principal_arns": []}], "1 to 64 patterns"),
        ([{"external_key_id": "k"}], "needs aws_principal_arns or kms_operations"),
        ([{"external_key_id": "k", "kms_operation": ["Encrypt"]}], "kms_operation"),
    ]
    for rules, why in cases:
        cfg = tmp_path / "kinko.json"
        cfg.write_text(json.dumps({"xks": dict(base, authorization=rules)}))
        p = subprocess.run([KINKO, "serve", "--dev", "--config", str(cfg), "--data",
                            str(tmp_path / "data"), "--listen", "127.0.0.1:0"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and why in p.stderr, (rules, p.stderr)


# ---- kinko's XKS client: kinko xks check ----------------------------------------------------

def xks_check(endpoint, ca, tmp_path, key_id="ext-1", secret=SECRET, timeout_ms=None,
              uri_path=URI_PATH):
    sf = tmp_path / "secret"
    sf.write_text(secret + "\n")
    cmd = [KINKO, "xks", "check", "--endpoint", endpoint, "--uri-path", uri_path,
           "--access-key-id", ACCESS_KEY, "--secret-file", str(sf), "--key-id", key_id,
           "--ca-file", ca]
    if timeout_ms is not None:
        cmd += ["--timeout-ms", str(timeout_ms)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return p, time.monotonic() - t0


def test_xks_check_passes(proxy, tmp_path):
    p, _ = xks_check(proxy.xks_endpoint, proxy.ca, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.strip().splitlines()
    names = ["GetHealthStatus", "GetKeyMetadata", "Encrypt/Decrypt without AAD",
             "Encrypt/Decrypt with AAD", "Decrypt, other AAD refused",
             "Decrypt, tampered ciphertext refused", "wrong signature refused",
             "unknown key refused"]
    for name in names:
        assert any(l.startswith("ok") and name in l for l in lines), (name, p.stdout)
    assert "401 AuthenticationFailedException" in p.stdout
    assert "404 KeyNotFoundException" in p.stdout
    assert lines[-1].startswith("ok: 0 check(s) failed")


def test_xks_check_fails_on_a_bad_key(proxy, tmp_path):
    p, _ = xks_check(proxy.xks_endpoint, proxy.ca, tmp_path, key_id="ext-off")
    assert p.returncode == 1
    assert "InvalidStateException (XksKeyInvalidConfigurationException)" in p.stdout
    p, _ = xks_check(proxy.xks_endpoint, proxy.ca, tmp_path, secret="not-the-secret")
    assert p.returncode == 1
    assert "AuthenticationFailedException (XksProxyIncorrectAuthenticationCredentialException)" \
        in p.stdout
    p, _ = xks_check(proxy.xks_endpoint, proxy.ca, tmp_path, uri_path="/other/kms/xks/v1")
    assert "InvalidUriPathException (XksProxyInvalidConfigurationException)" in p.stdout


def test_xks_check_usage_errors(tmp_path):
    p = subprocess.run([KINKO, "xks", "check", "--endpoint", "https://127.0.0.1:1"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    p = subprocess.run([KINKO, "xks", "check", "--frob", "x"], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown option --frob" in p.stderr


# ---- the client against a proxy that is down, slow, or answers garbage ------------------------

class FakeProxy(http.server.BaseHTTPRequestHandler):
    mode = "garbage"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.server.mode == "slow":
            time.sleep(3)
        if self.server.mode == "html":
            body, code = b"<html>Bad Gateway</html>", 502
        else:
            body, code = b"this is not JSON", 200
        try:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *a):
        pass


@pytest.fixture
def fake_proxy(proxy):
    servers = []

    def start(mode):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeProxy)
        srv.daemon_threads = True
        srv.mode = mode
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(proxy.ca, os.path.join(os.path.dirname(proxy.ca), "tls-key.pem"))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return "https://127.0.0.1:%d" % srv.server_address[1]

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def failures(p):
    return [l for l in p.stdout.splitlines() if l.startswith("FAIL ")]


def test_client_against_a_proxy_that_is_down(proxy, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    p, took = xks_check("https://127.0.0.1:%d" % port, proxy.ca, tmp_path, timeout_ms=1000)
    assert p.returncode == 1
    fails = failures(p)
    assert len(fails) == 6, p.stdout  # every call but the two that follow a failed encrypt
    assert all("XksProxyUriUnreachableException" in l for l in fails), p.stdout
    assert took < 10


def test_client_against_a_slow_proxy(proxy, fake_proxy, tmp_path):
    endpoint = fake_proxy("slow")
    p, took = xks_check(endpoint, proxy.ca, tmp_path, timeout_ms=500)
    assert p.returncode == 1
    fails = failures(p)
    assert len(fails) == 6, p.stdout
    assert all("XksProxyUriUnreachableException" in l and "imed out" in l for l in fails), p.stdout
    # Six calls of at most half a second each, not six sleeps of three seconds.
    assert took < 8, took


def test_client_against_a_proxy_answering_garbage(proxy, fake_proxy, tmp_path):
    p, _ = xks_check(fake_proxy("garbage"), proxy.ca, tmp_path, timeout_ms=2000)
    assert p.returncode == 1
    fails = failures(p)
    assert len(fails) == 6, p.stdout
    assert all("XksProxyInvalidResponseException" in l for l in fails), p.stdout
    p, _ = xks_check(fake_proxy("html"), proxy.ca, tmp_path, timeout_ms=2000)
    assert all("XksProxyInvalidResponseException" in l and "502" in l
               for l in failures(p)), p.stdout


def test_client_refuses_an_unverified_certificate(proxy, tmp_path):
    """TLS is verified: the proxy's self-signed certificate without --ca-file is refused."""
    other_ca = tmp_path / "other.pem"
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", other_ca)
    p, _ = xks_check(proxy.xks_endpoint, str(other_ca), tmp_path, timeout_ms=2000)
    assert p.returncode == 1
    assert all("XksProxyUriUnreachableException" in l for l in failures(p)), p.stdout


# ---- mutual TLS -------------------------------------------------------------------------------

def make_ca(d, name):
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)
    ca_key, ca = os.path.join(d, name + "-ca.key"), os.path.join(d, name + "-ca.pem")
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-days", "2", "-subj", "/CN=%s test CA" % name, "-keyout", ca_key, "-out", ca)
    return ca, ca_key


def issue(d, ca, ca_key, name, cn):
    """A client certificate of that CA with subject CN=cn."""
    run = lambda *a: subprocess.run(list(a), check=True, capture_output=True)
    key, csr, crt = (os.path.join(d, name + s) for s in (".key", ".csr", ".pem"))
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=" + cn, "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-out", crt)
    return crt, key


def test_mutual_tls(tmp_path):
    """--xks-client-ca and client_subject: a certificate of that CA with that CN is
    served; none, one of another CA, or one with another CN has its connection
    closed before any answer."""
    d = str(tmp_path)
    ca, ca_key = make_ca(d, "good")
    other_ca, other_key = make_ca(d, "other")
    cn = "cks.kms.us-east-1.amazonaws.com"
    good = issue(d, ca, ca_key, "good", cn)
    wrong_ca = issue(d, other_ca, other_key, "wrong-ca", cn)
    wrong_cn = issue(d, ca, ca_key, "wrong-cn", "cks.kms.eu-west-1.amazonaws.com")
    cfg = tmp_path / "kinko.json"
    cfg.write_text(json.dumps({"xks": {
        "uri_path": URI_PATH, "client_subject": cn,
        "credentials": [{"access_key_id": ACCESS_KEY, "secret_access_key": SECRET}]}}))
    data = tmp_path / "data"
    data.mkdir()
    s = Server(["--dev", "--tls-self-signed", "--config", str(cfg), "--xks-listen",
                "127.0.0.1:0", "--xks-client-ca", ca], data_dir=str(data)).start()
    try:
        line = s.proc.stdout.readline().decode()
        assert "mutual TLS" in line, line
        s.xks = line.split("listening on ")[1].split()[0]
        body = {"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}
        for cert, ok in ((good, True), (None, False), (wrong_ca, False), (wrong_cn, False)):
            s.ctx = ssl.create_default_context(cafile=str(data / "tls-cert.pem"))
            if cert is not None:
                s.ctx.load_cert_chain(*cert)
            if ok:
                code, answer = call(s, "/health", body)
                assert code == 200, answer
            else:
                with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
                    call(s, "/health", body)
    finally:
        assert s.stop() == 0
        _sanitizer_clean(s)


# ---- keys held in a PKCS#11 token (SoftHSM2) ---------------------------------------------------

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
needs_softhsm = pytest.mark.skipif(
    not os.path.exists(MODULE) or shutil.which("softhsm2-util") is None,
    reason="SoftHSM2 is not installed (scripts/setup.sh)")
TOKEN_ID = "cluster-xkstokenaaa"
TOKEN_LABEL = "xkstoken"
TOKEN_PIN = "pin-xks-4567"

# Counts the secret key objects of a token through the PKCS#11 API (the module's
# C_* functions), in a process of its own: argv = module, label, PIN.
COUNT_OBJECTS = TOKEN_SESSION + r"""
cls = UL(4)  # CKO_SECRET_KEY
tmpl = (Attr * 1)(Attr(0, ctypes.cast(ctypes.byref(cls), ctypes.c_void_p), ctypes.sizeof(cls)))
assert lib.C_FindObjectsInit(sess, tmpl, UL(1)) == 0
objs = (UL * 256)(); got = UL()
assert lib.C_FindObjects(sess, objs, UL(256), ctypes.byref(got)) == 0
lib.C_FindObjectsFinal(sess)
lib.C_Logout(sess); lib.C_CloseSession(sess); lib.C_Finalize(None)
print(got.value)
"""


def token_objects(p):
    out = subprocess.run(["/usr/bin/python3", "-c", COUNT_OBJECTS, MODULE, TOKEN_LABEL, TOKEN_PIN],
                         capture_output=True, text=True, env=p.env, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


@pytest.fixture(scope="module")
def token_proxy():
    """A test-mode server whose XKS proxy serves ext-hsm, a key generated inside a
    throw-away SoftHSM2 token (an AWS_CLOUDHSM custom key store), and ext-soft, a
    software key."""
    d = tempfile.mkdtemp(prefix="kinko-xks-hsm-")
    tokendir = os.path.join(d, "tokens")
    os.mkdir(tokendir, 0o700)
    conf = os.path.join(d, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s\nobjectstore.backend = file\n" % tokendir)
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL,
                    "--pin", TOKEN_PIN, "--so-pin", "so-pin-7654321"],
                   check=True, capture_output=True, env=env)
    anchor = os.path.join(d, "customerCA.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", anchor + ".key", "-out",
                    anchor, "-subj", "/CN=kinko test CA", "-days", "2"],
                   check=True, capture_output=True)
    cfg = os.path.join(d, "kinko.json")
    with open(cfg, "w") as f:
        json.dump({"hsm_tokens": [{"id": TOKEN_ID, "module": MODULE, "token_label": TOKEN_LABEL,
                                   "trust_anchor_file": "customerCA.crt"}],
                   "xks": {"uri_path": URI_PATH, "region": "us-east-1",
                           "credentials": [{"access_key_id": ACCESS_KEY,
                                            "secret_access_key": SECRET}],
                           "keys": {"ext-hsm": alias_arn("xks-hsm"),
                                    "ext-soft": alias_arn("xks-soft")}}}, f)
    data = os.path.join(d, "data")
    os.mkdir(data)
    saved = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = conf  # the server inherits it
    s = Server(["--dev", "--test-mode", "--tls-self-signed", "--config", cfg,
                "--xks-listen", "127.0.0.1:0"], data_dir=data).start()
    line = s.proc.stdout.readline().decode()
    assert "XKS proxy listening on https://" in line, line
    s.env = env
    s.xks = line.split("listening on ")[1].split()[0]
    s.xks_endpoint = s.xks[:-len(URI_PATH)]
    s.ca = os.path.join(data, "tls-cert.pem")
    s.ctx = ssl.create_default_context(cafile=s.ca)
    s.kms = boto3.client("kms", endpoint_url=s.endpoint, region_name="us-east-1",
                         aws_access_key_id="test", aws_secret_access_key="test", verify=s.ca)
    s.store = s.kms.create_custom_key_store(
        CustomKeyStoreName="xks-hsm", CloudHsmClusterId=TOKEN_ID,
        TrustAnchorCertificate=open(anchor).read(),
        KeyStorePassword=TOKEN_PIN)["CustomKeyStoreId"]
    s.kms.connect_custom_key_store(CustomKeyStoreId=s.store)
    s.hsm_key = s.kms.create_key(CustomKeyStoreId=s.store,
                                 Origin="AWS_CLOUDHSM")["KeyMetadata"]["KeyId"]
    s.kms.create_alias(AliasName="alias/xks-hsm", TargetKeyId=s.hsm_key)
    s.kms.create_alias(AliasName="alias/xks-soft",
                       TargetKeyId=s.kms.create_key()["KeyMetadata"]["KeyId"])
    yield s
    rc = s.stop()
    _sanitizer_clean(s)
    if saved is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = saved
    shutil.rmtree(d, ignore_errors=True)
    assert rc == 0


@needs_softhsm
def test_token_key_passes_xks_check(token_proxy, tmp_path):
    """kinko's own XKS client against a token-backed key: health, metadata, round trips
    with and without AAD, a changed AAD and a tampered ciphertext refused, a wrong
    signature and an unknown key refused with the spec's errors."""
    p, _ = xks_check(token_proxy.xks_endpoint, token_proxy.ca, tmp_path, key_id="ext-hsm")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "401 AuthenticationFailedException" in p.stdout
    assert "404 KeyNotFoundException" in p.stdout
    assert p.stdout.strip().splitlines()[-1].startswith("ok: 0 check(s) failed")


@needs_softhsm
def test_token_key_metadata_health_and_round_trip(token_proxy):
    p = token_proxy
    code, body = call(p, "/keys/ext-hsm/metadata", {"requestMetadata": METADATA})
    assert (code, body) == (200, {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"],
                                  "keyStatus": "ENABLED"})
    code, body = call(p, "/health", {"requestMetadata": {"kmsRequestId": "r",
                                                         "kmsOperation": "KmsHealthCheck"}})
    assert code == 200
    fleet = {e["id"]: e for e in body["ekmFleetDetails"]}
    assert fleet[TOKEN_ID]["healthStatus"] == "ACTIVE"
    assert body["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"
    code, enc = call(p, "/keys/ext-hsm/encrypt", encrypt_body(
        additionalAuthenticatedData=AAD, ciphertextDataIntegrityValueAlgorithm="SHA_256"))
    assert code == 200, enc
    assert enc["ciphertextDataIntegrityValue"] == cdiv(base64.b64decode(AAD), enc)
    assert len(base64.b64decode(enc["initializationVector"])) == 12
    code, dec = call(p, "/keys/ext-hsm/decrypt", decrypt_body(enc, additionalAuthenticatedData=AAD))
    assert (code, dec) == (200, {"plaintext": HELLO})
    # Another AAD, none, a flipped tag, or the software key: refused.
    other = base64.b64encode(b"project=other").decode()
    assert_error(call(p, "/keys/ext-hsm/decrypt", decrypt_body(
        enc, additionalAuthenticatedData=other)), 400, "InvalidCiphertextException")
    assert_error(call(p, "/keys/ext-hsm/decrypt", decrypt_body(enc)), 400,
                 "InvalidCiphertextException")
    tag = bytearray(base64.b64decode(enc["authenticationTag"]))
    tag[0] ^= 1
    assert_error(call(p, "/keys/ext-hsm/decrypt", decrypt_body(
        enc, additionalAuthenticatedData=AAD, authenticationTag=base64.b64encode(tag).decode())),
        400, "InvalidCiphertextException")
    assert_error(call(p, "/keys/ext-soft/decrypt", decrypt_body(
        enc, additionalAuthenticatedData=AAD)), 400, "InvalidCiphertextException")
    # The proxy's messages never open as the key's KMS ciphertexts, nor the other way.
    blob = p.kms.encrypt(KeyId=p.hsm_key, Plaintext=b"Hello World!")["CiphertextBlob"]
    assert p.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"Hello World!"
    assert_error(call(p, "/keys/ext-hsm/decrypt", {
        "requestMetadata": METADATA, "encryptionAlgorithm": "AES_GCM",
        "ciphertext": base64.b64encode(blob[38:-16]).decode(),
        "ciphertextMetadata": enc["ciphertextMetadata"],
        "initializationVector": base64.b64encode(blob[22:34]).decode(),
        "authenticationTag": base64.b64encode(blob[-16:]).decode()}),
        400, "InvalidCiphertextException")
    # Wrong signature and unknown key, as for a software key.
    assert_error(call(p, "/keys/ext-hsm/encrypt", encrypt_body(), secret=SECRET_2), 401,
                 "AuthenticationFailedException")
    assert_error(call(p, "/keys/ext-none/metadata", {"requestMetadata": METADATA}), 404,
                 "KeyNotFoundException")


@needs_softhsm
def test_token_key_while_its_store_is_disconnected(token_proxy):
    """A store that is not connected: the key is DISABLED, Encrypt and Decrypt are
    InvalidStateException, the token UNAVAILABLE in the health answer; connected
    again, what was encrypted before decrypts."""
    p = token_proxy
    code, enc = call(p, "/keys/ext-hsm/encrypt", encrypt_body(additionalAuthenticatedData=AAD))
    assert code == 200, enc
    p.kms.disconnect_custom_key_store(CustomKeyStoreId=p.store)
    try:
        code, body = call(p, "/keys/ext-hsm/metadata", {"requestMetadata": METADATA})
        assert code == 200 and body["keyStatus"] == "DISABLED"
        assert_error(call(p, "/keys/ext-hsm/encrypt", encrypt_body()), 400,
                     "InvalidStateException")
        assert_error(call(p, "/keys/ext-hsm/decrypt", decrypt_body(
            enc, additionalAuthenticatedData=AAD)), 400, "InvalidStateException")
        code, body = call(p, "/health", {"requestMetadata": {"kmsRequestId": "r",
                                                             "kmsOperation": "KmsHealthCheck"}})
        assert code == 200
        fleet = {e["id"]: e for e in body["ekmFleetDetails"]}
        assert fleet[TOKEN_ID]["healthStatus"] == "UNAVAILABLE"
        # The software key is served as before.
        assert call(p, "/keys/ext-soft/encrypt", encrypt_body())[0] == 200
    finally:
        p.kms.connect_custom_key_store(CustomKeyStoreId=p.store)
    code, dec = call(p, "/keys/ext-hsm/decrypt", decrypt_body(enc, additionalAuthenticatedData=AAD))
    assert (code, dec) == (200, {"plaintext": HELLO})


def kinko_test(p, operation, body=None):
    """KinkoTest.<operation> over the server's self-signed HTTPS."""
    req = AWSRequest(method="POST", url=p.endpoint + "/", data=json.dumps(body or {}).encode(),
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": "KinkoTest." + operation})
    SigV4Auth(Credentials("test", "test"), "kms", "us-east-1").add_auth(req)
    r = urllib.request.Request(p.endpoint + "/", data=req.body, method="POST",
                               headers=dict(req.headers.items()))
    with urllib.request.urlopen(r, timeout=60, context=p.ctx) as resp:
        return json.loads(resp.read() or b"{}")


# Last in this file: it moves the server's clock, which the proxy's SigV4 dates follow.
@needs_softhsm
def test_deleted_token_key_destroys_its_object(token_proxy):
    """A token key whose waiting period passes has its object destroyed in the
    token; with the token's store not connected at that moment the key is still
    deleted in kinko, and its object is destroyed once the store is connected."""
    p, kms = token_proxy, token_proxy.kms
    first = kms.create_key(CustomKeyStoreId=p.store, Origin="AWS_CLOUDHSM")["KeyMetadata"]["KeyId"]
    second = kms.create_key(CustomKeyStoreId=p.store, Origin="AWS_CLOUDHSM")["KeyMetadata"]["KeyId"]
    before = token_objects(p)
    assert before >= 3  # ext-hsm's key and these two
    for kid in (first, second):
        kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    kinko_test(p, "RunScheduler")
    assert token_objects(p) == before  # still pending: nothing destroyed
    # The first key's window passes while the store is connected.
    kms.cancel_key_deletion(KeyId=second)
    kinko_test(p, "AdvanceClock", {"Seconds": 7 * 86400 + 60})
    kinko_test(p, "RunScheduler")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=first)
    assert token_objects(p) == before - 1
    # The second one's while it is not: deleted in kinko, its object kept for later.
    kms.schedule_key_deletion(KeyId=second, PendingWindowInDays=7)
    kms.disconnect_custom_key_store(CustomKeyStoreId=p.store)
    kinko_test(p, "AdvanceClock", {"Seconds": 7 * 86400 + 60})
    kinko_test(p, "RunScheduler")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=second)
    kinko_test(p, "RunScheduler")
    assert token_objects(p) == before - 1
    kms.connect_custom_key_store(CustomKeyStoreId=p.store)
    kinko_test(p, "RunScheduler")
    assert token_objects(p) == before - 2
    # The key the proxy serves is untouched.
    assert kms.describe_key(KeyId=p.hsm_key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=p.hsm_key, Plaintext=b"x")[
        "CiphertextBlob"])["Plaintext"] == b"x"
    # After a restart, with no key of the store used since, the deletion logs in to
    # the store (recorded CONNECTED) to destroy the object.
    third = kms.create_key(CustomKeyStoreId=p.store, Origin="AWS_CLOUDHSM")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=third, PendingWindowInDays=7)
    assert token_objects(p) == before - 1
    assert p.stop() == 0
    p.start()
    line = p.proc.stdout.readline().decode()
    assert "XKS proxy listening on https://" in line, line
    kms = p.kms = boto3.client("kms", endpoint_url=p.endpoint, region_name="us-east-1",
                               aws_access_key_id="test", aws_secret_access_key="test",
                               verify=p.ca)
    kinko_test(p, "AdvanceClock", {"Seconds": 30 * 86400})
    kinko_test(p, "RunScheduler")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=third)
    assert token_objects(p) == before - 2
