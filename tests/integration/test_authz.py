"""Authorization: IAM principals in two accounts, STS, key policies, grants,
cross-account use, conditions, DryRun and the policy simulator — through
boto3 and the AWS CLI against a kinko configured with several principals.
"""
import base64
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import KINKO, with_store
from helpers import allow, arn_user, iam_user, kms_request, private_server

A = "111111111111"
B = "222222222222"


def arn_root(acct):
    return "arn:aws:iam::%s:root" % acct


def arn_role(acct, name):
    return "arn:aws:iam::%s:role/%s" % (acct, name)


KEYS = {}


def user(acct, name, policies=()):
    return iam_user(KEYS, acct, name, policies, key_fill="XXXXXXXXXXXX", secret_prefix="secret-")


CONFIG = {
    "accounts": [
        {
            "id": A,
            "root_access_keys": [{"access_key_id": "AKIAROOTA", "secret_access_key": "root-a"}],
            "users": [
                user(A, "keyadmin"),
                user(A, "keyuser"),
                user(A, "iamuser", [allow(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"])]),
                user(A, "nobody"),
                user(A, "creator", [allow(["kms:CreateKey", "kms:PutKeyPolicy", "kms:GetKeyPolicy",
                                           "kms:DescribeKey"])]),
                user(A, "appuser", [allow("sts:AssumeRole", arn_role(A, "app")),
                                    allow("sts:AssumeRole", arn_role(A, "grantee"))]),
                user(A, "denied", [allow("kms:*"),
                                   {"Version": "2012-10-17",
                                    "Statement": [{"Effect": "Deny", "Action": "kms:Decrypt",
                                                   "Resource": "*"}]}]),
            ],
            "roles": [
                {"name": "app",
                 "trust_policy": {"Version": "2012-10-17", "Statement": [
                     {"Effect": "Allow", "Principal": {"AWS": arn_user(A, "appuser")},
                      "Action": "sts:AssumeRole"}]},
                 "policies": [allow(["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"])]},
                {"name": "grantee",
                 "trust_policy": {"Version": "2012-10-17", "Statement": [
                     {"Effect": "Allow", "Principal": {"AWS": A}, "Action": "sts:AssumeRole"}]},
                 "policies": []},
            ],
        },
        {
            "id": B,
            "root_access_keys": [{"access_key_id": "AKIAROOTB", "secret_access_key": "root-b"}],
            "users": [
                user(B, "extuser", [allow(["kms:Decrypt", "kms:Encrypt", "kms:DescribeKey"],
                                          "arn:aws:kms:*:%s:key/*" % A)]),
                user(B, "extnopol"),
            ],
        },
    ]
}


@pytest.fixture(scope="module")
def srv():
    # Quotas off: a test may call PutKeyPolicy faster than its AWS rate.
    yield from private_server(CONFIG, "kinko-authz-")


def cli(srv, name, service="kms", token=None):
    if name == "rootA":
        return srv.client(service, key="AKIAROOTA", secret="root-a")
    if name == "rootB":
        return srv.client(service, key="AKIAROOTB", secret="root-b")
    ak, sk = KEYS[name]
    return srv.client(service, key=ak, secret=sk, token=token)


def code(e):
    return e.value.response["Error"]["Code"]


def msg(e):
    return e.value.response["Error"].get("Message", "")


def key_policy(*statements, account=A):
    root = {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": {"AWS": arn_root(account)}, "Action": "kms:*", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [root] + list(statements)})


ADMIN_ACTIONS = ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
                 "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
                 "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
                 "kms:CancelKeyDeletion"]
USER_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                "kms:DescribeKey"]


def admin_user_policy():
    return key_policy(
        {"Sid": "Allow access for Key Administrators", "Effect": "Allow",
         "Principal": {"AWS": arn_user(A, "keyadmin")}, "Action": ADMIN_ACTIONS, "Resource": "*"},
        {"Sid": "Allow use of the key", "Effect": "Allow",
         "Principal": {"AWS": arn_user(A, "keyuser")}, "Action": USER_ACTIONS, "Resource": "*"})


# ---------------------------------------------------------------- STS

def test_get_caller_identity_boto3(srv):
    r = cli(srv, "rootA", "sts").get_caller_identity()
    assert r["Account"] == A and r["Arn"] == arn_root(A) and r["UserId"] == A
    r = cli(srv, "keyuser", "sts").get_caller_identity()
    assert r["Arn"] == arn_user(A, "keyuser") and r["UserId"].startswith("AIDA")
    r = cli(srv, "extuser", "sts").get_caller_identity()
    assert r["Account"] == B


def test_get_caller_identity_cli(srv):
    ak, sk = KEYS["iamuser"]
    _, out, _ = srv.aws("sts", "get-caller-identity", key=ak, secret=sk)
    doc = json.loads(out)
    assert doc["Arn"] == arn_user(A, "iamuser") and doc["Account"] == A


def test_sts_unknown_key(srv):
    c = srv.client("sts", key="AKIANOSUCHKEY", secret="x")
    with pytest.raises(ClientError) as e:
        c.get_caller_identity()
    assert code(e) == "InvalidClientTokenId"


def assume(srv, role="app", who="appuser", session="s1", **kw):
    return cli(srv, who, "sts").assume_role(RoleArn=arn_role(A, role), RoleSessionName=session, **kw)


def session_client(srv, creds, service="kms"):
    return srv.client(service, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                      token=creds["SessionToken"])


def test_assume_role_session_has_exactly_the_role_rights(srv):
    r = assume(srv, session="exact")
    creds = r["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert r["AssumedRoleUser"]["Arn"] == "arn:aws:sts::%s:assumed-role/app/exact" % A
    ident = session_client(srv, creds, "sts").get_caller_identity()
    assert ident["Arn"] == "arn:aws:sts::%s:assumed-role/app/exact" % A
    assert ident["UserId"].startswith("AROA") and ident["UserId"].endswith(":exact")

    key = cli(srv, "rootA").create_key()["KeyMetadata"]["KeyId"]
    kms = session_client(srv, creds)
    blob = kms.encrypt(KeyId=key, Plaintext=b"role data")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"role data"
    kms.describe_key(KeyId=key)
    with pytest.raises(ClientError) as e:
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert code(e) == "AccessDeniedException"
    assert "assumed-role/app/exact is not authorized to perform: kms:ScheduleKeyDeletion" in msg(e)
    with pytest.raises(ClientError) as e:
        kms.create_key()
    assert code(e) == "AccessDeniedException"
    # The user who assumed the role has none of these rights itself.
    with pytest.raises(ClientError) as e:
        cli(srv, "appuser").encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"


def test_assume_role_refused(srv):
    with pytest.raises(ClientError) as e:
        assume(srv, who="nobody")
    assert code(e) == "AccessDenied"
    assert "is not authorized to perform: sts:AssumeRole on resource: " + arn_role(A, "app") in msg(e)
    with pytest.raises(ClientError) as e:
        assume(srv, role="nosuchrole")
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        assume(srv, session="bad name!")
    assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        assume(srv, DurationSeconds=100000)
    assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        cli(srv, "rootA", "sts").assume_role(RoleArn=arn_role(A, "grantee"), RoleSessionName="xx")
    assert code(e) == "AccessDenied" and "root" in msg(e)
    # Trust policy naming the account delegates: a user of another account is refused.
    with pytest.raises(ClientError) as e:
        cli(srv, "extuser", "sts").assume_role(RoleArn=arn_role(A, "grantee"), RoleSessionName="xx")
    assert code(e) == "AccessDenied"


def test_session_token_is_checked_and_expires(srv):
    creds = assume(srv, session="short", DurationSeconds=900)["Credentials"]
    bad = dict(creds, SessionToken=creds["SessionToken"][:-4] + "AAAA")
    with pytest.raises(ClientError) as e:
        session_client(srv, bad, "sts").get_caller_identity()
    assert code(e) == "InvalidClientTokenId"
    nosess = srv.client("kms", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"])
    with pytest.raises(ClientError) as e:
        nosess.list_keys()
    assert code(e) == "UnrecognizedClientException"
    session_client(srv, creds, "sts").get_caller_identity()
    srv.advance_clock(901, key="AKIAROOTA", secret="root-a")
    with pytest.raises(ClientError) as e:
        session_client(srv, creds, "kms").list_keys()
    assert code(e) == "ExpiredTokenException"


def test_assume_role_cli(srv):
    ak, sk = KEYS["appuser"]
    _, out, _ = srv.aws("sts", "assume-role", "--role-arn", arn_role(A, "app"),
                        "--role-session-name", "cli", key=ak, secret=sk)
    doc = json.loads(out)
    assert doc["AssumedRoleUser"]["Arn"].endswith("assumed-role/app/cli")
    rc, _, err = srv.aws("sts", "assume-role", "--role-arn", arn_role(A, "app"),
                         "--role-session-name", "cli", key=KEYS["nobody"][0],
                         secret=KEYS["nobody"][1], check=False)
    assert rc != 0 and "AccessDenied" in err


# ---------------------------------------------------------------- key policies

def test_key_user_may_encrypt_but_not_schedule_deletion(srv):
    key = cli(srv, "rootA").create_key(Policy=admin_user_policy())["KeyMetadata"]
    ku = cli(srv, "keyuser")
    blob = ku.encrypt(KeyId=key["KeyId"], Plaintext=b"payload")["CiphertextBlob"]
    assert ku.decrypt(CiphertextBlob=blob)["Plaintext"] == b"payload"
    ku.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    with pytest.raises(ClientError) as e:
        ku.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert code(e) == "AccessDeniedException"
    # The key policy lets the account's identity policies decide, and none allows it.
    assert msg(e) == ("User: %s is not authorized to perform: kms:ScheduleKeyDeletion on resource: %s "
                      "because no identity-based policy allows the kms:ScheduleKeyDeletion action"
                      % (arn_user(A, "keyuser"), key["Arn"]))
    with pytest.raises(ClientError) as e:
        ku.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=admin_user_policy())
    assert code(e) == "AccessDeniedException"


def test_key_admin_may_manage_but_not_decrypt(srv):
    root = cli(srv, "rootA")
    key = root.create_key(Policy=admin_user_policy())["KeyMetadata"]
    blob = root.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    ka = cli(srv, "keyadmin")
    ka.describe_key(KeyId=key["KeyId"])
    ka.disable_key(KeyId=key["KeyId"])
    ka.enable_key(KeyId=key["KeyId"])
    ka.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=admin_user_policy())
    assert json.loads(ka.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    for call in (lambda: ka.decrypt(CiphertextBlob=blob),
                 lambda: ka.encrypt(KeyId=key["KeyId"], Plaintext=b"x")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "AccessDeniedException"
        assert "keyadmin is not authorized to perform: kms:" in msg(e)
    r = ka.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert r["KeyState"] == "PendingDeletion"
    ka.cancel_key_deletion(KeyId=key["KeyId"])


def test_default_policy_delegates_to_identity_policies(srv):
    key = cli(srv, "rootA").create_key()["KeyMetadata"]
    pol = json.loads(cli(srv, "rootA").get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    assert pol["Statement"][0]["Principal"] == {"AWS": arn_root(A)}
    assert pol["Statement"][0]["Action"] == "kms:*"
    iu = cli(srv, "iamuser")
    blob = iu.encrypt(KeyId=key["KeyId"], Plaintext=b"delegated")["CiphertextBlob"]
    assert iu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"delegated"
    with pytest.raises(ClientError) as e:
        iu.disable_key(KeyId=key["KeyId"])
    assert "no identity-based policy allows the kms:DisableKey action" in msg(e)
    with pytest.raises(ClientError) as e:
        cli(srv, "nobody").encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    assert code(e) == "AccessDeniedException"
    assert "no identity-based policy allows the kms:Encrypt action" in msg(e)
    # An explicit deny in an identity policy wins over its kms:*.
    d = cli(srv, "denied")
    blob = d.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        d.decrypt(CiphertextBlob=blob)
    assert msg(e).endswith("with an explicit deny in an identity-based policy")


def test_keyless_operations_need_identity_permission(srv):
    with pytest.raises(ClientError) as e:
        cli(srv, "nobody").create_key()
    assert code(e) == "AccessDeniedException" and "kms:CreateKey" in msg(e)
    with pytest.raises(ClientError) as e:
        cli(srv, "nobody").list_keys()
    assert code(e) == "AccessDeniedException"
    key = cli(srv, "creator").create_key(Description="by creator")["KeyMetadata"]
    assert key["AWSAccountId"] == A


def test_deny_on_missing_encryption_context(srv):
    pol = key_policy({"Sid": "RequireContext", "Effect": "Deny", "Principal": "*",
                      "Action": ["kms:Encrypt", "kms:GenerateDataKey*"], "Resource": "*",
                      "Condition": {"Null": {"kms:EncryptionContext:app": "true"}}},
                     {"Sid": "KeyUser", "Effect": "Allow", "Principal": {"AWS": arn_user(A, "keyuser")},
                      "Action": USER_ACTIONS, "Resource": "*"})
    key = cli(srv, "rootA").create_key(Policy=pol)["KeyMetadata"]["KeyId"]
    ku = cli(srv, "keyuser")
    with pytest.raises(ClientError) as e:
        ku.encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"
    assert msg(e).endswith("with an explicit deny in a resource-based policy")
    with pytest.raises(ClientError) as e:
        ku.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"other": "1"})
    assert code(e) == "AccessDeniedException"
    blob = ku.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"app": "billing"})["CiphertextBlob"]
    assert ku.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "billing"})["Plaintext"] == b"x"
    # The deny applies to the root principal too.
    with pytest.raises(ClientError) as e:
        cli(srv, "rootA").encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"


