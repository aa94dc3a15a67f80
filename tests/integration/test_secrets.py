"""Secrets Manager: operations, versions and stages, encryption, deletion,
rotation with local rotation functions, and the PostgreSQL rotation
function against a real PostgreSQL server."""
import base64
import json
import os
import subprocess
import textwrap
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from helpers import (TEMPLATE_STEPS, config_server, raw_describe, rotation_function, sm_request,
                     wait_rotation, write_function)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_ROTATION = os.path.join(ROOT, "rotation", "postgresql.py")
DAY = 86400


def err(excinfo):
    return excinfo.value.response["Error"]["Code"]


def errmsg(excinfo):
    return excinfo.value.response["Error"].get("Message", "")


def name(prefix="app"):
    return "%s/%s" % (prefix, uuid.uuid4().hex[:12])


@pytest.fixture
def sm(server):
    return server.client("secretsmanager")


@pytest.fixture
def sm_raw(server):
    return server.client("secretsmanager", validate=False)


def test_batch_get_secret_value_and_newer_list_members(sm):
    tag = uuid.uuid4().hex[:10]
    names = ["batch/%s/%d" % (tag, i) for i in range(3)]
    for i, n in enumerate(names):
        sm.create_secret(Name=n, SecretString="value-%d" % i)
    missing = "batch/%s/missing" % tag
    st, out = sm_request(sm, "BatchGetSecretValue", {"SecretIdList": names + [missing]})
    assert st == 200, out
    assert sorted(v["SecretString"] for v in out["SecretValues"]) == ["value-0", "value-1", "value-2"]
    assert out["Errors"] == [{"SecretId": missing, "ErrorCode": "ResourceNotFoundException",
                              "Message": "Secrets Manager can't find the specified secret."}]
    f = [{"Key": "name", "Values": ["batch/%s/" % tag]}]
    st, out = sm_request(sm, "BatchGetSecretValue", {"Filters": f, "MaxResults": 2})
    assert st == 200 and len(out["SecretValues"]) == 2 and out["NextToken"]
    st, out2 = sm_request(sm, "BatchGetSecretValue", {"Filters": f, "NextToken": out["NextToken"]})
    assert len(out2["SecretValues"]) == 1
    st, out = sm_request(sm, "BatchGetSecretValue", {"Filters": f, "SecretIdList": names})
    assert st == 400 and out["__type"] == "InvalidParameterException"
    st, out = sm_request(sm, "ListSecrets", {"Filters": f, "SortBy": "name", "SortOrder": "desc"})
    assert [s["Name"] for s in out["SecretList"]] == names[::-1]
    sm.delete_secret(SecretId=names[0], RecoveryWindowInDays=7)
    st, out = sm_request(sm, "ListSecrets", {"Filters": f})
    assert names[0] not in [s["Name"] for s in out["SecretList"]]
    st, out = sm_request(sm, "ListSecrets", {"Filters": f, "IncludePlannedDeletion": True})
    assert names[0] in [s["Name"] for s in out["SecretList"]]


# ---- create, read, versions -------------------------------------------------

def test_create_get_and_arn_suffix(sm):
    n = name()
    r = sm.create_secret(Name=n, SecretString='{"user":"a","password":"p1"}', Description="db")
    assert r["Name"] == n
    prefix = "arn:aws:secretsmanager:us-east-1:000000000000:secret:%s-" % n
    assert r["ARN"].startswith(prefix) and len(r["ARN"]) == len(prefix) + 6
    for ref in (n, r["ARN"], r["ARN"][:-7]):
        got = sm.get_secret_value(SecretId=ref)
        assert got["SecretString"] == '{"user":"a","password":"p1"}'
        assert got["VersionId"] == r["VersionId"]
        assert got["VersionStages"] == ["AWSCURRENT"]
        assert got["ARN"] == r["ARN"]
    d = sm.describe_secret(SecretId=n)
    # Never configured for rotation: RotationEnabled is null, as in AWS.
    assert d["Description"] == "db" and "RotationEnabled" not in d
    assert d["VersionIdsToStages"] == {r["VersionId"]: ["AWSCURRENT"]}
    assert "KmsKeyId" not in d


def test_binary_secret(sm):
    blob = os.urandom(300)
    n = name()
    sm.create_secret(Name=n, SecretBinary=blob)
    got = sm.get_secret_value(SecretId=n)
    assert got["SecretBinary"] == blob and "SecretString" not in got


def test_encrypted_under_aws_managed_key(sm, kms):
    sm.create_secret(Name=name(), SecretString="x")
    md = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert md["KeyManager"] == "AWS"
    assert md["Description"] == "Default key that protects my Secrets Manager data when no other key is defined"
    aliases = [a for a in kms.list_aliases(KeyId=md["KeyId"])["Aliases"]
               if a["AliasName"] == "alias/aws/secretsmanager"]
    assert len(aliases) == 1 and aliases[0]["TargetKeyId"] == md["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"])
    via = [s for s in policy["Statement"] if "kms:ViaService" in json.dumps(s.get("Condition", {}))]
    assert via, policy


