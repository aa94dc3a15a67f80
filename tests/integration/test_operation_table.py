"""The authorization walk: every operation of every table that kinko
registers (read from `kinko ops --json`, so an operation added later is
walked without touching this file), called as a principal with no
permission (AccessDeniedException, keyless operations too; STS says
AccessDenied), as one allowed everything (never AccessDenied), and, for
the operations on a key (or on the key a ciphertext names), on a disabled
key and on a key pending deletion where the row's key-state rule refuses them (DisabledException or
KMSInvalidStateException, from AWS's key-state table), and for the
operations on a secret, on a secret scheduled for deletion where the
row's state rule refuses it (InvalidRequestException).

Requests are signed raw requests, so operations newer than this
botocore's model are walked as well. BODIES gives the members an
operation needs before it reaches its authorization; a new operation
whose handler validates members before it authorizes needs a line there.
"""
import base64
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from conftest import KINKO
from helpers import allow, iam_user, signed_call, private_server

A = "111111111111"
KEYS = {}
ROLE = "arn:aws:iam::%s:role/walker" % A
EVERYTHING = allow(["kms:*", "secretsmanager:*", "sts:*", "cloudtrail:*", "kinko-test:*"])

CONFIG = {
    "accounts": [{
        "id": A,
        "root_access_keys": [{"access_key_id": "AKIAWALKROOT", "secret_access_key": "root-walk"}],
        "users": [
            iam_user(KEYS, A, "nobody", [], key_fill="WWWWWWWWWWWW", secret_prefix="walk-"),
            iam_user(KEYS, A, "everyone", [EVERYTHING], key_fill="WWWWWWWWWWWW", secret_prefix="walk-"),
        ],
        "roles": [{"name": "walker",
                   "trust_policy": {"Version": "2012-10-17", "Statement": [
                       {"Effect": "Allow", "Principal": {"AWS": A}, "Action": "sts:AssumeRole"}]},
                   "policies": []}],
    }],
}
ROOT = ("AKIAWALKROOT", "root-walk")

# What the key-state rules of AWS's key-state table give on a disabled key
# and on a key pending deletion (None: the operation proceeds).
# https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html
STATE_ERRORS = {
    "crypto": ("DisabledException", "KMSInvalidStateException"),
    "manage": (None, "KMSInvalidStateException"),
    "enable-disable": (None, "KMSInvalidStateException"),
    "import": (None, "KMSInvalidStateException"),
    "cancel-deletion": ("KMSInvalidStateException", None),
    "any": (None, None),
}
KEY_KINDS = ("key", "key-or-alias", "own-key")


def tables():
    out = subprocess.run([KINKO, "ops", "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


TABLES = tables()
OPERATIONS = [(svc, op) for svc in TABLES for op in svc["operations"]]


@pytest.fixture(scope="module")
def srv():
    yield from private_server(CONFIG, "kinko-optable-")


def call(srv, svc, op, body, who):
    """One signed call; returns (status, error code or None, body)."""
    key, secret = KEYS[who] if who in KEYS else ROOT
    if svc["queryProtocol"]:
        return query_call(srv, svc, op, body, key, secret)
    status, out = signed_call(srv, svc["targetPrefix"] + op["name"], body,
                              service=svc["signingName"], key=key, secret=secret)
    code = out.get("__type") if status >= 300 else None
    return status, code, out


def query_call(srv, svc, op, body, key, secret):
    """The query protocol (STS): a form body, an XML answer."""
    form = urllib.parse.urlencode(dict(body, Action=op["name"], Version="2011-06-15"))
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=srv.endpoint + "/", data=form.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), svc["signingName"],
                            "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, None, resp.read().decode()
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        code = text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else None
        return e.code, code, text


def kms(srv, op, body):
    status, out = signed_call(srv, "TrentService." + op, body, key=ROOT[0], secret=ROOT[1])
    assert status == 200, (op, out)
    return out


def sm(srv, op, body):
    status, out = signed_call(srv, "secretsmanager." + op, body, service="secretsmanager",
                              key=ROOT[0], secret=ROOT[1])
    assert status == 200, (op, out)
    return out


def new_key(srv, state="Enabled"):
    arn = kms(srv, "CreateKey", {})["KeyMetadata"]["Arn"]
    if state == "Disabled":
        kms(srv, "DisableKey", {"KeyId": arn})
    elif state == "PendingDeletion":
        kms(srv, "ScheduleKeyDeletion", {"KeyId": arn, "PendingWindowInDays": 7})
    return arn


class World:
    """The resources the walk's requests name, made by the account root."""
    n = 0

    def __init__(self, srv):
        self.srv = srv
        self.key = new_key(srv)
        self.ciphertext = kms(srv, "Encrypt", {"KeyId": self.key, "Plaintext": "eA=="})["CiphertextBlob"]
        self.grant = kms(srv, "CreateGrant", {"KeyId": self.key, "GranteePrincipal": ROLE,
                                              "Operations": ["Decrypt"]})["GrantId"]
        self.secret = self.new_secret()

    def name(self, prefix):
        World.n += 1
        return "%s%d" % (prefix, World.n)

    def new_secret(self):
        return sm(self.srv, "CreateSecret", {"Name": self.name("walk-secret-"), "SecretString": "s"})["ARN"]

    def body(self, svc, op, key=None, secret=None):
        """A request for `op` on `key` / `secret` (fresh ones unless given)."""
        res, member, name = op["resource"], op["member"], op["name"]
        b = {}
        if res in KEY_KINDS:
            b[member] = key or new_key(self.srv)
        elif res == "alias":
            alias = self.name("alias/walk-")
            if name != "CreateAlias":
                kms(self.srv, "CreateAlias", {"AliasName": alias, "TargetKeyId": self.key})
            b[member] = alias
            if name != "DeleteAlias":
                b["TargetKeyId"] = key or new_key(self.srv)
        elif res == "secret":
            b[member] = secret or self.new_secret()
        extra = BODIES.get((svc["signingName"], name))
        b.update(extra(self) if callable(extra) else (extra or {}))
        return b


POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % A},
     "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})

