"""Secrets Manager details where kinko answers as AWS does: reused
ClientRequestTokens, UpdateSecretVersionStage's RemoveFromVersionId,
forced deletion of a secret that does not exist, ListSecrets' word search,
the first version's AWSCURRENT, the members DescribeSecret leaves out,
dates to the millisecond, PrimaryRegion of a replicated primary, and
rotation functions that cannot be invoked."""
import json
import os
import sqlite3
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from helpers import sm_request

ACCOUNT = "000000000000"
ARN_PREFIX = "arn:aws:secretsmanager:us-east-1:%s:secret:" % ACCOUNT


def err(excinfo):
    return excinfo.value.response["Error"]["Code"]


def errmsg(excinfo):
    return excinfo.value.response["Error"].get("Message", "")


def marker():
    """A fresh word of letters only (AWS's search splits letters from digits),
    starting with "zq" so that no word a test searches for (app, admin ...)
    is the beginning of it."""
    return "zq" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


@pytest.fixture
def sm(server):
    return server.client("secretsmanager")


# ---- ClientRequestToken ---------------------------------------------------------

def test_client_request_token_in_use_for_another_value(sm):
    """CreateSecret, PutSecretValue and UpdateSecret: a token that names a
    version with another value is ResourceExistsException, "You can't use
    ClientRequestToken ... because that value is already in use for a
    version of secret ARN."; the same value succeeds again."""
    n = "fid/" + marker()
    tok = str(uuid.uuid4())
    arn = sm.create_secret(Name=n, SecretString="one", ClientRequestToken=tok)["ARN"]

    def in_use(t):
        return ("You can't use ClientRequestToken %s because that value is already in use "
                "for a version of secret %s." % (t, arn))

    assert sm.create_secret(Name=n, SecretString="one", ClientRequestToken=tok)["VersionId"] == tok
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=n, SecretString="two", ClientRequestToken=tok)
    assert err(e) == "ResourceExistsException" and errmsg(e) == in_use(tok)
    # Another token meets a name that exists.
    with pytest.raises(ClientError) as e:
        sm.create_secret(Name=n, SecretString="two")
    assert err(e) == "ResourceExistsException"
    assert errmsg(e) == "The operation failed because the secret %s already exists." % n

    tok2 = str(uuid.uuid4())
    sm.put_secret_value(SecretId=n, SecretString="three", ClientRequestToken=tok2)
    with pytest.raises(ClientError) as e:
        sm.put_secret_value(SecretId=n, SecretString="four", ClientRequestToken=tok2)
    assert err(e) == "ResourceExistsException" and errmsg(e) == in_use(tok2)

    tok3 = str(uuid.uuid4())
    sm.update_secret(SecretId=n, SecretString="five", ClientRequestToken=tok3)
    with pytest.raises(ClientError) as e:
        sm.update_secret(SecretId=n, SecretString="six", ClientRequestToken=tok3)
    assert err(e) == "ResourceExistsException" and errmsg(e) == in_use(tok3)
    # The token of an older version is in use too.
    with pytest.raises(ClientError) as e:
        sm.update_secret(SecretId=n, SecretString="seven", ClientRequestToken=tok)
    assert err(e) == "ResourceExistsException" and errmsg(e) == in_use(tok)
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "five"


# ---- UpdateSecretVersionStage -----------------------------------------------------

def test_moving_awscurrent_needs_remove_from_version_id(sm):
    n = "fid/" + marker()
    v1 = sm.create_secret(Name=n, SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId=n, SecretString="two",
                             VersionStages=["AWSPENDING"])["VersionId"]
    with pytest.raises(ClientError) as e:
        sm.update_secret_version_stage(SecretId=n, VersionStage="AWSCURRENT", MoveToVersionId=v2)
    assert err(e) == "InvalidParameterException"
    assert errmsg(e) == (
        "The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is "
        "currently attached to version %s, so you must explicitly reference that version "
        "in RemoveFromVersionId." % v1)
    assert sm.get_secret_value(SecretId=n)["VersionId"] == v1


# ---- DeleteSecret ------------------------------------------------------------------

