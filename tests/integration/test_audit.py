"""Audit trail, CloudTrail LookupEvents, GetKeyLastUsage, /metrics, quotas
and the usage report, through real clients (boto3, the AWS CLI) against a
real kinko process with its own data folder."""
import base64
import glob
import json
import math
import os
import resource
import shutil
import subprocess
import threading
import time

import boto3
import botocore.config
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import KINKO, wait_audit_drained, with_store

PLAINTEXT = b"kinko-audit-plaintext-marker-0123456789"


def audit_dir(server):
    return os.path.join(server.data_dir, "audit")


def read_records(server):
    """Every record of the log folder, once the ring is drained into it
    (within AUDIT_FLUSH_MS). A reader stops at the last complete line, as
    kinko's own readers do."""
    if server.proc.poll() is None:
        wait_audit_drained(audit_dir(server))
    out = []
    for path in sorted(glob.glob(os.path.join(audit_dir(server), "kinko-audit-*.jsonl"))):
        with open(path, "rb") as f:
            data = f.read()
        for line in data[:data.rfind(b"\n") + 1].splitlines():
            out.append(json.loads(line))
    return out


def events(server, name=None):
    evs = [r["event"] for r in read_records(server) if r["kinkoType"] == "event"]
    return [e for e in evs if name is None or e["eventName"] == name]


def raw_kms(server, target, body, region="us-east-1"):
    """A SigV4-signed KMS request for an operation this botocore lacks."""
    url = server.endpoint + "/"
    data = json.dumps(body).encode()
    req = AWSRequest(method="POST", url=url, data=data, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "TrentService." + target,
    })
    SigV4Auth(Credentials("test", "test"), "kms", region).add_auth(req)
    import urllib.request
    r = urllib.request.Request(url, data=data, headers=dict(req.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def kinko_cmd(*args):
    return subprocess.run([KINKO] + list(args), capture_output=True, text=True, timeout=60)


def test_an_event_per_call_with_cloudtrail_fields_and_no_plaintext(make_server):
    s = make_server(["--dev"])
    kms = s.client()
    key = kms.create_key(Description="audit")["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=PLAINTEXT,
                       EncryptionContext={"purpose": "audit-test"})["CiphertextBlob"]
    pt = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "audit-test"})["Plaintext"]
    assert pt == PLAINTEXT
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId="11111111-2222-4333-8444-555555555555")
    assert e.value.response["Error"]["Code"] == "NotFoundException"

    evs = events(s)
    names = [e["eventName"] for e in evs]
    for n in ("CreateKey", "Encrypt", "Decrypt", "GenerateDataKey", "DescribeKey"):
        assert n in names
    request_ids = {e["requestID"] for e in evs}
    assert len(request_ids) == len(evs), "one event per call"

    enc = events(s, "Encrypt")[0]
    for field in ("eventVersion", "userIdentity", "eventTime", "eventSource", "eventName",
                  "awsRegion", "sourceIPAddress", "userAgent", "requestParameters",
                  "responseElements", "requestID", "eventID", "readOnly", "resources",
                  "eventType", "managementEvent", "recipientAccountId", "eventCategory"):
        assert field in enc, field
    assert enc["eventSource"] == "kms.amazonaws.com"
    assert enc["awsRegion"] == "us-east-1"
    assert enc["userIdentity"]["type"] == "Root"
    assert enc["userIdentity"]["accountId"] == "000000000000"
    assert enc["userIdentity"]["accessKeyId"] == "test"
    assert enc["userIdentity"]["arn"] == "arn:aws:iam::000000000000:root"
    assert enc["sourceIPAddress"] == "127.0.0.1"
    assert "Boto3" in enc["userAgent"] or "botocore" in enc["userAgent"]
    assert enc["requestParameters"]["keyId"] == key["KeyId"]
    assert enc["requestParameters"]["encryptionContext"] == {"purpose": "audit-test"}
    assert "plaintext" not in enc["requestParameters"]
    assert enc["responseElements"] is None
    assert enc["readOnly"] is True
    assert enc["eventType"] == "AwsApiCall" and enc["eventCategory"] == "Management"
    assert enc["recipientAccountId"] == "000000000000"
    assert enc["resources"] == [{"accountId": "000000000000", "type": "AWS::KMS::Key",
                                 "ARN": key["Arn"]}]
    ck = events(s, "CreateKey")[0]
    assert ck["readOnly"] is False
    assert ck["responseElements"]["keyMetadata"]["keyId"] == key["KeyId"]
    gdk = events(s, "GenerateDataKey")[0]
    assert gdk["requestParameters"]["keySpec"] == "AES_256"

    failed = [e for e in events(s, "DescribeKey") if "errorCode" in e][0]
    assert failed["errorCode"] == "NotFoundException"
    assert "11111111-2222-4333-8444-555555555555" in failed["errorMessage"]

    # Intent records precede the state-changing call, and only that.
    intents = [r["event"]["eventName"] for r in read_records(s) if r["kinkoType"] == "intent"]
    assert "CreateKey" in intents and "Encrypt" not in intents

    # Never plaintext, data key plaintext or ciphertext anywhere in the log.
    text = b"".join(open(p, "rb").read() for p in glob.glob(os.path.join(audit_dir(s), "*")))
    for secret in (PLAINTEXT, base64.b64encode(PLAINTEXT), dk["Plaintext"],
                   base64.b64encode(dk["Plaintext"]), base64.b64encode(blob)[:40],
                   base64.b64encode(dk["CiphertextBlob"])[:40]):
        assert secret not in text


