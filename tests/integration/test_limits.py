"""AWS's resource quotas for KMS and Secrets Manager, one by one, against
kinko (the table in docs/AUTHORIZATION.md, "Limits", names each test here),
and cross-account use of a key by its alias ARN.

AWS's numbers: https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html,
https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html (not here: rates),
https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html.
"""
import json
import os

import pytest
from botocore.exceptions import ClientError

from helpers import allow, iam_user, private_server

A = "111111111111"
B = "222222222222"
REGION = "us-east-1"


@pytest.fixture
def tserver(make_server):
    """A private server with the test clock."""
    return make_server(["--dev", "--test-mode"])


def code(e):
    return e.value.response["Error"]["Code"]


def message(e):
    return e.value.response["Error"]["Message"]


def name(prefix):
    return "%s-%s" % (prefix, os.urandom(4).hex())


# ---- KMS ----

def test_key_policy_size_32kb(server):
    kms = server.client("kms")
    base = {"Version": "2012-10-17", "Statement": [
        {"Sid": "", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
         "Action": "kms:*", "Resource": "*"}]}
    empty = len(json.dumps(base))
    fits = dict(base)
    fits["Statement"] = [dict(base["Statement"][0], Sid="x" * (32768 - empty))]
    text = json.dumps(fits)
    assert len(text) == 32768
    key = kms.create_key(Policy=text)["KeyMetadata"]["KeyId"]
    over = dict(base)
    over["Statement"] = [dict(base["Statement"][0], Sid="x" * (32769 - empty))]
    with pytest.raises(ClientError) as e:
        kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(over))
    assert code(e) == "LimitExceededException"


def test_tags_per_key_50(server):
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.tag_resource(KeyId=key, Tags=[{"TagKey": "k%d" % i, "TagValue": "v"} for i in range(50)])
    with pytest.raises(ClientError) as e:
        kms.tag_resource(KeyId=key, Tags=[{"TagKey": "one-more", "TagValue": "v"}])
    assert code(e) == "LimitExceededException"
    assert len(kms.list_resource_tags(KeyId=key, Limit=50)["Tags"]) == 50


def test_grants_for_one_grantee_past_500(server):
    """AWS's quotas page sets 50,000 grants per key and no limit per grantee
    (older versions of the page had 500): one principal may hold more than
    500 grants of one key. The 50,000 are test_grants_scale.py's."""
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    first = "arn:aws:iam::000000000000:user/grantee-one"
    for _ in range(501):
        kms.create_grant(KeyId=key, GranteePrincipal=first, Operations=["Encrypt"])
    pages = kms.get_paginator("list_grants").paginate(
        KeyId=key, GranteePrincipal=first, PaginationConfig={"PageSize": 100})
    assert sum(len(p["Grants"]) for p in pages) == 501


def test_request_sizes(server):
    kms = server.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key, Plaintext=b"x" * 4096)
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key, Plaintext=b"x" * 4097)
    assert code(e) == "ValidationException"
    assert len(kms.generate_random(NumberOfBytes=1024)["Plaintext"]) == 1024
    with pytest.raises(ClientError) as e:
        kms.generate_random(NumberOfBytes=1025)
    assert code(e) == "ValidationException"


# ---- Secrets Manager ----

def test_secret_value_64kb(server):
    sm = server.client("secretsmanager")
    arn = sm.create_secret(Name=name("limits/value"), SecretString="x" * 65536)["ARN"]
    assert len(sm.get_secret_value(SecretId=arn)["SecretString"]) == 65536
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=arn, SecretString="x" * 65537)
    assert code(e) == "ValidationException"


def test_tags_per_secret_50(server):
    sm = server.client("secretsmanager")
    arn = sm.create_secret(Name=name("limits/tags"), SecretString="v",
                           Tags=[{"Key": "k%d" % i, "Value": "v"} for i in range(50)])["ARN"]
    with pytest.raises(ClientError) as e:
        sm.tag_resource(SecretId=arn, Tags=[{"Key": "one-more", "Value": "v"}])
    assert code(e) == "LimitExceededException"


def test_labels_per_version_20(server):
    sm = server.client("secretsmanager")
    arn = sm.create_secret(Name=name("limits/labels"), SecretString="v")["ARN"]
    vid = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    vid = next(iter(vid))
    for i in range(19):  # AWSCURRENT and 19 more
        sm.update_secret_version_stage(SecretId=arn, VersionStage="L%d" % i, MoveToVersionId=vid)
    with pytest.raises(ClientError) as e:
        sm.update_secret_version_stage(SecretId=arn, VersionStage="L19", MoveToVersionId=vid)
    assert code(e) == "LimitExceededException"


