"""Key lifecycle through real clients: aliases, tags and description, key
states, scheduled deletion, rotation, AWS managed keys, the scheduler and
test mode (test clock, reset).

Operations or members Debian's botocore does not know (RotationPeriodInDays,
RotateKeyOnDemand, ListKeyRotations, the rotation status fields) are sent
as raw SigV4-signed requests built with botocore's signer.
"""
import base64
import json
import os
import sqlite3
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from helpers import kms_request, signed_call

DAY = 86400


def err(e):
    return e.value.response["Error"]["Code"]


def msg(e):
    return e.value.response["Error"].get("Message", "")


def kms_call(server, op, body, **kw):
    st, out = kms_request(server, op, body, **kw)
    assert st == 200, (op, st, out)
    return out


def kms_error(server, op, body, **kw):
    st, out = kms_request(server, op, body, **kw)
    assert st != 200, (op, out)
    return out["__type"], out.get("message", "")


def blob_version(blob):
    """The backing-key version a kinko ciphertext names (docs/CIPHERTEXT.md)."""
    return int.from_bytes(blob[18:22], "big")


@pytest.fixture
def tserver(make_server):
    """A private server with the test clock, reset and scheduler endpoints."""
    return make_server(["--dev", "--test-mode"])


# ---------------------------------------------------------------- aliases

def test_alias_created_moved_and_deleted(kms):
    k1 = kms.create_key()["KeyMetadata"]
    k2 = kms.create_key()["KeyMetadata"]
    name = "alias/life-%d" % time.time_ns()
    kms.create_alias(AliasName=name, TargetKeyId=k1["KeyId"])

    out = kms.encrypt(KeyId=name, Plaintext=b"via alias")
    assert out["KeyId"] == k1["Arn"]
    arn = "arn:aws:kms:us-east-1:000000000000:" + name
    assert kms.encrypt(KeyId=arn, Plaintext=b"x")["KeyId"] == k1["Arn"]
    assert kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"] == k1["KeyId"]

    listed = kms.list_aliases(KeyId=k1["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in listed] == [name]
    assert listed[0]["AliasArn"] == arn and listed[0]["TargetKeyId"] == k1["KeyId"]
    assert "CreationDate" in listed[0] and "LastUpdatedDate" in listed[0]

    kms.update_alias(AliasName=name, TargetKeyId=k2["Arn"])
    assert kms.encrypt(KeyId=name, Plaintext=b"x")["KeyId"] == k2["Arn"]
    assert kms.list_aliases(KeyId=k1["KeyId"])["Aliases"] == []
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=k2["Arn"])["Aliases"]] == [name]
    # The ciphertext made under k1 through the alias still decrypts with k1.
    assert kms.decrypt(CiphertextBlob=out["CiphertextBlob"])["KeyId"] == k1["Arn"]

    kms.delete_alias(AliasName=name)
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=name, Plaintext=b"x")
    assert err(e) == "NotFoundException" and name in msg(e)
    assert name not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]


def test_alias_name_rules_and_errors(kms, kms_raw):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    name = "alias/rules-%d" % time.time_ns()
    cases = [
        ("no-prefix-%d" % time.time_ns(), "ValidationException"),
        ("alias/aws/mine", "NotAuthorizedException"),
        ("alias/has space", "ValidationException"),
        ("alias/with:colon", "InvalidAliasNameException"),
        ("alias/" + "a" * 251, "ValidationException"),
    ]
    for bad, code in cases:
        with pytest.raises(ClientError) as e:
            kms_raw.create_alias(AliasName=bad, TargetKeyId=key)
        assert err(e) == code, (bad, e.value.response)
    kms.create_alias(AliasName=name, TargetKeyId=key)
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName=name, TargetKeyId=key)
    assert err(e) == "AlreadyExistsException"
    # TargetKeyId may not be an alias.
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName=name + "-2", TargetKeyId=name)
    assert err(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName=name + "-3", TargetKeyId="11111111-2222-4333-8444-555555555555")
    assert err(e) == "NotFoundException"
    for op in (lambda: kms.delete_alias(AliasName=name + "-missing"),
               lambda: kms.update_alias(AliasName=name + "-missing", TargetKeyId=key)):
        with pytest.raises(ClientError) as e:
            op()
        assert err(e) == "NotFoundException"
    for op in (lambda: kms.delete_alias(AliasName="alias/aws/secretsmanager"),
               lambda: kms.update_alias(AliasName="alias/aws/secretsmanager", TargetKeyId=key)):
        with pytest.raises(ClientError) as e:
            op()
        assert err(e) == "NotAuthorizedException"
    # Nothing of the failed calls was created.
    names = [a["AliasName"] for a in kms.list_aliases(KeyId=key)["Aliases"]]
    assert names == [name]