def test_lookup_events_through_the_aws_cli(make_server):
    s = make_server(["--dev"])
    kms = s.client()
    keys = [kms.create_key()["KeyMetadata"] for _ in range(3)]
    for k in keys:
        kms.schedule_key_deletion(KeyId=k["KeyId"], PendingWindowInDays=7)

    start = str(int(time.time()) - 86400)
    rc, out, err = s.aws("cloudtrail", "lookup-events", "--lookup-attributes",
                         "AttributeKey=EventName,AttributeValue=ScheduleKeyDeletion",
                         "--start-time", start)
    found = json.loads(out)["Events"]
    assert len(found) == 3
    assert {e["Resources"][0]["ResourceName"] for e in found} == {k["Arn"] for k in keys}
    for e in found:
        assert e["EventName"] == "ScheduleKeyDeletion" and e["ReadOnly"] == "false"
        assert e["Username"] == "root" and e["AccessKeyId"] == "test"
        assert json.loads(e["CloudTrailEvent"])["eventID"] == e["EventId"]
    # Newest first.
    times = [json.loads(e["CloudTrailEvent"])["eventTime"] for e in found]
    assert times == sorted(times, reverse=True)

    ct = s.client("cloudtrail")
    by_res = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName",
                                                 "AttributeValue": keys[1]["KeyId"]}])["Events"]
    assert {e["EventName"] for e in by_res} == {"CreateKey", "ScheduleKeyDeletion"}
    # Paging: one a page, every event once.
    seen, token = [], None
    while True:
        kw = {"MaxResults": 1, "LookupAttributes": [{"AttributeKey": "ReadOnly",
                                                     "AttributeValue": "false"}]}
        if token:
            kw["NextToken"] = token
        page = ct.lookup_events(**kw)
        seen += [e["EventId"] for e in page["Events"]]
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 6
    # Another region sees nothing of this one.
    assert s.client("cloudtrail", region="eu-west-1").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName",
                           "AttributeValue": "ScheduleKeyDeletion"}])["Events"] == []
    # A time window before the calls finds nothing.
    assert ct.lookup_events(StartTime=1000, EndTime=2000)["Events"] == []
    raw = s.client("cloudtrail", validate=False)
    with pytest.raises(ClientError) as e:
        raw.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "CreateKey"},
            {"AttributeKey": "Username", "AttributeValue": "root"}])
    assert e.value.response["Error"]["Code"] == "InvalidLookupAttributesException"
    with pytest.raises(ClientError) as e:
        raw.lookup_events(StartTime=2000, EndTime=1000)
    assert e.value.response["Error"]["Code"] == "InvalidTimeRangeException"
    with pytest.raises(ClientError) as e:
        raw.lookup_events(MaxResults=51)
    assert e.value.response["Error"]["Code"] == "InvalidMaxResultsException"
    with pytest.raises(ClientError) as e:
        raw.lookup_events(NextToken="forged")
    assert e.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_get_key_last_usage(make_server):
    s = make_server(["--dev"])
    kms = s.client()
    key = kms.create_key()["KeyMetadata"]
    status, body = raw_kms(s, "GetKeyLastUsage", {"KeyId": key["KeyId"]})
    assert status == 200
    assert body["KeyId"] == key["KeyId"]
    assert "KeyLastUsage" not in body
    assert body["TrackingStartDate"] >= int(key["CreationDate"].timestamp())
    assert abs(body["KeyCreationDate"] - key["CreationDate"].timestamp()) < 2

    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"abc")["CiphertextBlob"]
    kms.decrypt(CiphertextBlob=blob)
    status, body = raw_kms(s, "GetKeyLastUsage", {"KeyId": key["Arn"]})
    assert status == 200
    use = body["KeyLastUsage"]
    assert use["Operation"] == "Decrypt"
    dec = events(s, "Decrypt")[-1]
    assert use["CloudTrailEventId"] == dec["eventID"]
    assert use["KmsRequestId"] == dec["requestID"]
    # A failed call is not a use.
    with pytest.raises(ClientError):
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"wrong": "context"})
    assert raw_kms(s, "GetKeyLastUsage", {"KeyId": key["KeyId"]})[1]["KeyLastUsage"]["Operation"] == "Decrypt"
    status, body = raw_kms(s, "GetKeyLastUsage", {"KeyId": "11111111-2222-4333-8444-555555555555"})
    assert status == 400 and body["__type"] == "NotFoundException"
    status, body = raw_kms(s, "GetKeyLastUsage", {})
    assert status == 400 and body["__type"] == "ValidationException"

    # The index survives a restart (rebuilt from the log).
    data = s.data_dir
    s.stop()
    s2 = make_server(["--dev"], data_dir=data)
    status, body = raw_kms(s2, "GetKeyLastUsage", {"KeyId": key["KeyId"]})
    assert body["KeyLastUsage"]["CloudTrailEventId"] == dec["eventID"]


