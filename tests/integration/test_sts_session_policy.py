"""Session policies on AssumeRole and AssumeRoleWithWebIdentity: the
session may do only what both the role's policies and the session policy
allow, and a Deny in the session policy refuses."""
import json

import pytest
from botocore.exceptions import ClientError

from helpers import allow, arn_user, iam_user, private_server

A = "555555555555"
KEYS = {}
ROLE = "arn:aws:iam::%s:role/app" % A

CONFIG = {"accounts": [{
    "id": A,
    "root_access_keys": [{"access_key_id": "AKIAROOTSESSPOL", "secret_access_key": "root-s"}],
    "users": [iam_user(KEYS, A, "caller", [allow("sts:AssumeRole", ROLE)],
                       key_fill="XXXXXXXXXXXX", secret_prefix="secret-")],
    "roles": [{"name": "app",
               "trust_policy": {"Version": "2012-10-17", "Statement": [
                   {"Effect": "Allow", "Principal": {"AWS": arn_user(A, "caller")},
                    "Action": "sts:AssumeRole"}]},
               "policies": [allow(["kms:CreateKey", "kms:Encrypt", "kms:Decrypt",
                                   "kms:DescribeKey", "secretsmanager:CreateSecret",
                                   "secretsmanager:GetSecretValue"])]}],
}]}


@pytest.fixture(scope="module")
def srv():
    yield from private_server(CONFIG, "kinko-sts-sesspol-")


def assume(srv, policy=None, **kw):
    ak, sk = KEYS["caller"]
    if policy is not None:
        kw["Policy"] = policy if isinstance(policy, str) else json.dumps(policy)
    return srv.client("sts", key=ak, secret=sk).assume_role(
        RoleArn=ROLE, RoleSessionName="sp", **kw)


def session(srv, creds, service="kms"):
    return srv.client(service, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                      token=creds["SessionToken"])


def code(e):
    return e.value.response["Error"]["Code"]


def test_session_policy_intersects_the_role(srv):
    key = session(srv, assume(srv)["Credentials"]).create_key()["KeyMetadata"]["KeyId"]
    pol = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:DescribeKey", "kms:ScheduleKeyDeletion"],
         "Resource": "*"},
        {"Effect": "Deny", "Action": "kms:DescribeKey", "Resource": "*"}]}
    r = assume(srv, pol)
    assert 0 < r["PackedPolicySize"] <= 100
    kms = session(srv, r["Credentials"])
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]  # both allow
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob)  # the role allows, the session policy does not
    assert code(e) == "AccessDeniedException"
    assert "because no session policy allows the kms:Decrypt action" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=key)  # an explicit deny in the session policy
    assert code(e) == "AccessDeniedException" and "explicit deny in a session policy" in \
        e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        kms.schedule_key_deletion(KeyId=key)  # the session policy allows, the role does not
    assert code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        session(srv, r["Credentials"], "secretsmanager").create_secret(Name="sp-x", SecretString="s")
    assert code(e) == "AccessDeniedException"
    # Without a session policy the role's rights are whole.
    full = session(srv, assume(srv)["Credentials"])
    assert full.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_session_policy_refusals(srv):
    with pytest.raises(ClientError) as e:
        assume(srv, "{not json")
    assert code(e) == "MalformedPolicyDocument"
    with pytest.raises(ClientError) as e:
        assume(srv, {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", "Bogus": 1}]})
    assert code(e) == "MalformedPolicyDocument"
    big = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:Encrypt"] * 200, "Resource": "*"}]}
    ak, sk = KEYS["caller"]
    raw = srv.client("sts", key=ak, secret=sk, validate=False)
    with pytest.raises(ClientError) as e:
        raw.assume_role(RoleArn=ROLE, RoleSessionName="sp", Policy=json.dumps(big))
    assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        assume(srv, PolicyArns=[{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}])
    assert code(e) == "ValidationError"