def test_unknown_secret_and_bad_names(sm, sm_raw):
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId="does/not/exist-" + uuid.uuid4().hex)
    assert err(e) == "ResourceNotFoundException"
    assert errmsg(e) == "Secrets Manager can't find the specified secret."
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name="bad name!", SecretString="x")
    assert err(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm_raw.create_secret(Name=name(), SecretString="x", SecretBinary=b"y")
    assert err(e) == "InvalidParameterException"


def test_value_size_limit(sm_raw):
    n = name()
    with pytest.raises(ClientError) as e:
        sm_raw.create_secret(Name=n, SecretString="a" * 65537)
    assert err(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm_raw.create_secret(Name=n, SecretBinary=b"a" * 65537)
    assert err(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        sm_raw.describe_secret(SecretId=n)
    assert err(e) == "ResourceNotFoundException"  # nothing was created
    sm_raw.create_secret(Name=n, SecretString="a" * 65536)
    assert len(sm_raw.get_secret_value(SecretId=n)["SecretString"]) == 65536
    with pytest.raises(ClientError) as e:
        sm_raw.put_secret_value(SecretId=n, SecretString="b" * 65537)
    assert err(e) == "ValidationException"
    assert len(sm_raw.list_secret_version_ids(SecretId=n)["Versions"]) == 1


def test_create_existing_name(sm):
    n = name()
    tok = str(uuid.uuid4())
    r = sm.create_secret(Name=n, SecretString="v", ClientRequestToken=tok)
    again = sm.create_secret(Name=n, SecretString="v", ClientRequestToken=tok)
    assert again["ARN"] == r["ARN"] and again["VersionId"] == tok
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=n, SecretString="other")
    assert err(e) == "ResourceExistsException"


def test_stages_move_like_aws(sm):
    n = name()
    v1 = sm.create_secret(Name=n, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=n, SecretString="two")["VersionId"]
    stages = sm.describe_secret(SecretId=n)["VersionIdsToStages"]
    assert stages == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId=n, VersionStage="AWSPREVIOUS")["SecretString"] == "one"
    # A pending version does not touch AWSCURRENT.
    v3 = sm.put_secret_value(SecretId=n, SecretString="three", VersionStages=["AWSPENDING"])["VersionId"]
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=n, VersionStage="AWSPENDING")["SecretString"] == "three"
    # Promote it: AWSPREVIOUS follows the old AWSCURRENT.
    sm.update_secret_version_stage(SecretId=n, VersionStage="AWSCURRENT", MoveToVersionId=v3,
                                   RemoveFromVersionId=v2)
    stages = sm.describe_secret(SecretId=n)["VersionIdsToStages"]
    assert stages[v3] == ["AWSPENDING", "AWSCURRENT"] or sorted(stages[v3]) == ["AWSCURRENT", "AWSPENDING"]
    assert stages[v2] == ["AWSPREVIOUS"]
    assert v1 not in stages  # deprecated: no labels left
    listed = sm.list_secret_version_ids(SecretId=n)["Versions"]
    assert {v["VersionId"] for v in listed} == {v2, v3}
    listed = sm.list_secret_version_ids(SecretId=n, IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"] for v in listed} == {v1, v2, v3}
    assert all(v["KmsKeyIds"] for v in listed)
    # Custom labels.
    sm.update_secret_version_stage(SecretId=n, VersionStage="blue", MoveToVersionId=v1)
    assert sm.get_secret_value(SecretId=n, VersionStage="blue")["SecretString"] == "one"
    with pytest.raises(ClientError) as e:
        sm.update_secret_version_stage(SecretId=n, VersionStage="blue", MoveToVersionId=v2)
    assert err(e) == "InvalidParameterException"  # must name RemoveFromVersionId
    sm.update_secret_version_stage(SecretId=n, VersionStage="blue", RemoveFromVersionId=v1)
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=n, VersionStage="blue")
    assert err(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        sm.update_secret_version_stage(SecretId=n, VersionStage="AWSCURRENT", RemoveFromVersionId=v3)
    assert err(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=n, VersionId=str(uuid.uuid4()))
    assert err(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        sm.update_secret_version_stage(SecretId=n, VersionStage="x", MoveToVersionId=str(uuid.uuid4()))
    assert err(e) == "InvalidParameterException"


def test_client_request_token_idempotency(sm):
    n = name()
    sm.create_secret(Name=n, SecretString="one")
    tok = str(uuid.uuid4())
    a = sm.put_secret_value(SecretId=n, ClientRequestToken=tok, SecretString="two")
    b = sm.put_secret_value(SecretId=n, ClientRequestToken=tok, SecretString="two")
    assert a["VersionId"] == b["VersionId"] == tok
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=n, ClientRequestToken=tok, SecretString="three")
    assert err(e) == "ResourceExistsException"
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "two"
    assert len(sm.list_secret_version_ids(SecretId=n, IncludeDeprecated=True)["Versions"]) == 2


def test_update_secret(sm, kms):
    n = name()
    v1 = sm.create_secret(Name=n, SecretString="one")["VersionId"]
    r = sm.update_secret(SecretId=n, Description="new desc")
    assert "VersionId" not in r
    assert sm.describe_secret(SecretId=n)["Description"] == "new desc"
    key = kms.create_key()["KeyMetadata"]
    r = sm.update_secret(SecretId=n, SecretString="two", KmsKeyId=key["Arn"])
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "two"
    assert sm.describe_secret(SecretId=n)["KmsKeyId"] == key["Arn"]
    versions = {v["VersionId"]: v for v in sm.list_secret_version_ids(SecretId=n)["Versions"]}
    assert versions[r["VersionId"]]["KmsKeyIds"] == [key["Arn"]]
    assert versions[v1]["VersionStages"] == ["AWSPREVIOUS"]


def test_customer_key_disabled_fails_decryption(sm, kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    n = name()
    sm.create_secret(Name=n, SecretString="s3cr3t", KmsKeyId=key)
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "s3cr3t"
    kms.disable_key(KeyId=key)
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=n)
    assert err(e) == "DecryptionFailure"
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=n, SecretString="more")
    assert err(e) == "EncryptionFailure"
    kms.enable_key(KeyId=key)
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "s3cr3t"
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=name(), SecretString="x", KmsKeyId="alias/no-such-" + uuid.uuid4().hex)
    assert err(e) in ("EncryptionFailure", "ResourceNotFoundException")


