"""Aliases: the 50-aliases-per-key quota and AWS's predefined alias/aws/* entries.

AWS KMS quotas (resource-limits.html): "Aliases per KMS key: 50";
exceeding it is LimitExceededException. ListAliases (API_ListAliases):
"The response might include several aliases that do not have a
TargetKeyId field. These are predefined aliases that AWS has created but
has not yet associated with a KMS key."
"""
import os
import sqlite3
import threading
import time

import pytest
from botocore.exceptions import ClientError

QUOTA = 50
DAY = 86400

# The predefined aliases kinko lists (src/kms/ops_aliases.c).
PREDEFINED = ["alias/aws/dynamodb", "alias/aws/ebs", "alias/aws/elasticfilesystem", "alias/aws/es",
              "alias/aws/glue", "alias/aws/kinesisvideo", "alias/aws/rds", "alias/aws/redshift",
              "alias/aws/s3", "alias/aws/secretsmanager", "alias/aws/ssm", "alias/aws/xray"]


def err(e):
    return e.value.response["Error"]["Code"]


def key_aliases(kms, key_id):
    """All alias names of one key, through the paginator."""
    pages = kms.get_paginator("list_aliases").paginate(KeyId=key_id)
    return [a["AliasName"] for p in pages for a in p["Aliases"]]


def all_aliases(kms, limit):
    """Every alias of the account and Region, page by page with Marker."""
    seen, marker = [], None
    while True:
        args = {"Limit": limit}
        if marker:
            args["Marker"] = marker
        page = kms.list_aliases(**args)
        assert len(page["Aliases"]) <= limit
        seen += page["Aliases"]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            return seen
        assert page["Aliases"], "a truncated page must not be empty"
        marker = page["NextMarker"]


def fill(kms, key_id, stem, n):
    names = ["%s%02d" % (stem, i) for i in range(n)]
    for name in names:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)
    return names


# ---------------------------------------------------------------- the quota

def test_fifty_aliases_then_limit_exceeded(kms):
    key = kms.create_key()["KeyMetadata"]
    stem = "alias/quota-%d-" % time.time_ns()
    names = fill(kms, key["KeyId"], stem, QUOTA)
    assert sorted(key_aliases(kms, key["KeyId"])) == names
    extra = stem + "extra"
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName=extra, TargetKeyId=key["Arn"])
    assert err(e) == "LimitExceededException"
    assert key["Arn"] in e.value.response["Error"]["Message"]
    # Nothing changed: the alias does not exist and the key still has 50.
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=extra)
    assert err(e) == "NotFoundException"
    assert extra not in [a["AliasName"] for a in kms.list_aliases(Marker=stem + "49")["Aliases"]]
    assert sorted(key_aliases(kms, key["KeyId"])) == names
    # An existing name is still AlreadyExistsException, not the quota.
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName=names[0], TargetKeyId=key["KeyId"])
    assert err(e) == "AlreadyExistsException"
    # Other keys are not affected.
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=stem + "other", TargetKeyId=other)
    assert key_aliases(kms, other) == [stem + "other"]
    # Deleting one frees a place.
    kms.delete_alias(AliasName=names[7])
    kms.create_alias(AliasName=extra, TargetKeyId=key["KeyId"])
    assert kms.describe_key(KeyId=extra)["KeyMetadata"]["KeyId"] == key["KeyId"]
    assert len(key_aliases(kms, key["KeyId"])) == QUOTA
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName=names[7], TargetKeyId=key["KeyId"])
    assert err(e) == "LimitExceededException"


