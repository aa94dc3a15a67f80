"""Helpers shared by several integration test modules: signed requests of
our own (for operations and members newer than this botocore's model),
Secrets Manager rotation scaffolding, and private kinko servers started
from a configuration file."""
import inspect
import json
import os
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from conftest import Server, _sanitizer_clean, write_json

REGION = "us-east-1"


# ---- signed requests ------------------------------------------------------------

def signed_call(where, target, body, service="kms", region=None, key="test", secret="test"):
    """A SigV4-signed JSON request (X-Amz-Target `target`) to a kinko server;
    returns (HTTP status, parsed body). `where` is the Server, or a boto3
    client of it (whose endpoint and region are used). `body` is sent as
    JSON, or as it is when it is bytes.

    Through a cluster (pgcluster.ClusterServer, or a client it made), the
    test mode's clock, scheduler and reset calls go to every node, and a
    call that may write is followed by the cluster's feed barrier."""
    cluster = getattr(where, "kinko_cluster", None)
    if cluster is None:
        return _signed_call(where, target, body, service, region, key, secret)
    operation = target.rsplit(".", 1)[-1]
    if target.startswith("KinkoTest.") and operation in cluster.EVERY_NODE:
        return [_signed_call(n, target, body, service, region or getattr(
            getattr(where, "meta", None), "region_name", None), key, secret)
            for n in cluster.live_nodes()][0]
    try:
        return _signed_call(where, target, body, service, region, key, secret)
    finally:
        cluster.after_call(operation)


def _signed_call(where, target, body, service, region, key, secret):
    if hasattr(where, "meta"):  # a boto3 client
        endpoint, region = where.meta.endpoint_url, region or where.meta.region_name
    else:
        endpoint, region = where.endpoint, region or REGION
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=endpoint + "/",
        data=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), service,
                            region).add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def kms_request(where, operation, body, **kw):
    """A signed KMS (TrentService) request; returns (HTTP status, parsed body)."""
    return signed_call(where, "TrentService." + operation, body, **kw)


def sm_request(where, operation, body, **kw):
    """A signed Secrets Manager request; returns (HTTP status, parsed body)."""
    return signed_call(where, "secretsmanager." + operation, body, service="secretsmanager", **kw)


# ---- Secrets Manager rotation ---------------------------------------------------

def raw_describe(where, arn, **kw):
    """DescribeSecret's JSON as sent, with members this botocore's model
    lacks (NextRotationDate, kinko's KinkoRotationStatus)."""
    st, out = sm_request(where, "DescribeSecret", {"SecretId": arn}, **kw)
    assert st == 200, out
    return out