def test_force_delete_of_a_secret_that_does_not_exist(sm):
    """"If you forcibly delete an already deleted or nonexistent secret, the
    operation does not return ResourceNotFoundException." (DeleteSecret)"""
    n = "fid/missing/" + marker()
    before = time.time()
    r = sm.delete_secret(SecretId=n, ForceDeleteWithoutRecovery=True)
    assert r["Name"] == n
    assert r["ARN"].startswith(ARN_PREFIX + n + "-") and len(r["ARN"]) == len(ARN_PREFIX + n) + 7
    assert before - 5 <= r["DeletionDate"].timestamp() <= time.time() + 5
    arn = ARN_PREFIX + n + "-AbCdEf"
    r = sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert r["ARN"] == arn and r["Name"] == n
    # Without ForceDeleteWithoutRecovery it is still not found.
    with pytest.raises(ClientError) as e:
        sm.delete_secret(SecretId=n)
    assert err(e) == "ResourceNotFoundException"
    # A secret already deleted (in its recovery window) goes at once.
    sm.create_secret(Name=n, SecretString="v")
    sm.delete_secret(SecretId=n, RecoveryWindowInDays=7)
    assert sm.delete_secret(SecretId=n, ForceDeleteWithoutRecovery=True)["Name"] == n
    with pytest.raises(ClientError) as e:
        sm.describe_secret(SecretId=n)
    assert err(e) == "ResourceNotFoundException"


# ---- ListSecrets: words ------------------------------------------------------------

def test_list_secrets_all_and_description_match_words(sm):
    """"all" and "description" split text into words (at punctuation and
    spaces, where lower case turns to upper case, between letters and
    digits) and match the beginnings of words, without case; name and tag
    filters stay case-sensitive prefix matches."""
    m = marker()
    prefix = "fid/%s/" % m
    a = sm.create_secret(Name=prefix + "prod/AppBeta/db", SecretString="v",
                         Description="Rotates the PaymentGateway credentials",
                         Tags=[{"Key": "TeamName", "Value": "dataPlatform"}])["Name"]
    b = sm.create_secret(Name=prefix + "dev_other.service", SecretString="v",
                         Description="unrelated", Tags=[{"Key": "owner", "Value": "db2admin"}])["Name"]
    mine = {"Key": "name", "Values": [prefix]}

    def found(key, *values):
        r = sm.list_secrets(Filters=[mine, {"Key": key, "Values": list(values)}])
        return sorted(s["Name"] for s in r["SecretList"])

    assert found("all", "AppBeta") == [a]
    assert found("all", "beta") == [a]          # a word's beginning, any case
    assert found("all", "APP") == [a]
    assert found("all", "gateway") == [a]       # in the description
    assert found("all", "platform") == [a]      # in a tag value
    assert found("all", "team") == [a]          # in a tag key
    assert found("all", "service") == [b]       # after "."
    assert found("all", "admin") == [b]         # after a digit
    assert found("all", "2") == [b]
    assert found("all", "prod beta") == [a]     # every word must be found
    assert found("all", "prod service") == []
    assert found("all", "eta") == []            # not the beginning of a word
    assert found("all", "!AppBeta") == [b]      # negation
    assert found("description", "payment rotates") == [a]
    assert found("description", "CREDENTIALS") == [a]
    assert found("description", "AppBeta") == []
    assert found("description", "!gateway") == [b]
    # name stays a case-sensitive prefix match.
    assert sorted(s["Name"] for s in sm.list_secrets(
        Filters=[{"Key": "name", "Values": [prefix + "prod/App"]}])["SecretList"]) == [a]
    assert sm.list_secrets(Filters=[{"Key": "name", "Values": [prefix + "prod/app"]}])["SecretList"] == []
    assert found("tag-value", "data") == [a]
    assert found("tag-value", "Platform") == []


# ---- PutSecretValue: the first version ---------------------------------------------

def test_first_version_put_as_pending_also_gets_awscurrent(sm):
    """"If this operation creates the first version for the secret, then
    Secrets Manager automatically attaches the staging label AWSCURRENT to
    it." (PutSecretValue)"""
    n = "fid/" + marker()
    sm.create_secret(Name=n)
    r = sm.put_secret_value(SecretId=n, SecretString="one", VersionStages=["AWSPENDING"])
    assert sorted(r["VersionStages"]) == ["AWSCURRENT", "AWSPENDING"]
    assert sm.get_secret_value(SecretId=n)["VersionId"] == r["VersionId"]
    r2 = sm.put_secret_value(SecretId=n, SecretString="two", VersionStages=["AWSPENDING"])
    assert r2["VersionStages"] == ["AWSPENDING"]
    assert sm.get_secret_value(SecretId=n)["SecretString"] == "one"