def _tamper_copy(src, dst):
    subprocess.run(["cp", "-a", src, dst], check=True)
    return sorted(glob.glob(os.path.join(dst, "kinko-audit-*.jsonl")))


def test_verify_names_each_kind_of_tampering(make_server, tmp_path):
    s = make_server(["--dev"])
    kms = s.client()
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(5):
        kms.encrypt(KeyId=k, Plaintext=b"x")
    data = s.data_dir
    s.stop()  # seals the first file
    s2 = make_server(["--dev"], data_dir=data)
    s2.client().list_keys()
    s2.stop()  # seals the second
    adir = os.path.join(data, "audit")

    p = kinko_cmd("audit", "verify", adir)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "OK: 2 files (2 sealed)" in p.stdout

    def check(name, mutate, expect):
        d = str(tmp_path / name)
        files = _tamper_copy(adir, d)
        mutate(files)
        r = kinko_cmd("audit", "verify", d)
        assert r.returncode == 1, r.stdout
        assert expect in r.stdout, r.stdout

    def flip(files):
        b = bytearray(open(files[0], "rb").read())
        b[len(b) // 2] ^= 0x01
        open(files[0], "wb").write(bytes(b))

    def lines_op(fn):
        def m(files):
            ls = open(files[0]).read().splitlines(True)
            open(files[0], "w").write("".join(fn(ls)))
        return m

    check("flip", flip, "CHANGED record seq")
    check("truncate", lambda f: os.truncate(f[0], os.path.getsize(f[0]) - 10), "TRUNCATED file")
    check("remove", lambda f: os.remove(f[0]), "REMOVED file " + os.path.basename(_first(adir)))
    check("reorder", lines_op(lambda ls: [ls[0], ls[2], ls[1]] + ls[3:]), "REORDERED record seq 2")
    check("delete-record", lines_op(lambda ls: ls[:3] + ls[4:]), "REMOVED record seq 4")
    check("insert", lines_op(lambda ls: ls[:2] + [ls[1]] + ls[2:]), "INSERTED record")
    check("digest", lambda f: open(f[0] + ".digest", "a").write(" "), "CHANGED digest")
    # A public key of the attacker's choosing does not verify kinko's digests.
    d = str(tmp_path / "otherkey")
    _tamper_copy(adir, d)
    other = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519"], capture_output=True,
                           check=True).stdout
    pub = subprocess.run(["openssl", "pkey", "-pubout"], input=other, capture_output=True,
                         check=True).stdout
    open(str(tmp_path / "other.pem"), "wb").write(pub)
    r = kinko_cmd("audit", "verify", d, "--public-key", str(tmp_path / "other.pem"))
    assert r.returncode == 1 and "SIGNATURE digest" in r.stdout


def _first(adir):
    return sorted(glob.glob(os.path.join(adir, "kinko-audit-*.jsonl")))[0]