def test_condition_keys_on_key_policy(srv):
    pol = key_policy({"Sid": "ViaAliasOnly", "Effect": "Allow", "Principal": {"AWS": arn_user(A, "keyuser")},
                      "Action": "kms:Encrypt", "Resource": "*",
                      "Condition": {"StringLike": {"kms:RequestAlias": "alias/authz-*"},
                                    "StringEquals": {"kms:CallerAccount": A,
                                                     "kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"},
                                    "Bool": {"aws:SecureTransport": "false"},
                                    "IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}})
    root = cli(srv, "rootA")
    key = root.create_key(Policy=pol)["KeyMetadata"]["KeyId"]
    alias = "alias/authz-%s" % key[:8]
    root.create_alias(AliasName=alias, TargetKeyId=key)
    ku = cli(srv, "keyuser")
    ku.encrypt(KeyId=alias, Plaintext=b"x")
    with pytest.raises(ClientError) as e:
        ku.encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"


def test_resource_aliases_condition(srv):
    pol = key_policy({"Sid": "TeamAliases", "Effect": "Allow", "Principal": {"AWS": arn_user(A, "keyuser")},
                      "Action": "kms:Encrypt", "Resource": "*",
                      "Condition": {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/team-*"}}})
    root = cli(srv, "rootA")
    key = root.create_key(Policy=pol)["KeyMetadata"]["KeyId"]
    ku = cli(srv, "keyuser")
    with pytest.raises(ClientError) as e:
        ku.encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"
    root.create_alias(AliasName="alias/team-%s" % key[:8], TargetKeyId=key)
    ku.encrypt(KeyId=key, Plaintext=b"x")


def test_alias_operations_need_the_alias_and_the_key(srv):
    root = cli(srv, "rootA")
    mine = root.create_key(Policy=admin_user_policy())["KeyMetadata"]["KeyId"]
    other = root.create_key()["KeyMetadata"]["KeyId"]
    ka = cli(srv, "keyadmin")
    # The key policy allows keyadmin kms:Create* on the key, but no identity
    # policy allows kms:CreateAlias on the alias.
    with pytest.raises(ClientError) as e:
        ka.create_alias(AliasName="alias/ka-%s" % mine[:8], TargetKeyId=mine)
    assert code(e) == "AccessDeniedException"
    assert ":alias/ka-" in msg(e)
    name = "alias/root-%s" % mine[:8]
    root.create_alias(AliasName=name, TargetKeyId=other)
    with pytest.raises(ClientError) as e:
        cli(srv, "iamuser").delete_alias(AliasName=name)
    assert code(e) == "AccessDeniedException"


def test_resource_tag_condition(srv):
    pol = key_policy({"Sid": "Tagged", "Effect": "Allow", "Principal": {"AWS": arn_user(A, "keyuser")},
                      "Action": "kms:Encrypt", "Resource": "*",
                      "Condition": {"StringEquals": {"aws:ResourceTag/team": "blue"}}})
    root = cli(srv, "rootA")
    blue = root.create_key(Policy=pol, Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"]["KeyId"]
    red = root.create_key(Policy=pol, Tags=[{"TagKey": "team", "TagValue": "red"}])["KeyMetadata"]["KeyId"]
    ku = cli(srv, "keyuser")
    ku.encrypt(KeyId=blue, Plaintext=b"x")
    with pytest.raises(ClientError) as e:
        ku.encrypt(KeyId=red, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"


def test_put_key_policy_errors(srv):
    root = cli(srv, "rootA")
    key = root.create_key()["KeyMetadata"]["KeyId"]
    before = root.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
    bad = ["not json", json.dumps({"Version": "2012-10-17"}),
           json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::12:root"},
                                      "Action": "kms:*", "Resource": "*"}]}),
           json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*",
                                      "Resource": "*", "Condition": {"StringEqualsSometimes": {"a": "b"}}}]})]
    for doc in bad:
        with pytest.raises(ClientError) as e:
            root.put_key_policy(KeyId=key, PolicyName="default", Policy=doc)
        assert code(e) == "MalformedPolicyDocumentException", doc
    big = key_policy({"Sid": "x" * 33000, "Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt",
                      "Resource": "*"})
    with pytest.raises(ClientError) as e:
        root.put_key_policy(KeyId=key, PolicyName="default", Policy=big)
    assert code(e) == "LimitExceededException"
    with pytest.raises(ClientError) as e:
        root.create_key(Policy="{oops")
    assert code(e) == "MalformedPolicyDocumentException"
    # Nothing was half-written.
    assert root.get_key_policy(KeyId=key, PolicyName="default")["Policy"] == before
    assert cli(srv, "rootA").list_key_policies(KeyId=key)["PolicyNames"] == ["default"]
    with pytest.raises(ClientError) as e:
        root.get_key_policy(KeyId=key, PolicyName="other")
    assert code(e) == "NotFoundException"