def test_update_alias_onto_a_full_key(kms):
    full = kms.create_key()["KeyMetadata"]
    spare = kms.create_key()["KeyMetadata"]["KeyId"]
    stem = "alias/upd-quota-%d-" % time.time_ns()
    names = fill(kms, full["KeyId"], stem, QUOTA)
    mover = stem + "mover"
    kms.create_alias(AliasName=mover, TargetKeyId=spare)
    with pytest.raises(ClientError) as e:
        kms.update_alias(AliasName=mover, TargetKeyId=full["KeyId"])
    assert err(e) == "LimitExceededException"
    assert kms.describe_key(KeyId=mover)["KeyMetadata"]["KeyId"] == spare
    assert key_aliases(kms, spare) == [mover]
    assert sorted(key_aliases(kms, full["KeyId"])) == names
    # Pointing an alias of the full key at that same key changes no count.
    kms.update_alias(AliasName=names[0], TargetKeyId=full["Arn"])
    # Moving one away frees a place for the other.
    kms.update_alias(AliasName=names[0], TargetKeyId=spare)
    assert sorted(key_aliases(kms, spare)) == sorted([mover, names[0]])
    kms.update_alias(AliasName=mover, TargetKeyId=full["KeyId"])
    assert kms.describe_key(KeyId=mover)["KeyMetadata"]["KeyId"] == full["KeyId"]
    assert sorted(key_aliases(kms, full["KeyId"])) == sorted(names[1:] + [mover])
    with pytest.raises(ClientError) as e:
        kms.update_alias(AliasName=names[0], TargetKeyId=full["KeyId"])
    assert err(e) == "LimitExceededException"
    assert key_aliases(kms, spare) == [names[0]]


def test_concurrent_creates_never_exceed_the_quota(server, kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    stem = "alias/race-%d-" % time.time_ns()
    fill(kms, key, stem, QUOTA - 4)
    results = {}
    start = threading.Barrier(12)

    def create(i):
        c = server.client()
        start.wait()
        try:
            c.create_alias(AliasName="%sr%02d" % (stem, i), TargetKeyId=key)
            results[i] = "ok"
        except ClientError as e:
            results[i] = e.response["Error"]["Code"]

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["LimitExceededException"] * 8 + ["ok"] * 4, results
    listed = key_aliases(kms, key)
    assert len(listed) == QUOTA
    assert sorted(n for n in listed if n.startswith(stem + "r")) == \
        sorted("%sr%02d" % (stem, i) for i, r in results.items() if r == "ok")


def test_quota_counts_aliases_made_before_the_index(make_server):
    """Aliases written without the per-key index record (an older store,
    which has no "indexes complete" record either) still count: the index
    is rebuilt from the alias records."""
    srv = make_server(["--dev"])
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    fill(kms, key, "alias/old-", QUOTA)
    srv.stop()
    db = sqlite3.connect(os.path.join(srv.data_dir, "kinko.db"))
    with db:
        n = db.execute("DELETE FROM docs WHERE kind='aliasindex' AND id=?", (key,)).rowcount
        done = db.execute("DELETE FROM docs WHERE kind='aliasindex-done'").rowcount
    db.close()
    assert n == 1 and done == 1
    srv.start()
    kms = srv.client()
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="alias/old-extra", TargetKeyId=key)
    assert err(e) == "LimitExceededException"
    kms.delete_alias(AliasName="alias/old-03")
    kms.create_alias(AliasName="alias/old-extra", TargetKeyId=key)
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="alias/old-03", TargetKeyId=key)
    assert err(e) == "LimitExceededException"


def test_key_deletion_removes_its_alias_index(make_server):
    srv = make_server(["--dev", "--test-mode"])
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    fill(kms, key, "alias/gone-", 3)
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    srv.advance_clock(8 * DAY)
    srv.run_scheduler()
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=key)
    assert err(e) == "NotFoundException"
    db = sqlite3.connect(os.path.join(srv.data_dir, "kinko.db"))
    rows = db.execute("SELECT kind, id FROM docs WHERE kind IN ('alias', 'aliasindex')").fetchall()
    db.close()
    assert rows == []


# ---------------------------------------------------------------- predefined aliases

def test_predefined_aliases_listed_without_target(make_server):
    srv = make_server(["--dev"])
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]
    account = key["Arn"].split(":")[4]
    key = key["KeyId"]
    got = kms.list_aliases()
    assert not got["Truncated"]
    assert [a["AliasName"] for a in got["Aliases"]] == PREDEFINED
    for a in got["Aliases"]:
        assert "TargetKeyId" not in a
        assert a["AliasArn"] == "arn:aws:kms:us-east-1:%s:%s" % (account, a["AliasName"])
    west = srv.client(region="eu-west-1").list_aliases()["Aliases"]
    assert [a["AliasArn"] for a in west] == \
        ["arn:aws:kms:eu-west-1:%s:%s" % (account, n) for n in PREDEFINED]
    # They are AWS's: not resolvable as keys, not deletable or movable.
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId="alias/aws/ebs")
    assert err(e) == "NotFoundException"
    for op in (lambda: kms.delete_alias(AliasName="alias/aws/ebs"),
               lambda: kms.update_alias(AliasName="alias/aws/ebs", TargetKeyId=key),
               lambda: kms.create_alias(AliasName="alias/aws/ebs", TargetKeyId=key)):
        with pytest.raises(ClientError) as e:
            op()
        assert err(e) == "NotAuthorizedException"
    # They do not count against a key's quota, nor show under a KeyId.
    assert kms.list_aliases(KeyId=key)["Aliases"] == []