def test_values_not_stored_in_clear(server, sm):
    marker = "kinko-plaintext-" + uuid.uuid4().hex
    sm.create_secret(Name=name(), SecretString=marker)
    for root, _, files in os.walk(server.data_dir):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                assert marker.encode() not in fh.read(), f


WORDS = ["alpha", "bravo", "charlie", "delta", "echo"]


def test_list_secrets_filters_sort_paging(sm):
    tag = uuid.uuid4().hex[:10]
    names = ["lst/%s/%d" % (tag, i) for i in range(5)]
    for i, n in enumerate(names):
        sm.create_secret(Name=n, SecretString="v", Description="Desc %s %s" % (tag, WORDS[i]),
                         Tags=[{"Key": "team", "Value": "t%s" % tag}, {"Key": "idx", "Value": str(i)}])
    f = [{"Key": "name", "Values": ["lst/%s/" % tag]}]
    # By CreatedDate (to the millisecond).
    got = [s["Name"] for s in sm.list_secrets(Filters=f, SortOrder="asc")["SecretList"]]
    assert got == names
    got = [s["Name"] for s in sm.list_secrets(Filters=f, SortOrder="desc")["SecretList"]]
    assert got == names[::-1]
    page1 = sm.list_secrets(Filters=f, MaxResults=2, SortOrder="asc")
    assert len(page1["SecretList"]) == 2 and "NextToken" in page1
    page2 = sm.list_secrets(Filters=f, MaxResults=10, SortOrder="asc",
                            NextToken=page1["NextToken"])
    assert [s["Name"] for s in page1["SecretList"] + page2["SecretList"]] == names
    got = sm.list_secrets(Filters=[{"Key": "tag-value", "Values": ["t" + tag]},
                                   {"Key": "tag-key", "Values": ["idx"]}])["SecretList"]
    assert sorted(s["Name"] for s in got) == names
    # description matches words, and AWS's words break between letters and
    # digits: the hex tag's digits could begin a word "3", so each
    # description ends in a word of letters.
    got = sm.list_secrets(Filters=[{"Key": "description", "Values": ["desc %s delta" % tag]}])["SecretList"]
    assert [s["Name"] for s in got] == [names[3]]
    got = sm.list_secrets(Filters=f + [{"Key": "name", "Values": ["!lst/%s/1" % tag]}])["SecretList"]
    assert sorted(s["Name"] for s in got) == [n for n in names if n != names[1]]
    # "all" splits the hex tag into words too (letters, digits), whose
    # beginnings other secrets' words may share: look among these five.
    got = sm.list_secrets(Filters=f + [{"Key": "all", "Values": ["T%s" % tag]}])["SecretList"]
    assert len(got) == 5
    with pytest.raises(ClientError) as e:
        sm.list_secrets(NextToken="garbage")
    assert err(e) == "InvalidNextTokenException"


def test_tags(sm):
    n = name()
    sm.create_secret(Name=n, SecretString="v", Tags=[{"Key": "a", "Value": "1"}])
    sm.tag_resource(SecretId=n, Tags=[{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}])
    tags = {t["Key"]: t["Value"] for t in sm.describe_secret(SecretId=n)["Tags"]}
    assert tags == {"a": "2", "b": "3"}
    sm.untag_resource(SecretId=n, TagKeys=["a"])
    assert sm.describe_secret(SecretId=n)["Tags"] == [{"Key": "b", "Value": "3"}]
    with pytest.raises(ClientError) as e:
        sm.tag_resource(SecretId=n, Tags=[{"Key": "aws:x", "Value": "1"}])
    assert err(e) == "InvalidParameterException"


def test_get_random_password(sm, sm_raw):
    p = sm.get_random_password()["RandomPassword"]
    assert len(p) == 32
    assert any(c.islower() for c in p) and any(c.isupper() for c in p) and any(c.isdigit() for c in p)
    assert any(not c.isalnum() for c in p)
    p = sm.get_random_password(PasswordLength=200, ExcludePunctuation=True, ExcludeUppercase=True,
                               ExcludeCharacters="abc012")["RandomPassword"]
    assert len(p) == 200 and all(c.islower() or c.isdigit() for c in p)
    assert not set(p) & set("abc012")
    p = sm.get_random_password(PasswordLength=4, ExcludeLowercase=True, ExcludeUppercase=True,
                               ExcludePunctuation=True)["RandomPassword"]
    assert p.isdigit()
    p = sm.get_random_password(PasswordLength=64, IncludeSpace=True, RequireEachIncludedType=True,
                               ExcludeLowercase=True, ExcludeUppercase=True, ExcludeNumbers=True,
                               ExcludePunctuation=True)["RandomPassword"]
    assert p == " " * 64
    ps = {sm.get_random_password(PasswordLength=20)["RandomPassword"] for _ in range(20)}
    assert len(ps) == 20
    with pytest.raises(ClientError) as e:
        sm.get_random_password(ExcludeLowercase=True, ExcludeUppercase=True, ExcludeNumbers=True,
                               ExcludePunctuation=True)
    assert err(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm_raw.get_random_password(PasswordLength=4097)
    assert err(e) == "ValidationException"


def test_resource_policies(sm):
    n = name()
    arn = sm.create_secret(Name=n, SecretString="v")["ARN"]
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=n)
    pol = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
        "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    sm.put_resource_policy(SecretId=n, ResourcePolicy=json.dumps(pol))
    got = sm.get_resource_policy(SecretId=n)
    assert json.loads(got["ResourcePolicy"]) == pol and got["ARN"] == arn
    public = dict(pol, Statement=[dict(pol["Statement"][0], Principal={"AWS": "*"})])
    with pytest.raises(ClientError) as e:
        sm.put_resource_policy(SecretId=n, ResourcePolicy=json.dumps(public), BlockPublicPolicy=True)
    assert err(e) == "PublicPolicyException"
    v = sm.validate_resource_policy(ResourcePolicy=json.dumps(public))
    assert v["PolicyValidationPassed"] is False and v["ValidationErrors"]
    assert sm.validate_resource_policy(SecretId=n, ResourcePolicy=json.dumps(pol))["PolicyValidationPassed"]
    with pytest.raises(ClientError) as e:
        sm.put_resource_policy(SecretId=n, ResourcePolicy="{not json")
    assert err(e) == "MalformedPolicyDocumentException"
    sm.delete_resource_policy(SecretId=n)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=n)


