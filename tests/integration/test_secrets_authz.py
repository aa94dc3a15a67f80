"""Secrets Manager authorization: identity policies of IAM users in two
accounts, resource policies (same-account and cross-account), tag
conditions, explicit denies, the KMS key a cross-account reader needs,
resource policy validation and BlockPublicPolicy — through boto3 and the
AWS CLI against a private kinko started from a configuration file.
"""
import json
import os

import pytest
from botocore.exceptions import ClientError

from helpers import allow, arn_user, iam_user, private_server, sm_request

A = "111111111111"
B = "222222222222"
REGION = "us-east-1"
SM_ARN = "arn:aws:secretsmanager:%s:%s:secret:" % (REGION, A)


def deny(actions, resource="*", **extra):
    st = {"Effect": "Deny", "Action": actions, "Resource": resource}
    st.update(extra)
    return {"Version": "2012-10-17", "Statement": [st]}


KEYS = {}


def user(acct, name, policies=()):
    return iam_user(KEYS, acct, name, policies, key_fill="SMZZZZZZZZZZZZ", secret_prefix="sm-secret-")


KEYS["rootA"] = ("AKIASMROOTA", "sm-root-a")
KEYS["rootB"] = ("AKIASMROOTB", "sm-root-b")

CONFIG = {
    "accounts": [
        {
            "id": A,
            "root_access_keys": [{"access_key_id": KEYS["rootA"][0], "secret_access_key": KEYS["rootA"][1]}],
            "users": [
                # GetSecretValue and DescribeSecret on the app/allowed-* secrets only.
                user(A, "reader", [allow(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                                         SM_ARN + "app/allowed-*")]),
                # Everything, except reading secrets tagged env=prod.
                user(A, "tagged", [allow("secretsmanager:*"),
                                   deny("secretsmanager:GetSecretValue",
                                        Condition={"StringEquals": {"secretsmanager:ResourceTag/env": "prod"}})]),
                # BatchGetSecretValue, and GetSecretValue on app/allowed-* only.
                user(A, "batcher", [allow("secretsmanager:BatchGetSecretValue"),
                                    allow("secretsmanager:GetSecretValue", SM_ARN + "app/allowed-*")]),
                # Creates secrets only when they carry the tag team=blue.
                user(A, "creator", [allow("secretsmanager:CreateSecret",
                                          Condition={"StringEquals": {"aws:RequestTag/team": "blue"}})]),
                user(A, "nobody"),
                user(A, "pwgen", [allow("secretsmanager:GetRandomPassword")]),
            ],
        },
        {
            "id": B,
            "root_access_keys": [{"access_key_id": KEYS["rootB"][0], "secret_access_key": KEYS["rootB"][1]}],
            "users": [
                user(B, "xuser", [allow(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                                        SM_ARN + "*"),
                                  allow("kms:Decrypt")]),
                user(B, "xnoid"),
                user(B, "xwriter", [allow(["secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue"],
                                          SM_ARN + "*"),
                                    allow(["kms:GenerateDataKey", "kms:Decrypt"])]),
                user(B, "xnokms", [allow("secretsmanager:GetSecretValue", SM_ARN + "*")]),
            ],
        },
    ]
}


@pytest.fixture(scope="module")
def srv():
    yield from private_server(CONFIG, "kinko-smauthz-")


def sm(srv, who):
    ak, sk = KEYS[who]
    return srv.client("secretsmanager", key=ak, secret=sk)


def kms(srv, who):
    ak, sk = KEYS[who]
    return srv.client("kms", key=ak, secret=sk)


def err(e):
    return e.value.response["Error"]["Code"]


def msg(e):
    return e.value.response["Error"]["Message"]


def denied_msg(who_arn, action, resource, why):
    if why in ("identity", "resource"):
        return ("User: %s is not authorized to perform: %s on resource: %s because no %s-based policy "
                "allows the %s action" % (who_arn, action, resource, why, action))
    article = "an" if why.startswith("identity") else "a"
    return ("User: %s is not authorized to perform: %s on resource: %s with an explicit deny in %s %s"
            % (who_arn, action, resource, article, why))