def test_rotation_by_size_and_time_keeps_the_chain(make_server):
    s = make_server(["--dev", "--test-mode", "--audit-max-file-bytes", "4000"])
    kms = s.client()
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(12):
        kms.encrypt(KeyId=k, Plaintext=b"x")
    files = glob.glob(os.path.join(audit_dir(s), "*.jsonl"))
    assert len(files) >= 3
    s.stop()
    p = kinko_cmd("audit", "verify", os.path.join(s.data_dir, "audit"))
    assert p.returncode == 0, p.stdout


def test_fail_closed_when_the_log_cannot_be_written(make_server):
    # Files of at most 4000 bytes: kinko's ring then holds a page of records,
    # so calls fail within a few once nothing can be drained from it. The
    # limit below holds the server log too: warnings only (no request lines)
    # keep it under the limit, so that the error this test reads gets written.
    s = make_server(["--dev", "--audit-max-file-bytes", "4000", "--log-level", "warn"])
    kms = s.client()
    kms.create_key()
    before = len(kms.list_keys()["Keys"])
    # Simulate a full disk: no file of this process may grow past 1 KiB any more.
    resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE, (1024, resource.RLIM_INFINITY))
    try:
        # Calls go on while the ring has room for them.
        for _ in range(10):
            try:
                kms.list_keys()
            except ClientError as e:
                assert e.response["Error"]["Code"] == "KMSInternalException"
                break
        else:
            pytest.fail("calls kept succeeding with no space left for the audit log")
        for call in (lambda: kms.create_key(Description="must not exist"), lambda: kms.list_keys()):
            with pytest.raises(ClientError) as e:
                call()
            assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            assert e.value.response["Error"]["Code"] == "KMSInternalException"
    finally:
        resource.prlimit(s.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    # Space is back: kinko recovers by itself, and the refused CreateKey changed nothing.
    # (The limit also stopped the key store's files from growing: a background
    # task that wrote meanwhile has the store reopen itself, within a second.)
    deadline = time.time() + 10
    while True:
        try:
            keys = kms.list_keys()["Keys"]
            break
        except ClientError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    assert len(keys) == before
    assert all(kms.describe_key(KeyId=x["KeyId"])["KeyMetadata"]["Description"] != "must not exist"
               for x in keys)
    assert "the audit event could not be written" in open(s.log_path).read()
    s.stop()
    p = kinko_cmd("audit", "verify", os.path.join(s.data_dir, "audit"))
    assert p.returncode == 0, p.stdout


def test_every_answered_call_is_in_the_log_after_kill9(make_server):
    """The default mode copies each record into the mapped ring before
    answering: a kill -9 loses none of them. The next start seals the
    crashed file as recovered, puts the ring's records after it, and
    continues the chain."""
    s = make_server(["--dev"])
    kms = s.client()
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    ids = [kms.encrypt(KeyId=k, Plaintext=b"p%d" % i)["ResponseMetadata"]["RequestId"]
           for i in range(25)]
    data = s.data_dir
    s.kill9()
    s2 = make_server(["--dev"], data_dir=data)
    s2.client().list_keys()
    logged = {r["event"]["requestID"] for r in read_records(s2) if r["kinkoType"] == "event"}
    assert set(ids) <= logged
    s2.stop()
    p = kinko_cmd("audit", "verify", os.path.join(data, "audit"))
    assert p.returncode == 0, p.stdout
    first = _first(os.path.join(data, "audit"))
    assert json.load(open(first + ".digest"))["recovered"] is True
    assert b"\0" not in open(first, "rb").read()


def _one_attempt_client(s):
    # One attempt per call: the SDK would retry a refused call (a 500).
    return boto3.client("kms", endpoint_url=s.endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=botocore.config.Config(retries={"total_max_attempts": 1}))


def _log_files(s):
    return sorted(glob.glob(os.path.join(audit_dir(s), "kinko-audit-*.jsonl")))


def test_log_file_cut_short_underneath_kinko(make_server):
    """The log file being written is cut to nothing by someone else: kinko
    notices when it next drains its ring into it, leaves it unsealed and
    goes on in a new file, chained on from the last record; verification
    names the damaged file."""
    s = make_server(["--dev"])
    kms = s.client()
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=k, Plaintext=b"x")
    read_records(s)  # drained into the live file
    live = _log_files(s)[-1]
    os.truncate(live, 0)
    kms.encrypt(KeyId=k, Plaintext=b"y")
    assert kms.describe_key(KeyId=k)["KeyMetadata"]["Enabled"]
    names = [r["event"]["eventName"] for r in read_records(s) if r["kinkoType"] == "event"]
    assert names[-2:] == ["Encrypt", "DescribeKey"]
    files = _log_files(s)
    assert len(files) == 2 and files[0] == live
    assert "cut short underneath kinko" in open(s.log_path).read()
    s.stop()
    p = kinko_cmd("audit", "verify", os.path.join(s.data_dir, "audit"))
    assert p.returncode == 1, p.stdout
    assert os.path.basename(live) in p.stdout, p.stdout


