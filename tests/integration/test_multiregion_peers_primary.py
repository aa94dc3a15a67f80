"""Multi-Region keys across deployments, the primary moved between them
(docs/REGIONS.md, "Across deployments"): UpdatePrimaryRegion from A's
Region to B's, where B holds the replica, and back; rotations afterwards
sent by the new primary's deployment; a peer that is down refuses the
move and nothing changes. The two deployments are the `pair` fixture of
test_multiregion_peers.py (A serves us-east-1, B eu-west-1).
"""
import json

import pytest
from botocore.exceptions import ClientError

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