def batch_get(srv, who, body):
    """BatchGetSecretValue is newer than this botocore's model: a signed call
    of our own as `who`; returns (HTTP status, parsed body)."""
    ak, sk = KEYS[who]
    return sm_request(srv, "BatchGetSecretValue", body, key=ak, secret=sk)


COUNTER = [0]


def unique(prefix):
    COUNTER[0] += 1
    return "%s%d-%s" % (prefix, COUNTER[0], os.urandom(3).hex())


def test_identity_policy_per_secret(srv):
    root = sm(srv, "rootA")
    ok = root.create_secret(Name=unique("app/allowed-"), SecretString="open sesame")["ARN"]
    other = root.create_secret(Name=unique("app/other-"), SecretString="keep out")["ARN"]
    reader = sm(srv, "reader")
    assert reader.get_secret_value(SecretId=ok)["SecretString"] == "open sesame"
    # By name too: the check is on the secret's ARN, whatever names it.
    assert reader.get_secret_value(SecretId=ok.split(":secret:")[1][:-7])["SecretString"] == "open sesame"
    assert reader.describe_secret(SecretId=ok)["ARN"] == ok
    with pytest.raises(ClientError) as e:
        reader.get_secret_value(SecretId=other)
    assert err(e) == "AccessDeniedException"
    assert msg(e) == denied_msg(arn_user(A, "reader"), "secretsmanager:GetSecretValue", other, "identity")
    # Each operation has its own action: reading is not writing.
    with pytest.raises(ClientError) as e:
        reader.put_secret_value(SecretId=ok, SecretString="changed")
    assert err(e) == "AccessDeniedException"
    assert msg(e) == denied_msg(arn_user(A, "reader"), "secretsmanager:PutSecretValue", ok, "identity")
    with pytest.raises(ClientError) as e:
        reader.list_secrets()
    assert msg(e) == denied_msg(arn_user(A, "reader"), "secretsmanager:ListSecrets", "*", "identity")
    with pytest.raises(ClientError) as e:
        reader.create_secret(Name=unique("app/allowed-"), SecretString="x")
    assert err(e) == "AccessDeniedException" and "secretsmanager:CreateSecret" in msg(e)
    with pytest.raises(ClientError) as e:
        reader.get_random_password()
    assert msg(e) == denied_msg(arn_user(A, "reader"), "secretsmanager:GetRandomPassword", "*", "identity")
    assert len(sm(srv, "pwgen").get_random_password(PasswordLength=24)["RandomPassword"]) == 24
    # Nothing changed: the refused write wrote nothing.
    assert root.get_secret_value(SecretId=ok)["SecretString"] == "open sesame"
    # A missing secret is still ResourceNotFoundException.
    with pytest.raises(ClientError) as e:
        reader.get_secret_value(SecretId=SM_ARN + "app/allowed-missing-abcdef")
    assert err(e) == "ResourceNotFoundException"


def test_aws_cli_denial(srv):
    root = sm(srv, "rootA")
    other = root.create_secret(Name=unique("app/cli-"), SecretString="cli")["ARN"]
    ak, sk = KEYS["reader"]
    rc, out, errtext = srv.aws("secretsmanager", "get-secret-value", "--secret-id", other,
                               key=ak, secret=sk, check=False)
    assert rc != 0
    assert "AccessDeniedException" in errtext
    assert denied_msg(arn_user(A, "reader"), "secretsmanager:GetSecretValue", other, "identity") in errtext
    ak, sk = KEYS["rootA"]
    rc, out, _ = srv.aws("secretsmanager", "get-secret-value", "--secret-id", other, key=ak, secret=sk)
    assert json.loads(out)["SecretString"] == "cli"