def test_ring_cut_short_underneath_kinko(make_server):
    """The ring file is cut to nothing under the running server: the next
    call's copy faults, and the call fails closed instead of taking the
    process down; kinko sets up a new ring and file and goes on, and
    verification names the file it left unsealed."""
    s = make_server(["--dev"])
    kms = _one_attempt_client(s)
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=k, Plaintext=b"x")
    read_records(s)  # the ring is empty: nothing answered is lost below
    live = _log_files(s)[-1]
    os.truncate(os.path.join(audit_dir(s), "kinko-audit.ring"), 0)
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=k, Plaintext=b"x")
    assert e.value.response["Error"]["Code"] == "KMSInternalException"
    assert s.proc.poll() is None
    kms.encrypt(KeyId=k, Plaintext=b"y")
    assert kms.describe_key(KeyId=k)["KeyMetadata"]["Enabled"]
    assert "faulted" in open(s.log_path).read()
    names = [r["event"]["eventName"] for r in read_records(s) if r["kinkoType"] == "event"]
    assert names[-2:] == ["Encrypt", "DescribeKey"]
    files = _log_files(s)
    assert len(files) == 2 and files[0] == live
    s.stop()
    p = kinko_cmd("audit", "verify", os.path.join(s.data_dir, "audit"))
    assert p.returncode == 1, p.stdout
    assert os.path.basename(live) in p.stdout, p.stdout


def _periods(adir):
    """The period digests of a log folder (docs/AUDIT.md), oldest first."""
    out = []
    for path in sorted(glob.glob(os.path.join(adir, "kinko-periods-*.jsonl"))):
        data = open(path, "rb").read()
        out += [json.loads(x) for x in data[:data.rfind(b"\n") + 1].splitlines()]
    return out