def test_alias_through_the_cli(server):
    _, out, _ = server.aws("kms", "create-key")
    key = json.loads(out)["KeyMetadata"]
    _, out, _ = server.aws("kms", "create-key")
    key2 = json.loads(out)["KeyMetadata"]
    name = "alias/cli-%d" % time.time_ns()
    server.aws("kms", "create-alias", "--alias-name", name, "--target-key-id", key["KeyId"])
    _, out, _ = server.aws("kms", "list-aliases", "--key-id", key["KeyId"])
    assert [a["AliasName"] for a in json.loads(out)["Aliases"]] == [name]
    server.aws("kms", "update-alias", "--alias-name", name, "--target-key-id", key2["KeyId"])
    _, out, _ = server.aws("kms", "describe-key", "--key-id", name)
    assert json.loads(out)["KeyMetadata"]["KeyId"] == key2["KeyId"]
    server.aws("kms", "delete-alias", "--alias-name", name)
    rc, _, errtext = server.aws("kms", "describe-key", "--key-id", name, check=False)
    assert rc != 0 and "NotFoundException" in errtext


def test_list_aliases_paging(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    stem = "alias/page-%d-" % time.time_ns()
    names = [stem + "%02d" % i for i in range(7)]
    for n in names:
        kms.create_alias(AliasName=n, TargetKeyId=key)
    seen, marker = [], None
    while True:
        args = {"KeyId": key, "Limit": 3}
        if marker:
            args["Marker"] = marker
        page = kms.list_aliases(**args)
        assert len(page["Aliases"]) <= 3
        seen += [a["AliasName"] for a in page["Aliases"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert seen == names
    pages = kms.get_paginator("list_aliases").paginate(KeyId=key, PaginationConfig={"PageSize": 2})
    assert [a["AliasName"] for p in pages for a in p["Aliases"]] == names
    with pytest.raises(ClientError) as e:
        kms.list_aliases(Marker="garbage")
    assert err(e) == "InvalidMarkerException"


# ---------------------------------------------------------------- tags, description

def test_tags_and_description(kms, kms_raw):
    key = kms.create_key(Description="first", Tags=[{"TagKey": "team", "TagValue": "a"}])["KeyMetadata"]
    kid = key["KeyId"]
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "team", "TagValue": "a"}]
    kms.tag_resource(KeyId=key["Arn"], Tags=[{"TagKey": "team", "TagValue": "b"},
                                             {"TagKey": "env", "TagValue": ""}])
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=kid)["Tags"]}
    assert tags == {"team": "b", "env": ""}
    kms.untag_resource(KeyId=kid, TagKeys=["env", "not-there"])
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == [{"TagKey": "team", "TagValue": "b"}]

    with pytest.raises(ClientError) as e:
        kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "aws:owner", "TagValue": "x"}])
    assert err(e) == "TagException"
    with pytest.raises(ClientError) as e:
        kms_raw.tag_resource(KeyId=kid, Tags=[{"TagKey": "k" * 129, "TagValue": "x"}])
    assert err(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms_raw.tag_resource(KeyId=kid, Tags=[{"TagKey": "k", "TagValue": "v" * 257}])
    assert err(e) == "ValidationException"
    kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "t%02d" % i, "TagValue": "v"} for i in range(49)])
    with pytest.raises(ClientError) as e:
        kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "one-too-many", "TagValue": "v"}])
    assert err(e) in ("LimitExceededException", "TagException")
    assert len(kms.list_resource_tags(KeyId=kid)["Tags"]) == 50
    page = kms.list_resource_tags(KeyId=kid, Limit=20)
    assert len(page["Tags"]) == 20 and page["Truncated"]
    rest = kms.list_resource_tags(KeyId=kid, Marker=page["NextMarker"])
    assert len(rest["Tags"]) == 30 and not rest["Truncated"]
    with pytest.raises(ClientError) as e:
        kms.list_resource_tags(KeyId="alias/anything")
    assert err(e) == "NotFoundException"

    kms.update_key_description(KeyId=kid, Description="second")
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["Description"] == "second"
    with pytest.raises(ClientError) as e:
        kms_raw.update_key_description(KeyId=kid, Description="d" * 8193)
    assert err(e) == "ValidationException"
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["Description"] == "second"