def test_predefined_alias_gains_its_target_and_paging_is_exact(make_server):
    srv = make_server(["--dev"])
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    # Names that sort before, between and after the predefined ones.
    mine = ["alias/Alpha", "alias/a", "alias/aws-like", "alias/awz", "alias/b-key", "alias/zeta"]
    for n in mine:
        kms.create_alias(AliasName=n, TargetKeyId=key)
    before = all_aliases(kms, 100)
    assert [a["AliasName"] for a in before] == sorted(mine + PREDEFINED)
    sm = [a for a in before if a["AliasName"] == "alias/aws/secretsmanager"]
    assert len(sm) == 1 and "TargetKeyId" not in sm[0]

    # The managed key is created on first use (a secret without KmsKeyId).
    srv.client("secretsmanager").create_secret(Name="aliases-test", SecretString="s")
    managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert managed["KeyManager"] == "AWS"

    after = all_aliases(kms, 100)
    names = [a["AliasName"] for a in after]
    assert names == sorted(mine + PREDEFINED), "each alias exactly once, in order"
    by_name = {a["AliasName"]: a for a in after}
    assert by_name["alias/aws/secretsmanager"]["TargetKeyId"] == managed["KeyId"]
    assert "CreationDate" in by_name["alias/aws/secretsmanager"]
    for n in PREDEFINED:
        if n != "alias/aws/secretsmanager":
            assert "TargetKeyId" not in by_name[n]
    for n in mine:
        assert by_name[n]["TargetKeyId"] == key

    # Every page size returns the same listing, each alias exactly once.
    for limit in (1, 2, 3, 5, 7, 17):
        paged = all_aliases(kms, limit)
        assert [a["AliasName"] for a in paged] == names, limit
        assert paged == after, limit
    pages = kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 4})
    assert [a["AliasName"] for p in pages for a in p["Aliases"]] == names
    # A marker that names no alias still pages from its place.
    rest = kms.list_aliases(Marker="alias/aws/f", Limit=3)
    assert [a["AliasName"] for a in rest["Aliases"]] == ["alias/aws/glue", "alias/aws/kinesisvideo",
                                                         "alias/aws/rds"]
    assert rest["Truncated"] and rest["NextMarker"] == "alias/aws/rds"
    last = kms.list_aliases(Marker="alias/aws/xray")
    assert [a["AliasName"] for a in last["Aliases"]] == ["alias/awz", "alias/b-key", "alias/zeta"]
    assert not last["Truncated"]

    # With KeyId: only that key's aliases.
    assert kms.list_aliases(KeyId=managed["KeyId"])["Aliases"] == [by_name["alias/aws/secretsmanager"]]
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=key, Limit=2)["Aliases"]] == sorted(mine)[:2]
    assert key_aliases(kms, key) == sorted(mine)


def test_reserved_alias_refused_the_same_before_and_after_the_managed_key(make_server):
    """alias/aws/ names are AWS's: changing one is NotAuthorizedException
    whether or not the AWS managed key behind it exists yet."""
    srv = make_server(["--dev"])
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]

    def refused():
        for call in (lambda: kms.delete_alias(AliasName="alias/aws/secretsmanager"),
                     lambda: kms.update_alias(AliasName="alias/aws/secretsmanager",
                                              TargetKeyId=key),
                     lambda: kms.create_alias(AliasName="alias/aws/secretsmanager",
                                              TargetKeyId=key)):
            with pytest.raises(ClientError) as e:
                call()
            assert e.value.response["Error"]["Code"] == "NotAuthorizedException"

    refused()
    srv.client("secretsmanager").create_secret(Name="reserved-test", SecretString="s")
    managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    refused()
    # The alias still names the managed key.
    assert kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["KeyId"] == \
        managed["KeyId"]
