"""Who may do what, and with which signature: the headers a JSON request
must sign, the regions kinko serves, and test mode (only with --dev or a
configuration that says so; its operations authorized like any other).
Raw requests are signed here by hand, so that a test can leave a header
out of the signature or change one after signing.
"""
import datetime
import hashlib
import hmac
import http.client
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import KINKO, write_json
from helpers import TEST_MODE_SWITCH, allow, arn_user, iam_user, signed_call

NOT_SIGNED = "There were headers present in the request which were not signed: "


def _signed_post(endpoint, target, body, signed, send_target=None, region="us-east-1",
                 key="test", secret="test"):
    """POSTs a JSON request whose signature covers only the headers named in
    `signed` (lowercase); the X-Amz-Target sent is `send_target` when given
    (a header changed after signing). Returns (HTTP status, parsed body)."""
    host = endpoint.split("://", 1)[1]
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {"content-type": "application/x-amz-json-1.1", "host": host,
               "x-amz-date": amz_date, "x-amz-target": target}
    names = sorted(signed)
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical = "\n".join(["POST", "/", ""] + ["%s:%s" % (n, headers[n]) for n in names] +
                          ["", ";".join(names), payload_hash])
    scope = "%s/%s/kms/aws4_request" % (day, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, "kms", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                                % (key, scope, ";".join(names), sig))
    if send_target is not None:
        headers["x-amz-target"] = send_target
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request("POST", "/", body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else {}


ALL = ("content-type", "host", "x-amz-date", "x-amz-target")


# ------------------------------------------------- the operation header is signed

def test_operation_header_must_be_signed(server, kms):
    """A signature over host;x-amz-date alone is refused: the SDKs always
    sign X-Amz-Target and Content-Type, and without them the operation could
    be changed on the way."""
    key = kms.create_key(Description="signed-headers")["KeyMetadata"]["KeyId"]
    body = json.dumps({"KeyId": key, "Plaintext": "aGVsbG8="}).encode()
    st, out = _signed_post(server.endpoint, "TrentService.Encrypt", body, ("host", "x-amz-date"))
    assert st == 400, out
    assert out["__type"] == "InvalidSignatureException"
    assert out["message"] == NOT_SIGNED + "x-amz-target, content-type."
    # The same request signed as the SDKs sign it is served.
    st, out = _signed_post(server.endpoint, "TrentService.Encrypt", body, ALL)
    assert st == 200, out
    assert out["KeyId"].endswith(key)


def test_each_of_the_two_must_be_signed(server):
    body = b"{}"
    st, out = _signed_post(server.endpoint, "TrentService.ListKeys", body,
                           ("content-type", "host", "x-amz-date"))
    assert (st, out["__type"]) == (400, "InvalidSignatureException")
    assert out["message"] == NOT_SIGNED + "x-amz-target."
    st, out = _signed_post(server.endpoint, "TrentService.ListKeys", body,
                           ("host", "x-amz-date", "x-amz-target"))
    assert (st, out["__type"]) == (400, "InvalidSignatureException")
    assert out["message"] == NOT_SIGNED + "content-type."


def test_replay_as_another_operation_is_refused(server, kms):
    """An Encrypt request sent again with X-Amz-Target changed to
    DescribeKey: refused whether the target was signed (the signature no
    longer matches) or not (it had to be)."""
    key = kms.create_key(Description="replay")["KeyMetadata"]["KeyId"]
    body = json.dumps({"KeyId": key, "Plaintext": "aGVsbG8="}).encode()
    st, out = _signed_post(server.endpoint, "TrentService.Encrypt", body, ("host", "x-amz-date"),
                           send_target="TrentService.DescribeKey")
    assert st == 400, out
    assert out["__type"] == "InvalidSignatureException"
    assert "KeyMetadata" not in out
    st, out = _signed_post(server.endpoint, "TrentService.Encrypt", body, ALL,
                           send_target="TrentService.DescribeKey")
    assert (st, out["__type"]) == (400, "InvalidSignatureException")
    assert out["message"].startswith("The request signature we calculated does not match")


# ------------------------------------------------------------------- regions

def _error(call):
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"].get("Message", "")


def test_unknown_region_is_refused(server):
    """A credential scope naming a region AWS does not have: refused with
    AWS's answer to a region the endpoint does not serve, through boto3,
    the AWS CLI and STS's query protocol."""
    want = "Credential should be scoped to a valid region, not 'xx-fake-1'."
    code, msg = _error(lambda: server.client(region="xx-fake-1").list_keys())
    assert code == "InvalidSignatureException"
    assert msg.strip() == want
    code, msg = _error(lambda: server.client("secretsmanager", region="xx-fake-1").list_secrets())
    assert code == "InvalidSignatureException"
    code, msg = _error(lambda: server.client("sts", region="xx-fake-1").get_caller_identity())
    assert code == "SignatureDoesNotMatch"
    assert msg.strip() == want
    rc, _, err = server.aws("kms", "list-keys", region="xx-fake-1", check=False)
    assert rc != 0 and "InvalidSignatureException" in err and "xx-fake-1" in err
    # Unknown regions are refused before the access key is looked up.
    code, _ = _error(lambda: server.client(region="xx-fake-1", key="AKIANOSUCHKEY").list_keys())
    assert code == "InvalidSignatureException"


def test_aws_regions_are_served(server):
    for region in ("us-east-1", "mx-central-1", "ap-southeast-7", "ca-west-1", "il-central-1",
                   "us-gov-west-1", "us-gov-east-1", "cn-north-1", "cn-northwest-1"):
        kms = server.client(region=region)
        assert "Keys" in kms.list_keys(), region


def test_configuration_adds_regions(make_server, tmp_path):
    cfg = write_json(str(tmp_path / "kinko.json"), {"regions": ["my-dc-1"]})
    srv = make_server(["--dev", "--config", cfg])
    kms = srv.client(region="my-dc-1")
    key = kms.create_key()["KeyMetadata"]
    assert key["Arn"].startswith("arn:aws:kms:my-dc-1:000000000000:key/")
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    assert "Keys" in srv.client(region="eu-west-1").list_keys()
    code, msg = _error(lambda: srv.client(region="my-dc-2").list_keys())
    assert code == "InvalidSignatureException" and "'my-dc-2'" in msg


def _serve_exits(args, tmp_path, timeout=20):
    """Runs `kinko serve` that is expected to refuse to start; returns
    (exit status, stderr). A server that starts instead is stopped and the
    test fails."""
    cmd = [KINKO, "serve", "--listen", "127.0.0.1:0", "--data", str(tmp_path / "data")] + args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail("kinko %s started instead of refusing" % " ".join(args))
    return p.returncode, err.decode()


def test_bad_regions_member_stops_the_server(tmp_path):
    for bad in (["My DC"], "my-dc-1", [""]):
        cfg = write_json(str(tmp_path / "kinko.json"), {"regions": bad})
        rc, err = _serve_exits(["--dev", "--config", cfg], tmp_path)
        assert rc == 1 and '"regions"' in err, err


# ----------------------------------------------------------------- test mode

ACCT = "333333333333"
KEYS = {}


def _user(name, policies=()):
    return iam_user(KEYS, ACCT, name, policies, key_fill="TTTTTTTTTTTT", secret_prefix="tm-")


def _config(**extra):
    cfg = {"accounts": [{
        "id": ACCT,
        "root_access_keys": [{"access_key_id": "AKIATMROOT", "secret_access_key": "tm-root"}],
        "users": [_user("nopolicy"),
                  _user("kmsadmin", [allow("kms:*")]),
                  _user("clock", [allow("kinko-test:AdvanceClock")]),
                  _user("tester", [allow("kinko-test:*")])],
    }]}
    cfg.update(extra)
    return cfg


def _production_files(tmp_path, cfg):
    """A production configuration: the root key outside the data folder."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    rk = tmp_path / "root.key"
    if not rk.exists():
        rk.write_bytes(os.urandom(32))
        rk.chmod(0o600)
    cfg = dict(cfg, root_key_file=str(rk))
    return write_json(str(tmp_path / "kinko.json"), cfg)


def test_test_mode_needs_dev_or_the_switch(tmp_path):
    """--test-mode with a production configuration does not start."""
    cfg = _production_files(tmp_path, _config())
    rc, err = _serve_exits(["--config", cfg, "--test-mode"], tmp_path)
    assert rc == 2, err
    assert "--dev" in err and TEST_MODE_SWITCH in err
    cfg = _production_files(tmp_path, _config(**{TEST_MODE_SWITCH: "yes"}))
    rc, err = _serve_exits(["--config", cfg, "--test-mode"], tmp_path)
    assert rc == 1 and TEST_MODE_SWITCH in err, err


def _test_op(srv, name, op, body=None):
    if name == "root":
        key, secret = "AKIATMROOT", "tm-root"
    else:
        key, secret = KEYS[name]
    return signed_call(srv, "KinkoTest." + op, body or {}, key=key, secret=secret)


def test_test_operations_are_authorized(make_server, tmp_path):
    """With the switch the server starts; the test operations need the
    kinko-test action: the account root has it, an IAM user only through
    its policies (kms:* is not enough), and a refused Reset deletes
    nothing."""
    cfg = _production_files(tmp_path, _config(**{TEST_MODE_SWITCH: True}))
    srv = make_server(["--config", cfg, "--test-mode", "--quotas", "off"],
                      data_dir=str(tmp_path / "data"))
    root = srv.client(key="AKIATMROOT", secret="tm-root")
    key = root.create_key(Description="survives")["KeyMetadata"]["KeyId"]

    for who in ("nopolicy", "kmsadmin", "clock"):
        st, out = _test_op(srv, who, "Reset")
        assert (st, out.get("__type")) == (400, "AccessDeniedException"), (who, out)
        assert out["message"] == (
            "User: %s is not authorized to perform: kinko-test:Reset on resource: * because no "
            "identity-based policy allows the kinko-test:Reset action" % arn_user(ACCT, who))
    for op, body in (("AdvanceClock", {"Seconds": 1}), ("RunScheduler", {})):
        st, out = _test_op(srv, "nopolicy", op, body)
        assert (st, out.get("__type")) == (400, "AccessDeniedException"), (op, out)
        assert "kinko-test:" + op in out["message"]
    assert root.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"

    st, out = _test_op(srv, "clock", "AdvanceClock", {"Seconds": 5})
    assert st == 200 and out["Offset"] == 5, out
    st, out = _test_op(srv, "clock", "RunScheduler")
    assert (st, out.get("__type")) == (400, "AccessDeniedException")
    st, out = _test_op(srv, "root", "RunScheduler")
    assert st == 200, out
    st, out = _test_op(srv, "tester", "Reset")
    assert st == 200, out
    assert root.list_keys()["Keys"] == []
    st, out = _test_op(srv, "root", "Reset")
    assert st == 200, out