def test_versions_per_secret_100(tserver):
    """AWS: "Versions per secret: 100"; versions without staging labels are
    removed once over 100 but not within 24 hours of their creation, so a
    101st version that same day is refused (API_PutSecretValue)."""
    sm = tserver.client("secretsmanager")
    arn = sm.create_secret(Name=name("limits/versions"), SecretString="v0")["ARN"]
    for i in range(1, 100):
        sm.put_secret_value(SecretId=arn, SecretString="v%d" % i)
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=arn, SecretString="v100")
    assert code(e) == "LimitExceededException"
    assert "maximum number of versions (100)" in message(e)
    tserver.advance_clock(86400 + 1)
    sm.put_secret_value(SecretId=arn, SecretString="v100")
    versions, token = [], None
    while True:
        page = sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True, MaxResults=100,
                                          **({"NextToken": token} if token else {}))
        versions += page["Versions"]
        token = page.get("NextToken")
        if not token:
            break
    assert len(versions) <= 100
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v100"


def test_resource_policy_20kb(server):
    sm = server.client("secretsmanager")
    arn = sm.create_secret(Name=name("limits/policy"), SecretString="v")["ARN"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "x" * 20600, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    with pytest.raises(ClientError) as e:
        sm.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(policy))
    assert code(e) == "ValidationException"


# ---- cross-account use by alias ARN ----

KEYS = {"rootA": ("AKIALIMROOTAAAAAAAAA", "lim-root-a")}
CONFIG = {"accounts": [
    {"id": A, "root_access_keys": [{"access_key_id": KEYS["rootA"][0], "secret_access_key": KEYS["rootA"][1]}]},
    {"id": B, "users": [iam_user(KEYS, B, "user", [allow("kms:*")], key_fill="LIMZZZZZZZZZZZZ",
                                 secret_prefix="lim-secret-")]},
]}


@pytest.fixture(scope="module")
def two_accounts():
    yield from private_server(CONFIG, "kinko-limits-")


def client(srv, who):
    ak, sk = KEYS[who]
    return srv.client("kms", key=ak, secret=sk)


def shared_key(srv):
    """A key of account A whose policy lets account B use it, with an alias."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % A}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % B},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey",
                    "kms:ReEncrypt*", "kms:CreateGrant", "kms:ListGrants"], "Resource": "*"}]}
    a = client(srv, "rootA")
    meta = a.create_key(Policy=json.dumps(policy))["KeyMetadata"]
    alias = name("alias/shared")
    a.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
    return meta, "arn:aws:kms:%s:%s:%s" % (REGION, A, alias), alias


def test_cross_account_alias_arn(two_accounts):
    meta, alias_arn, alias = shared_key(two_accounts)
    b = client(two_accounts, "user")
    assert b.describe_key(KeyId=alias_arn)["KeyMetadata"]["Arn"] == meta["Arn"]
    blob = b.encrypt(KeyId=alias_arn, Plaintext=b"across")["CiphertextBlob"]
    assert b.decrypt(CiphertextBlob=blob, KeyId=alias_arn)["Plaintext"] == b"across"
    dk = b.generate_data_key(KeyId=alias_arn, KeySpec="AES_256")
    assert dk["KeyId"] == meta["Arn"]
    again = b.re_encrypt(CiphertextBlob=blob, DestinationKeyId=alias_arn)
    assert again["KeyId"] == meta["Arn"]
    # The alias name alone names an alias of the caller's own account.
    with pytest.raises(ClientError) as e:
        b.encrypt(KeyId=alias, Plaintext=b"x")
    assert code(e) == "NotFoundException"
    # An alias ARN of another account that does not exist.
    with pytest.raises(ClientError) as e:
        b.encrypt(KeyId="arn:aws:kms:%s:%s:alias/missing-%s" % (REGION, A, os.urandom(3).hex()),
                  Plaintext=b"x")
    assert code(e) == "NotFoundException"


def test_cross_account_grants_need_the_key_arn(two_accounts):
    """CreateGrant and ListGrants: "To specify a KMS key in a different AWS
    account, you must use the key ARN"."""
    meta, alias_arn, _ = shared_key(two_accounts)
    b = client(two_accounts, "user")
    grantee = "arn:aws:iam::%s:root" % B
    with pytest.raises(ClientError) as e:
        b.create_grant(KeyId=alias_arn, GranteePrincipal=grantee, Operations=["Encrypt"])
    assert code(e) == "NotFoundException"
    b.create_grant(KeyId=meta["Arn"], GranteePrincipal=grantee, Operations=["Encrypt"])
    with pytest.raises(ClientError) as e:
        b.list_grants(KeyId=alias_arn)
    assert code(e) == "NotFoundException"


def test_alias_arn_without_permission_is_denied(two_accounts):
    """The key policy decides, as for a key ARN: a key that does not name
    account B refuses its users even through an alias ARN."""
    a = client(two_accounts, "rootA")
    key = a.create_key()["KeyMetadata"]["KeyId"]
    alias = name("alias/private")
    a.create_alias(AliasName=alias, TargetKeyId=key)
    with pytest.raises(ClientError) as e:
        client(two_accounts, "user").encrypt(KeyId="arn:aws:kms:%s:%s:%s" % (REGION, A, alias), Plaintext=b"x")
    assert code(e) == "AccessDeniedException"