def test_replication(server):
    east = server.client("secretsmanager", region="us-east-1")
    west = server.client("secretsmanager", region="eu-west-1")
    n = name("repl")
    r = east.create_secret(Name=n, SecretString="v1", AddReplicaRegions=[{"Region": "eu-west-1"}])
    assert r["ReplicationStatus"][0]["Region"] == "eu-west-1"
    assert r["ReplicationStatus"][0]["Status"] == "InSync"
    got = west.get_secret_value(SecretId=n)
    assert got["SecretString"] == "v1" and ":eu-west-1:" in got["ARN"]
    assert west.describe_secret(SecretId=n)["PrimaryRegion"] == "us-east-1"
    east.put_secret_value(SecretId=n, SecretString="v2")
    assert west.get_secret_value(SecretId=n)["SecretString"] == "v2"
    with pytest.raises(ClientError) as e:
        west.put_secret_value(SecretId=n, SecretString="nope")
    assert err(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        east.delete_secret(SecretId=n)
    assert err(e) == "InvalidRequestException"
    east.remove_regions_from_replication(SecretId=n, RemoveReplicaRegions=["eu-west-1"])
    with pytest.raises(ClientError) as e:
        west.get_secret_value(SecretId=n)
    assert err(e) == "ResourceNotFoundException"
    east.replicate_secret_to_regions(SecretId=n, AddReplicaRegions=[{"Region": "eu-west-1"}])
    west.stop_replication_to_replica(SecretId=n)
    west.put_secret_value(SecretId=n, SecretString="independent")
    assert east.get_secret_value(SecretId=n)["SecretString"] == "v2"
    assert "ReplicationStatus" not in east.describe_secret(SecretId=n)


def test_region_isolation(server):
    east = server.client("secretsmanager", region="us-east-1")
    west = server.client("secretsmanager", region="us-west-2")
    n = name()
    east.create_secret(Name=n, SecretString="v")
    with pytest.raises(ClientError) as e:
        west.get_secret_value(SecretId=n)
    assert err(e) == "ResourceNotFoundException"


# ---- deletion (test clock) ---------------------------------------------------

@pytest.fixture
def tserver(make_server, tmp_path):
    return make_server(["--dev", "--test-mode"])


def test_delete_restore_and_purge(tserver):
    sm = tserver.client("secretsmanager")
    n = name()
    sm.create_secret(Name=n, SecretString="v")
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=n, RecoveryWindowInDays=6)
    assert err(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=n, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert err(e) == "InvalidParameterException"
    d = sm.delete_secret(SecretId=n, RecoveryWindowInDays=7)
    assert d["DeletionDate"]
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=n)
    assert err(e) == "InvalidRequestException"
    assert sm.describe_secret(SecretId=n)["DeletedDate"]
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=n, SecretString="again")
    assert err(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=n, SecretString="x")
    assert err(e) == "InvalidRequestException"
    assert n not in [s["Name"] for s in sm.list_secrets()["SecretList"]]
    sm.restore_secret(SecretId=n)
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "v"
    sm.delete_secret(SecretId=n, RecoveryWindowInDays=7)
    tserver.advance_clock(6 * DAY)
    tserver.run_scheduler()
    assert sm.describe_secret(SecretId=n)["DeletedDate"]  # still in the window
    tserver.advance_clock(DAY + 60)
    tserver.run_scheduler()
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=n)
    assert err(e) == "ResourceNotFoundException"
    sm.create_secret(Name=n, SecretString="new life")  # the name is free again
    sm.delete_secret(SecretId=n, ForceDeleteWithoutRecovery=True)
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=n)
    assert err(e) == "ResourceNotFoundException"


def test_version_limit_and_cleanup(tserver):
    sm = tserver.client("secretsmanager")
    n = name()
    sm.create_secret(Name=n, SecretString="v0")
    for i in range(1, 100):
        sm.put_secret_value(SecretId=n, SecretString="v%d" % i)
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=n, SecretString="v100")
    assert err(e) == "LimitExceededException"
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "v99"
    tserver.advance_clock(DAY + 60)
    sm.put_secret_value(SecretId=n, SecretString="v100")
    versions = sm.list_secret_version_ids(SecretId=n, IncludeDeprecated=True)["Versions"]
    assert len(versions) == 100
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "v100"
    assert sm.get_secret_value(SecretId=n, VersionStage="AWSPREVIOUS")["SecretString"] == "v99"


# ---- rotation ------------------------------------------------------------------

