"""Multi-Region keys across deployments, the primary moved between them
(docs/REGIONS.md, "Across deployments"): UpdatePrimaryRegion from A's
Region to B's, where B holds the replica, and back; rotations afterwards
sent by the new primary's deployment; a peer that is down refuses the
move and nothing changes. And keys with imported material replicated to
the peer: the replica imports the same material, and only that. The two
deployments are the `pair` fixture of test_multiregion_peers.py (A serves
us-east-1, B eu-west-1).
"""
import base64
import json
import os

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from test_multiregion import _import
from test_multiregion_peers import (EAST, WEST, blob_version, eventually, lookup, mrk,  # noqa: F401
                                    pair, rotate)


def config(d, region, key_id):
    md = d.client(region).describe_key(KeyId=key_id)["KeyMetadata"]
    return md, md["MultiRegionConfiguration"]


def replicated(a):
    md = mrk(a, Description="primary in A")
    a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    return md, md["Arn"].replace(EAST, WEST)


def rotate_in(d, region, key_id):
    st, out = d.call("TrentService.RotateKeyOnDemand", {"KeyId": key_id}, region)
    assert st == 200, out


def test_update_primary_region_to_the_peer_and_back(pair):
    a, b = pair
    md, west_arn = replicated(a)
    kid = md["KeyId"]
    a.client(EAST).enable_key_rotation(KeyId=kid)
    assert a.client(EAST).update_primary_region(KeyId=kid, PrimaryRegion=WEST)[
        "ResponseMetadata"]["HTTPStatusCode"] == 200
    # Primary and replica swapped, on both sides; both Enabled.
    got_b, cfg_b = config(b, WEST, kid)
    got_a, cfg_a = config(a, EAST, kid)
    assert cfg_b["MultiRegionKeyType"] == "PRIMARY" and cfg_a["MultiRegionKeyType"] == "REPLICA"
    for cfg in (cfg_a, cfg_b):
        assert cfg["PrimaryKey"] == {"Arn": west_arn, "Region": WEST}
        assert cfg["ReplicaKeys"] == [{"Arn": md["Arn"], "Region": EAST}]
    assert got_a["KeyState"] == got_b["KeyState"] == "Enabled"
    # Independent properties stay each key's own; rotation moved to the new primary.
    assert got_a["Description"] == "primary in A"
    assert b.client(WEST).get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"]
    # The new replica shows the settings it handed over (a shared property), at once.
    shown = a.client(EAST).get_key_rotation_status(KeyId=kid)
    assert shown["KeyRotationEnabled"], shown
    before = b.client(WEST).get_key_rotation_status(KeyId=kid)
    assert shown.get("NextRotationDate") == before.get("NextRotationDate"), (shown, before)
    # Encryption across, both ways.
    ct = a.client(EAST).encrypt(KeyId=kid, Plaintext=b"from A")["CiphertextBlob"]
    assert b.client(WEST).decrypt(CiphertextBlob=ct)["Plaintext"] == b"from A"
    ct = b.client(WEST).encrypt(KeyId=kid, Plaintext=b"from B")["CiphertextBlob"]
    assert a.client(EAST).decrypt(CiphertextBlob=ct)["Plaintext"] == b"from B"
    # A is a replica now: rotations are the new primary's.
    st, out = a.call("TrentService.RotateKeyOnDemand", {"KeyId": kid}, EAST)
    assert st == 400 and out["__type"] == "UnsupportedOperationException", out
    with pytest.raises(ClientError) as e:
        a.client(EAST).update_primary_region(KeyId=kid, PrimaryRegion=WEST)
    assert e.value.response["Error"]["Code"] == "UnsupportedOperationException"
    rotate_in(b, WEST, kid)
    v2 = b.client(WEST).encrypt(KeyId=kid, Plaintext=b"v2")["CiphertextBlob"]
    assert blob_version(v2) == 2

    def reached_a():
        assert a.client(EAST).decrypt(CiphertextBlob=v2)["Plaintext"] == b"v2"
        mine = a.client(EAST).encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"]
        assert blob_version(mine) == 2
    eventually(reached_a)
    _, cfg_a = config(a, EAST, kid)
    assert cfg_a["MultiRegionKeyType"] == "REPLICA"  # the synchronization kept it a replica
    # And back: from B (the primary now) to A's Region.
    b.client(WEST).update_primary_region(KeyId=kid, PrimaryRegion=EAST)
    _, cfg_a = config(a, EAST, kid)
    _, cfg_b = config(b, WEST, kid)
    assert cfg_a["MultiRegionKeyType"] == "PRIMARY" and cfg_b["MultiRegionKeyType"] == "REPLICA"
    assert cfg_a["PrimaryKey"] == cfg_b["PrimaryKey"] == {"Arn": md["Arn"], "Region": EAST}
    assert a.client(EAST).get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"]
    assert b.client(WEST).get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"]
    # Settings changed on the primary reach the replica, not the other way round.
    a.client(EAST).disable_key_rotation(KeyId=kid)

    def disabled_on_b():
        assert not b.client(WEST).get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"]
    eventually(disabled_on_b)
    a.client(EAST).enable_key_rotation(KeyId=kid)
    rotate(a, kid)
    v3 = a.client(EAST).encrypt(KeyId=kid, Plaintext=b"v3")["CiphertextBlob"]
    assert blob_version(v3) == 3
    eventually(lambda: b.client(WEST).decrypt(CiphertextBlob=v3))
    assert b.client(WEST).decrypt(CiphertextBlob=v2)["Plaintext"] == b"v2"


