"""The audit trail's event index (docs/AUDIT.md, "The event index"): the
keys' last uses survive a restart and a kill -9 without re-reading the
whole trail, the index is rebuilt from the trail when it is missing, and
LookupEvents answers from it, page by page."""
import os
import re
import sqlite3
import time

from test_audit import audit_dir, events, raw_kms

# Long enough that nothing is indexed in the background while a test runs.
NO_BACKGROUND = ["--audit-index-seconds", "3600"]


def checkpoint(server):
    db = sqlite3.connect(os.path.join(audit_dir(server), "kinko-index.db"))
    try:
        row = db.execute("SELECT seq FROM pos WHERE id = 1").fetchone()
        return row[0] if row else 0
    finally:
        db.close()


def last_use(server, key_id):
    status, body = raw_kms(server, "GetKeyLastUsage", {"KeyId": key_id})
    assert status == 200, body
    return body.get("KeyLastUsage")


def start_lines(server):
    """The start-up lines of the index: (records read after the checkpoint, its seq)."""
    text = open(server.log_path, errors="replace").read()
    return [(int(m.group(2)), int(m.group(1)))
            for m in re.finditer(r"audit: index at record (\d+): \d+ key uses loaded, "
                                 r"(\d+) records after record \d+ read", text)]


def use_keys(kms, keys):
    blobs = [kms.encrypt(KeyId=k, Plaintext=b"x")["CiphertextBlob"] for k in keys]
    for b in blobs[1:]:
        kms.decrypt(CiphertextBlob=b)
    return blobs


def test_last_use_survives_restart_and_kill9(make_server):
    s = make_server(["--dev"] + NO_BACKGROUND)
    kms = s.client()
    keys = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)]
    use_keys(kms, keys)
    # A clean stop indexes what is left: the next start reads no old record.
    data = s.data_dir
    s.stop()
    s2 = make_server(["--dev"] + NO_BACKGROUND, data_dir=data)
    assert start_lines(s2)[-1][0] == 0
    assert last_use(s2, keys[0])["Operation"] == "Encrypt"
    for k in keys[1:]:
        assert last_use(s2, k)["Operation"] == "Decrypt"

    # Calls written to the trail after the checkpoint, then kill -9: the
    # next start reads the trail from the checkpoint on.
    before = checkpoint(s2)
    kms2 = s2.client()
    blob = kms2.encrypt(KeyId=keys[2], Plaintext=b"y")["CiphertextBlob"]
    kms2.decrypt(CiphertextBlob=blob)
    kms2.encrypt(KeyId=keys[0], Plaintext=b"z")
    want = {e["eventID"]: e for e in events(s2)}
    s2.kill9()
    assert checkpoint(s2) == before
    s3 = make_server(["--dev"] + NO_BACKGROUND, data_dir=data)
    read_after, at = start_lines(s3)[-1]
    assert read_after >= 3 and at > before
    use0, use2 = last_use(s3, keys[0]), last_use(s3, keys[2])
    assert use0["Operation"] == "Encrypt" and use2["Operation"] == "Decrypt"
    assert want[use0["CloudTrailEventId"]]["requestID"] == use0["KmsRequestId"]
    assert want[use2["CloudTrailEventId"]]["eventName"] == "Decrypt"
    assert last_use(s3, keys[1])["Operation"] == "Decrypt"
    assert checkpoint(s3) > before  # the start's catch-up was committed


def test_missing_index_is_rebuilt_from_the_trail(make_server):
    s = make_server(["--dev"])
    kms = s.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    kms.decrypt(CiphertextBlob=blob)
    dec = events(s, "Decrypt")[-1]
    data = s.data_dir
    s.stop()
    for suffix in ("", "-wal", "-shm"):
        path = os.path.join(audit_dir(s), "kinko-index.db" + suffix)
        if os.path.exists(path):
            os.unlink(path)
    s2 = make_server(["--dev"], data_dir=data)
    assert start_lines(s2)[-1][0] >= 3  # every record again
    use = last_use(s2, key)
    assert use["Operation"] == "Decrypt" and use["CloudTrailEventId"] == dec["eventID"]
    ct = s2.client("cloudtrail")
    found = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventId",
                                                "AttributeValue": dec["eventID"]}])["Events"]
    assert [e["EventName"] for e in found] == ["Decrypt"]


def test_lookup_events_from_the_index(make_server):
    s = make_server(["--dev"])
    kms = s.client()
    key = kms.create_key()["KeyMetadata"]
    other = kms.create_key()["KeyMetadata"]
    for i in range(60):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"%d" % i)
    kms.describe_key(KeyId=other["KeyId"])
    ct = s.client("cloudtrail")

    # By event name, 25 a page, newest first, every event once.
    seen, token, pages = [], None, 0
    while True:
        kw = {"MaxResults": 25, "LookupAttributes": [{"AttributeKey": "EventName",
                                                      "AttributeValue": "Encrypt"}]}
        if token:
            kw["NextToken"] = token
        page = ct.lookup_events(**kw)
        pages += 1
        seen += page["Events"]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3 and len(seen) == 60
    assert len({e["EventId"] for e in seen}) == 60
    times = [e["EventTime"] for e in seen]
    assert times == sorted(times, reverse=True)
    assert {e["EventName"] for e in seen} == {"Encrypt"}

    # By resource name (the key id or its ARN), resource type, user, read-only.
    by_id = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName",
                                                "AttributeValue": other["KeyId"]}])["Events"]
    assert sorted(e["EventName"] for e in by_id) == ["CreateKey", "DescribeKey"]
    by_arn = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName",
                                                 "AttributeValue": other["Arn"]}])["Events"]
    assert [e["EventId"] for e in by_arn] == [e["EventId"] for e in by_id]
    typed = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceType",
                                                "AttributeValue": "AWS::KMS::Key"}],
                             MaxResults=50)
    assert len(typed["Events"]) == 50 and "NextToken" in typed
    rw = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ReadOnly",
                                             "AttributeValue": "false"}])["Events"]
    assert [e["EventName"] for e in rw] == ["CreateKey", "CreateKey"]
    assert {e["ReadOnly"] for e in rw} == {"false"}
    root = ct.lookup_events(LookupAttributes=[{"AttributeKey": "Username",
                                               "AttributeValue": "root"}], MaxResults=5)
    # LookupEvents is a call of its own, logged like any other.
    assert len(root["Events"]) == 5 and root["Events"][0]["EventName"] == "LookupEvents"
    assert ct.lookup_events(LookupAttributes=[{"AttributeKey": "Username",
                                               "AttributeValue": "nobody"}])["Events"] == []

    # A time window: everything up to now, nothing in the future.
    now = int(time.time())
    assert len(ct.lookup_events(StartTime=now - 3600, EndTime=now + 5,
                                MaxResults=50)["Events"]) == 50
    assert ct.lookup_events(StartTime=now + 3600, EndTime=now + 7200)["Events"] == []
