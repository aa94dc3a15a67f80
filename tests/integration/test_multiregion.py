"""Multi-Region KMS keys within one deployment (docs/REGIONS.md): CreateKey
MultiRegion, ReplicateKey, UpdatePrimaryRegion, DescribeKey's
MultiRegionConfiguration, the shared and independent properties, deletion
(PendingReplicaDeletion), the audit events, Secrets Manager replicas under a
multi-Region key, and the AWS CLI walk-through.

Operations Debian's botocore does not know (RotateKeyOnDemand,
ListKeyRotations) go as raw SigV4-signed requests.
"""
import base64
import json
import os
import re
import time

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from helpers import allow, iam_user, kms_request, private_server

DAY = 86400
EAST, WEST, TOKYO = "us-east-1", "eu-west-1", "ap-northeast-1"


def err(e):
    return e.value.response["Error"]["Code"]


def msg(e):
    return e.value.response["Error"].get("Message", "")


def blob_version(blob):
    """The backing-key version a kinko ciphertext names (docs/CIPHERTEXT.md)."""
    return int.from_bytes(blob[18:22], "big")


def raw(server, op, body, region=EAST):
    st, out = kms_request(server, op, body, region=region)
    assert st == 200, (op, st, out)
    return out


def raw_error(server, op, body, region=EAST):
    st, out = kms_request(server, op, body, region=region)
    assert st != 200, (op, out)
    return out["__type"], out.get("message", "")


@pytest.fixture
def tserver(make_server):
    return make_server(["--dev", "--test-mode"])


def clients(server):
    return server.client(region=EAST), server.client(region=WEST)


def mrk(east, **kw):
    return east.create_key(MultiRegion=True, **kw)["KeyMetadata"]


# ------------------------------------------------------------ CreateKey


def test_create_multi_region_key_has_mrk_id_and_configuration(server):
    east, _ = clients(server)
    md = mrk(east, Description="primary")
    assert re.fullmatch(r"mrk-[0-9a-f]{32}", md["KeyId"])
    assert md["Arn"] == "arn:aws:kms:us-east-1:000000000000:key/" + md["KeyId"]
    assert md["MultiRegion"] is True
    cfg = md["MultiRegionConfiguration"]
    assert cfg == {"MultiRegionKeyType": "PRIMARY",
                   "PrimaryKey": {"Arn": md["Arn"], "Region": EAST},
                   "ReplicaKeys": []}
    assert east.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["MultiRegionConfiguration"] == cfg
    # The key is found by id, ARN and alias as any other.
    east.create_alias(AliasName="alias/mrk-" + md["KeyId"][4:12], TargetKeyId=md["KeyId"])
    ct = east.encrypt(KeyId="alias/mrk-" + md["KeyId"][4:12], Plaintext=b"x")["CiphertextBlob"]
    assert east.decrypt(CiphertextBlob=ct)["KeyId"] == md["Arn"]
    assert any(k["KeyId"] == md["KeyId"] for k in east.list_keys(Limit=1000)["Keys"])


def test_single_region_keys_are_unchanged(server):
    east, _ = clients(server)
    for kw in ({}, {"MultiRegion": False}):
        md = east.create_key(**kw)["KeyMetadata"]
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                            md["KeyId"])
        assert md["MultiRegion"] is False and "MultiRegionConfiguration" not in md
        with pytest.raises(ClientError) as e:
            east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
        assert err(e) == "UnsupportedOperationException"
        assert "not a multi-Region key" in msg(e)


def test_multi_region_key_in_a_custom_key_store_is_refused(server):
    east, _ = clients(server)
    for kw in ({"CustomKeyStoreId": "cks-1234567890abcdef0"}, {"Origin": "AWS_CLOUDHSM"},
               {"Origin": "EXTERNAL_KEY_STORE"}):
        with pytest.raises(ClientError) as e:
            east.create_key(MultiRegion=True, **kw)
        assert err(e) in ("UnsupportedOperationException", "CustomKeyStoreNotFoundException")


# ------------------------------------------------------------ ReplicateKey