def test_batch_needs_get_secret_value_per_secret(srv):
    root = sm(srv, "rootA")
    ok = root.create_secret(Name=unique("app/allowed-"), SecretString="one")["ARN"]
    other = root.create_secret(Name=unique("app/other-"), SecretString="two")["ARN"]
    st, got = batch_get(srv, "batcher", {"SecretIdList": [ok, other]})
    assert st == 200, got
    assert [v["ARN"] for v in got["SecretValues"]] == [ok]
    assert got["SecretValues"][0]["SecretString"] == "one"
    assert len(got["Errors"]) == 1
    assert got["Errors"][0]["SecretId"] == other
    assert got["Errors"][0]["ErrorCode"] == "AccessDeniedException"
    assert got["Errors"][0]["Message"] == denied_msg(arn_user(A, "batcher"), "secretsmanager:GetSecretValue",
                                                     other, "identity")
    # GetSecretValue alone does not allow BatchGetSecretValue.
    st, out = batch_get(srv, "reader", {"SecretIdList": [ok]})
    assert st == 400 and out["__type"] == "AccessDeniedException"
    assert out["message"] == denied_msg(arn_user(A, "reader"), "secretsmanager:BatchGetSecretValue", "*",
                                        "identity")


def test_deny_on_tag_condition(srv):
    root = sm(srv, "rootA")
    prod = root.create_secret(Name=unique("svc/prod-"), SecretString="p",
                              Tags=[{"Key": "env", "Value": "prod"}])["ARN"]
    dev = root.create_secret(Name=unique("svc/dev-"), SecretString="d",
                             Tags=[{"Key": "env", "Value": "dev"}])["ARN"]
    t = sm(srv, "tagged")
    assert t.get_secret_value(SecretId=dev)["SecretString"] == "d"
    assert t.describe_secret(SecretId=prod)["ARN"] == prod
    with pytest.raises(ClientError) as e:
        t.get_secret_value(SecretId=prod)
    assert err(e) == "AccessDeniedException"
    assert msg(e) == denied_msg(arn_user(A, "tagged"), "secretsmanager:GetSecretValue", prod,
                                "identity-based policy")
    # An Allow in the resource policy does not override the explicit Deny.
    root.put_resource_policy(SecretId=prod, ResourcePolicy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": arn_user(A, "tagged")},
            "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
    with pytest.raises(ClientError) as e:
        t.get_secret_value(SecretId=prod)
    assert "explicit deny in an identity-based policy" in msg(e)
    # Retagging changes the decision (the tag is read from the secret).
    t.tag_resource(SecretId=dev, Tags=[{"Key": "env", "Value": "prod"}])
    with pytest.raises(ClientError) as e:
        t.get_secret_value(SecretId=dev)
    assert err(e) == "AccessDeniedException"
    t.untag_resource(SecretId=prod, TagKeys=["env"])
    assert t.get_secret_value(SecretId=prod)["SecretString"] == "p"


def test_request_tag_condition_on_create(srv):
    c = sm(srv, "creator")
    with pytest.raises(ClientError) as e:
        c.create_secret(Name=unique("team/"), SecretString="x", Tags=[{"Key": "team", "Value": "red"}])
    assert err(e) == "AccessDeniedException"
    assert "secretsmanager:CreateSecret on resource: " + SM_ARN + "team/" in msg(e)
    arn = c.create_secret(Name=unique("team/"), SecretString="x",
                          Tags=[{"Key": "team", "Value": "blue"}])["ARN"]
    assert sm(srv, "rootA").get_secret_value(SecretId=arn)["SecretString"] == "x"


def test_same_account_resource_policy(srv):
    root = sm(srv, "rootA")
    arn = root.create_secret(Name=unique("shared/"), SecretString="rp")["ARN"]
    nobody = sm(srv, "nobody")
    with pytest.raises(ClientError) as e:
        nobody.get_secret_value(SecretId=arn)
    assert msg(e) == denied_msg(arn_user(A, "nobody"), "secretsmanager:GetSecretValue", arn, "identity")
    # Same account: the resource policy alone is enough.
    root.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": arn_user(A, "nobody")},
            "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}))
    assert nobody.get_secret_value(SecretId=arn)["SecretString"] == "rp"
    with pytest.raises(ClientError) as e:
        nobody.describe_secret(SecretId=arn)
    assert err(e) == "AccessDeniedException"
    # An explicit Deny in the resource policy refuses even the identity policy's Allow.
    reader_arn = root.create_secret(Name=unique("app/allowed-"), SecretString="r")["ARN"]
    assert sm(srv, "reader").get_secret_value(SecretId=reader_arn)["SecretString"] == "r"
    root.put_resource_policy(SecretId=reader_arn, ResourcePolicy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": {"AWS": arn_user(A, "reader")},
            "Action": "secretsmanager:*", "Resource": "*"}]}))
    with pytest.raises(ClientError) as e:
        sm(srv, "reader").get_secret_value(SecretId=reader_arn)
    assert msg(e) == denied_msg(arn_user(A, "reader"), "secretsmanager:GetSecretValue", reader_arn,
                                "resource-based policy")
    root.delete_resource_policy(SecretId=reader_arn)
    assert sm(srv, "reader").get_secret_value(SecretId=reader_arn)["SecretString"] == "r"