# ---------------------------------------------------------------- states

def test_disable_and_enable(kms, server):
    key = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"kept")["CiphertextBlob"]
    kms.disable_key(KeyId=key["KeyId"])
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert md["KeyState"] == "Disabled" and md["Enabled"] is False
    for op in (lambda: kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x"),
               lambda: kms.decrypt(CiphertextBlob=blob),
               lambda: kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256"),
               lambda: kms.enable_key_rotation(KeyId=key["KeyId"])):
        with pytest.raises(ClientError) as e:
            op()
        assert err(e) == "DisabledException"
        assert msg(e) == key["Arn"] + " is disabled."
    # Management still works on a disabled key.
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "k", "TagValue": "v"}])
    kms.disable_key(KeyId=key["KeyId"])  # idempotent
    server.aws("kms", "enable-key", "--key-id", key["Arn"])
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert md["KeyState"] == "Enabled" and md["Enabled"] is True
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"
    server.aws("kms", "disable-key", "--key-id", key["KeyId"])
    rc, _, errtext = server.aws("kms", "encrypt", "--key-id", key["KeyId"], "--plaintext", "aGk=",
                                check=False)
    assert rc != 0 and "DisabledException" in errtext


def test_schedule_cancel_and_state_table(kms, kms_raw):
    key = kms.create_key()["KeyMetadata"]
    kid = key["KeyId"]
    name = "alias/pending-%d" % time.time_ns()
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    for days in (6, 31):
        with pytest.raises(ClientError) as e:
            kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=days)
        assert err(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms_raw.schedule_key_deletion(KeyId=kid, PendingWindowInDays=0)
    assert err(e) == "ValidationException"
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"

    before = time.time()
    out = kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    assert out["KeyId"] == key["Arn"] and out["KeyState"] == "PendingDeletion"
    assert out["PendingWindowInDays"] == 7
    when = out["DeletionDate"].timestamp()
    assert before + 7 * DAY - 5 <= when <= time.time() + 7 * DAY + 5
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert md["KeyState"] == "PendingDeletion" and md["Enabled"] is False
    assert md["DeletionDate"] == out["DeletionDate"]

    pending = key["Arn"] + " is pending deletion."
    for op in (lambda: kms.encrypt(KeyId=kid, Plaintext=b"x"),
               lambda: kms.schedule_key_deletion(KeyId=kid),
               lambda: kms.enable_key(KeyId=kid),
               lambda: kms.disable_key(KeyId=kid),
               lambda: kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "b"}]),
               lambda: kms.update_key_description(KeyId=kid, Description="x"),
               lambda: kms.create_alias(AliasName=name + "-2", TargetKeyId=kid),
               lambda: kms.enable_key_rotation(KeyId=kid)):
        with pytest.raises(ClientError) as e:
            op()
        assert err(e) == "KMSInvalidStateException", e.value.response
        assert msg(e) == pending
    # Reading and alias removal are allowed in every state.
    assert kms.list_resource_tags(KeyId=kid)["Tags"] == []
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is False
    kms.delete_alias(AliasName=name)

    assert kms.cancel_key_deletion(KeyId=kid)["KeyId"] == key["Arn"]
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert md["KeyState"] == "Disabled" and "DeletionDate" not in md
    with pytest.raises(ClientError) as e:
        kms.cancel_key_deletion(KeyId=kid)
    assert err(e) == "KMSInvalidStateException" and msg(e) == key["Arn"] + " is not pending deletion."
    out = kms.schedule_key_deletion(KeyId=kid)
    assert out["PendingWindowInDays"] == 30
    kms.cancel_key_deletion(KeyId=kid)
    kms.enable_key(KeyId=kid)
    assert kms.encrypt(KeyId=kid, Plaintext=b"back")["KeyId"] == key["Arn"]