def test_update_primary_region_is_recorded_in_both_regions(pair):
    a, b = pair
    md, west_arn = replicated(a)
    a.client(EAST).update_primary_region(KeyId=md["KeyId"], PrimaryRegion=WEST)
    calls = [e for e in lookup(a, EAST, md["Arn"], "UpdatePrimaryRegion")
             if e["EventName"] == "UpdatePrimaryRegion"]
    assert calls and json.loads(calls[0]["CloudTrailEvent"])["eventType"] == "AwsApiCall"
    there = [e for e in lookup(b, WEST, west_arn, "UpdatePrimaryRegion")
             if e["EventName"] == "UpdatePrimaryRegion"]
    assert there
    ev = json.loads(there[0]["CloudTrailEvent"])
    assert ev["eventType"] == "AwsServiceEvent"


def test_update_primary_region_with_the_aws_cli(pair):
    a, b = pair
    md = a.aws("kms", "create-key", "--multi-region")["KeyMetadata"]
    a.aws("kms", "replicate-key", "--key-id", md["KeyId"], "--replica-region", WEST)
    a.aws("kms", "update-primary-region", "--key-id", md["KeyId"], "--primary-region", WEST)
    got = b.aws("kms", "describe-key", "--key-id", md["KeyId"], region=WEST)["KeyMetadata"]
    assert got["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    assert got["KeyState"] == "Enabled"
    got = a.aws("kms", "describe-key", "--key-id", md["KeyId"])["KeyMetadata"]
    assert got["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    b.aws("kms", "update-primary-region", "--key-id", md["KeyId"], "--primary-region", EAST,
          region=WEST)
    got = a.aws("kms", "describe-key", "--key-id", md["KeyId"])["KeyMetadata"]
    assert got["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"


def test_a_peer_that_is_down_refuses_and_nothing_changes(pair):
    a, b = pair
    md, west_arn = replicated(a)
    b.stop()
    try:
        with pytest.raises(ClientError) as e:
            a.client(EAST).update_primary_region(KeyId=md["KeyId"], PrimaryRegion=WEST)
        assert e.value.response["Error"]["Code"] == "KMSInternalException"
        got, cfg = config(a, EAST, md["KeyId"])
        assert cfg["MultiRegionKeyType"] == "PRIMARY" and got["KeyState"] == "Enabled"
        rotate(a, md["KeyId"])  # still the primary
    finally:
        b.start()
    _, cfg = config(b, WEST, md["KeyId"])
    assert cfg["MultiRegionKeyType"] == "REPLICA"
    # The same call once the peer answers again.
    a.client(EAST).update_primary_region(KeyId=md["KeyId"], PrimaryRegion=WEST)
    _, cfg = config(b, WEST, md["KeyId"])
    assert cfg["MultiRegionKeyType"] == "PRIMARY"
    v2 = a.client(EAST).encrypt(KeyId=md["KeyId"], Plaintext=b"v2")["CiphertextBlob"]
    assert blob_version(v2) == 2
    assert b.client(WEST).decrypt(CiphertextBlob=v2)["Plaintext"] == b"v2"


def err(e):
    return e.value.response["Error"]["Code"]


def test_imported_material_replicated_to_a_peer(pair):
    a, b = pair
    ea, eb = a.client(EAST), b.client(WEST)
    md = mrk(a, Origin="EXTERNAL")
    kid = md["KeyId"]
    material = os.urandom(32)
    _import(ea, kid, material)
    rep = ea.replicate_key(KeyId=kid, ReplicaRegion=WEST)["ReplicaKeyMetadata"]
    # "the replica key is created in PendingImport" on the peer, no material sent.
    assert rep["KeyState"] == "PendingImport" and rep["Origin"] == "EXTERNAL"
    got = eb.describe_key(KeyId=kid)["KeyMetadata"]
    assert got["KeyState"] == "PendingImport"
    assert got["MultiRegionConfiguration"]["PrimaryKey"] == {"Arn": md["Arn"], "Region": EAST}
    # Other material than the primary's is refused, and the state stays.
    with pytest.raises(ClientError) as e:
        _import(eb, kid, os.urandom(32))
    assert err(e) == "IncorrectKeyMaterialException"
    assert "not the same key material" in e.value.response["Error"]["Message"]
    assert eb.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingImport"
    # The same material works: encrypt in one deployment, decrypt in the other.
    _import(eb, kid, material)
    assert eb.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    ct = ea.encrypt(KeyId=kid, Plaintext=b"imported in A")["CiphertextBlob"]
    assert eb.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported in A"
    ct = eb.encrypt(KeyId=kid, Plaintext=b"imported in B")["CiphertextBlob"]
    assert ea.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported in B"
    # Each Region's material is deleted and imported on its own.
    eb.delete_imported_key_material(KeyId=kid)
    assert eb.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingImport"
    assert ea.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported in B"
    with pytest.raises(ClientError) as e:
        _import(eb, kid, os.urandom(32))
    assert err(e) == "IncorrectKeyMaterialException"
    _import(eb, kid, material)
    assert eb.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported in B"
    # The primary can move to the peer; each keeps its own material.
    ea.update_primary_region(KeyId=kid, PrimaryRegion=WEST)
    cfg = eb.describe_key(KeyId=kid)["KeyMetadata"]["MultiRegionConfiguration"]
    assert cfg["MultiRegionKeyType"] == "PRIMARY"
    assert ea.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported in B"


def test_imported_material_must_be_in_the_primary_before_a_peer_replica(pair):
    a, b = pair
    md = mrk(a, Origin="EXTERNAL")
    with pytest.raises(ClientError) as e:
        a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    assert err(e) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as e:
        b.client(WEST).describe_key(KeyId=md["KeyId"])
    assert err(e) == "NotFoundException"
    assert a.client(EAST).describe_key(KeyId=md["KeyId"])["KeyMetadata"][
        "MultiRegionConfiguration"]["ReplicaKeys"] == []


def cli_import(d, key_id, material, tmp_path, region):
    p = d.aws("kms", "get-parameters-for-import", "--key-id", key_id,
              "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--wrapping-key-spec", "RSA_2048",
              region=region)
    pub = serialization.load_der_public_key(base64.b64decode(p["PublicKey"]))
    enc = pub.encrypt(material, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                             algorithm=hashes.SHA256(), label=None))
    (tmp_path / "token.bin").write_bytes(base64.b64decode(p["ImportToken"]))
    (tmp_path / "material.bin").write_bytes(enc)
    return d.aws("kms", "import-key-material", "--key-id", key_id,
                 "--import-token", "fileb://" + str(tmp_path / "token.bin"),
                 "--encrypted-key-material", "fileb://" + str(tmp_path / "material.bin"),
                 "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE", region=region)


def test_imported_material_across_with_the_aws_cli(pair, tmp_path):
    a, b = pair
    md = a.aws("kms", "create-key", "--multi-region", "--origin", "EXTERNAL")["KeyMetadata"]
    material = os.urandom(32)
    cli_import(a, md["KeyId"], material, tmp_path, EAST)
    out = a.aws("kms", "replicate-key", "--key-id", md["KeyId"], "--replica-region", WEST)
    assert out["ReplicaKeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(AssertionError) as e:
        cli_import(b, md["KeyId"], os.urandom(32), tmp_path, WEST)
    assert "IncorrectKeyMaterialException" in str(e.value)
    cli_import(b, md["KeyId"], material, tmp_path, WEST)
    got = b.aws("kms", "describe-key", "--key-id", md["KeyId"], region=WEST)["KeyMetadata"]
    assert got["KeyState"] == "Enabled"
    (tmp_path / "plain.txt").write_bytes(b"cli imported")
    out = b.aws("kms", "encrypt", "--key-id", md["KeyId"], "--plaintext",
                "fileb://" + str(tmp_path / "plain.txt"), region=WEST)
    (tmp_path / "ct.bin").write_bytes(base64.b64decode(out["CiphertextBlob"]))
    got = a.aws("kms", "decrypt", "--ciphertext-blob", "fileb://" + str(tmp_path / "ct.bin"))
    assert base64.b64decode(got["Plaintext"]) == b"cli imported"


def test_a_pending_import_replica_on_the_peer_follows_the_set(pair):
    a, b = pair
    md = mrk(a, Origin="EXTERNAL")
    _import(a.client(EAST), md["KeyId"], os.urandom(32))
    a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    # A replica in another of A's own Regions: B's copy of the set follows
    # through the outbox, while its replica still waits for its material.
    a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion="us-west-2")

    def listed():
        got = b.client(WEST).describe_key(KeyId=md["KeyId"])["KeyMetadata"]
        regions = [r["Region"] for r in got["MultiRegionConfiguration"]["ReplicaKeys"]]
        assert sorted(regions) == sorted([WEST, "us-west-2"]), regions
        assert got["KeyState"] == "PendingImport"
    eventually(listed)


def test_a_late_synchronization_does_not_demote_the_new_primary(pair):
    a, b = pair
    md = mrk(a, Origin="EXTERNAL")
    kid, material = md["KeyId"], os.urandom(32)
    _import(a.client(EAST), kid, material)
    a.client(EAST).replicate_key(KeyId=kid, ReplicaRegion=WEST)
    _import(b.client(WEST), kid, material)
    _, before = config(a, EAST, kid)
    a.client(EAST).update_primary_region(KeyId=kid, PrimaryRegion=WEST)
    # A record the former primary sent before the move arrives after it
    # (imported material: the request carries none to seal).
    st, out = b.call("KinkoPeer.SynchronizeKeyIn", {
        "KeyId": kid, "EncryptedKeyMaterial": None,
        "Key": {"MultiRegionConfiguration": before, "Rotations": [], "Materials": []}}, WEST)
    assert st == 200, out
    _, cfg = config(b, WEST, kid)
    assert cfg["MultiRegionKeyType"] == "PRIMARY"
    assert cfg["PrimaryKey"]["Region"] == WEST


def test_a_replica_the_new_primary_cannot_reach_is_refused(pair):
    a, b = pair
    md, _ = replicated(a)
    # us-west-2 is A's own Region; B names no peer for it.
    a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion="us-west-2")
    with pytest.raises(ClientError) as e:
        a.client(EAST).update_primary_region(KeyId=md["KeyId"], PrimaryRegion=WEST)
    assert err(e) == "UnsupportedOperationException"
    _, cfg_a = config(a, EAST, md["KeyId"])
    _, cfg_b = config(b, WEST, md["KeyId"])
    assert cfg_a["MultiRegionKeyType"] == "PRIMARY" and cfg_b["MultiRegionKeyType"] == "REPLICA"
    # Within A, the same key's primary still moves between A's own Regions.
    a.client(EAST).update_primary_region(KeyId=md["KeyId"], PrimaryRegion="us-west-2")
    _, cfg = config(a, "us-west-2", md["KeyId"])
    assert cfg["MultiRegionKeyType"] == "PRIMARY"