# ---- DescribeSecret: members left out ----------------------------------------------

def test_describe_leaves_out_what_aws_leaves_out(sm):
    """RotationEnabled is null until rotation is configured; a secret
    without a value has no VersionIdsToStages; Tags is left out until the
    secret is tagged, and is [] once its last tag is removed."""
    n = "fid/" + marker()
    arn = sm.create_secret(Name=n)["ARN"]
    st, raw = sm_request(sm, "DescribeSecret", {"SecretId": n})
    assert st == 200
    for member in ("RotationEnabled", "VersionIdsToStages", "Tags"):
        assert member not in raw, (member, raw)
    st, out = sm_request(sm, "ListSecrets", {"Filters": [{"Key": "name", "Values": [n]}]})
    entry = [e for e in out["SecretList"] if e["ARN"] == arn][0]
    for member in ("RotationEnabled", "SecretVersionsToStages", "Tags"):
        assert member not in entry, (member, entry)
    sm.tag_resource(SecretId=n, Tags=[{"Key": "a", "Value": "1"}])
    assert sm.describe_secret(SecretId=n)["Tags"] == [{"Key": "a", "Value": "1"}]
    sm.untag_resource(SecretId=n, TagKeys=["a"])
    st, raw = sm_request(sm, "DescribeSecret", {"SecretId": n})
    assert raw["Tags"] == []
    v = sm.put_secret_value(SecretId=n, SecretString="x")["VersionId"]
    assert sm.describe_secret(SecretId=n)["VersionIdsToStages"] == {v: ["AWSCURRENT"]}
    assert "RotationEnabled" not in sm.describe_secret(SecretId=n)


# ---- dates -------------------------------------------------------------------------

def test_dates_to_the_millisecond(sm):
    """CreatedDate and LastChangedDate carry milliseconds, so that
    secrets created in the same second sort by creation."""
    m = marker()
    names = ["fid/%s/%s" % (m, c) for c in "zyxw"]   # created in reverse order of name
    for n in names:
        sm.create_secret(Name=n, SecretString="v")
    dates = []
    for n in names:
        st, raw = sm_request(sm, "DescribeSecret", {"SecretId": n})
        dates.append(raw["CreatedDate"])
        assert raw["LastChangedDate"] >= raw["CreatedDate"]
    assert dates == sorted(dates) and len(set(dates)) == len(dates), dates
    assert dates[-1] - dates[0] < 10
    f = [{"Key": "name", "Values": ["fid/%s/" % m]}]
    st, out = sm_request(sm, "ListSecrets", {"Filters": f, "SortBy": "created-date",
                                             "SortOrder": "asc"})
    assert [s["Name"] for s in out["SecretList"]] == names
    got = [s["Name"] for s in sm.list_secrets(Filters=f, SortOrder="desc")["SecretList"]]
    assert got == names[::-1]
    # A version's CreatedDate too.
    v2 = sm.put_secret_value(SecretId=names[0], SecretString="w")["VersionId"]
    st, out = sm_request(sm, "ListSecretVersionIds", {"SecretId": names[0]})
    created = {v["VersionId"]: v["CreatedDate"] for v in out["Versions"]}
    assert created[v2] > min(created.values())