def test_lockout_safety_check(srv):
    root = cli(srv, "rootA")
    key = root.create_key()["KeyMetadata"]["KeyId"]
    lockout = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": arn_user(A, "keyuser")}, "Action": "kms:Encrypt",
         "Resource": "*"}]})
    with pytest.raises(ClientError) as e:
        root.put_key_policy(KeyId=key, PolicyName="default", Policy=lockout)
    assert code(e) == "MalformedPolicyDocumentException"
    assert "will not allow you to update the key policy in the future" in msg(e)
    with pytest.raises(ClientError) as e:
        root.create_key(Policy=lockout)
    assert code(e) == "MalformedPolicyDocumentException"
    root.put_key_policy(KeyId=key, PolicyName="default", Policy=lockout,
                        BypassPolicyLockoutSafetyCheck=True)
    with pytest.raises(ClientError) as e:
        root.put_key_policy(KeyId=key, PolicyName="default", Policy=key_policy())
    assert code(e) == "AccessDeniedException"
    cli(srv, "keyuser").encrypt(KeyId=key, Plaintext=b"still usable")


def test_key_policy_cli(srv):
    _, out, _ = srv.aws("kms", "create-key", key="AKIAROOTA", secret="root-a")
    key = json.loads(out)["KeyMetadata"]["KeyId"]
    path = os.path.join(srv.data_dir, "policy.json")
    with open(path, "w") as f:
        f.write(admin_user_policy())
    srv.aws("kms", "put-key-policy", "--key-id", key, "--policy-name", "default",
            "--policy", "file://" + path, key="AKIAROOTA", secret="root-a")
    _, out, _ = srv.aws("kms", "get-key-policy", "--key-id", key, "--policy-name", "default",
                        "--output", "text", "--query", "Policy", key="AKIAROOTA", secret="root-a")
    assert json.loads(out)["Statement"][1]["Sid"] == "Allow access for Key Administrators"
    ak, sk = KEYS["keyuser"]
    rc, _, err = srv.aws("kms", "schedule-key-deletion", "--key-id", key, key=ak, secret=sk, check=False)
    assert rc != 0 and "AccessDeniedException" in err and "kms:ScheduleKeyDeletion" in err