def test_other_region_and_account_keys_are_not_found(server, kms):
    key = kms.create_key()["KeyMetadata"]
    west = server.client(region="us-west-2")
    for op in (lambda: west.disable_key(KeyId=key["Arn"]),
               lambda: west.schedule_key_deletion(KeyId=key["Arn"], PendingWindowInDays=7),
               lambda: west.tag_resource(KeyId=key["Arn"], Tags=[{"TagKey": "a", "TagValue": "b"}]),
               lambda: west.create_alias(AliasName="alias/x-%d" % time.time_ns(), TargetKeyId=key["Arn"]),
               lambda: west.enable_key_rotation(KeyId=key["Arn"]),
               lambda: west.list_resource_tags(KeyId=key["KeyId"])):
        with pytest.raises(ClientError) as e:
            op()
        assert err(e) == "NotFoundException"
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


# ---------------------------------------------------------------- deletion with the test clock

def _wrapped_material(data_dir, key_id):
    db = sqlite3.connect(os.path.join(data_dir, "kinko.db"))
    try:
        row = db.execute("SELECT doc FROM docs WHERE kind='key' AND id=?", (key_id,)).fetchone()
    finally:
        db.close()
    doc = json.loads(row[0])
    return [m["Wrapped"] for m in doc["Materials"]]


def _store_bytes(data_dir):
    out = b""
    for name in os.listdir(data_dir):
        if name.startswith("kinko.db"):
            with open(os.path.join(data_dir, name), "rb") as f:
                out += f.read()
    return out


def test_deletion_carried_out_with_the_test_clock(tserver):
    kms = tserver.client()
    key = kms.create_key()["KeyMetadata"]
    kid = key["KeyId"]
    name = "alias/doomed"
    kms.create_alias(AliasName=name, TargetKeyId=kid)
    blob = kms.encrypt(KeyId=name, Plaintext=b"last words")["CiphertextBlob"]
    wrapped = _wrapped_material(tserver.data_dir, kid)
    assert wrapped and wrapped[0].encode() in _store_bytes(tserver.data_dir)

    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    kms.cancel_key_deletion(KeyId=kid)
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    tserver.advance_clock(6 * DAY)
    tserver.run_scheduler()
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingDeletion"

    tserver.advance_clock(DAY + 60)
    tserver.run_scheduler()
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=kid)
    assert err(e) == "NotFoundException"
    assert name not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    assert kid not in [k["KeyId"] for k in kms.list_keys()["Keys"]]
    for args in ({}, {"KeyId": kid}, {"KeyId": key["Arn"]}):
        with pytest.raises(ClientError) as e:
            kms.decrypt(CiphertextBlob=blob, **args)
        assert err(e) == "NotFoundException"
        assert kid in msg(e)
    # The wrapped material is gone from the live store's files.
    data = _store_bytes(tserver.data_dir)
    for w in wrapped:
        assert w.encode() not in data
    # Running the scheduler again changes nothing and fails nothing.
    tserver.run_scheduler()


def test_scheduled_deletion_survives_restart(make_server, tmp_path):
    data = str(tmp_path)
    s1 = make_server(["--dev", "--test-mode"], data_dir=data)
    kms = s1.client()
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    s1.stop()
    # The clock offset does not survive; the due work does.
    s2 = make_server(["--dev", "--test-mode"], data_dir=data)
    kms2 = s2.client()
    assert kms2.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    s2.advance_clock(8 * DAY)
    s2.run_scheduler()
    with pytest.raises(ClientError) as e:
        kms2.decrypt(CiphertextBlob=blob)
    assert err(e) == "NotFoundException"


def test_background_scheduler_runs_by_itself(tserver):
    kms = tserver.client()
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    tserver.advance_clock(7 * DAY + 1)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            kms.describe_key(KeyId=kid)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "NotFoundException"
            return
        time.sleep(0.5)
    pytest.fail("the background scheduler did not delete the key")


# ---------------------------------------------------------------- rotation