def customer_key(srv, allow_b):
    """A key of account A; its policy lets B's xuser/xnoid decrypt when allow_b."""
    statements = [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                   "Principal": {"AWS": "arn:aws:iam::%s:root" % A}, "Action": "kms:*", "Resource": "*"}]
    if allow_b:
        statements.append({"Sid": "B decrypts", "Effect": "Allow",
                           "Principal": {"AWS": [arn_user(B, "xuser"), arn_user(B, "xnoid"),
                                                 arn_user(B, "xnokms")]},
                           "Action": "kms:Decrypt", "Resource": "*"})
    pol = {"Version": "2012-10-17", "Statement": statements}
    return kms(srv, "rootA").create_key(Policy=json.dumps(pol))["KeyMetadata"]["Arn"]


def cross_policy(*principals):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": list(principals)},
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": "*"}]})


def test_cross_account_needs_both_policies_and_the_key(srv):
    root = sm(srv, "rootA")
    key = customer_key(srv, allow_b=True)
    shared = root.create_secret(Name=unique("x/shared-"), SecretString="for B", KmsKeyId=key)["ARN"]
    root.put_resource_policy(SecretId=shared, ResourcePolicy=cross_policy(
        arn_user(B, "xuser"), arn_user(B, "xnoid"), arn_user(B, "xnokms")), BlockPublicPolicy=True)
    x = sm(srv, "xuser")
    # Resource policy + identity policy + key policy + kms:Decrypt: allowed.
    got = x.get_secret_value(SecretId=shared)
    assert got["SecretString"] == "for B" and got["ARN"] == shared
    assert x.describe_secret(SecretId=shared)["KmsKeyId"] == key
    # Another account's secret is named by its complete ARN only.
    with pytest.raises(ClientError) as e:
        x.get_secret_value(SecretId=shared.split(":secret:")[1])
    assert err(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        x.get_secret_value(SecretId=shared[:-7])
    assert err(e) == "ResourceNotFoundException"
    # No identity policy in B: refused although the resource policy names the user.
    with pytest.raises(ClientError) as e:
        sm(srv, "xnoid").get_secret_value(SecretId=shared)
    assert err(e) == "AccessDeniedException"
    assert msg(e) == denied_msg(arn_user(B, "xnoid"), "secretsmanager:GetSecretValue", shared, "identity")
    # B's identity policy allows the secret but not kms:Decrypt: KMS refuses.
    with pytest.raises(ClientError) as e:
        sm(srv, "xnokms").get_secret_value(SecretId=shared)
    assert err(e) == "AccessDeniedException" and msg(e) == "Access to KMS is not allowed"
    # B's root too needs the resource policy.
    with pytest.raises(ClientError) as e:
        sm(srv, "rootB").get_secret_value(SecretId=shared)
    assert msg(e) == denied_msg("arn:aws:iam::%s:root" % B, "secretsmanager:GetSecretValue", shared, "resource")
    # The identity policy alone (no resource policy): refused.
    private = root.create_secret(Name=unique("x/private-"), SecretString="A only", KmsKeyId=key)["ARN"]
    with pytest.raises(ClientError) as e:
        x.get_secret_value(SecretId=private)
    assert err(e) == "AccessDeniedException"
    assert msg(e) == denied_msg(arn_user(B, "xuser"), "secretsmanager:GetSecretValue", private, "resource")
    # Both policies, but the key policy does not let B decrypt.
    key2 = customer_key(srv, allow_b=False)
    nokey = root.create_secret(Name=unique("x/nokey-"), SecretString="k", KmsKeyId=key2)["ARN"]
    root.put_resource_policy(SecretId=nokey, ResourcePolicy=cross_policy(arn_user(B, "xuser")))
    with pytest.raises(ClientError) as e:
        x.get_secret_value(SecretId=nokey)
    assert err(e) == "AccessDeniedException" and msg(e) == "Access to KMS is not allowed"
    # Both policies, but the AWS managed key: cross-account access is refused.
    managed = root.create_secret(Name=unique("x/managed-"), SecretString="m")["ARN"]
    root.put_resource_policy(SecretId=managed, ResourcePolicy=cross_policy(arn_user(B, "xuser")))
    assert x.describe_secret(SecretId=managed)["ARN"] == managed
    with pytest.raises(ClientError) as e:
        x.get_secret_value(SecretId=managed)
    assert err(e) == "AccessDeniedException" and msg(e) == "Access to KMS is not allowed"
    # Actions the resource policy does not grant stay refused.
    with pytest.raises(ClientError) as e:
        x.put_secret_value(SecretId=shared, SecretString="overwrite")
    assert err(e) == "AccessDeniedException"
    assert root.get_secret_value(SecretId=shared)["SecretString"] == "for B"
    # Removing the resource policy ends B's access.
    root.delete_resource_policy(SecretId=shared)
    with pytest.raises(ClientError) as e:
        x.get_secret_value(SecretId=shared)
    assert msg(e) == denied_msg(arn_user(B, "xuser"), "secretsmanager:GetSecretValue", shared, "resource")
    # B's ListSecrets shows B's own account only.
    names = [s["Name"] for s in sm(srv, "rootB").list_secrets()["SecretList"]]
    assert shared.split(":secret:")[1][:-7] not in names


def test_cross_account_write_uses_the_owners_key(srv):
    root = sm(srv, "rootA")
    pol = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::%s:root" % A}, "Action": "kms:*", "Resource": "*"},
        {"Sid": "B writes", "Effect": "Allow", "Principal": {"AWS": arn_user(B, "xwriter")},
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}]}
    meta = kms(srv, "rootA").create_key(Policy=json.dumps(pol))["KeyMetadata"]
    # KmsKeyId by key id: it names the key in the secret's account, not the caller's.
    arn = root.create_secret(Name=unique("x/written-"), SecretString="v1", KmsKeyId=meta["KeyId"])["ARN"]
    rp = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": arn_user(B, "xwriter")},
        "Action": ["secretsmanager:PutSecretValue", "secretsmanager:GetSecretValue"], "Resource": "*"}]})
    root.put_resource_policy(SecretId=arn, ResourcePolicy=rp)
    w = sm(srv, "xwriter")
    vid = w.put_secret_value(SecretId=arn, SecretString="from B")["VersionId"]
    got = root.get_secret_value(SecretId=arn)
    assert got["SecretString"] == "from B" and got["VersionId"] == vid
    assert w.get_secret_value(SecretId=arn)["SecretString"] == "from B"
    # The AWS managed key cannot be used across accounts: nothing is written.
    managed = root.create_secret(Name=unique("x/managed-w-"), SecretString="m1")["ARN"]
    root.put_resource_policy(SecretId=managed, ResourcePolicy=rp)
    with pytest.raises(ClientError) as e:
        w.put_secret_value(SecretId=managed, SecretString="m2")
    assert err(e) == "AccessDeniedException" and msg(e) == "Access to KMS is not allowed"
    assert root.get_secret_value(SecretId=managed)["SecretString"] == "m1"
    assert len(root.list_secret_version_ids(SecretId=managed)["Versions"]) == 1