def wait_rotation(where, arn, token, timeout=60, **kw):
    """Polls until the rotation of `token` is no longer in progress; returns
    kinko's KinkoRotationStatus."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = raw_describe(where, arn, **kw).get("KinkoRotationStatus", {})
        if st.get("VersionId") == token and st.get("Status") != "InProgress":
            return st
        time.sleep(0.1)
    raise AssertionError("rotation did not finish: %r" % raw_describe(where, arn, **kw))


# The createSecret and finishSecret steps of AWS's rotation template for a
# JSON secret, with `sm` a Secrets Manager client. An HTTP rotation function
# calls them in process; an executable one carries their source text
# (TEMPLATE_STEPS), so they must use nothing but json, secrets and `sm`.

def create_pending(sm, arn, token, password_bytes):
    """createSecret: AWSCURRENT's value with a new password, as the AWSPENDING
    version `token` (unless that exists already)."""
    cur = json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    try:
        sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    except sm.exceptions.ResourceNotFoundException:
        cur["password"] = secrets.token_hex(password_bytes)
        sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                            SecretString=json.dumps(cur), VersionStages=["AWSPENDING"])


def finish_pending(sm, arn, token):
    """finishSecret: AWSCURRENT moves to the version `token`."""
    md = sm.describe_secret(SecretId=arn)
    cur = [v for v, s in md["VersionIdsToStages"].items() if "AWSCURRENT" in s][0]
    if cur != token:
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                       MoveToVersionId=token, RemoveFromVersionId=cur)


TEMPLATE_STEPS = inspect.getsource(create_pending) + "\n\n" + inspect.getsource(finish_pending)


def write_function(path, text):
    """Writes an executable rotation function; returns its path."""
    path.write_text(text)
    path.chmod(0o755)
    return path


def rotation_function(arn, command, log_file, **environment):
    """A rotation_functions entry of a configuration: an executable
    (`command`, a path) run with `environment`, logging to `log_file`."""
    entry = {"arn": arn, "command": [str(command)]}
    if environment:
        entry["environment"] = environment
    entry["log_file"] = str(log_file)
    return entry


def config_server(make_server, tmp_path, cfg, args=("--dev", "--test-mode"), data_dir=None):
    """Starts a server (through the make_server fixture) with `args` and
    --config naming `cfg`, written to tmp_path/kinko.json."""
    path = tmp_path / "kinko.json"
    path.write_text(json.dumps(cfg))
    return make_server(list(args) + ["--config", str(path)], data_dir=data_dir)


# ---- private servers with IAM principals ----------------------------------------

def arn_user(acct, name):
    return "arn:aws:iam::%s:user/%s" % (acct, name)


def iam_user(keys, acct, name, policies, key_fill, secret_prefix):
    """A user entry of a configuration's account, with one access key pair
    (its id padded with `key_fill`, its secret `secret_prefix` + name), which
    is also recorded in `keys` under the user's name."""
    ak = ("AKIA" + acct[:3] + name.upper() + key_fill)[:20]
    keys[name] = (ak, secret_prefix + name)
    return {"name": name, "access_keys": [{"access_key_id": ak, "secret_access_key": secret_prefix + name}],
            "policies": list(policies)}


def allow(actions, resource="*", **extra):
    st = {"Effect": "Allow", "Action": actions, "Resource": resource}
    st.update(extra)
    return {"Version": "2012-10-17", "Statement": [st]}


# The configuration switch that lets --test-mode run without --dev.
TEST_MODE_SWITCH = "test_mode_i_understand_this_deletes_data"


def private_server(config, prefix, args=("--test-mode", "--quotas", "off")):
    """A module fixture's body: a kinko started from `config` in a data
    folder of its own, with a root key beside it (outside the data folder,
    as kinko requires outside dev mode), stopped afterwards and checked to
    have exited cleanly. With --test-mode and without --dev, the
    configuration gets the switch that allows it."""
    d = tempfile.mkdtemp(prefix=prefix)
    if "--test-mode" in args and "--dev" not in args:
        config = dict(config, **{TEST_MODE_SWITCH: True})
    rk = os.path.join(d, "root.key")
    with open(rk, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(rk, 0o600)
    data = os.path.join(d, "data")
    os.mkdir(data, 0o700)
    cfg = write_json(os.path.join(data, "kinko.json"), config)  # tests find it beside the store
    s = Server(["--config", cfg, "--root-key", rk] + list(args), data_dir=data).start()
    yield s
    rc = s.stop()
    _sanitizer_clean(s)
    shutil.rmtree(d, ignore_errors=True)
    assert rc == 0

# A session logged in to the token labelled argv[2] of the module argv[1]
# with the PIN argv[3], through the module's C_* functions (for scripts run
# in a process of their own: the module keeps state per process).
TOKEN_SESSION = r"""
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
UL = ctypes.c_ulong
class Attr(ctypes.Structure):
    _fields_ = [("type", UL), ("value", ctypes.c_void_p), ("len", UL)]
assert lib.C_Initialize(None) == 0
slots = (UL * 64)(); n = UL(64)
assert lib.C_GetSlotList(1, slots, ctypes.byref(n)) == 0
info = ctypes.create_string_buffer(512)
slot = [s for s in slots[:n.value] if lib.C_GetTokenInfo(UL(s), info) == 0
        and info.raw[:32].decode().rstrip() == sys.argv[2]][0]
sess = UL()
assert lib.C_OpenSession(UL(slot), UL(6), None, None, ctypes.byref(sess)) == 0
pin = sys.argv[3].encode()
assert lib.C_Login(sess, UL(1), pin, UL(len(pin))) == 0
"""
