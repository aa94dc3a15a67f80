"""IAM policy variables through boto3: ${aws:username} in an identity
policy's Resource, ${aws:PrincipalTag/KEY} (from the configuration's "tags"
of users and roles) in a key policy's condition, defaults for keys a
principal lacks, and "2008-10-17" policies where variables are text.
"""
import json
import os

import pytest
from botocore.exceptions import ClientError

from helpers import allow, arn_user, iam_user, private_server

A = "111111111111"
REGION = "us-east-1"
SM_ARN = "arn:aws:secretsmanager:%s:%s:secret:" % (REGION, A)
ROLE_ARN = "arn:aws:iam::%s:role/tenant-app" % A

KEYS = {"root": ("AKIAPVROOTAAAAAAAAAA", "pv-root")}


def user(name, policies=(), tags=None):
    u = iam_user(KEYS, A, name, policies, key_fill="PVZZZZZZZZZZZZ", secret_prefix="pv-secret-")
    if tags is not None:
        u["tags"] = tags
    return u


OWN_SECRETS = allow("secretsmanager:GetSecretValue", SM_ARN + "${aws:username}/*")
OLD_VERSION = {"Version": "2008-10-17", "Statement": [
    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SM_ARN + "${aws:username}/*"}]}

CONFIG = {
    "accounts": [{
        "id": A,
        "root_access_keys": [{"access_key_id": KEYS["root"][0], "secret_access_key": KEYS["root"][1]}],
        "users": [
            user("alice", [OWN_SECRETS, allow("sts:AssumeRole", ROLE_ARN)], tags={"tenant": "blue"}),
            user("bob", [OWN_SECRETS], tags={"tenant": "red"}),
            user("carol", [OLD_VERSION]),
            user("dave", [allow("kms:*")]),
        ],
        "roles": [{
            "name": "tenant-app",
            "tags": {"tenant": "green"},
            "trust_policy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": arn_user(A, "alice")}, "Action": "sts:AssumeRole"}]},
            # Sessions have no aws:username: the default names the shared folder.
            "policies": [allow("secretsmanager:GetSecretValue", SM_ARN + "${aws:username, 'shared'}/*")],
        }],
    }]
}


@pytest.fixture(scope="module")
def srv():
    yield from private_server(CONFIG, "kinko-polvars-")


def client(srv, who, service):
    ak, sk = KEYS[who]
    return srv.client(service, key=ak, secret=sk)


def code(e):
    return e.value.response["Error"]["Code"]


def secret(srv, name, value):
    return client(srv, "root", "secretsmanager").create_secret(
        Name="%s-%s" % (name, os.urandom(3).hex()), SecretString=value)["ARN"]


def test_username_in_identity_policy_resource(srv):
    a = secret(srv, "alice/db", "alice's")
    b = secret(srv, "bob/db", "bob's")
    alice = client(srv, "alice", "secretsmanager")
    bob = client(srv, "bob", "secretsmanager")
    assert alice.get_secret_value(SecretId=a)["SecretString"] == "alice's"
    assert bob.get_secret_value(SecretId=b)["SecretString"] == "bob's"
    with pytest.raises(ClientError) as e:
        alice.get_secret_value(SecretId=b)
    assert code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        bob.get_secret_value(SecretId=a)
    assert code(e) == "AccessDeniedException"


def test_version_2008_keeps_variables_as_text(srv):
    c = secret(srv, "carol/db", "carol's")
    with pytest.raises(ClientError) as e:
        client(srv, "carol", "secretsmanager").get_secret_value(SecretId=c)
    assert code(e) == "AccessDeniedException"


def test_default_value_for_a_session_without_username(srv):
    shared = secret(srv, "shared/db", "everyone's")
    own = secret(srv, "alice/cfg", "alice only")
    creds = client(srv, "alice", "sts").assume_role(RoleArn=ROLE_ARN, RoleSessionName="job")["Credentials"]
    sess = srv.client("secretsmanager", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                      token=creds["SessionToken"])
    assert sess.get_secret_value(SecretId=shared)["SecretString"] == "everyone's"
    with pytest.raises(ClientError) as e:
        sess.get_secret_value(SecretId=own)
    assert code(e) == "AccessDeniedException"


def tenant_key(srv):
    """A key whose policy lets any principal of the account encrypt and
    decrypt only under an encryption context naming its own tenant tag."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % A},
         "Action": "kms:*", "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalType": "Account"}}},
        {"Sid": "tenant", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "${aws:PrincipalTag/tenant}",
                                        "aws:PrincipalAccount": A}}},
    ]}
    kms = client(srv, "root", "kms")
    return kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]


def test_principal_tag_in_key_policy_condition(srv):
    key = tenant_key(srv)
    alice = client(srv, "alice", "kms")
    bob = client(srv, "bob", "kms")
    blob = alice.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": "blue"})["CiphertextBlob"]
    assert alice.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant": "blue"})["Plaintext"] == b"x"
    with pytest.raises(ClientError) as e:
        alice.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": "red"})
    assert code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        bob.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant": "blue"})
    assert code(e) == "AccessDeniedException"
    bob.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": "red"})
    # dave has no tenant tag: the variable has no value and matches nothing,
    # even with kms:* in his identity policy (the key policy names no account).
    with pytest.raises(ClientError) as e:
        client(srv, "dave", "kms").encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": ""})
    assert code(e) == "AccessDeniedException"


def test_session_has_its_roles_tags(srv):
    key = tenant_key(srv)
    creds = client(srv, "alice", "sts").assume_role(RoleArn=ROLE_ARN, RoleSessionName="tags")["Credentials"]
    sess = srv.client("kms", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                      token=creds["SessionToken"])
    sess.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": "green"})
    with pytest.raises(ClientError) as e:
        sess.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"tenant": "blue"})
    assert code(e) == "AccessDeniedException"