# Its createSecret and finishSecret steps are the rotation template's, from helpers.
SIMPLE_FUNCTION = textwrap.dedent('''\
    #!/usr/bin/python3
    # A rotation function like the seeds' Lambda: new password, pending, promote.
    import json, os, secrets, sys
    import boto3


''') + TEMPLATE_STEPS + textwrap.dedent('''

    event = json.load(sys.stdin)
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"],
                      region_name=os.environ["AWS_REGION"])
    with open(os.environ.get("STEP_LOG", "/dev/null"), "a") as f:
        f.write(step + "\\n")
    if step == os.environ.get("FAIL_AT"):
        sys.exit(3)
    if step == "createSecret":
        create_pending(sm, arn, token, 8)
    elif step == "finishSecret":
        finish_pending(sm, arn, token)
''')

FN_ARN = "arn:aws:lambda:us-east-1:000000000000:function:simple-rotation"


@pytest.fixture
def rot_server(make_server, tmp_path):
    fn = write_function(tmp_path / "rotate.py", SIMPLE_FUNCTION)
    failing = write_function(tmp_path / "fail.py", SIMPLE_FUNCTION)
    steps = tmp_path / "steps.log"
    log = tmp_path / "fn.log"
    cfg = {"rotation_functions": [
        rotation_function(FN_ARN, fn, log, STEP_LOG=str(steps)),
        rotation_function(FN_ARN + "-failing", failing, log, STEP_LOG=str(steps), FAIL_AT="setSecret"),
    ]}
    s = config_server(make_server, tmp_path, cfg)
    s.steps = steps
    return s


def test_rotate_secret_runs_four_steps(rot_server):
    sm = rot_server.client("secretsmanager")
    n = name("rot")
    arn = sm.create_secret(Name=n, SecretString=json.dumps({"username": "u", "password": "p0"}))["ARN"]
    old = sm.describe_secret(SecretId=n)["VersionIdsToStages"]
    r = sm.rotate_secret(SecretId=n, RotationLambdaARN=FN_ARN,
                         RotationRules={"AutomaticallyAfterDays": 30})
    token = r["VersionId"]
    st = wait_rotation(sm, arn, token)
    assert st["Status"] == "Succeeded", st
    assert rot_server.steps.read_text().split() == ["createSecret", "setSecret", "testSecret",
                                                    "finishSecret"]
    got = sm.get_secret_value(SecretId=n)
    assert got["VersionId"] == token and json.loads(got["SecretString"])["password"] != "p0"
    d = sm.describe_secret(SecretId=n)
    assert d["RotationEnabled"] is True and d["RotationLambdaARN"] == FN_ARN
    assert d["RotationRules"]["AutomaticallyAfterDays"] == 30
    raw = raw_describe(sm, arn)
    # LastRotatedDate has milliseconds, as in AWS; the schedule runs from its second.
    assert raw["NextRotationDate"] == int(raw["LastRotatedDate"]) + 30 * DAY
    prev = [v for v in old][0]
    assert "AWSPREVIOUS" in d["VersionIdsToStages"][prev]
    # The value never reaches the server log.
    log = open(rot_server.log_path).read()
    assert json.loads(got["SecretString"])["password"] not in log


def test_failed_rotation_leaves_pending(rot_server):
    sm = rot_server.client("secretsmanager")
    n = name("rot")
    arn = sm.create_secret(Name=n, SecretString=json.dumps({"password": "p0"}))["ARN"]
    token = sm.rotate_secret(SecretId=n, RotationLambdaARN=FN_ARN + "-failing",
                             RotationRules={"AutomaticallyAfterDays": 1})["VersionId"]
    st = wait_rotation(sm, arn, token)
    assert st["Status"] == "Failed" and st["Step"] == "setSecret"
    assert "status 3" in st["Message"]
    stages = sm.describe_secret(SecretId=n)["VersionIdsToStages"]
    assert stages[token] == ["AWSPENDING"]
    assert sm.get_secret_value(SecretId=n)["SecretString"] == json.dumps({"password": "p0"})
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=n)
    assert err(e) == "InvalidRequestException"
    assert "previous rotation isn't complete" in errmsg(e)
    assert "failed at setSecret" in open(rot_server.log_path).read()
    c = sm.cancel_rotate_secret(SecretId=n)
    assert c["VersionId"] == token
    assert sm.describe_secret(SecretId=n)["RotationEnabled"] is False


def test_rotation_errors(rot_server):
    sm = rot_server.client("secretsmanager")
    n = name("rot")
    sm.create_secret(Name=n, SecretString="x")
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=n)
    assert err(e) == "InvalidRequestException"
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=n, RotationLambdaARN=FN_ARN,
                         RotationRules={"ScheduleExpression": "every tuesday"})
    assert err(e) == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=n, RotationLambdaARN=FN_ARN,
                         RotationRules={"AutomaticallyAfterDays": 10,
                                        "ScheduleExpression": "rate(20 days)"})
    assert err(e) == "InvalidParameterException"
    # cron() schedules are accepted and give the next matching time.
    sm.rotate_secret(SecretId=n, RotationLambdaARN=FN_ARN, RotateImmediately=False,
                     RotationRules={"ScheduleExpression": "cron(0 16 1,15 * ? *)", "Duration": "2h"})
    import datetime
    # NextRotationDate is newer than this botocore's model: read the raw answer.
    d = raw_describe(sm, sm.describe_secret(SecretId=n)["ARN"])
    nxt = datetime.datetime.fromtimestamp(d["NextRotationDate"], datetime.timezone.utc)
    assert nxt.hour == 16 and nxt.minute == 0 and nxt.day in (1, 15), nxt
    assert d["NextRotationDate"] > time.time() - 60


