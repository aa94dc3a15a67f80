"""Work kinko does by itself, seen through real clients: the scheduler's
rotations and deletions in the audit trail (CloudTrail LookupEvents, the
AWS CLI) and in /metrics, and the yearly rotation of AWS managed keys."""
import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from helpers import kms_request

DAY = 86400
# A window around any server time these tests reach (the clock moves years).
WIDE = {"StartTime": 0, "EndTime": 4102444800}


def lookup(server, name, resource=None):
    """Events named `name` (CloudTrail records, parsed), optionally of one resource."""
    ct = server.client("cloudtrail")
    found = ct.lookup_events(LookupAttributes=[{"AttributeKey": "EventName",
                                                "AttributeValue": name}], **WIDE)["Events"]
    out = []
    for e in found:
        assert e["EventName"] == name
        if resource is None or resource in [r.get("ResourceName") for r in e.get("Resources", [])]:
            out.append(json.loads(e["CloudTrailEvent"]))
    return out


def list_rotations(server, key_id):
    """ListKeyRotations (newer than Debian's botocore): the Rotations list."""
    status, body = kms_request(server, "ListKeyRotations", {"KeyId": key_id})
    assert status == 200, body
    return body["Rotations"]


def rotation_metric(server, metrics_url, result):
    from prometheus_client.parser import text_string_to_metric_families
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    for fam in text_string_to_metric_families(text):
        if fam.name == "kinko_key_rotations":
            for smp in fam.samples:
                if smp.name == "kinko_key_rotations_total" and smp.labels.get("result") == result:
                    return smp.value
    raise AssertionError("kinko_key_rotations_total{result=%s} missing" % result)


def assert_service_event(ev, name, arn):
    """The shape AWS gives RotateKey / DeleteKey (ct-rotatekey, ct-delete-key)."""
    assert ev["eventName"] == name
    assert ev["eventType"] == "AwsServiceEvent"
    assert ev["eventSource"] == "kms.amazonaws.com"
    assert ev["awsRegion"] == "us-east-1"
    assert ev["userIdentity"]["accountId"] == "000000000000"
    assert "invokedBy" in ev["userIdentity"] and "arn" not in ev["userIdentity"]
    assert ev["requestParameters"] is None and ev["responseElements"] is None
    assert ev["readOnly"] is False and ev["managementEvent"] is True
    assert ev["recipientAccountId"] == "000000000000"
    assert ev["resources"] == [{"accountId": "000000000000", "type": "AWS::KMS::Key",
                                "ARN": arn}]
    assert "errorCode" not in ev


def test_scheduled_rotation_is_audited_and_counted(make_server):
    s = make_server(["--dev", "--test-mode", "--metrics-listen", "127.0.0.1:0"])
    metrics_url = s.proc.stdout.readline().decode().split("metrics on ")[1].strip()
    kms = s.client()
    key = kms.create_key(Description="glue rotation")["KeyMetadata"]
    other = kms.create_key(Description="rotation off")["KeyMetadata"]
    kms.enable_key_rotation(KeyId=key["KeyId"])
    before = rotation_metric(s, metrics_url, "success")
    assert rotation_metric(s, metrics_url, "failure") == 0

    # Not due yet: nothing rotates, nothing is logged.
    s.advance_clock(300 * DAY)
    s.run_scheduler()
    assert lookup(s, "RotateKey") == []
    assert rotation_metric(s, metrics_url, "success") == before

    s.advance_clock(66 * DAY)
    s.run_scheduler()
    rots = list_rotations(s, key["KeyId"])
    assert len(rots) == 1 and rots[0]["RotationType"] == "AUTOMATIC"
    evs = lookup(s, "RotateKey", key["Arn"])
    assert len(evs) == 1
    ev = evs[0]
    assert_service_event(ev, "RotateKey", key["Arn"])
    d = ev["serviceEventDetails"]
    assert d["rotationType"] == "AUTOMATIC" and d["keyId"] == key["KeyId"]
    assert d["keyOrigin"] == "AWS_KMS"
    assert d["currentKeyMaterialId"] == rots[0]["KeyMaterialId"]
    assert "previousKeyMaterialId" not in d
    # Only the key with rotation on.
    assert lookup(s, "RotateKey", other["Arn"]) == []
    assert rotation_metric(s, metrics_url, "success") == before + 1

    # Running again changes nothing: one rotation, one event.
    s.run_scheduler()
    assert len(lookup(s, "RotateKey", key["Arn"])) == 1

    # The next year: the second event names the previous material.
    s.advance_clock(366 * DAY)
    s.run_scheduler()
    rots = list_rotations(s, key["KeyId"])
    assert len(rots) == 2
    evs = sorted(lookup(s, "RotateKey", key["Arn"]), key=lambda e: e["eventTime"])
    assert len(evs) == 2
    assert evs[1]["serviceEventDetails"]["previousKeyMaterialId"] == rots[0]["KeyMaterialId"]
    assert evs[1]["serviceEventDetails"]["currentKeyMaterialId"] == rots[1]["KeyMaterialId"]
    assert rotation_metric(s, metrics_url, "success") == before + 2

    # The AWS CLI finds the same events by resource.
    rc, out, _ = s.aws("cloudtrail", "lookup-events", "--lookup-attributes",
                       "AttributeKey=ResourceName,AttributeValue=" + key["Arn"],
                       "--start-time", "0", "--end-time", "4102444800")
    names = [e["EventName"] for e in json.loads(out)["Events"]]
    assert names.count("RotateKey") == 2 and "EnableKeyRotation" in names


