"""Multi-Region keys across deployments, the replica's side talking back
(docs/REGIONS.md, "Across deployments"): a replica deleted in one
deployment leaves the related keys of the other (a primary waiting in
PendingReplicaDeletion moves on to PendingDeletion), also when that
deployment was down meanwhile; and automatic rotation's settings, set on
the primary only, show on a replica another deployment holds.

Two deployments on loopback as in test_multiregion_peers.py (its
Deployment class and configuration), both with the test clock
(--test-mode) so that deletion windows pass without waiting: A serves
us-east-1, B serves eu-west-1 and eu-north-1 (A names B as the peer of
both; B names A as the peer of us-east-1).
"""
import json
import os
import shutil
import tempfile
import time

import pytest
from botocore.exceptions import ClientError

from test_multiregion_peers import EAST, ROOT, WEST, Deployment, eventually, peer_entry

NORTH = "eu-north-1"
DAY = 86400


class TestDeployment(Deployment):
    """A deployment whose server runs with the test clock."""
    __test__ = False

    def start(self, with_config=True):
        from conftest import Server
        args = ["--dev", "--tls-self-signed", "--test-mode"] + \
            (["--config", self.cfg] if with_config else [])
        self.server = Server(args, data_dir=self.data).start(port=self.port)
        return self

    def kinko_test(self, op, body=None, region=EAST):
        st, out = self.call("KinkoTest." + op, body or {}, region)
        assert st == 200, out
        return out

    def pass_days(self, days, region=EAST):
        """Moves this deployment's clock on and runs its due work."""
        self.kinko_test("AdvanceClock", {"Seconds": int(days * DAY) + 1}, region)
        self.kinko_test("RunScheduler", {}, region)


@pytest.fixture(scope="module")
def pair():
    root = tempfile.mkdtemp(prefix="kinko-peers-back-")
    a, b = TestDeployment(root, "a"), TestDeployment(root, "b")
    for d in (a, b):
        d.start(with_config=False).stop()
    pem_a, pem_b = a.wrapping_key(), b.wrapping_key()
    secret = os.path.join(root, "peer.secret")
    with open(secret, "w") as f:
        f.write("test\n")
    with open(a.cfg, "w") as f:
        json.dump({"peers": {"accept": [ROOT], "regions": [
            peer_entry(WEST, b, secret, pem_b), peer_entry(NORTH, b, secret, pem_b)]}}, f)
    with open(b.cfg, "w") as f:
        json.dump({"peers": {"accept": [ROOT], "regions": [
            peer_entry(EAST, a, secret, pem_a)]}}, f)
    a.start()
    b.start()
    yield a, b
    for d in (a, b):
        if d.server.proc.poll() is None:
            d.stop()
    shutil.rmtree(root, ignore_errors=True)


def err(e):
    return e.value.response["Error"]["Code"]


def primary_with_replicas(a, *regions):
    md = a.client(EAST).create_key(MultiRegion=True)["KeyMetadata"]
    for r in regions:
        a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=r)
    return md


def describe(d, region, key_id):
    return d.client(region).describe_key(KeyId=key_id)["KeyMetadata"]


def replica_regions(md):
    return sorted(r["Region"] for r in md["MultiRegionConfiguration"]["ReplicaKeys"])


def delete_replica(b, region, key_id, cli=False):
    """Schedules the replica's deletion on B and lets its window pass."""
    if cli:
        out = b.aws("kms", "schedule-key-deletion", "--key-id", key_id,
                    "--pending-window-in-days", "7", region=region)
    else:
        out = b.client(region).schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion"
    b.pass_days(7, region)
    with pytest.raises(ClientError) as e:
        b.client(region).describe_key(KeyId=key_id)
    assert err(e) == "NotFoundException"


def events(d, region, arn, name):
    ct = d.client(region, service="cloudtrail")
    got = ct.lookup_events(LookupAttributes=[
        {"AttributeKey": "ResourceName", "AttributeValue": arn}])["Events"]
    return [json.loads(e["CloudTrailEvent"]) for e in got if e["EventName"] == name]


# ------------------------------------------------- deleting a replica in a peer


def test_deleted_replica_leaves_the_primary_which_moves_on(pair):
    a, b = pair
    md = primary_with_replicas(a, WEST)
    out = a.client(EAST).schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    assert out["KeyState"] == "PendingReplicaDeletion" and "DeletionDate" not in out
    delete_replica(b, WEST, md["KeyId"])

    def moved_on():
        got = describe(a, EAST, md["KeyId"])
        assert got["KeyState"] == "PendingDeletion", got["KeyState"]
        return got
    got = eventually(moved_on)
    assert "DeletionDate" in got and "PendingDeletionWindowInDays" not in got
    assert got["MultiRegionConfiguration"]["ReplicaKeys"] == []
    assert got["MultiRegionConfiguration"]["MultiRegionKeyType"] == "PRIMARY"
    # Each side's trail tells its half: the replica's DeleteKey in B, the
    # synchronization of the primary's configuration in A.
    west_arn = md["Arn"].replace(EAST, WEST)
    deleted = events(b, WEST, west_arn, "DeleteKey")
    assert deleted and deleted[0]["eventType"] == "AwsServiceEvent"

    def recorded():
        synced = events(a, EAST, md["Arn"], "SynchronizeMultiRegionKey")
        details = [e.get("serviceEventDetails") or {} for e in synced]
        assert {"keyId": md["Arn"], "deletedReplicaRegion": WEST} in details, details
    eventually(recorded)
    # The primary's own window runs on A's clock.
    a.pass_days(6)
    assert describe(a, EAST, md["KeyId"])["KeyState"] == "PendingDeletion"
    a.pass_days(1)
    with pytest.raises(ClientError) as e:
        describe(a, EAST, md["KeyId"])
    assert err(e) == "NotFoundException"