# Members an operation validates before it authorizes (see the module's doc).
BODIES = {
    ("kms", "Decrypt"): lambda w: {"CiphertextBlob": w.ciphertext},
    ("kms", "ReEncrypt"): lambda w: {"CiphertextBlob": w.ciphertext, "DestinationKeyId": w.key},
    ("kms", "RetireGrant"): lambda w: {"KeyId": w.key, "GrantId": w.grant},
    ("kms", "GenerateRandom"): {"NumberOfBytes": 16},
    ("secretsmanager", "CreateSecret"): lambda w: {"Name": w.name("walk-new-"), "SecretString": "s"},
    ("secretsmanager", "DeleteSecret"): lambda w: {"SecretId": w.new_secret()},
    ("secretsmanager", "PutSecretValue"): {"SecretString": "v2"},
    ("secretsmanager", "UpdateSecret"): {"Description": "d"},
    ("secretsmanager", "UpdateSecretVersionStage"): {"VersionStage": "WALK"},
    ("secretsmanager", "TagResource"): {"Tags": [{"Key": "a", "Value": "b"}]},
    ("secretsmanager", "UntagResource"): {"TagKeys": ["a"]},
    ("secretsmanager", "PutResourcePolicy"): {"ResourcePolicy": POLICY},
    ("secretsmanager", "ValidateResourcePolicy"): {"ResourcePolicy": POLICY},
    ("secretsmanager", "ReplicateSecretToRegions"): {"AddReplicaRegions": [{"Region": "us-west-2"}]},
    ("secretsmanager", "RemoveRegionsFromReplication"): {"RemoveReplicaRegions": ["us-west-2"]},
    ("secretsmanager", "BatchGetSecretValue"): lambda w: {"SecretIdList": [w.secret]},
    ("sts", "AssumeRole"): {"RoleArn": ROLE, "RoleSessionName": "walk"},
    ("sts", "AssumeRoleWithWebIdentity"): {"RoleArn": ROLE, "RoleSessionName": "walk",
                                           "WebIdentityToken": "e30.e30.e30"},
    ("sts", "GetAccessKeyInfo"): {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE"},
    ("sts", "GetFederationToken"): {"Name": "walk"},
    ("sts", "DecodeAuthorizationMessage"): {"EncodedMessage": "walk"},
    ("kms", "AdvanceClock"): {"Seconds": 0},
}

# Operations whose success would spoil the walk for the others: called as
# the allowed principal only in the last test.
LAST = {("kms", "Reset")}


@pytest.fixture(scope="module")
def world(srv):
    return World(srv)


def ids(p):
    svc, op = p
    return "%s.%s" % (svc["signingName"], op["name"])


def test_the_tables_list_every_service():
    names = {(s["signingName"], s["targetPrefix"]) for s in TABLES}
    assert {"kms", "secretsmanager", "sts", "cloudtrail"} <= {n for n, _ in names}
    assert len([o for s in TABLES if s["signingName"] == "secretsmanager" for o in s["operations"]]) == 23
    for svc, op in OPERATIONS:
        assert op["resource"] not in ("unset", "?") and op["state"] not in ("unset", "?"), op
        assert op["action"].split(":")[1] == op["name"], op


@pytest.mark.parametrize("entry", OPERATIONS, ids=ids)
def test_no_permission_is_access_denied(srv, world, entry):
    svc, op = entry
    status, code, out = call(srv, svc, op, world.body(svc, op, key=world.key, secret=world.secret),
                             "nobody")
    if op["resource"] == "public":
        assert status == 200, out
        return
    if op.get("anonymous"):  # the token in the body is checked, not the caller
        assert code == "InvalidIdentityToken", (status, out)
        return
    assert code in ("AccessDeniedException", "AccessDenied"), (status, out)


@pytest.mark.parametrize("entry", OPERATIONS, ids=ids)
def test_permission_is_not_access_denied(srv, world, entry):
    svc, op = entry
    if (svc["signingName"], op["name"]) in LAST:
        pytest.skip("called last (test_last_operations)")
    status, code, out = call(srv, svc, op, world.body(svc, op), "everyone")
    assert code not in ("AccessDeniedException", "AccessDenied"), (status, out)


@pytest.mark.parametrize("entry", [e for e in OPERATIONS if e[1]["resource"] in KEY_KINDS], ids=ids)
@pytest.mark.parametrize("state", ["Disabled", "PendingDeletion"])
def test_key_state_rule(srv, world, entry, state):
    svc, op = entry
    want = STATE_ERRORS[op["state"]][0 if state == "Disabled" else 1]
    if want is None:
        pytest.skip("the %s rule lets the operation proceed on a %s key" % (op["state"], state))
    key = new_key(srv, state)
    status, code, out = call(srv, svc, op, world.body(svc, op, key=key), "everyone")
    assert code == want, (status, out)
    assert out["message"].startswith(key), out


CIPHERTEXT_KINDS = ("ciphertext", "reencrypt-source")


@pytest.mark.parametrize("entry", [e for e in OPERATIONS if e[1]["resource"] in CIPHERTEXT_KINDS],
                         ids=ids)
@pytest.mark.parametrize("state", ["Disabled", "PendingDeletion"])
def test_ciphertext_key_state_rule(srv, world, entry, state):
    """A ciphertext row's key is the one its blob names: its state rule applies to that key."""
    svc, op = entry
    want = STATE_ERRORS[op["state"]][0 if state == "Disabled" else 1]
    if want is None:
        pytest.skip("the %s rule lets the operation proceed on a %s key" % (op["state"], state))
    key = new_key(srv)
    blob = kms(srv, "Encrypt", {"KeyId": key, "Plaintext": "eA=="})["CiphertextBlob"]
    if state == "Disabled":
        kms(srv, "DisableKey", {"KeyId": key})
    else:
        kms(srv, "ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})
    body = dict(world.body(svc, op), **{op["member"]: blob})
    status, code, out = call(srv, svc, op, body, "everyone")
    assert code == want, (status, out)
    assert out["message"].startswith(key), out


# What a secret row's state rule gives on a secret scheduled for deletion.
SECRET_STATE_ERRORS = {"manage": "InvalidRequestException", "any": None}


@pytest.mark.parametrize("entry", [e for e in OPERATIONS if e[1]["resource"] == "secret"], ids=ids)
def test_secret_state_rule(srv, world, entry):
    svc, op = entry
    assert op["state"] in SECRET_STATE_ERRORS, op
    want = SECRET_STATE_ERRORS[op["state"]]
    if want is None:
        pytest.skip("the %s rule lets the operation proceed on a secret scheduled for deletion"
                    % op["state"])
    secret = world.new_secret()
    sm(srv, "DeleteSecret", {"SecretId": secret, "RecoveryWindowInDays": 7})
    status, code, out = call(srv, svc, op, world.body(svc, op, secret=secret), "everyone")
    assert code == want, (status, out)
    assert "marked for deletion" in out["message"], out


def test_last_operations(srv, world):
    for svc, op in OPERATIONS:
        if (svc["signingName"], op["name"]) in LAST:
            status, code, out = call(srv, svc, op, world.body(svc, op), "everyone")
            assert code not in ("AccessDeniedException", "AccessDenied"), (status, out)