def test_on_demand_rotation_logs_rotate_key(make_server):
    s = make_server(["--dev", "--test-mode"])
    kms = s.client()
    key = kms.create_key()["KeyMetadata"]
    status, body = kms_request(s, "RotateKeyOnDemand", {"KeyId": key["KeyId"]})
    assert status == 200, body
    evs = lookup(s, "RotateKey", key["Arn"])
    assert len(evs) == 1
    assert_service_event(evs[0], "RotateKey", key["Arn"])
    assert evs[0]["serviceEventDetails"]["rotationType"] == "ON_DEMAND"
    # The API call has its own event.
    assert len(lookup(s, "RotateKeyOnDemand", key["Arn"])) == 1
    # A refused on-demand rotation (AWS managed keys cannot be rotated by
    # the account) logs no RotateKey.
    sm = s.client("secretsmanager")
    sm.create_secret(Name="glue-managed", SecretString="v")
    managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    status, body = kms_request(s, "RotateKeyOnDemand", {"KeyId": managed["KeyId"]})
    assert status == 400 and body["__type"].endswith("AccessDeniedException")
    assert lookup(s, "RotateKey", managed["Arn"]) == []


def test_deletion_at_the_end_of_the_waiting_period_is_audited(make_server):
    s = make_server(["--dev", "--test-mode"])
    kms = s.client()
    key = kms.create_key()["KeyMetadata"]
    kept = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/glue-doomed", TargetKeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    kms.schedule_key_deletion(KeyId=kept["KeyId"], PendingWindowInDays=7)
    kms.cancel_key_deletion(KeyId=kept["KeyId"])

    s.advance_clock(6 * DAY)
    s.run_scheduler()
    assert lookup(s, "DeleteKey") == []
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"

    s.advance_clock(2 * DAY)
    s.run_scheduler()
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=key["KeyId"])
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    evs = lookup(s, "DeleteKey", key["Arn"])
    assert len(evs) == 1
    assert_service_event(evs[0], "DeleteKey", key["Arn"])
    # The cancelled one is neither deleted nor logged.
    assert kms.describe_key(KeyId=kept["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    assert lookup(s, "DeleteKey", kept["Arn"]) == []
    # Once only.
    s.run_scheduler()
    assert len(lookup(s, "DeleteKey")) == 1

    rc, out, _ = s.aws("cloudtrail", "lookup-events", "--lookup-attributes",
                       "AttributeKey=EventName,AttributeValue=DeleteKey",
                       "--start-time", "0", "--end-time", "4102444800")
    found = json.loads(out)["Events"]
    assert [r["ResourceName"] for e in found for r in e["Resources"]] == [key["Arn"]]


def test_aws_managed_key_rotates_yearly_from_creation(make_server):
    s = make_server(["--dev", "--test-mode"])
    kms = s.client()
    sm = s.client("secretsmanager")
    sm.create_secret(Name="glue-managed-rotation", SecretString="value-1")
    managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert managed["KeyManager"] == "AWS"
    created = managed["CreationDate"]

    st = kms.get_key_rotation_status(KeyId=managed["KeyId"])
    assert st["KeyRotationEnabled"] is True
    # The date is written at creation (the status shows what is stored).
    status, raw = kms_request(s, "GetKeyRotationStatus", {"KeyId": managed["KeyId"]})
    assert status == 200 and raw["RotationPeriodInDays"] == 365
    days_out = (raw["NextRotationDate"] - created.timestamp()) / DAY
    assert 364.9 < days_out < 365.1, days_out
    assert list_rotations(s, managed["KeyId"]) == []

    s.advance_clock(366 * DAY)
    s.run_scheduler()
    rots = list_rotations(s, managed["KeyId"])
    assert len(rots) == 1 and rots[0]["RotationType"] == "AUTOMATIC"
    evs = lookup(s, "RotateKey", managed["Arn"])
    assert len(evs) == 1 and evs[0]["serviceEventDetails"]["rotationType"] == "AUTOMATIC"
    # The next one is a year after this rotation.
    status, raw2 = kms_request(s, "GetKeyRotationStatus", {"KeyId": managed["KeyId"]})
    assert raw2["NextRotationDate"] - int(rots[0]["RotationDate"]) == 365 * DAY  # RotationDate has milliseconds
    # The secret still decrypts after the key rotated.
    assert sm.get_secret_value(SecretId="glue-managed-rotation")["SecretString"] == "value-1"