def _cron_oracle(after, minute, hour, day_ok):
    """The first UTC time > `after` at hour:minute on a day where day_ok(date)
    holds: a brute-force reading of AWS's cron(), independent of kinko's."""
    import datetime
    utc = datetime.timezone.utc
    d0 = datetime.datetime.fromtimestamp(after, utc).date()
    for i in range(0, 800):
        day = d0 + datetime.timedelta(days=i)
        t = datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=utc).timestamp()
        if t > after and day_ok(day):
            return int(t)
    raise AssertionError("no match")


def test_cron_next_rotation_on_chosen_dates(rot_server):
    """NextRotationDate of cron() schedules at chosen server times (the test
    clock moves to month ends, the 1st and 15th around 16:00, the 22nd...),
    against a brute-force reading of the expression: the result must not
    depend on the day the suite runs. Rotation schedules use UTC
    (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_schedule.html)."""
    import datetime
    utc = datetime.timezone.utc
    sm = rot_server.client("secretsmanager")
    now = rot_server.advance_clock(0)
    start = datetime.datetime.fromtimestamp(now, utc)
    # Chosen instants in the next two months, in time order.
    targets = []
    y, m = start.year, start.month
    for _ in range(2):
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        first = datetime.datetime(y, m, 1, tzinfo=utc)
        last_prev = first - datetime.timedelta(minutes=30)
        for t in (last_prev, first.replace(hour=15, minute=59),
                  first.replace(hour=16, second=30), first.replace(day=14, hour=23, minute=59),
                  first.replace(day=15, hour=16, minute=1), first.replace(day=22, hour=17),
                  first.replace(day=23, hour=3)):
            targets.append(int(t.timestamp()))
    targets = sorted(t for t in targets if t > now)
    schedules = [
        ("cron(0 16 1,15 * ? *)", 0, 16, lambda d: d.day in (1, 15)),
        ("cron(0 8 ? * MON,FRI *)", 0, 8, lambda d: d.weekday() in (0, 4)),
        ("cron(30 23 28-31 * ? *)", 30, 23,
         lambda d: d.day >= 28),
    ]
    for t in targets:
        # The server clock runs on from where it is moved to, so the
        # instants sit well away (seconds) from the schedule's minutes.
        now = rot_server.advance_clock(max(0, t - rot_server.advance_clock(0)))
        assert abs(now - t) < 30
        for expr, minute, hour, day_ok in schedules:
            n = name("cron")
            sm.create_secret(Name=n, SecretString="x")
            sm.rotate_secret(SecretId=n, RotationLambdaARN=FN_ARN, RotateImmediately=False,
                             RotationRules={"ScheduleExpression": expr})
            d = raw_describe(sm, sm.describe_secret(SecretId=n)["ARN"])
            want = _cron_oracle(now, minute, hour, day_ok)
            assert d["NextRotationDate"] == want, (
                expr, datetime.datetime.fromtimestamp(t, utc),
                datetime.datetime.fromtimestamp(d["NextRotationDate"], utc),
                datetime.datetime.fromtimestamp(want, utc))


def test_scheduled_rotation_with_test_clock(rot_server):
    sm = rot_server.client("secretsmanager")
    n = name("rot")
    arn = sm.create_secret(Name=n, SecretString=json.dumps({"password": "p0"}))["ARN"]
    sm.rotate_secret(SecretId=n, RotationLambdaARN=FN_ARN, RotateImmediately=False,
                     RotationRules={"ScheduleExpression": "rate(10 days)"})
    d = sm.describe_secret(SecretId=n)
    assert d["RotationRules"]["AutomaticallyAfterDays"] == 10
    first = sm.get_secret_value(SecretId=n)["VersionId"]
    rot_server.advance_clock(5 * DAY)
    rot_server.run_scheduler()
    assert sm.get_secret_value(SecretId=n)["VersionId"] == first
    rot_server.advance_clock(5 * DAY + 60)
    rot_server.run_scheduler()
    pending = raw_describe(sm, arn).get("KinkoRotationStatus", {})
    assert pending.get("VersionId"), pending
    st = wait_rotation(sm, arn, pending["VersionId"])
    assert st["Status"] == "Succeeded", st
    assert sm.get_secret_value(SecretId=n)["VersionId"] == pending["VersionId"]


def _service_events(server, event_name, arn, want, timeout=30):
    """Secrets Manager's own events (AwsServiceEvent) of one secret, through
    CloudTrail LookupEvents; waits for `want` of them (the outcome event of
    a rotation follows the recorded outcome)."""
    ct = server.client("cloudtrail")
    deadline = time.time() + timeout
    while True:
        found = ct.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": event_name}],
            StartTime=0, EndTime=4102444800)["Events"]
        evs = [json.loads(e["CloudTrailEvent"]) for e in found
               if arn in [r.get("ResourceName") for r in e.get("Resources", [])]]
        if len(evs) >= want or time.time() > deadline:
            break
        time.sleep(0.1)
    assert len(evs) == want, (event_name, arn, len(found))
    for ev in evs:
        assert ev["eventType"] == "AwsServiceEvent"
        assert ev["eventSource"] == "secretsmanager.amazonaws.com"
        assert ev["userIdentity"] == {"accountId": "000000000000",
                                      "invokedBy": "secretsmanager.amazonaws.com"}
        assert ev["resources"] == [{"accountId": "000000000000",
                                    "type": "AWS::SecretsManager::Secret", "ARN": arn}]
        assert ev["awsRegion"] == "us-east-1" and ev["readOnly"] is False
    return evs