def test_a_primary_not_scheduled_only_forgets_the_replica(pair):
    a, b = pair
    md = primary_with_replicas(a, WEST, NORTH)
    delete_replica(b, WEST, md["KeyId"])

    # A's primary forgets it when told, and B's other replica with it (in
    # the deleting transaction when its copy of the set already named
    # both, else when the primary sends the new set on).
    def forgotten():
        got = describe(a, EAST, md["KeyId"])
        assert replica_regions(got) == [NORTH]
        assert replica_regions(describe(b, NORTH, md["KeyId"])) == [NORTH]
        return got
    assert eventually(forgotten)["KeyState"] == "Enabled"
    # The set can grow back: the same Region takes a new replica.
    out = a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    assert out["ReplicaKeyMetadata"]["KeyState"] == "Enabled"
    assert replica_regions(describe(b, WEST, md["KeyId"])) == [NORTH, WEST]


def test_the_primary_deployment_down_while_the_replica_is_deleted(pair):
    a, b = pair
    md = primary_with_replicas(a, WEST, NORTH)
    out = a.aws("kms", "schedule-key-deletion", "--key-id", md["KeyId"],
                "--pending-window-in-days", "7")
    assert out["KeyState"] == "PendingReplicaDeletion"
    a.stop()
    try:
        delete_replica(b, WEST, md["KeyId"], cli=True)
        time.sleep(2)  # B tries A, fails, and backs off meanwhile
    finally:
        a.start()

    def caught_up():
        got = a.aws("kms", "describe-key", "--key-id", md["KeyId"])["KeyMetadata"]
        assert replica_regions(got) == [NORTH], got
        there = b.aws("kms", "describe-key", "--key-id", md["KeyId"], region=NORTH)
        assert replica_regions(there["KeyMetadata"]) == [NORTH]
        return got
    got = eventually(caught_up)
    # One replica is left: the primary still waits for it.
    assert got["KeyState"] == "PendingReplicaDeletion" and "DeletionDate" not in got
    assert got["PendingDeletionWindowInDays"] == 7
    # The last one goes while A is up: the primary moves on.
    delete_replica(b, NORTH, md["KeyId"], cli=True)

    def moved_on():
        got = a.aws("kms", "describe-key", "--key-id", md["KeyId"])["KeyMetadata"]
        assert got["KeyState"] == "PendingDeletion", got["KeyState"]
        return got
    got = eventually(moved_on)
    assert "DeletionDate" in got and got["MultiRegionConfiguration"]["ReplicaKeys"] == []


def test_the_news_of_a_deletion_is_idempotent_and_checked(pair):
    a, b = pair
    md = primary_with_replicas(a, WEST, NORTH)
    a.client(EAST).schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    body = {"KeyId": md["KeyId"], "ReplicaRegion": WEST}
    # What B's outbox sends, sent twice by hand: the second changes nothing.
    for _ in range(2):
        st, out = a.call("KinkoPeer.ReplicaDeletedIn", body, EAST)
        assert st == 200 and out["KeyId"] == md["Arn"], out
        got = describe(a, EAST, md["KeyId"])
        assert replica_regions(got) == [NORTH]
        assert got["KeyState"] == "PendingReplicaDeletion"
    # A primary here sends the new set on to the other peer Regions.
    def sent_on():
        assert replica_regions(describe(b, NORTH, md["KeyId"])) == [NORTH]
    eventually(sent_on)
    # Only a Region another deployment serves, only a key that exists.
    for region in (EAST, "us-west-2"):
        st, out = a.call("KinkoPeer.ReplicaDeletedIn", {"KeyId": md["KeyId"],
                                                        "ReplicaRegion": region}, EAST)
        assert st == 400 and out["__type"] == "ValidationException", out
    st, out = a.call("KinkoPeer.ReplicaDeletedIn",
                     {"KeyId": "mrk-" + "0" * 32, "ReplicaRegion": WEST}, EAST)
    assert st == 400 and out["__type"] == "NotFoundException", out
    st, out = a.call("KinkoPeer.ReplicaDeletedIn", {"KeyId": "1234"}, EAST)
    assert st == 400 and out["__type"] == "ValidationException", out


# ------------------------------------- automatic rotation's settings are shared


