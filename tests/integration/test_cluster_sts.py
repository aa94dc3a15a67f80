"""STS sessions are valid on every node (docs/CLUSTER.md, "STS sessions"):
AssumeRole on one node, the credentials used on another."""
import pytest
from botocore.exceptions import ClientError

from cluster import make_cluster  # noqa: F401 (fixture)
from helpers import allow, iam_user

A = "111122223333"
KEYS = {}
ROLE = "arn:aws:iam::%s:role/app" % A
CONFIG = {
    "accounts": [{
        "id": A,
        "root_access_keys": [{"access_key_id": "AKIACLUSTERROOT", "secret_access_key": "root"}],
        "users": [iam_user(KEYS, A, "appuser", [allow("sts:AssumeRole", ROLE)],
                           key_fill="XXXXXXXXXXXX", secret_prefix="secret-")],
        "roles": [{
            "name": "app",
            "trust_policy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:user/appuser" % A},
                 "Action": "sts:AssumeRole"}]},
            "policies": [allow(["kms:CreateKey", "kms:Encrypt", "kms:Decrypt",
                                "kms:DescribeKey"])],
        }],
    }],
}


def session(node, creds, service="kms"):
    return node.client(service, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                       token=creds["SessionToken"])


def assume(node, name="s1", **kw):
    ak, sk = KEYS["appuser"]
    return node.client("sts", key=ak, secret=sk).assume_role(
        RoleArn=ROLE, RoleSessionName=name, **kw)["Credentials"]


def test_a_session_made_on_one_node_works_on_the_others(make_cluster):
    c = make_cluster(3, config=CONFIG)
    a, b, third = c.nodes
    creds = assume(a)
    who = session(b, creds, "sts").get_caller_identity()
    assert who["Arn"] == "arn:aws:sts::%s:assumed-role/app/s1" % A
    kid = session(b, creds).create_key()["KeyMetadata"]["KeyId"]
    blob = session(third, creds).encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"]
    assert session(a, creds).decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"


def test_a_wrong_token_or_secret_is_refused_on_another_node(make_cluster):
    c = make_cluster(2, config=CONFIG)
    a, b = c.nodes
    creds = assume(a)
    bad = dict(creds, SessionToken=creds["SessionToken"][:-4] + "AAAA")
    with pytest.raises(ClientError) as e:
        session(b, bad, "sts").get_caller_identity()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
    bad = dict(creds, SecretAccessKey="x" * 40)
    with pytest.raises(ClientError) as e:
        session(b, bad, "sts").get_caller_identity()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    # The right credentials still work there afterwards.
    assert session(b, creds, "sts").get_caller_identity()["Account"] == A


def test_a_session_expires_on_every_node(make_cluster):
    c = make_cluster(2, config=CONFIG)
    a, b = c.nodes
    creds = assume(a, DurationSeconds=900)
    assert session(b, creds, "sts").get_caller_identity()["Account"] == A
    c.advance_clock(901)
    for n in c.nodes:
        with pytest.raises(ClientError) as e:
            session(n, creds, "sts").get_caller_identity()
        assert e.value.response["Error"]["Code"] == "ExpiredToken"