def test_rotation_settings_and_errors(kms, server):
    key = kms.create_key()["KeyMetadata"]
    kid = key["KeyId"]
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is False
    t0 = time.time()
    kms.enable_key_rotation(KeyId=kid)
    st = kms_call(server, "GetKeyRotationStatus", {"KeyId": kid})
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 365
    assert t0 + 365 * DAY - 5 <= st["NextRotationDate"] <= time.time() + 365 * DAY + 5
    kms_call(server, "EnableKeyRotation", {"KeyId": kid, "RotationPeriodInDays": 90})
    st = kms_call(server, "GetKeyRotationStatus", {"KeyId": key["Arn"]})
    assert st["RotationPeriodInDays"] == 90
    assert st["NextRotationDate"] <= time.time() + 90 * DAY + 5
    for bad in (89, 2561):
        code, _ = kms_error(server, "EnableKeyRotation", {"KeyId": kid, "RotationPeriodInDays": bad})
        assert code == "ValidationException"
    assert kms_call(server, "GetKeyRotationStatus", {"KeyId": kid})["RotationPeriodInDays"] == 90
    kms.disable_key_rotation(KeyId=kid)
    st = kms_call(server, "GetKeyRotationStatus", {"KeyId": kid})
    assert st["KeyRotationEnabled"] is False and "NextRotationDate" not in st
    # Aliases are not accepted for rotation operations.
    code, _ = kms_error(server, "RotateKeyOnDemand", {"KeyId": "alias/whatever"})
    assert code == "NotFoundException"
    # Through the CLI.
    server.aws("kms", "enable-key-rotation", "--key-id", kid)
    _, out, _ = server.aws("kms", "get-key-rotation-status", "--key-id", kid)
    assert json.loads(out)["KeyRotationEnabled"] is True


def test_rotation_refused_for_keys_aws_refuses(kms, server):
    ext = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    assert ext["KeyState"] == "PendingImport"
    for op in ("EnableKeyRotation", "RotateKeyOnDemand", "GetKeyRotationStatus"):
        code, _ = kms_error(server, op, {"KeyId": ext["KeyId"]})
        assert code in ("UnsupportedOperationException", "KMSInvalidStateException"), op
    try:
        hmac = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    except ClientError:
        hmac = None
    if hmac is not None:
        for op in ("EnableKeyRotation", "RotateKeyOnDemand"):
            code, _ = kms_error(server, op, {"KeyId": hmac["KeyId"]})
            assert code == "UnsupportedOperationException"