# ---------------------------------------------------------------- cross-account

def cross_account_key(srv, allow_b=True):
    stmts = []
    if allow_b:
        stmts.append({"Sid": "AllowExternal", "Effect": "Allow", "Principal": {"AWS": arn_root(B)},
                      "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"})
    return cli(srv, "rootA").create_key(Policy=key_policy(*stmts))["KeyMetadata"]


def test_cross_account_decrypt_allowed_by_both_policies(srv):
    key = cross_account_key(srv)
    blob = cli(srv, "rootA").encrypt(KeyId=key["KeyId"], Plaintext=b"shared")["CiphertextBlob"]
    ext = cli(srv, "extuser")
    assert ext.decrypt(CiphertextBlob=blob, KeyId=key["Arn"])["Plaintext"] == b"shared"
    # The ciphertext names its key: no KeyId needed, as in AWS.
    assert ext.decrypt(CiphertextBlob=blob)["Plaintext"] == b"shared"
    assert ext.describe_key(KeyId=key["Arn"])["KeyMetadata"]["AWSAccountId"] == A
    blob2 = ext.encrypt(KeyId=key["Arn"], Plaintext=b"from B")["CiphertextBlob"]
    assert cli(srv, "rootA").decrypt(CiphertextBlob=blob2)["Plaintext"] == b"from B"
    # Account B's root has its account's implicit identity permissions.
    assert cli(srv, "rootB").decrypt(CiphertextBlob=blob, KeyId=key["Arn"])["Plaintext"] == b"shared"