def test_replicate_key_answers_and_both_keys_show_the_set(server):
    east, west = clients(server)
    md = mrk(east, Description="primary", Tags=[{"TagKey": "side", "TagValue": "east"}])
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
        "Action": "kms:*", "Resource": "*"}]})
    r = east.replicate_key(KeyId=md["Arn"], ReplicaRegion=WEST, Description="replica",
                           Policy=policy, Tags=[{"TagKey": "side", "TagValue": "west"}])
    rep = r["ReplicaKeyMetadata"]
    west_arn = "arn:aws:kms:eu-west-1:000000000000:key/" + md["KeyId"]
    assert rep["KeyId"] == md["KeyId"] and rep["Arn"] == west_arn
    assert rep["Description"] == "replica" and rep["KeyState"] == "Enabled"
    assert rep["MultiRegion"] is True
    assert rep["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert r["ReplicaPolicy"] == policy
    assert r["ReplicaTags"] == [{"TagKey": "side", "TagValue": "west"}]
    replicas = [{"Arn": west_arn, "Region": WEST}]
    for client, kind in ((east, "PRIMARY"), (west, "REPLICA")):
        got = client.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["MultiRegionConfiguration"]
        assert got == {"MultiRegionKeyType": kind,
                       "PrimaryKey": {"Arn": md["Arn"], "Region": EAST},
                       "ReplicaKeys": replicas}
    # Independent: description, tags, policy.
    assert east.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["Description"] == "primary"
    assert west.list_resource_tags(KeyId=md["KeyId"])["Tags"] == [
        {"TagKey": "side", "TagValue": "west"}]
    assert east.list_resource_tags(KeyId=md["KeyId"])["Tags"] == [
        {"TagKey": "side", "TagValue": "east"}]
    assert json.loads(west.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"]) == \
        json.loads(policy)
    # A second replica joins every key's configuration.
    tokyo = server.client(region=TOKYO)
    r2 = east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=TOKYO)
    assert json.loads(r2["ReplicaPolicy"])["Statement"][0]["Action"] == "kms:*"
    assert r2["ReplicaTags"] == []
    want = replicas + [{"Arn": west_arn.replace(WEST, TOKYO), "Region": TOKYO}]
    for client in (east, west, tokyo):
        cfg = client.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["MultiRegionConfiguration"]
        assert cfg["ReplicaKeys"] == want and cfg["PrimaryKey"]["Region"] == EAST


def test_replicate_key_errors(server):
    east, west = clients(server)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    cases = [
        ({"ReplicaRegion": WEST}, "AlreadyExistsException"),
        ({"ReplicaRegion": EAST}, "UnsupportedOperationException"),
        ({"ReplicaRegion": "xx-nowhere-9"}, "UnsupportedOperationException"),
        ({"ReplicaRegion": "EU_WEST_1"}, "ValidationException"),
        ({"ReplicaRegion": "eu-west-2", "Policy": "not json"}, "MalformedPolicyDocumentException"),
        ({"ReplicaRegion": "eu-west-2", "Tags": [{"TagKey": "aws:x", "TagValue": "y"}]},
         "TagException"),
    ]
    for body, code in cases:
        with pytest.raises(ClientError) as e:
            east.replicate_key(KeyId=md["KeyId"], **body)
        assert err(e) == code, (body, msg(e))
    # The replica is not the primary.
    with pytest.raises(ClientError) as e:
        west.replicate_key(KeyId=md["KeyId"], ReplicaRegion="eu-west-2")
    assert err(e) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as e:
        east.replicate_key(KeyId="mrk-" + "0" * 32, ReplicaRegion=WEST)
    assert err(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        east.replicate_key(KeyId="arn:aws:kms:us-east-1:000000000000:alias/none",
                           ReplicaRegion=WEST)
    assert err(e) in ("NotFoundException", "InvalidArnException")
    # A primary pending deletion cannot be replicated.
    lone = mrk(east)
    east.schedule_key_deletion(KeyId=lone["KeyId"], PendingWindowInDays=7)
    with pytest.raises(ClientError) as e:
        east.replicate_key(KeyId=lone["KeyId"], ReplicaRegion=WEST)
    assert err(e) == "KMSInvalidStateException"
    # Failed calls left nothing behind.
    with pytest.raises(ClientError) as e:
        server.client(region="eu-west-2").describe_key(KeyId=md["KeyId"])
    assert err(e) == "NotFoundException"


# ------------------------------------------------- shared and independent


def test_ciphertext_of_either_region_decrypts_in_the_other(server):
    east, west = clients(server)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    ctx = {"purpose": "mrk"}
    ct = east.encrypt(KeyId=md["KeyId"], Plaintext=b"from east", EncryptionContext=ctx)
    got = west.decrypt(CiphertextBlob=ct["CiphertextBlob"], EncryptionContext=ctx)
    assert got["Plaintext"] == b"from east"
    assert got["KeyId"] == "arn:aws:kms:eu-west-1:000000000000:key/" + md["KeyId"]
    ct2 = west.encrypt(KeyId=md["KeyId"], Plaintext=b"from west")["CiphertextBlob"]
    assert east.decrypt(CiphertextBlob=ct2, KeyId=md["Arn"])["Plaintext"] == b"from west"
    dk = west.generate_data_key(KeyId=md["KeyId"], KeySpec="AES_256")
    assert east.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    # ReEncrypt in the replica's Region, from the primary's ciphertext.
    other = west.create_key()["KeyMetadata"]["KeyId"]
    re_ct = west.re_encrypt(CiphertextBlob=ct["CiphertextBlob"], SourceEncryptionContext=ctx,
                            DestinationKeyId=other)["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=re_ct)["Plaintext"] == b"from east"
    back = west.re_encrypt(CiphertextBlob=re_ct, DestinationKeyId=md["KeyId"])["CiphertextBlob"]
    assert east.decrypt(CiphertextBlob=back)["Plaintext"] == b"from east"


def test_enabled_state_aliases_and_grants_are_independent(server):
    east, west = clients(server)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    ct = east.encrypt(KeyId=md["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    west.disable_key(KeyId=md["KeyId"])
    with pytest.raises(ClientError) as e:
        west.decrypt(CiphertextBlob=ct)
    assert err(e) == "DisabledException"
    assert east.decrypt(CiphertextBlob=ct)["Plaintext"] == b"x"
    assert east.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["Enabled"] is True
    west.enable_key(KeyId=md["KeyId"])
    east.create_alias(AliasName="alias/only-east", TargetKeyId=md["KeyId"])
    with pytest.raises(ClientError) as e:
        west.describe_key(KeyId="alias/only-east")
    assert err(e) == "NotFoundException"
    east.create_grant(KeyId=md["KeyId"], GranteePrincipal="arn:aws:iam::000000000000:root",
                      Operations=["Decrypt"])
    assert len(east.list_grants(KeyId=md["KeyId"])["Grants"]) == 1
    assert west.list_grants(KeyId=md["KeyId"])["Grants"] == []
    west.update_key_description(KeyId=md["KeyId"], Description="west only")
    assert east.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["Description"] == ""


@pytest.mark.parametrize("spec,usage", [("RSA_2048", "SIGN_VERIFY"),
                                        ("ECC_NIST_P256", "SIGN_VERIFY"),
                                        ("RSA_3072", "ENCRYPT_DECRYPT"),
                                        ("HMAC_256", "GENERATE_VERIFY_MAC")])
def test_asymmetric_and_hmac_keys_work_across_regions(server, spec, usage):
    east, west = clients(server)
    md = mrk(east, KeySpec=spec, KeyUsage=usage)
    rep = east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)["ReplicaKeyMetadata"]
    assert rep["KeySpec"] == spec and rep["KeyUsage"] == usage
    if usage == "SIGN_VERIFY":
        alg = md["SigningAlgorithms"][0]
        sig = east.sign(KeyId=md["KeyId"], Message=b"m", SigningAlgorithm=alg)["Signature"]
        assert west.verify(KeyId=md["KeyId"], Message=b"m", Signature=sig,
                           SigningAlgorithm=alg)["SignatureValid"] is True
        assert east.get_public_key(KeyId=md["KeyId"])["PublicKey"] == \
            west.get_public_key(KeyId=md["KeyId"])["PublicKey"]
    elif usage == "ENCRYPT_DECRYPT":
        ct = west.encrypt(KeyId=md["KeyId"], Plaintext=b"rsa",
                          EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
        assert east.decrypt(KeyId=md["KeyId"], CiphertextBlob=ct,
                            EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"rsa"
    else:
        mac = east.generate_mac(KeyId=md["KeyId"], Message=b"m",
                                MacAlgorithm="HMAC_SHA_256")["Mac"]
        assert west.verify_mac(KeyId=md["KeyId"], Message=b"m", Mac=mac,
                               MacAlgorithm="HMAC_SHA_256")["MacValid"] is True


def _import(client, key_id, material):
    p = client.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                         WrappingKeySpec="RSA_2048")
    pub = serialization.load_der_public_key(p["PublicKey"])
    enc = pub.encrypt(material, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                             algorithm=hashes.SHA256(), label=None))
    client.import_key_material(KeyId=key_id, ImportToken=p["ImportToken"],
                               EncryptedKeyMaterial=enc,
                               ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")


def test_imported_material_is_imported_into_each_related_key(server):
    east, west = clients(server)
    md = mrk(east, Origin="EXTERNAL")
    assert md["KeyState"] == "PendingImport" and md["Origin"] == "EXTERNAL"
    material = os.urandom(32)
    _import(east, md["KeyId"], material)
    rep = east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)["ReplicaKeyMetadata"]
    # "the replica key is created in PendingImport": its material is imported on its own.
    assert rep["KeyState"] == "PendingImport" and rep["Origin"] == "EXTERNAL"
    ct = east.encrypt(KeyId=md["KeyId"], Plaintext=b"imported")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        west.decrypt(CiphertextBlob=ct)
    assert err(e) == "KMSInvalidStateException"
    # Other material than the primary's is refused.
    with pytest.raises(ClientError) as e:
        _import(west, md["KeyId"], os.urandom(32))
    assert err(e) == "IncorrectKeyMaterialException"
    _import(west, md["KeyId"], material)
    assert west.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    assert west.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported"
    # Deleting the replica's material leaves the primary's alone.
    west.delete_imported_key_material(KeyId=md["KeyId"])
    assert east.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported"


def test_replica_imported_first_binds_the_primary_to_its_material(server):
    east, west = clients(server)
    md = mrk(east, Origin="EXTERNAL")
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    material = os.urandom(32)
    _import(west, md["KeyId"], material)
    with pytest.raises(ClientError) as e:
        _import(east, md["KeyId"], os.urandom(32))
    assert err(e) == "IncorrectKeyMaterialException"
    _import(east, md["KeyId"], material)
    ct = west.encrypt(KeyId=md["KeyId"], Plaintext=b"either way")["CiphertextBlob"]
    assert east.decrypt(CiphertextBlob=ct)["Plaintext"] == b"either way"


def test_rotation_on_the_primary_reaches_every_replica(tserver):
    east, west = clients(tserver)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    old = west.encrypt(KeyId=md["KeyId"], Plaintext=b"old")["CiphertextBlob"]
    assert blob_version(old) == 1
    raw(tserver, "RotateKeyOnDemand", {"KeyId": md["KeyId"]})
    new = west.encrypt(KeyId=md["KeyId"], Plaintext=b"new")["CiphertextBlob"]
    assert blob_version(new) == 2
    assert east.decrypt(CiphertextBlob=new)["Plaintext"] == b"new"
    assert east.decrypt(CiphertextBlob=old)["Plaintext"] == b"old"
    rots = raw(tserver, "ListKeyRotations", {"KeyId": md["KeyId"]}, region=WEST)["Rotations"]
    assert [r["RotationType"] for r in rots] == ["ON_DEMAND"]
    # Rotation is set on the primary only.
    for op in ("RotateKeyOnDemand", "EnableKeyRotation", "DisableKeyRotation"):
        code, text = raw_error(tserver, op, {"KeyId": md["KeyId"]}, region=WEST)
        assert code == "UnsupportedOperationException", (op, text)
    # Automatic rotation on the primary, seen from the replica.
    east.enable_key_rotation(KeyId=md["KeyId"])
    status = raw(tserver, "GetKeyRotationStatus", {"KeyId": md["KeyId"]}, region=WEST)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 365
    tserver.advance_clock(366 * DAY)
    tserver.run_scheduler()
    third = west.encrypt(KeyId=md["KeyId"], Plaintext=b"auto")["CiphertextBlob"]
    assert blob_version(third) == 3
    assert east.decrypt(CiphertextBlob=third)["Plaintext"] == b"auto"


# ------------------------------------------------------ UpdatePrimaryRegion


def test_update_primary_region_swaps_primary_and_replica(server):
    east, west = clients(server)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=TOKYO)
    east.enable_key_rotation(KeyId=md["KeyId"])
    west_arn = md["Arn"].replace(EAST, WEST)
    east.update_primary_region(KeyId=md["KeyId"], PrimaryRegion=WEST)
    for client, kind in ((east, "REPLICA"), (west, "PRIMARY"),
                         (server.client(region=TOKYO), "REPLICA")):
        cfg = client.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["MultiRegionConfiguration"]
        assert cfg["MultiRegionKeyType"] == kind
        assert cfg["PrimaryKey"] == {"Arn": west_arn, "Region": WEST}
        assert sorted(r["Region"] for r in cfg["ReplicaKeys"]) == sorted([EAST, TOKYO])
    # The rotation settings moved with the primary.
    assert west.get_key_rotation_status(KeyId=md["KeyId"])["KeyRotationEnabled"] is True
    with pytest.raises(ClientError) as e:
        east.disable_key_rotation(KeyId=md["KeyId"])
    assert err(e) == "UnsupportedOperationException"
    # The new primary replicates; the old one no longer does.
    west.replicate_key(KeyId=md["KeyId"], ReplicaRegion="eu-west-2")
    with pytest.raises(ClientError) as e:
        east.replicate_key(KeyId=md["KeyId"], ReplicaRegion="eu-central-1")
    assert err(e) == "UnsupportedOperationException"
    ct = east.encrypt(KeyId=md["KeyId"], Plaintext=b"after")["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=ct)["Plaintext"] == b"after"


def test_update_primary_region_errors(server):
    east, west = clients(server)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    cases = [(east, "ap-south-1", "NotFoundException"),
             (east, EAST, "UnsupportedOperationException"),
             (east, "xx-nowhere-9", "UnsupportedOperationException"),
             (west, EAST, "UnsupportedOperationException")]
    for client, region, code in cases:
        with pytest.raises(ClientError) as e:
            client.update_primary_region(KeyId=md["KeyId"], PrimaryRegion=region)
        assert err(e) == code, (region, msg(e))
    single = east.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        east.update_primary_region(KeyId=single, PrimaryRegion=WEST)
    assert err(e) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as e:
        east.update_primary_region(KeyId="mrk-" + "1" * 32, PrimaryRegion=WEST)
    assert err(e) == "NotFoundException"
    east.schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    with pytest.raises(ClientError) as e:
        east.update_primary_region(KeyId=md["KeyId"], PrimaryRegion=WEST)
    assert err(e) == "KMSInvalidStateException"


# ---------------------------------------------------------------- deletion


def test_primary_waits_for_its_replicas_deletion(tserver):
    east, west = clients(tserver)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    ct = east.encrypt(KeyId=md["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    out = east.schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=10)
    assert out["KeyState"] == "PendingReplicaDeletion" and out["PendingWindowInDays"] == 10
    assert "DeletionDate" not in out
    got = east.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert got["KeyState"] == "PendingReplicaDeletion" and "DeletionDate" not in got
    assert got["PendingDeletionWindowInDays"] == 10
    with pytest.raises(ClientError) as e:
        east.decrypt(CiphertextBlob=ct)
    assert err(e) == "KMSInvalidStateException" and "pending replica deletion" in msg(e)
    with pytest.raises(ClientError) as e:
        east.schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    assert err(e) == "KMSInvalidStateException"
    # The replica still works, and is deleted after its own window.
    assert west.decrypt(CiphertextBlob=ct)["Plaintext"] == b"x"
    rep = west.schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    assert rep["KeyState"] == "PendingDeletion" and "DeletionDate" in rep
    tserver.advance_clock(7 * DAY + 1)
    tserver.run_scheduler()
    with pytest.raises(ClientError) as e:
        west.describe_key(KeyId=md["KeyId"])
    assert err(e) == "NotFoundException"
    # Its last replica gone, the primary's own window begins.
    got = east.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert got["KeyState"] == "PendingDeletion" and "DeletionDate" in got
    assert "PendingDeletionWindowInDays" not in got
    assert got["MultiRegionConfiguration"]["ReplicaKeys"] == []
    tserver.advance_clock(9 * DAY)
    tserver.run_scheduler()
    assert east.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    tserver.advance_clock(1 * DAY + 1)
    tserver.run_scheduler()
    with pytest.raises(ClientError) as e:
        east.describe_key(KeyId=md["KeyId"])
    assert err(e) == "NotFoundException"


def test_cancel_deletion_of_a_primary_pending_replica_deletion(server):
    east, west = clients(server)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    east.schedule_key_deletion(KeyId=md["KeyId"])
    out = east.cancel_key_deletion(KeyId=md["KeyId"])
    assert out["KeyId"] == md["Arn"]
    got = east.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert got["KeyState"] == "Disabled" and "PendingDeletionWindowInDays" not in got
    # A primary without replicas is scheduled as any key.
    lone = mrk(east)
    out = east.schedule_key_deletion(KeyId=lone["KeyId"], PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and "DeletionDate" in out


def lookup_names(ct, arn, want, timeout=10.0):
    """The event names LookupEvents gives for arn, once want is among them
    (through a cluster, another node's events are indexed within seconds:
    docs/CLUSTER.md, "Audit across nodes"), or at the timeout."""
    deadline = time.time() + timeout
    while True:
        events = ct.lookup_events(LookupAttributes=[
            {"AttributeKey": "ResourceName", "AttributeValue": arn}])["Events"]
        names = [e["EventName"] for e in events]
        if want in names or time.time() > deadline:
            return events
        time.sleep(0.2)


def test_replicate_key_events_in_both_regions(server):
    east, _ = clients(server)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    west_arn = md["Arn"].replace(EAST, WEST)
    ct_east = server.client("cloudtrail", region=EAST)
    ct_west = server.client("cloudtrail", region=WEST)
    calls = lookup_names(ct_east, md["Arn"], "ReplicateKey")
    assert "ReplicateKey" in {e["EventName"] for e in calls}
    made = lookup_names(ct_west, west_arn, "CreateKey")
    assert [e["EventName"] for e in made] == ["CreateKey"]
    event = json.loads(made[0]["CloudTrailEvent"])
    assert event["awsRegion"] == WEST and event["eventType"] == "AwsServiceEvent"


# ---------------------------------------------------------- Secrets Manager


def test_secret_replica_under_a_multi_region_key(server):
    east, west = clients(server)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    sm_east = server.client("secretsmanager", region=EAST)
    sm_west = server.client("secretsmanager", region=WEST)
    name = "mrk-secret-" + md["KeyId"][4:12]
    sm_east.create_secret(Name=name, SecretString="s3cret", KmsKeyId=md["KeyId"])
    sm_east.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[
        {"Region": WEST, "KmsKeyId": md["KeyId"]}])
    status = sm_east.describe_secret(SecretId=name)["ReplicationStatus"]
    assert status[0]["Region"] == WEST and status[0]["KmsKeyId"] == md["KeyId"]
    assert status[0]["Status"] == "InSync"
    assert sm_west.get_secret_value(SecretId=name)["SecretString"] == "s3cret"
    sm_east.put_secret_value(SecretId=name, SecretString="next")
    assert sm_west.get_secret_value(SecretId=name)["SecretString"] == "next"


# ---------------------------------------------------------------- AWS CLI


def test_the_walk_through_with_the_aws_cli(server, tmp_path):
    _, out, _ = server.aws("kms", "create-key", "--multi-region", "--description", "cli")
    md = json.loads(out)["KeyMetadata"]
    assert md["KeyId"].startswith("mrk-") and md["MultiRegion"] is True
    _, out, _ = server.aws("kms", "replicate-key", "--key-id", md["KeyId"],
                           "--replica-region", WEST)
    assert json.loads(out)["ReplicaKeyMetadata"]["Arn"] == md["Arn"].replace(EAST, WEST)
    (tmp_path / "plain.txt").write_bytes(b"seed walk-through")
    _, out, _ = server.aws("kms", "encrypt", "--key-id", md["KeyId"], "--plaintext",
                           "fileb://" + str(tmp_path / "plain.txt"))
    (tmp_path / "ct.bin").write_bytes(base64.b64decode(json.loads(out)["CiphertextBlob"]))
    _, out, _ = server.aws("kms", "decrypt", "--ciphertext-blob",
                           "fileb://" + str(tmp_path / "ct.bin"), region=WEST)
    got = json.loads(out)
    assert base64.b64decode(got["Plaintext"]) == b"seed walk-through"
    assert got["KeyId"] == md["Arn"].replace(EAST, WEST)
    _, out, _ = server.aws("kms", "describe-key", "--key-id", md["KeyId"], region=WEST)
    assert json.loads(out)["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"] == \
        "REPLICA"
    server.aws("kms", "update-primary-region", "--key-id", md["KeyId"], "--primary-region", WEST)
    _, out, _ = server.aws("kms", "describe-key", "--key-id", md["KeyId"], region=WEST)
    assert json.loads(out)["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"] == \
        "PRIMARY"
    rc, _, errtext = server.aws("kms", "replicate-key", "--key-id", md["KeyId"],
                                "--replica-region", EAST, region=WEST, check=False)
    assert rc != 0 and "AlreadyExistsException" in errtext


# ---------------------------------------------------------- authorization

ACCT = "111122223333"
KEYS = {}


def _user(name, policies):
    return iam_user(KEYS, ACCT, name, policies, key_fill="MRKMRKMRKMRK", secret_prefix="mrk-")


AUTHZ_CONFIG = {"accounts": [{
    "id": ACCT,
    "root_access_keys": [{"access_key_id": "AKIAMRKROOT", "secret_access_key": "mrk-root"}],
    "users": [
        _user("nocreate", [allow(["kms:ReplicateKey", "kms:DescribeKey"])]),
        _user("replicator", [allow(["kms:ReplicateKey", "kms:CreateKey", "kms:DescribeKey"])]),
        _user("mover", [allow("kms:UpdatePrimaryRegion", "arn:aws:kms:us-east-1:%s:key/*" % ACCT)]),
    ],
}]}


@pytest.fixture(scope="module")
def authz_srv():
    yield from private_server(AUTHZ_CONFIG, "kinko-mrk-authz-")


def _as(srv, name, region=EAST):
    if name == "root":
        return srv.client(region=region, key="AKIAMRKROOT", secret="mrk-root")
    ak, sk = KEYS[name]
    return srv.client(region=region, key=ak, secret=sk)


def test_replicate_key_needs_create_key_and_tag_resource(authz_srv):
    root = _as(authz_srv, "root")
    md = mrk(root)
    with pytest.raises(ClientError) as e:
        _as(authz_srv, "nocreate").replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    assert err(e) == "AccessDeniedException" and "kms:CreateKey" in msg(e)
    rep = _as(authz_srv, "replicator")
    with pytest.raises(ClientError) as e:
        rep.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST,
                          Tags=[{"TagKey": "a", "TagValue": "b"}])
    assert err(e) == "AccessDeniedException" and "kms:TagResource" in msg(e)
    out = rep.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    assert out["ReplicaKeyMetadata"]["Arn"] == md["Arn"].replace(EAST, WEST)


def test_update_primary_region_needs_the_action_on_both_keys(authz_srv):
    root = _as(authz_srv, "root")
    md = mrk(root)
    root.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    with pytest.raises(ClientError) as e:
        _as(authz_srv, "mover").update_primary_region(KeyId=md["KeyId"], PrimaryRegion=WEST)
    assert err(e) == "AccessDeniedException"
    assert md["Arn"].replace(EAST, WEST) in msg(e)
    cfg = root.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["MultiRegionConfiguration"]
    assert cfg["MultiRegionKeyType"] == "PRIMARY"


def test_synchronize_and_update_primary_region_events(server):
    """A rotation's copy to the replicas is AWS's SynchronizeMultiRegionKey
    (the primary as resource, in its Region); UpdatePrimaryRegion writes an
    entry in the new primary's Region too."""
    east, _ = clients(server)
    md = mrk(east)
    east.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    raw(server, "RotateKeyOnDemand", {"KeyId": md["KeyId"]})
    ct_east = server.client("cloudtrail", region=EAST)
    ct_west = server.client("cloudtrail", region=WEST)
    synced = lookup_names(ct_east, md["Arn"], "SynchronizeMultiRegionKey")
    assert "SynchronizeMultiRegionKey" in [e["EventName"] for e in synced]
    east.update_primary_region(KeyId=md["KeyId"], PrimaryRegion=WEST)
    west_arn = md["Arn"].replace(EAST, WEST)
    there = [e for e in lookup_names(ct_west, west_arn, "UpdatePrimaryRegion")
             if e["EventName"] == "UpdatePrimaryRegion"]
    assert there, "no UpdatePrimaryRegion event in the new primary's Region"
    event = json.loads(there[0]["CloudTrailEvent"])
    assert event["awsRegion"] == WEST
    assert event["serviceEventDetails"]["primaryRegion"] == WEST