def rotation_status(d, region, key_id):
    """GetKeyRotationStatus in full (Debian's botocore predates RotationPeriodInDays)."""
    st, out = d.call("TrentService.GetKeyRotationStatus", {"KeyId": key_id}, region)
    assert st == 200, out
    return out


def enable_rotation(a, key_id, days):
    st, out = a.call("TrentService.EnableKeyRotation",
                     {"KeyId": key_id, "RotationPeriodInDays": days}, EAST)
    assert st == 200, out


def shows_primary_settings(a, b, key_id, region=WEST):
    """Waits until B's replica shows exactly what A's primary has."""
    def same():
        mine, theirs = rotation_status(a, EAST, key_id), rotation_status(b, region, key_id)
        assert theirs["KeyId"] == mine["KeyId"].replace(EAST, region)
        for m in ("KeyRotationEnabled", "RotationPeriodInDays", "NextRotationDate"):
            assert theirs.get(m) == mine.get(m), (m, mine, theirs)
        return theirs
    return eventually(same)


def test_rotation_settings_of_the_primary_show_on_the_peer_replica(pair):
    a, b = pair
    md = primary_with_replicas(a, WEST)
    assert b.client(WEST).get_key_rotation_status(KeyId=md["KeyId"])[
        "KeyRotationEnabled"] is False
    # Enabled on the primary (boto3: the default period, 365 days).
    a.client(EAST).enable_key_rotation(KeyId=md["KeyId"])
    got = shows_primary_settings(a, b, md["KeyId"])
    assert got["KeyRotationEnabled"] is True and got["RotationPeriodInDays"] == 365
    assert b.client(WEST).get_key_rotation_status(KeyId=md["KeyId"])["KeyRotationEnabled"]
    # A new period.
    enable_rotation(a, md["KeyId"], 180)
    got = shows_primary_settings(a, b, md["KeyId"])
    assert got["RotationPeriodInDays"] == 180
    # Disabled (the AWS CLI on both sides).
    a.aws("kms", "disable-key-rotation", "--key-id", md["KeyId"])

    def off():
        got = b.aws("kms", "get-key-rotation-status", "--key-id", md["KeyId"], region=WEST)
        assert got["KeyRotationEnabled"] is False, got
    eventually(off)
    got = rotation_status(b, WEST, md["KeyId"])
    assert "RotationPeriodInDays" not in got and "NextRotationDate" not in got


def test_rotation_is_refused_on_the_peer_replica(pair):
    a, b = pair
    md = primary_with_replicas(a, WEST)
    west = b.client(WEST)
    for call in (lambda: west.enable_key_rotation(KeyId=md["KeyId"]),
                 lambda: west.disable_key_rotation(KeyId=md["KeyId"])):
        with pytest.raises(ClientError) as e:
            call()
        assert err(e) == "UnsupportedOperationException"
        assert "multi-Region replica key" in e.value.response["Error"]["Message"]
    st, out = b.call("TrentService.EnableKeyRotation",
                     {"KeyId": md["KeyId"], "RotationPeriodInDays": 90}, WEST)
    assert st == 400 and out["__type"] == "UnsupportedOperationException", out
    st, out = b.call("TrentService.RotateKeyOnDemand", {"KeyId": md["KeyId"]}, WEST)
    assert st == 400 and out["__type"] == "UnsupportedOperationException", out
    assert rotation_status(b, WEST, md["KeyId"])["KeyRotationEnabled"] is False


def test_a_new_peer_replica_takes_the_settings_with_its_document(pair):
    a, b = pair
    md = a.client(EAST).create_key(MultiRegion=True)["KeyMetadata"]
    enable_rotation(a, md["KeyId"], 200)
    a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    # No synchronization needed: the replica was made with them.
    mine, theirs = rotation_status(a, EAST, md["KeyId"]), rotation_status(b, WEST, md["KeyId"])
    assert theirs["KeyRotationEnabled"] is True and theirs["RotationPeriodInDays"] == 200
    assert theirs["NextRotationDate"] == mine["NextRotationDate"]


def test_settings_changed_while_the_peer_is_down_and_automatic_rotation(pair):
    a, b = pair
    md = primary_with_replicas(a, WEST)
    b.stop()
    try:
        enable_rotation(a, md["KeyId"], 90)
        time.sleep(2)  # A tries B, fails, and backs off meanwhile
    finally:
        b.start()
    before = shows_primary_settings(a, b, md["KeyId"])
    assert before["RotationPeriodInDays"] == 90
    # The primary rotates by itself when its period has passed: the new
    # material and the next date both reach the replica.
    a.pass_days(90)
    ct = a.client(EAST).encrypt(KeyId=md["KeyId"], Plaintext=b"v2")["CiphertextBlob"]
    assert int.from_bytes(ct[18:22], "big") == 2
    after = shows_primary_settings(a, b, md["KeyId"])
    assert after["NextRotationDate"] > before["NextRotationDate"]
    eventually(lambda: b.client(WEST).decrypt(CiphertextBlob=ct))
    assert b.client(WEST).decrypt(CiphertextBlob=ct)["Plaintext"] == b"v2"