def test_cross_account_refused_without_identity_policy(srv):
    key = cross_account_key(srv)
    blob = cli(srv, "rootA").encrypt(KeyId=key["KeyId"], Plaintext=b"shared")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        cli(srv, "extnopol").decrypt(CiphertextBlob=blob, KeyId=key["Arn"])
    assert code(e) == "AccessDeniedException"
    assert msg(e) == ("User: %s is not authorized to perform: kms:Decrypt on resource: %s because no "
                      "identity-based policy allows the kms:Decrypt action" % (arn_user(B, "extnopol"), key["Arn"]))


def test_cross_account_refused_without_key_policy(srv):
    key = cross_account_key(srv, allow_b=False)
    blob = cli(srv, "rootA").encrypt(KeyId=key["KeyId"], Plaintext=b"private")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        cli(srv, "extuser").decrypt(CiphertextBlob=blob, KeyId=key["Arn"])
    assert code(e) == "AccessDeniedException"
    assert "because no resource-based policy allows the kms:Decrypt action" in msg(e)
    with pytest.raises(ClientError) as e:
        cli(srv, "extuser").decrypt(CiphertextBlob=blob)
    assert code(e) == "AccessDeniedException"
    # Account B cannot see account A's keys by bare id.
    with pytest.raises(ClientError) as e:
        cli(srv, "extuser").describe_key(KeyId=key["KeyId"])
    assert code(e) == "NotFoundException"


