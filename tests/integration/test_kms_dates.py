"""KMS dates to the millisecond, as AWS returns them: a key's, an alias's
and a grant's CreationDate, ScheduleKeyDeletion's DeletionDate, an imported
key's ValidTo, ListKeyRotations' RotationDate and GetParametersForImport's
ParametersValidTo carry milliseconds, so
keys made in one second still sort by creation.
"""
import json
import time

from helpers import kms_request


def millis(d):
    return d.microsecond // 1000


def test_keys_made_in_one_second_sort_by_creation(server):
    kms = server.client("kms")
    made = []
    deadline = time.time() + 10
    # Ten keys in a row: in creation order, and not all on whole seconds.
    while len(made) < 10 and time.time() < deadline:
        made.append(kms.create_key()["KeyMetadata"])
    dates = [m["CreationDate"] for m in made]
    assert dates == sorted(dates)
    assert any(millis(d) != 0 for d in dates)
    # DescribeKey answers the stored date, milliseconds included.
    again = kms.describe_key(KeyId=made[-1]["KeyId"])["KeyMetadata"]["CreationDate"]
    assert again == dates[-1]


def fractional(where, operation, body, member):
    """The raw number of a date member of an answer (not parsed by botocore)."""
    status, out = kms_request(where, operation, body)
    assert status == 200, out
    return out[member]


def test_wire_dates_carry_milliseconds(server):
    kms = server.client("kms")
    seen = []
    for _ in range(5):
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        seen.append(fractional(server, "DescribeKey", {"KeyId": key}, "KeyMetadata")["CreationDate"])
    assert all(isinstance(v, (int, float)) for v in seen)
    assert any(v != int(v) for v in seen), seen

    key = kms.create_key()["KeyMetadata"]["KeyId"]
    grants = []
    for i in range(5):
        kms.create_grant(KeyId=key, GranteePrincipal="arn:aws:iam::000000000000:root",
                         Operations=["Encrypt"], Name="g%d" % i)
    for g in fractional(server, "ListGrants", {"KeyId": key}, "Grants"):
        grants.append(g["CreationDate"])
    assert any(v != int(v) for v in grants), grants

    aliases = []
    for i in range(5):
        name = "alias/ms-%d-%d" % (i, int(time.time() * 1000))
        kms.create_alias(AliasName=name, TargetKeyId=key)
    for a in fractional(server, "ListAliases", {"KeyId": key}, "Aliases"):
        aliases.append(a["CreationDate"])
        assert a["LastUpdatedDate"] == a["CreationDate"]
    assert any(v != int(v) for v in aliases), aliases

    deletions = []
    for _ in range(5):
        k = kms.create_key()["KeyMetadata"]["KeyId"]
        deletions.append(fractional(server, "ScheduleKeyDeletion",
                                    {"KeyId": k, "PendingWindowInDays": 7}, "DeletionDate"))
        kms.cancel_key_deletion(KeyId=k)
    assert any(v != int(v) for v in deletions), deletions


def test_deletion_date_survives_cancel_and_reschedule(server):
    kms = server.client("kms")
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    when = kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=7)["DeletionDate"]
    assert kms.describe_key(KeyId=k)["KeyMetadata"]["DeletionDate"] == when
    kms.cancel_key_deletion(KeyId=k)
    assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "Disabled"
    assert "DeletionDate" not in kms.describe_key(KeyId=k)["KeyMetadata"]