def _wait_committed(adir, seq, timeout=10):
    """Waits until a period digest names record seq (what the flusher has synced)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ps = _periods(adir)
        if ps and ps[-1]["lastSeq"] >= seq:
            return True
        time.sleep(0.1)
    return False


def _audit_config(tmp_path, **members):
    """A config file with audit settings, for --dev --config (members other builds ignore)."""
    path = str(tmp_path / "kinko.json")
    json.dump(members, open(path, "w"))
    return path


def _cut_last_lines(path, n):
    lines = open(path, "rb").read().splitlines(True)
    open(path, "wb").write(b"".join(lines[:-n]))
    return [json.loads(x)["kinkoSeq"] for x in lines[-n:]]


def test_erasing_the_last_log_file_with_its_digest_is_named(make_server, tmp_path):
    """The newest records erased after a clean stop: the last log file and
    its digest deleted. The stop's period digest names the last record, so
    verify names the truncation and the file."""
    s = make_server(["--dev"])
    kms = s.client()
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=k, Plaintext=b"x")
    data = s.data_dir
    s.stop()
    s2 = make_server(["--dev"], data_dir=data)
    for _ in range(3):
        s2.client().encrypt(KeyId=k, Plaintext=b"y")
    s2.stop()
    adir = os.path.join(data, "audit")
    assert kinko_cmd("audit", "verify", adir).returncode == 0
    d = str(tmp_path / "erased")
    files = _tamper_copy(adir, d)
    last = files[-1]
    os.remove(last)
    os.remove(last + ".digest")
    r = kinko_cmd("audit", "verify", d)
    assert r.returncode == 1, r.stdout
    assert "TRUNCATED trail" in r.stdout, r.stdout
    assert "REMOVED file " + os.path.basename(last) in r.stdout, r.stdout


def _kill_and_cut(make_server, cfg):
    """A server from `cfg` makes seven calls, waits until a period digest
    committed to the last, is killed with SIGKILL, and the live file loses
    its last three lines; returns (data folder, audit folder, cut seqs)."""
    s = make_server(["--dev", "--config", cfg])
    kms = s.client()
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    for i in range(6):
        kms.encrypt(KeyId=k, Plaintext=b"p%d" % i)
    last_seq = read_records(s)[-1]["kinkoSeq"]
    _wait_committed(audit_dir(s), last_seq)
    data = s.data_dir
    s.kill9()
    adir = os.path.join(data, "audit")
    cut = _cut_last_lines(sorted(glob.glob(os.path.join(adir, "kinko-audit-*.jsonl")))[-1], 3)
    return data, adir, cut


def test_cutting_the_live_file_after_kill9_is_named(make_server, tmp_path):
    """kinko killed, the last records cut off the live log file, kinko
    started again (which seals the shortened file): a period digest had
    committed to a later record, so kinko keeps the gap in the sequence
    and verify names the removed records."""
    cfg = _audit_config(tmp_path, audit_digest_seconds=1)
    data, adir, cut = _kill_and_cut(make_server, cfg)
    s2 = make_server(["--dev", "--config", cfg], data_dir=data)
    s2.client().list_keys()
    s2.stop()
    r = kinko_cmd("audit", "verify", adir)
    assert r.returncode == 1, r.stdout
    assert "REMOVED records seq %d..%d" % (cut[0], cut[-1]) in r.stdout, r.stdout
    assert "were removed while kinko was not running" in open(s2.log_path).read()


def test_witness_names_a_truncation_the_folder_hides(make_server, tmp_path):
    """The same cut, and the period digests that committed to the cut
    records removed from the folder as well: the folder alone then reads
    like a crash (with --now later: ENDS EARLY, exit 3). The witness file,
    outside the data folder, names the truncation; and kinko, started
    again with it, keeps the gap in the chain."""
    witness = str(tmp_path / "witness.jsonl")
    cfg = _audit_config(tmp_path, audit_digest_seconds=1, audit_witness_file=witness)
    data, adir, cut = _kill_and_cut(make_server, cfg)
    for path in glob.glob(os.path.join(adir, "kinko-periods-*.jsonl")):
        keep = [x for x in open(path, "rb").read().splitlines(True)
                if json.loads(x)["lastSeq"] < cut[0]]
        open(path, "wb").write(b"".join(keep))
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    r = kinko_cmd("audit", "verify", adir, "--now", later)
    assert r.returncode == 3, r.stdout
    assert "ENDS EARLY" in r.stdout and "without a clean shutdown" in r.stdout, r.stdout
    r = kinko_cmd("audit", "verify", adir, "--witness", witness)
    assert r.returncode == 1, r.stdout
    assert "REMOVED period digests: the witness holds" in r.stdout, r.stdout
    assert "TRUNCATED trail" in r.stdout, r.stdout
    s2 = make_server(["--dev", "--config", cfg], data_dir=data)
    s2.client().list_keys()
    s2.stop()
    for args in ([], ["--witness", witness]):
        r = kinko_cmd("audit", "verify", adir, *args)
        assert r.returncode == 1, r.stdout
        assert "REMOVED records seq %d..%d" % (cut[0], cut[-1]) in r.stdout, r.stdout
    # Every line of the witness is a signed period digest.
    lines = [json.loads(x) for x in open(witness)]
    assert lines and all(x["kinkoPeriodDigestVersion"] == 1 and x["signature"] for x in lines)


def test_quiet_periods_have_digests_and_a_missing_one_is_named(make_server, tmp_path):
    cfg = _audit_config(tmp_path, audit_digest_seconds=1)
    s = make_server(["--dev", "--config", cfg])
    s.client().list_keys()
    time.sleep(3.5)  # no call: digests all the same
    s.stop()
    adir = audit_dir(s)
    ps = _periods(adir)
    assert ps[0]["kind"] == "start" and ps[-1]["kind"] == "stop"
    quiet = [p for p in ps if p["kind"] == "period"]
    assert len(quiet) >= 2 and len({p["lastSeq"] for p in quiet}) == 1
    assert all(b["fromMs"] == a["toMs"] for a, b in zip(ps, ps[1:]))
    r = kinko_cmd("audit", "verify", adir)
    assert r.returncode == 0, r.stdout
    d = str(tmp_path / "missing")
    _tamper_copy(adir, d)
    path = sorted(glob.glob(os.path.join(d, "kinko-periods-*.jsonl")))[-1]
    lines = open(path, "rb").read().splitlines(True)
    open(path, "wb").write(b"".join(lines[:2] + lines[3:]))
    r = kinko_cmd("audit", "verify", d)
    assert r.returncode == 1 and "MISSING period digests for" in r.stdout, r.stdout


def test_signing_key_is_wrapped_under_the_root_key(make_server, tmp_path):
    """A raw signing seed left in the data folder by an earlier build is
    wrapped under the root key at the first start (the same key: the
    public key matches the seed), and no raw seed stays in the file.
    Another root key cannot unwrap it."""
    data = str(tmp_path / "data")
    os.makedirs(data, mode=0o700)
    seed = os.urandom(32)
    keyfile = os.path.join(data, "audit-signing.key")
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, seed)
    os.close(fd)
    der = bytes.fromhex("302e020100300506032b657004220420") + seed
    want = subprocess.run(["openssl", "pkey", "-inform", "DER", "-pubout"], input=der,
                          capture_output=True, check=True).stdout
    s = make_server(["--dev"], data_dir=data)
    s.client().list_keys()
    blob = open(keyfile, "rb").read()
    assert blob.startswith(b"KINKOAK1") and len(blob) == 68
    assert seed not in blob and seed[:8] not in blob
    assert open(os.path.join(data, "audit", "kinko-audit-public.pem"), "rb").read() == want
    s.stop()
    s2 = make_server(["--dev"], data_dir=data)  # unwraps it
    s2.client().list_keys()
    s2.stop()
    assert kinko_cmd("audit", "verify", os.path.join(data, "audit")).returncode == 0
    other = str(tmp_path / "other-root.key")
    fd = os.open(other, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    # The store's key check value refuses another root key first.
    p = subprocess.run([KINKO] + with_store(["serve", "--dev", "--data", data, "--root-key", other,
                        "--listen", "127.0.0.1:0"]), capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "key check value differs" in p.stderr, p.stderr
    # A new store (which adopts any root key) beside the wrapped signing key:
    # the signing key itself refuses the other root key.
    data2 = str(tmp_path / "data2")
    os.mkdir(data2, 0o700)
    shutil.copy(keyfile, os.path.join(data2, "audit-signing.key"))
    p = subprocess.run([KINKO, "serve", "--dev", "--data", data2, "--root-key", other,
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "does not unwrap under this root key" in p.stderr, p.stderr


def test_metrics_endpoint_parses_as_prometheus_text(make_server):
    from prometheus_client.parser import text_string_to_metric_families
    s = make_server(["--dev", "--metrics-listen", "127.0.0.1:0"])
    metrics_url = s.proc.stdout.readline().decode().split("metrics on ")[1].strip()
    kms = s.client()
    k = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(3):
        kms.encrypt(KeyId=k, Plaintext=b"x")
    with pytest.raises(ClientError):
        kms.describe_key(KeyId="alias/none")
    kms.disable_key(KeyId=k)
    import urllib.request
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    def sample(fam, suffix="", **labels):
        for smp in fams[fam].samples:
            if smp.name == fam + suffix and all(smp.labels.get(a) == b for a, b in labels.items()):
                return smp.value
        return None
    assert sample("kinko_requests", "_total", service="kms", operation="Encrypt") == 3
    assert sample("kinko_errors", "_total", service="kms", operation="DescribeKey",
                  error_code="NotFoundException") == 1
    assert sample("kinko_request_duration_seconds", "_count", service="kms", operation="Encrypt") == 3
    assert sample("kinko_keys", state="Disabled", spec="SYMMETRIC_DEFAULT") == 1
    assert sample("kinko_throttled_requests", "_total") == 0
    assert sample("kinko_audit_write_failures", "_total") == 0
    assert sample("kinko_key_rotations", "_total", result="success") is not None
    # The API port does not serve /metrics.
    import urllib.error
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(s.endpoint + "/metrics", timeout=10)


def test_throttling_under_a_burst_and_boto3_retries(make_server):
    s = make_server(["--dev", "--quota", "symmetric=5"])
    key = s.client().create_key()["KeyMetadata"]["KeyId"]
    codes = []

    def burst(client, n, out):
        for _ in range(n):
            try:
                client.encrypt(KeyId=key, Plaintext=b"x")
                out.append("ok")
            except ClientError as e:
                out.append(e.response["Error"]["Code"])

    threads = [threading.Thread(target=burst, args=(s.client(), 10, codes)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "ThrottlingException" in codes
    assert set(codes) <= {"ok", "ThrottlingException"}

    # boto3's standard retry mode backs off on ThrottlingException and succeeds.
    cfg = botocore.config.Config(retries={"mode": "standard", "max_attempts": 10})
    retrying = boto3.client("kms", endpoint_url=s.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test", config=cfg)
    results = []
    threads = [threading.Thread(target=burst, args=(retrying, 3, results)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ok"] * 12
    # Management calls have their own quota: CreateKey is unaffected by the symmetric one.
    s.client().create_key()
    throttled = events(s)
    assert any(e.get("errorCode") == "ThrottlingException" for e in throttled)


def test_dev_mode_has_no_quota_by_default(server, kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    codes = []
    def burst():
        c = server.client()
        for _ in range(30):
            try:
                c.generate_random(NumberOfBytes=8)
                codes.append("ok")
            except ClientError as e:
                codes.append(e.response["Error"]["Code"])
    ts = [threading.Thread(target=burst) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert codes == ["ok"] * 90
    assert key


def test_usage_report_bills_keys_only_from_the_log_and_only_if_they_exist(make_server):
    """Without --from, a key made before the log began is billed from the
    log's first event, not from 1970; a key ARN named only by a failed call
    (here a key id asked for in another region) gets no key-months."""
    s = make_server(["--dev", "--no-audit"])
    key = s.client().create_key()["KeyMetadata"]
    data = s.data_dir
    s.stop()
    s2 = make_server(["--dev"], data_dir=data)
    s2.client().encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    other = boto3.client("kms", endpoint_url=s2.endpoint, region_name="eu-west-1",
                         aws_access_key_id="test", aws_secret_access_key="test")
    with pytest.raises(ClientError) as e:
        other.describe_key(KeyId=key["KeyId"])
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    s2.stop()
    p = kinko_cmd("usage", "--audit-dir", os.path.join(data, "audit"), "--json")
    assert p.returncode == 0, p.stderr
    acct = [a for a in json.loads(p.stdout)["accounts"] if a["accountId"] == "000000000000"][0]
    keys = {k["keyArn"]: k for k in acct["keys"]}
    assert 0 < keys[key["Arn"]]["keyMonths"] <= 2 / 730   # an hour or two, not 56 years
    phantom = key["Arn"].replace(":us-east-1:", ":eu-west-1:")
    assert keys[phantom]["keyMonths"] == 0 and keys[phantom]["requestCount"] == 1


def test_usage_report_matches_a_known_sequence(make_server, tmp_path):
    s = make_server(["--dev"])
    kms = s.client()
    key = kms.create_key()["KeyMetadata"]
    for _ in range(5):
        blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    for _ in range(3):
        kms.decrypt(CiphertextBlob=blob)
    for _ in range(2):
        kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    kms.generate_random(NumberOfBytes=16)
    s.stop()
    adir = os.path.join(s.data_dir, "audit")
    created = [e for e in events(s, "CreateKey")][0]["eventTime"]
    t_create = int(time.mktime(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ"))) - time.timezone
    to = t_create + 10 * 3600 - 60   # 9 h 59 min after the key was made: 10 started hours
    to_s = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(to))
    frm = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_create - 3600))
    p = kinko_cmd("usage", "--audit-dir", adir, "--json", "--from", frm, "--to", to_s)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    acct = [a for a in rep["accounts"] if a["accountId"] == "000000000000"][0]
    k = [x for x in acct["keys"] if x["keyArn"] == key["Arn"]][0]
    assert k["requests"] == {"CreateKey": 1, "Encrypt": 5, "Decrypt": 3, "GenerateDataKey": 2}
    assert k["requestCount"] == 11
    assert abs(k["keyMonths"] - 10 / 730) < 1e-6
    assert abs(k["cost"]["requests"] - 11 * 0.03 / 10000) < 1e-6
    assert abs(k["cost"]["keyMonths"] - 10 / 730 * 1.00) < 1e-6
    assert acct["otherKmsRequests"] == {"GenerateRandom": 1}
    assert acct["kmsRequests"] == 12
    # A custom price table changes the figures accordingly.
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"kmsKeyMonth": 2.0, "kmsRequestsPer10k": 1.0}))
    p = kinko_cmd("usage", "--audit-dir", adir, "--json", "--from", frm, "--to", to_s,
                  "--prices", str(prices))
    k2 = [x for x in json.loads(p.stdout)["accounts"][0]["keys"] if x["keyArn"] == key["Arn"]][0]
    assert abs(k2["cost"]["total"] - (11 * 1.0 / 10000 + 10 / 730 * 2.0)) < 1e-6
    # The text form names the key and the total.
    p = kinko_cmd("usage", "--audit-dir", adir, "--from", frm, "--to", to_s)
    assert key["Arn"] in p.stdout and "total: $" in p.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nope": 1}))
    assert kinko_cmd("usage", "--audit-dir", adir, "--prices", str(bad)).returncode == 1