# ---------------------------------------------------------------- grants

def test_grant_enables_decrypt_for_a_role_until_retired(srv):
    root = cli(srv, "rootA")
    key = root.create_key()["KeyMetadata"]
    blob = root.encrypt(KeyId=key["KeyId"], Plaintext=b"granted", EncryptionContext={"app": "g"})["CiphertextBlob"]
    creds = assume(srv, role="grantee", session="g1")["Credentials"]
    role_kms = session_client(srv, creds)
    with pytest.raises(ClientError) as e:
        role_kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "g"})
    assert code(e) == "AccessDeniedException"

    g = root.create_grant(KeyId=key["KeyId"], GranteePrincipal=arn_role(A, "grantee"),
                          RetiringPrincipal=arn_root(A), Operations=["Decrypt"],
                          Constraints={"EncryptionContextSubset": {"app": "g"}}, Name="g1grant")
    assert len(g["GrantId"]) == 64 and g["GrantToken"]
    again = root.create_grant(KeyId=key["KeyId"], GranteePrincipal=arn_role(A, "grantee"),
                              RetiringPrincipal=arn_root(A), Operations=["Decrypt"],
                              Constraints={"EncryptionContextSubset": {"app": "g"}}, Name="g1grant")
    assert again["GrantId"] == g["GrantId"]
    assert role_kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "g"},
                            GrantTokens=[g["GrantToken"]])["Plaintext"] == b"granted"
    with pytest.raises(ClientError) as e:  # not a granted operation
        role_kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"app": "g"})
    assert code(e) == "AccessDeniedException"
    other = root.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"app": "h"})["CiphertextBlob"]
    with pytest.raises(ClientError) as e:  # outside the constraint
        role_kms.decrypt(CiphertextBlob=other, EncryptionContext={"app": "h"})
    assert code(e) == "AccessDeniedException"

    grants = root.list_grants(KeyId=key["KeyId"])["Grants"]
    assert [x["GrantId"] for x in grants] == [g["GrantId"]]
    assert grants[0]["GranteePrincipal"] == arn_role(A, "grantee")
    assert grants[0]["Operations"] == ["Decrypt"]
    assert grants[0]["Constraints"] == {"EncryptionContextSubset": {"app": "g"}}
    ret = root.list_retirable_grants(RetiringPrincipal=arn_root(A))["Grants"]
    assert g["GrantId"] in [x["GrantId"] for x in ret]

    root.retire_grant(GrantToken=g["GrantToken"])
    with pytest.raises(ClientError) as e:
        role_kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "g"})
    assert code(e) == "AccessDeniedException"
    assert root.list_grants(KeyId=key["KeyId"])["Grants"] == []