def test_root_keeps_full_access(srv):
    root = sm(srv, "rootA")
    n = unique("root/all-")
    arn = root.create_secret(Name=n, SecretString="v1", Tags=[{"Key": "env", "Value": "prod"}])["ARN"]
    # A resource policy that names only someone else does not limit the root.
    root.put_resource_policy(SecretId=arn, ResourcePolicy=cross_policy(arn_user(B, "xuser")))
    root.put_secret_value(SecretId=arn, SecretString="v2")
    assert root.get_secret_value(SecretId=arn)["SecretString"] == "v2"
    assert root.describe_secret(SecretId=arn)["Name"] == n
    assert any(s["ARN"] == arn for s in root.list_secrets(
        Filters=[{"Key": "name", "Values": [n]}])["SecretList"])
    assert len(root.list_secret_version_ids(SecretId=arn)["Versions"]) == 2
    root.tag_resource(SecretId=arn, Tags=[{"Key": "k", "Value": "v"}])
    root.update_secret(SecretId=arn, Description="d")
    st, out = batch_get(srv, "rootA", {"SecretIdList": [arn]})
    assert st == 200 and out["SecretValues"][0]["SecretString"] == "v2" and out["Errors"] == []
    assert root.get_random_password(PasswordLength=10)["RandomPassword"]
    root.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as e:
        root.describe_secret(SecretId=arn)
    assert err(e) == "ResourceNotFoundException"