def test_documents_with_second_dates_still_read(make_server, tmp_path):
    """Secrets written by earlier builds hold dates in whole seconds,
    RotationEnabled false and Tags []: they read, sort and change as
    before, and DescribeSecret leaves out what was never set."""
    data = str(tmp_path / "data")
    os.makedirs(data)
    s1 = make_server(["--dev"], data_dir=data)
    sm = s1.client("secretsmanager")
    m = marker()
    names = ["old/%s/%s" % (m, c) for c in "ba"]
    for n in names:
        sm.create_secret(Name=n, SecretString="v-" + n)
    assert s1.stop() == 0
    db = sqlite3.connect(os.path.join(data, [f for f in os.listdir(data) if f.endswith(".db")][0]))
    rows = db.execute("SELECT ns, id, doc FROM docs WHERE kind = 'secret'").fetchall()
    assert len(rows) == 2
    for i, (ns, sid, doc) in enumerate(rows):
        d = json.loads(doc)
        base = int(d["CreatedDate"])
        d["CreatedDate"] = d["LastChangedDate"] = base - 100 + (10 if sid == names[0] else 20)
        for v in d["Versions"].values():
            v["CreatedDate"] = d["CreatedDate"]
        d["RotationEnabled"] = False
        d["Tags"] = []
        db.execute("UPDATE docs SET doc = ? WHERE ns = ? AND id = ?",
                   (json.dumps(d, sort_keys=True, separators=(",", ":")).encode(), ns, sid))
    db.commit()
    db.close()
    s2 = make_server(["--dev"], data_dir=data)
    sm = s2.client("secretsmanager")
    st, raw = sm_request(sm, "DescribeSecret", {"SecretId": names[0]})
    assert isinstance(raw["CreatedDate"], int)
    assert "RotationEnabled" not in raw and "Tags" not in raw
    f = [{"Key": "name", "Values": ["old/%s/" % m]}]
    got = [x["Name"] for x in sm.list_secrets(Filters=f, SortOrder="asc")["SecretList"]]
    assert got == names
    assert sm.get_secret_value(SecretId=names[1])["SecretString"] == "v-" + names[1]
    sm.put_secret_value(SecretId=names[0], SecretString="new")
    st, out = sm_request(sm, "ListSecrets", {"Filters": f, "SortBy": "last-changed-date",
                                             "SortOrder": "desc"})
    assert out["SecretList"][0]["Name"] == names[0]
    sm.delete_secret(SecretId=names[1], RecoveryWindowInDays=7)
    assert sm.restore_secret(SecretId=names[1])["Name"] == names[1]


# ---- replication -------------------------------------------------------------------

def test_replicated_primary_reports_primary_region(server):
    east = server.client("secretsmanager", region="us-east-1")
    n = "fid/repl/" + marker()
    east.create_secret(Name=n, SecretString="v")
    assert "PrimaryRegion" not in east.describe_secret(SecretId=n)
    east.replicate_secret_to_regions(SecretId=n, AddReplicaRegions=[{"Region": "eu-west-1"}])
    assert east.describe_secret(SecretId=n)["PrimaryRegion"] == "us-east-1"
    f = [{"Key": "name", "Values": [n]}, {"Key": "primary-region", "Values": ["us-east-1"]}]
    got = east.list_secrets(Filters=f)["SecretList"]
    assert [s["Name"] for s in got] == [n] and got[0]["PrimaryRegion"] == "us-east-1"
    f[1]["Values"] = ["!us-east-1"]
    assert east.list_secrets(Filters=f)["SecretList"] == []
    west = server.client("secretsmanager", region="eu-west-1")
    assert west.describe_secret(SecretId=n)["PrimaryRegion"] == "us-east-1"
    east.remove_regions_from_replication(SecretId=n, RemoveReplicaRegions=["eu-west-1"])
    assert "PrimaryRegion" not in east.describe_secret(SecretId=n)


# ---- RotateSecret ------------------------------------------------------------------

def test_rotate_with_a_function_that_cannot_be_invoked(sm):
    """A rotation function kinko cannot invoke (not registered) is refused
    at once, as AWS refuses a Lambda function it cannot invoke, and the
    secret's rotation configuration does not change."""
    n = "fid/" + marker()
    sm.create_secret(Name=n, SecretString="v")
    fn = "arn:aws:lambda:us-east-1:%s:function:not-registered-%s" % (ACCOUNT, marker())
    for now in (True, False):
        with pytest.raises(ClientError) as e:
            sm.rotate_secret(SecretId=n, RotationLambdaARN=fn, RotateImmediately=now,
                             RotationRules={"AutomaticallyAfterDays": 7})
        assert err(e) == "AccessDeniedException"
        assert errmsg(e) == ("Secrets Manager cannot invoke the specified Lambda function. Ensure "
                             "that the function policy grants access to the principal "
                             "secretsmanager.amazonaws.com.")
    d = sm.describe_secret(SecretId=n)
    for member in ("RotationLambdaARN", "RotationEnabled", "RotationRules"):
        assert member not in d
    assert list(d["VersionIdsToStages"].values()) == [["AWSCURRENT"]]