def test_automatic_and_on_demand_rotation(tserver):
    kms = tserver.client()
    key = kms.create_key()["KeyMetadata"]
    kid = key["KeyId"]
    ctx = {"purpose": "rotation"}
    gen = [kms.encrypt(KeyId=kid, Plaintext=b"gen0", EncryptionContext=ctx)["CiphertextBlob"]]
    assert blob_version(gen[0]) == 1
    kms_call(tserver, "EnableKeyRotation", {"KeyId": kid, "RotationPeriodInDays": 90})
    first_next = kms_call(tserver, "GetKeyRotationStatus", {"KeyId": kid})["NextRotationDate"]

    tserver.advance_clock(89 * DAY)
    tserver.run_scheduler()
    assert kms_call(tserver, "ListKeyRotations", {"KeyId": kid})["Rotations"] == []
    tserver.advance_clock(2 * DAY)
    now = tserver.run_scheduler()["Now"]
    rots = kms_call(tserver, "ListKeyRotations", {"KeyId": kid})["Rotations"]
    assert len(rots) == 1 and rots[0]["RotationType"] == "AUTOMATIC"
    assert rots[0]["KeyId"] == kid and len(rots[0]["KeyMaterialId"]) == 64
    st = kms_call(tserver, "GetKeyRotationStatus", {"KeyId": kid})
    assert st["NextRotationDate"] > first_next and st["NextRotationDate"] >= now + 89 * DAY
    tserver.run_scheduler()  # once only
    assert len(kms_call(tserver, "ListKeyRotations", {"KeyId": kid})["Rotations"]) == 1
    gen.append(kms.encrypt(KeyId=kid, Plaintext=b"gen1", EncryptionContext=ctx)["CiphertextBlob"])
    assert blob_version(gen[1]) == 2

    out = kms_call(tserver, "RotateKeyOnDemand", {"KeyId": key["Arn"]})
    assert out["KeyId"] == kid
    gen.append(kms.encrypt(KeyId=kid, Plaintext=b"gen2", EncryptionContext=ctx)["CiphertextBlob"])
    assert blob_version(gen[2]) == 3
    rots = kms_call(tserver, "ListKeyRotations", {"KeyId": kid})["Rotations"]
    assert [r["RotationType"] for r in rots] == ["AUTOMATIC", "ON_DEMAND"]
    assert [r["KeyMaterialState"] for r in rots] == ["NON_CURRENT", "CURRENT"]
    allm = kms_call(tserver, "ListKeyRotations", {"KeyId": kid, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"})
    assert len(allm["Rotations"]) == 3 and "RotationDate" not in allm["Rotations"][0]
    page = kms_call(tserver, "ListKeyRotations", {"KeyId": kid, "Limit": 1})
    assert page["Truncated"] and len(page["Rotations"]) == 1
    page2 = kms_call(tserver, "ListKeyRotations", {"KeyId": kid, "Limit": 1, "Marker": page["NextMarker"]})
    assert not page2["Truncated"] and page2["Rotations"][0]["RotationType"] == "ON_DEMAND"
    # On-demand rotation leaves the automatic schedule alone.
    assert kms_call(tserver, "GetKeyRotationStatus", {"KeyId": kid})["NextRotationDate"] == st["NextRotationDate"]

    for i, blob in enumerate(gen):
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"gen%d" % i
    moved = kms.re_encrypt(CiphertextBlob=gen[0], SourceEncryptionContext=ctx,
                           DestinationKeyId=kid, DestinationEncryptionContext=ctx)["CiphertextBlob"]
    assert blob_version(moved) == 3
    assert kms.decrypt(CiphertextBlob=moved, EncryptionContext=ctx)["Plaintext"] == b"gen0"
    # Disabled keys are not rotated on schedule, nor on demand.
    kms.disable_key(KeyId=kid)
    tserver.advance_clock(91 * DAY)
    tserver.run_scheduler()
    assert len(kms_call(tserver, "ListKeyRotations", {"KeyId": kid})["Rotations"]) == 2
    code, _ = kms_error(tserver, "RotateKeyOnDemand", {"KeyId": kid})
    assert code == "DisabledException"
    kms.enable_key(KeyId=kid)
    tserver.run_scheduler()
    assert len(kms_call(tserver, "ListKeyRotations", {"KeyId": kid})["Rotations"]) == 3
    # Every generation still decrypts after a restart (material reloaded from the store).
    for i, blob in enumerate(gen):
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"gen%d" % i


def test_on_demand_rotation_limit(kms, server):
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(10):
        kms_call(server, "RotateKeyOnDemand", {"KeyId": kid})
    code, _ = kms_error(server, "RotateKeyOnDemand", {"KeyId": kid})
    assert code == "LimitExceededException"
    assert len(kms_call(server, "ListKeyRotations", {"KeyId": kid})["Rotations"]) == 10
    blob = kms.encrypt(KeyId=kid, Plaintext=b"v11")["CiphertextBlob"]
    assert blob_version(blob) == 11
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"v11"


# ---------------------------------------------------------------- AWS managed keys

def _managed_key(make_server, tmp_path):
    """A test-mode server holding an AWS managed key behind alias/aws/<service>.

    With Secrets Manager, its first use creates alias/aws/secretsmanager.
    Without it, the key is made as managed.c makes one: a stored key
    document with KeyManager AWS and yearly rotation, and its alias record.
    """
    srv = make_server(["--dev", "--test-mode"], data_dir=str(tmp_path))
    try:
        srv.client("secretsmanager").create_secret(Name="lifecycle", SecretString="s")
        return srv, "alias/aws/secretsmanager"
    except ClientError:
        pass
    kid = srv.client().create_key()["KeyMetadata"]["KeyId"]
    srv.stop()
    db = sqlite3.connect(os.path.join(str(tmp_path), "kinko.db"))
    with db:
        ns, doc = db.execute("SELECT ns, doc FROM docs WHERE kind='key' AND id=?", (kid,)).fetchone()
        doc = json.loads(doc)
        doc.update({"KeyManager": "AWS", "KeyRotationEnabled": True, "RotationPeriodInDays": 365})
        db.execute("UPDATE docs SET doc=? WHERE kind='key' AND id=?", (json.dumps(doc).encode(), kid))
        name = "alias/aws/lifecycletest"
        alias = {"AliasName": name, "AliasArn": "arn:aws:kms:us-east-1:000000000000:" + name,
                 "TargetKeyId": kid, "CreationDate": 0, "LastUpdatedDate": 0}
        db.execute("INSERT INTO docs (kind, ns, id, version, doc) VALUES ('alias', ?, ?, 1, ?)",
                   (ns, name, json.dumps(alias).encode()))
    db.close()
    return make_server(["--dev", "--test-mode"], data_dir=str(tmp_path)), name


def test_aws_managed_key_rules(make_server, tmp_path):
    tserver, alias = _managed_key(make_server, tmp_path)
    kms = tserver.client()
    md = kms.describe_key(KeyId=alias)["KeyMetadata"]
    assert md["KeyManager"] == "AWS"
    kid = md["KeyId"]
    for op in (lambda: kms.disable_key(KeyId=kid),
               lambda: kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7),
               lambda: kms.enable_key_rotation(KeyId=kid),
               lambda: kms.disable_key_rotation(KeyId=kid),
               lambda: kms.tag_resource(KeyId=kid, Tags=[{"TagKey": "a", "TagValue": "b"}]),
               lambda: kms.update_key_description(KeyId=kid, Description="mine")):
        with pytest.raises(ClientError) as e:
            op()
        assert err(e) == "AccessDeniedException"
    for op in (lambda: kms.delete_alias(AliasName=alias),
               lambda: kms.update_alias(AliasName=alias,
                                        TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"]),
               lambda: kms.create_alias(AliasName="alias/mine-%d" % time.time_ns(), TargetKeyId=kid)):
        with pytest.raises(ClientError) as e:
            op()
        # The key policy of an AWS managed key (authorization) may refuse first.
        assert err(e) in ("NotAuthorizedException", "AccessDeniedException")
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert md["KeyState"] == "Enabled"
    st = kms_call(tserver, "GetKeyRotationStatus", {"KeyId": kid})
    assert st["KeyRotationEnabled"] is True and st["RotationPeriodInDays"] == 365
    # Rotated every year by the scheduler.
    tserver.advance_clock(366 * DAY)
    tserver.run_scheduler()
    rots = kms_call(tserver, "ListKeyRotations", {"KeyId": kid})["Rotations"]
    assert len(rots) == 1 and rots[0]["RotationType"] == "AUTOMATIC"
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == kid
    tserver.run_scheduler()  # once a year, not once a run
    assert len(kms_call(tserver, "ListKeyRotations", {"KeyId": kid})["Rotations"]) == 1


def _key_doc(data_dir, kid):
    db = sqlite3.connect(os.path.join(data_dir, "kinko.db"))
    try:
        return json.loads(db.execute("SELECT doc FROM docs WHERE kind='key' AND id=?",
                                     (kid,)).fetchone()[0])
    finally:
        db.close()


@pytest.mark.skipif(os.environ.get("KINKO_TEST_STORE") == "postgresql",
                    reason="edits the SQLite store while the server is stopped")
def test_rotation_sweep_mark_spares_a_restart(make_server, tmp_path):
    """The sweep that gives a key with rotation on but no date its due record
    (a document an older build wrote) runs at a first start and then once a
    day: its mark in the store spares a restart within the day the listing
    and parsing of every key, and the daily sweep still finds the key."""
    data = str(tmp_path)
    srv = make_server(["--dev", "--test-mode"], data_dir=data)
    kid = srv.client().create_key()["KeyMetadata"]["KeyId"]
    srv.client().enable_key_rotation(KeyId=kid)
    srv.run_scheduler()
    srv.stop()
    db = sqlite3.connect(os.path.join(data, "kinko.db"))
    with db:
        assert db.execute("SELECT COUNT(*) FROM docs WHERE kind='rotation-sweep'").fetchone()[0] == 1
        doc = _key_doc(data, kid)
        assert "NextRotationDate" in doc
        del doc["NextRotationDate"]
        db.execute("UPDATE docs SET doc=? WHERE kind='key' AND id=?", (json.dumps(doc).encode(), kid))
        assert db.execute("DELETE FROM docs WHERE kind='due' AND id LIKE ?",
                          ("%" + kid + "%",)).rowcount == 1
    db.close()
    # A restart within the day: no sweep, the key keeps no date.
    srv.start()
    srv.run_scheduler()
    srv.stop()
    assert "NextRotationDate" not in _key_doc(data, kid)
    # A day later the daily sweep finds it, and rotates it when due.
    srv.start()
    srv.advance_clock(DAY + 60)
    srv.run_scheduler()
    assert kms_call(srv, "ListKeyRotations", {"KeyId": kid})["Rotations"] == []
    srv.stop()
    assert "NextRotationDate" in _key_doc(data, kid)
    srv.start()
    srv.advance_clock(366 * DAY)
    srv.run_scheduler()
    rots = kms_call(srv, "ListKeyRotations", {"KeyId": kid})["Rotations"]
    assert len(rots) == 1 and rots[0]["RotationType"] == "AUTOMATIC"


# ---------------------------------------------------------------- test mode

def test_test_mode_is_off_without_the_flag(make_server):
    plain = make_server(["--dev"])  # not the session server: a cluster runs in test mode
    for op in ("AdvanceClock", "Reset", "RunScheduler", "FeedBarrier", "FeedBarrierSeen"):
        st, out = signed_call(plain, "KinkoTest." + op, {"Seconds": 10})
        assert st == 400 and out["__type"] == "UnknownOperationException"


def test_feed_barrier_on_one_node(tserver):
    """KinkoTest.FeedBarrier on one node: seen through its own feed (at
    once on SQLite; on PostgreSQL when the notification comes back, on the
    feed's thread); FeedBarrierSeen answers false for a token never sent."""
    assert tserver.test_call("FeedBarrier", {"Token": "one-node_1"}) == {"Token": "one-node_1"}
    deadline = time.monotonic() + 10
    while tserver.test_call("FeedBarrierSeen", {"Token": "one-node_1"}) != {"Seen": True}:
        assert os.environ.get("KINKO_TEST_STORE") == "postgresql", "SQLite: seen at once"
        assert time.monotonic() < deadline, "the mark was not seen within 10 s"
        time.sleep(0.01)
    assert tserver.test_call("FeedBarrierSeen", {"Token": "other"}) == {"Seen": False}
    st, out = signed_call(tserver, "KinkoTest.FeedBarrier", {"Token": "not/a/token"})
    assert st == 400 and out["__type"] == "ValidationException"
    st, out = signed_call(tserver, "KinkoTest.FeedBarrierSeen", {})
    assert st == 400 and out["__type"] == "ValidationException"


def test_test_mode_requires_a_signature(tserver):
    req = urllib.request.Request(tserver.endpoint + "/", data=b"{}", method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "KinkoTest.Reset"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code in (400, 403)


def test_advance_clock(tserver):
    kms = tserver.client()
    t0 = kms.create_key()["KeyMetadata"]["CreationDate"].timestamp()
    now = tserver.advance_clock(30 * DAY)
    assert now >= int(t0) + 30 * DAY  # CreationDate has milliseconds, the clock whole seconds
    t1 = kms.create_key()["KeyMetadata"]["CreationDate"].timestamp()
    assert t1 >= t0 + 30 * DAY
    st, out = signed_call(tserver, "KinkoTest.AdvanceClock", {"Seconds": -1})
    assert st == 400 and out["__type"] == "ValidationException"
    st, out = signed_call(tserver, "KinkoTest.AdvanceClock", {})
    assert st == 400 and out["__type"] == "ValidationException"


def test_reset_empties_the_account(tserver):
    kms = tserver.client()
    other = tserver.client(region="eu-west-1")
    for c in (kms, other):
        k = c.create_key()["KeyMetadata"]["KeyId"]
        c.create_alias(AliasName="alias/before-reset", TargetKeyId=k)
        c.encrypt(KeyId="alias/before-reset", Plaintext=b"warm the caches")
    tserver.reset()
    for c in (kms, other):
        assert c.list_keys()["Keys"] == []
        # Only AWS's predefined alias/aws/* entries remain, with no key behind them.
        left = c.list_aliases()["Aliases"]
        assert left and all(a["AliasName"].startswith("alias/aws/") and "TargetKeyId" not in a
                            for a in left), left
        with pytest.raises(ClientError) as e:
            c.encrypt(KeyId="alias/before-reset", Plaintext=b"x")
        assert err(e) == "NotFoundException"
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/before-reset", TargetKeyId=k)
    assert kms.encrypt(KeyId="alias/before-reset", Plaintext=b"x")["KeyId"].endswith(k)
    tserver.reset()
    tserver.reset()