def test_validate_and_block_public_policy(srv):
    root = sm(srv, "rootA")
    arn = root.create_secret(Name=unique("pol/"), SecretString="v")["ARN"]
    # The policy engine's parse errors are reported.
    bad = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::12:user/x"},
        "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    with pytest.raises(ClientError) as e:
        root.validate_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(bad))
    assert err(e) == "MalformedPolicyDocumentException"
    assert msg(e).startswith("This resource policy contains a syntax error: ") and "principal" in msg(e).lower()
    with pytest.raises(ClientError) as e:
        root.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(bad))
    assert err(e) == "MalformedPolicyDocumentException"
    unknown = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": arn_user(B, "xuser")}, "Action": "secretsmanager:GetSecretValue",
        "Resource": "*", "Colour": "blue"}]}
    with pytest.raises(ClientError) as e:
        root.validate_resource_policy(ResourcePolicy=json.dumps(unknown))
    assert err(e) == "MalformedPolicyDocumentException" and "Colour" in msg(e)
    assert "ResourcePolicy" not in root.get_resource_policy(SecretId=arn)
    # BlockPublicPolicy refuses a grant to "*", in either spelling.
    for principal in ("*", {"AWS": "*"}, {"AWS": [arn_user(B, "xuser"), "*"]}):
        public = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": principal,
            "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
        with pytest.raises(ClientError) as e:
            root.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(public), BlockPublicPolicy=True)
        assert err(e) == "PublicPolicyException"
        v = root.validate_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(public))
        assert v["PolicyValidationPassed"] is False
        assert v["ValidationErrors"][0]["CheckName"] == "BLOCK_PUBLIC_POLICY"
    assert "ResourcePolicy" not in root.get_resource_policy(SecretId=arn)
    # "*" narrowed to one account by a condition is not public.
    narrowed = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue",
        "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalAccount": B}}}]}
    root.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(narrowed), BlockPublicPolicy=True)
    assert json.loads(root.get_resource_policy(SecretId=arn)["ResourcePolicy"]) == narrowed
    assert root.validate_resource_policy(ResourcePolicy=json.dumps(narrowed))["PolicyValidationPassed"] is True
    # ... and it is enforced: B's user with an identity policy may now read it (customer key needed
    # for the value, so DescribeSecret is not granted; GetSecretValue reaches KMS and is refused there).
    with pytest.raises(ClientError) as e:
        sm(srv, "xuser").get_secret_value(SecretId=arn)
    assert msg(e) == "Access to KMS is not allowed"
    # Without BlockPublicPolicy a public policy is stored, and it lets everyone in the
    # account through the resource policy alone.
    public = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "secretsmanager:DescribeSecret", "Resource": "*"}]}
    root.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(public))
    assert sm(srv, "nobody").describe_secret(SecretId=arn)["ARN"] == arn
    # Validating needs the permission too.
    with pytest.raises(ClientError) as e:
        sm(srv, "nobody").validate_resource_policy(ResourcePolicy=json.dumps(narrowed))
    assert msg(e) == denied_msg(arn_user(A, "nobody"), "secretsmanager:ValidateResourcePolicy", "*", "identity")