def test_rotation_and_purge_are_audited_as_service_events(rot_server):
    sm = rot_server.client("secretsmanager")
    # A scheduled rotation that succeeds: RotationStarted, RotationSucceeded.
    n = name("rot")
    arn = sm.create_secret(Name=n, SecretString=json.dumps({"password": "p0"}))["ARN"]
    sm.rotate_secret(SecretId=n, RotationLambdaARN=FN_ARN, RotateImmediately=False,
                     RotationRules={"ScheduleExpression": "rate(10 days)"})
    rot_server.advance_clock(10 * DAY + 60)
    rot_server.run_scheduler()
    pending = raw_describe(sm, arn).get("KinkoRotationStatus", {})
    assert wait_rotation(sm, arn, pending["VersionId"])["Status"] == "Succeeded"
    _service_events(rot_server, "RotationStarted", arn, 1)
    _service_events(rot_server, "RotationSucceeded", arn, 1)
    _service_events(rot_server, "RotationFailed", arn, 0, timeout=0)

    # A rotation whose function fails: RotationStarted, RotationFailed.
    bad = name("rot")
    bad_arn = sm.create_secret(Name=bad, SecretString="x")["ARN"]
    token = sm.rotate_secret(SecretId=bad, RotationLambdaARN=FN_ARN + "-failing",
                             RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
    assert wait_rotation(sm, bad_arn, token)["Status"] == "Failed"
    _service_events(rot_server, "RotationStarted", bad_arn, 1)
    _service_events(rot_server, "RotationFailed", bad_arn, 1)
    _service_events(rot_server, "RotationSucceeded", bad_arn, 0, timeout=0)

    # Deletion at the end of the recovery window, not before.
    gone = name("del")
    gone_arn = sm.create_secret(Name=gone, SecretString="x")["ARN"]
    sm.delete_secret(SecretId=gone, RecoveryWindowInDays=7)
    rot_server.advance_clock(6 * DAY)
    rot_server.run_scheduler()
    _service_events(rot_server, "StartSecretVersionDelete", gone_arn, 0, timeout=0)
    assert sm.describe_secret(SecretId=gone_arn)["DeletedDate"]
    rot_server.advance_clock(2 * DAY)
    rot_server.run_scheduler()
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=gone_arn)
    assert err(e) == "ResourceNotFoundException"
    start = _service_events(rot_server, "StartSecretVersionDelete", gone_arn, 1)[0]
    end = _service_events(rot_server, "EndSecretVersionDelete", gone_arn, 1)[0]
    assert start["eventTime"] <= end["eventTime"]
    # The AWS CLI sees them too.
    rc, out, _ = rot_server.aws("cloudtrail", "lookup-events", "--lookup-attributes",
                                "AttributeKey=EventName,AttributeValue=EndSecretVersionDelete",
                                "--start-time", "0", "--end-time", "4102444800")
    assert [r["ResourceName"] for e in json.loads(out)["Events"] for r in e["Resources"]] == [gone_arn]


# ---- the seeds' examples, unchanged, through the AWS CLI -------------------

SEED_SCRIPT = r'''
set -euo pipefail
aws() { "$AWS_CLI" --endpoint-url "$ENDPOINT" "$@"; }
aws kms create-alias --alias-name alias/app-key --target-key-id "$KEY_ID"

# データベース認証情報の保存
aws secretsmanager create-secret \
    --name production/db/credentials \
    --description "Production database credentials" \
    --secret-string '{
        "username": "admin",
        "password": "SecurePassword123!",
        "host": "db.example.com",
        "port": 3306,
        "database": "production"
    }' \
    --kms-key-id alias/app-key

# シークレット取得
SECRET=$(aws secretsmanager get-secret-value \
    --secret-id production/db/credentials \
    --query SecretString \
    --output text)

echo $SECRET | jq -r '.password'

# シークレット更新
aws secretsmanager update-secret \
    --secret-id production/db/credentials \
    --secret-string '{
        "username": "admin",
        "password": "NewSecurePassword456!",
        "host": "db.example.com",
        "port": 3306,
        "database": "production"
    }'

aws secretsmanager get-secret-value --secret-id production/db/credentials \
    --query SecretString --output text | jq -r '.password'

# RDS自動ローテーションの設定
aws secretsmanager rotate-secret \
    --secret-id production/db/credentials \
    --rotation-lambda-arn arn:aws:lambda:ap-northeast-1:123456789012:function:SecretsManagerRDSRotation \
    --rotation-rules '{
        "AutomaticallyAfterDays": 30,
        "Duration": "2h",
        "ScheduleExpression": "rate(30 days)"
    }'
'''