def test_revoke_grant_and_grant_errors(srv):
    root = cli(srv, "rootA")
    key = root.create_key()["KeyMetadata"]["KeyId"]
    g = root.create_grant(KeyId=key, GranteePrincipal=arn_user(A, "nobody"), Operations=["Encrypt"])
    cli(srv, "nobody").encrypt(KeyId=key, Plaintext=b"x")
    # The grantee cannot retire a grant without RetireGrant or being the retiring principal.
    with pytest.raises(ClientError) as e:
        cli(srv, "nobody").retire_grant(KeyId=key, GrantId=g["GrantId"])
    assert code(e) == "AccessDeniedException"
    root.revoke_grant(KeyId=key, GrantId=g["GrantId"])
    with pytest.raises(ClientError) as e:
        cli(srv, "nobody").encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        root.revoke_grant(KeyId=key, GrantId=g["GrantId"])
    assert code(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        root.create_grant(KeyId=key, GranteePrincipal="not-a-principal", Operations=["Encrypt"])
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        root.retire_grant(GrantToken="garbage-token")
    assert code(e) == "InvalidGrantTokenException"
    with pytest.raises(ClientError) as e:
        root.encrypt(KeyId=key, Plaintext=b"x", GrantTokens=["not a token"])
    assert code(e) == "InvalidGrantTokenException"
    # kms:CreateGrant is itself authorized: the key user of another key may not.
    with pytest.raises(ClientError) as e:
        cli(srv, "iamuser").create_grant(KeyId=key, GranteePrincipal=arn_user(A, "nobody"),
                                         Operations=["Decrypt"])
    assert code(e) == "AccessDeniedException"


def test_grant_operations_condition(srv):
    pol = key_policy({"Sid": "LimitedGrants", "Effect": "Allow", "Principal": {"AWS": arn_user(A, "keyuser")},
                      "Action": "kms:CreateGrant", "Resource": "*",
                      "Condition": {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt", "Encrypt"]},
                                    "Bool": {"kms:GrantIsForAWSResource": "false"}}})
    key = cli(srv, "rootA").create_key(Policy=pol)["KeyMetadata"]["KeyId"]
    ku = cli(srv, "keyuser")
    ku.create_grant(KeyId=key, GranteePrincipal=arn_user(A, "nobody"), Operations=["Decrypt"])
    with pytest.raises(ClientError) as e:
        ku.create_grant(KeyId=key, GranteePrincipal=arn_user(A, "nobody"), Operations=["Decrypt", "CreateGrant"])
    assert code(e) == "AccessDeniedException"


def test_grant_cli(srv):
    root = cli(srv, "rootA")
    key = root.create_key()["KeyMetadata"]["KeyId"]
    _, out, _ = srv.aws("kms", "create-grant", "--key-id", key, "--grantee-principal", arn_user(A, "nobody"),
                        "--operations", "Encrypt", "Decrypt", key="AKIAROOTA", secret="root-a")
    gid = json.loads(out)["GrantId"]
    _, out, _ = srv.aws("kms", "list-grants", "--key-id", key, key="AKIAROOTA", secret="root-a")
    assert json.loads(out)["Grants"][0]["GrantId"] == gid
    srv.aws("kms", "revoke-grant", "--key-id", key, "--grant-id", gid, key="AKIAROOTA", secret="root-a")


# ---------------------------------------------------------------- DryRun

def test_dry_run_checks_authorization(srv):
    root = cli(srv, "rootA")
    key = root.create_key(Policy=admin_user_policy())["KeyMetadata"]["KeyId"]
    pt = base64.b64encode(b"x").decode()
    ak, sk = KEYS["keyuser"]
    st, body = kms_request(srv, "Encrypt", {"KeyId": key, "Plaintext": pt, "DryRun": True},
                           key=ak, secret=sk)
    assert st == 412 and body["__type"] == "DryRunOperationException"
    ak, sk = KEYS["keyadmin"]
    st, body = kms_request(srv, "Encrypt", {"KeyId": key, "Plaintext": pt, "DryRun": True},
                           key=ak, secret=sk)
    assert st == 400 and body["__type"] == "AccessDeniedException"
    st, body = kms_request(srv, "CreateGrant", {"KeyId": key, "GranteePrincipal": arn_user(A, "nobody"),
                                                "Operations": ["Decrypt"], "DryRun": True},
                           key="AKIAROOTA", secret="root-a")
    assert body["__type"] == "DryRunOperationException"
    assert root.list_grants(KeyId=key)["Grants"] == []


# ---------------------------------------------------------------- policy simulator

def simulate(srv, *args):
    cfg = os.path.join(srv.data_dir, "kinko.json")
    p = subprocess.run([KINKO] + with_store(["policy", "simulate", "--config", cfg, "--data", srv.data_dir]) + list(args),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_policy_simulator_explains(srv):
    key = cli(srv, "rootA").create_key(Policy=admin_user_policy())["KeyMetadata"]
    rc, out, err = simulate(srv, "--principal", arn_user(A, "keyuser"), "--action", "kms:Encrypt",
                            "--key", key["Arn"])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["Decision"] == "allowed" and doc["Details"]["Sid"] == "Allow use of the key"
    rc, out, _ = simulate(srv, "--principal", arn_user(A, "keyuser"), "--action", "kms:ScheduleKeyDeletion",
                          "--key", key["Arn"])
    doc = json.loads(out)
    assert rc == 1 and doc["Decision"] == "implicitDeny"
    assert "no identity-based policy allows the kms:ScheduleKeyDeletion action" in doc["Reason"]
    rc, out, _ = simulate(srv, "--principal", arn_user(A, "iamuser"), "--action", "kms:Decrypt",
                          "--key", key["Arn"])
    assert json.loads(out)["Decision"] == "allowed"
    rc, out, _ = simulate(srv, "--principal", arn_user(A, "denied"), "--action", "kms:Decrypt",
                          "--key", key["Arn"])
    doc = json.loads(out)
    assert doc["Decision"] == "explicitDeny" and doc["Details"]["DecidedBy"] == "identity policy"


def test_policy_simulator_reads_grant_records(srv):
    """Grants are records of their own: the simulator reads them beside the key."""
    root = cli(srv, "rootA")
    key = root.create_key()["KeyMetadata"]
    g = root.create_grant(KeyId=key["KeyId"], GranteePrincipal=arn_user(A, "nobody"),
                          Operations=["Decrypt"])
    rc, out, err = simulate(srv, "--principal", arn_user(A, "nobody"), "--action", "kms:Decrypt",
                            "--key", key["Arn"])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["Decision"] == "allowed" and doc["Details"]["GrantId"] == g["GrantId"], doc
    rc, out, _ = simulate(srv, "--principal", arn_user(A, "nobody"), "--action", "kms:Encrypt",
                          "--key", key["Arn"])
    assert rc == 1 and json.loads(out)["Decision"] == "implicitDeny"