def test_seed_examples_with_aws_cli(make_server, tmp_path):
    fn = write_function(tmp_path / "rotate.py", SIMPLE_FUNCTION)
    s = make_server(["--dev", "--test-mode", "--rotation-function",
                     "arn:aws:lambda:ap-northeast-1:123456789012:function:SecretsManagerRDSRotation=%s" % fn])
    kms = s.client()
    key = kms.create_key(Description="app key")["KeyMetadata"]["KeyId"]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="", ENDPOINT=s.endpoint,
               AWS_CLI="/usr/bin/aws", KEY_ID=key, STEP_LOG=str(tmp_path / "steps"))
    env.pop("AWS_PROFILE", None)
    p = subprocess.run(["bash", "-c", SEED_SCRIPT], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert "SecurePassword123!" in lines and "NewSecurePassword456!" in lines
    sm = s.client("secretsmanager")
    d = sm.describe_secret(SecretId="production/db/credentials")
    assert d["KmsKeyId"] == "alias/app-key"
    assert d["RotationEnabled"] is True
    assert d["RotationRules"]["AutomaticallyAfterDays"] == 30
    token = [v for v, st in d["VersionIdsToStages"].items() if "AWSPENDING" in st or "AWSCURRENT" in st]
    st = wait_rotation(sm, d["ARN"], raw_describe(sm, d["ARN"])["KinkoRotationStatus"]["VersionId"])
    assert st["Status"] == "Succeeded", st
    assert token
    # The put-secret-value / update-secret-version-stage calls of the seeds'
    # rotation Lambda, through the CLI.
    tok = str(uuid.uuid4())
    s.aws("secretsmanager", "put-secret-value", "--secret-id", "production/db/credentials",
          "--client-request-token", tok, "--secret-string", '{"password": "pending"}',
          "--version-stages", "AWSPENDING")
    cur = sm.get_secret_value(SecretId="production/db/credentials")["VersionId"]
    s.aws("secretsmanager", "update-secret-version-stage", "--secret-id",
          "production/db/credentials", "--version-stage", "AWSCURRENT",
          "--move-to-version-id", tok, "--remove-from-version-id", cur)
    _, out, _ = s.aws("secretsmanager", "get-secret-value", "--secret-id",
                      "production/db/credentials")
    assert json.loads(json.loads(out)["SecretString"])["password"] == "pending"


# ---- PostgreSQL rotation function ----------------------------------------------

PG_ARN = "arn:aws:lambda:us-east-1:000000000000:function:postgresql-rotation"


@pytest.fixture
def pg_server(make_server, tmp_path):
    log = tmp_path / "pg-fn.log"
    cfg = {"rotation_functions": [
        rotation_function(PG_ARN, PG_ROTATION, log),
        rotation_function(PG_ARN + "-multi", PG_ROTATION, log, ROTATION_STRATEGY="alternating-users")]}
    s = config_server(make_server, tmp_path, cfg)
    s.fn_log = tmp_path / "pg-fn.log"
    return s


def pg_user(pg, user, password):
    conn = pg.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE ROLE %s WITH LOGIN PASSWORD %%s" % user, (password,))
    conn.close()


def test_postgresql_single_user_rotation(pg_server, postgres):
    sm = pg_server.client("secretsmanager")
    user = "app_" + uuid.uuid4().hex[:8]
    pg_user(postgres, user, "initial-pw")
    value = {"engine": "postgres", "host": postgres.host, "port": postgres.port,
             "dbname": "postgres", "username": user, "password": "initial-pw"}
    n = name("pg")
    arn = sm.create_secret(Name=n, SecretString=json.dumps(value))["ARN"]
    assert postgres.can_login(user, "initial-pw")
    token = sm.rotate_secret(SecretId=n, RotationLambdaARN=PG_ARN,
                             RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
    st = wait_rotation(sm, arn, token)
    assert st["Status"] == "Succeeded", (st, pg_server.fn_log.read_text())
    new = json.loads(sm.get_secret_value(SecretId=n)["SecretString"])
    assert new["username"] == user and new["password"] != "initial-pw"
    assert postgres.can_login(user, new["password"])
    assert not postgres.can_login(user, "initial-pw")
    # Scheduled: 30 days later on the test clock, again.
    pg_server.advance_clock(30 * DAY + 60)
    pg_server.run_scheduler()
    st2 = raw_describe(sm, arn)["KinkoRotationStatus"]
    assert st2["VersionId"] != token
    st2 = wait_rotation(sm, arn, st2["VersionId"])
    assert st2["Status"] == "Succeeded", (st2, pg_server.fn_log.read_text())
    newer = json.loads(sm.get_secret_value(SecretId=n)["SecretString"])
    assert newer["password"] != new["password"]
    assert postgres.can_login(user, newer["password"])
    assert not postgres.can_login(user, new["password"])
    log = open(pg_server.log_path).read() + pg_server.fn_log.read_text()
    assert new["password"] not in log and newer["password"] not in log


def test_postgresql_alternating_users_rotation(pg_server, postgres):
    sm = pg_server.client("secretsmanager")
    master = sm.create_secret(Name=name("pg-master"), SecretString=json.dumps({
        "engine": "postgres", "host": postgres.host, "port": postgres.port, "dbname": "postgres",
        "username": "postgres", "password": postgres.password}))["ARN"]
    user = "alt_" + uuid.uuid4().hex[:8]
    pg_user(postgres, user, "first-pw")
    value = {"engine": "postgres", "host": postgres.host, "port": postgres.port,
             "dbname": "postgres", "username": user, "password": "first-pw", "masterarn": master}
    n = name("pg")
    arn = sm.create_secret(Name=n, SecretString=json.dumps(value))["ARN"]
    token = sm.rotate_secret(SecretId=n, RotationLambdaARN=PG_ARN + "-multi")["VersionId"]
    st = wait_rotation(sm, arn, token)
    assert st["Status"] == "Succeeded", (st, pg_server.fn_log.read_text())
    new = json.loads(sm.get_secret_value(SecretId=n)["SecretString"])
    assert new["username"] == user + "_clone"
    assert postgres.can_login(user + "_clone", new["password"])
    assert postgres.can_login(user, "first-pw")  # the other user keeps working until next time
    token2 = sm.rotate_secret(SecretId=n)["VersionId"]
    assert wait_rotation(sm, arn, token2)["Status"] == "Succeeded"
    newer = json.loads(sm.get_secret_value(SecretId=n)["SecretString"])
    assert newer["username"] == user
    assert postgres.can_login(user, newer["password"])
    assert not postgres.can_login(user, "first-pw")
