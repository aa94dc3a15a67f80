"""RotateSecret with RotateImmediately=false: "Secrets Manager tests the
rotation configuration by running the testSecret step of the Lambda
rotation function. The test creates an AWSPENDING version of the secret and
then removes it." (API_RotateSecret). The rotation function is a local
executable that records every call it gets."""
import json
import textwrap
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from helpers import (config_server, raw_describe, rotation_function, wait_rotation,
                     write_function)

DAY = 86400
FN = "arn:aws:lambda:us-east-1:000000000000:function:recording-rotation"

FUNCTION = textwrap.dedent('''\
    #!/usr/bin/python3
    # Records each call; on testSecret, what AWSPENDING holds.
    import json, os, sys, time
    import boto3
    event = json.load(sys.stdin)
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"],
                      region_name=os.environ["AWS_REGION"])
    rec = {"event": event}
    try:
        if step == "createSecret":
            cur = json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
            cur["password"] = os.urandom(8).hex()
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                SecretString=json.dumps(cur), VersionStages=["AWSPENDING"])
        elif step == "testSecret":
            for _ in range(600):
                if os.path.exists(os.environ.get("WAIT_FILE", "/")):
                    break
                time.sleep(0.05)
            p = sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
            c = sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
            rec["pending"] = {"VersionId": p["VersionId"], "Stages": p["VersionStages"],
                              "same_as_current": p["SecretString"] == c["SecretString"],
                              "current_id": c["VersionId"]}
        elif step == "finishSecret":
            md = sm.describe_secret(SecretId=arn)
            cur = [v for v, s in md["VersionIdsToStages"].items() if "AWSCURRENT" in s][0]
            sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                           MoveToVersionId=token, RemoveFromVersionId=cur)
    except Exception as e:
        rec["error"] = str(e)
    with open(os.environ["CALL_LOG"], "a") as f:
        f.write(json.dumps(rec) + "\\n")
    if "error" in rec or step == os.environ.get("FAIL_AT"):
        sys.exit(4)
''')


@pytest.fixture
def srv(make_server, tmp_path):
    fn = write_function(tmp_path / "fn.py", FUNCTION)
    log = tmp_path / "calls.log"
    fn_log = tmp_path / "fn.log"
    cfg = {"rotation_functions": [
        rotation_function(FN, fn, fn_log, CALL_LOG=str(log)),
        rotation_function(FN + "-failing-test", fn, fn_log, CALL_LOG=str(log), FAIL_AT="testSecret"),
        rotation_function(FN + "-slow-test", fn, fn_log, CALL_LOG=str(log),
                          WAIT_FILE=str(tmp_path / "go")),
    ]}
    s = config_server(make_server, tmp_path, cfg)
    s.calls_log = log
    s.go = tmp_path / "go"
    return s


def calls(srv, token=None):
    if not srv.calls_log.exists():
        return []
    out = [json.loads(line) for line in srv.calls_log.read_text().splitlines()]
    return [c for c in out if token is None or c["event"]["ClientRequestToken"] == token]


def new_secret(sm):
    n = "rotnow/%s" % uuid.uuid4().hex[:12]
    r = sm.create_secret(Name=n, SecretString=json.dumps({"username": "app", "password": "p0"}))
    return n, r["ARN"], r["VersionId"]


def test_rotate_later_runs_only_test_secret_on_a_copy(srv):
    sm = srv.client("secretsmanager")
    n, arn, v0 = new_secret(sm)
    before = time.time()
    r = sm.rotate_secret(SecretId=n, RotationLambdaARN=FN, RotateImmediately=False,
                         RotationRules={"AutomaticallyAfterDays": 7})
    token = r["VersionId"]
    assert token != v0
    st = wait_rotation(srv, arn, token)
    assert st["Status"] == "Succeeded" and st["Test"] is True, st
    got = calls(srv, token)
    # Only the testSecret step ran, with the Lambda event.
    assert [c["event"]["Step"] for c in got] == ["testSecret"]
    assert got[0]["event"] == {"SecretId": arn, "ClientRequestToken": token, "Step": "testSecret"}
    # It saw an AWSPENDING version (this token) holding the current value.
    assert got[0]["pending"] == {"VersionId": token, "Stages": ["AWSPENDING"],
                                 "same_as_current": True, "current_id": v0}
    # ... which is gone afterwards; nothing was rotated.
    d = sm.describe_secret(SecretId=n)
    assert d["VersionIdsToStages"] == {v0: ["AWSCURRENT"]}
    ids = [v["VersionId"] for v in
           sm.list_secret_version_ids(SecretId=n, IncludeDeprecated=True)["Versions"]]
    assert ids == [v0]
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=n, VersionId=token)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    cur = sm.get_secret_value(SecretId=n)
    assert cur["VersionId"] == v0 and json.loads(cur["SecretString"])["password"] == "p0"
    # The rotation is scheduled, not done.
    assert d["RotationEnabled"] is True and d["RotationLambdaARN"] == FN
    assert "LastRotatedDate" not in d
    raw = raw_describe(srv, arn)
    assert before - 5 + 7 * DAY <= raw["NextRotationDate"] <= time.time() + 5 + 7 * DAY


def test_failed_test_is_reported_and_cleaned_up(srv):
    sm = srv.client("secretsmanager")
    n, arn, v0 = new_secret(sm)
    token = sm.rotate_secret(SecretId=n, RotationLambdaARN=FN + "-failing-test",
                             RotateImmediately=False,
                             RotationRules={"AutomaticallyAfterDays": 7})["VersionId"]
    st = wait_rotation(srv, arn, token)
    assert st["Status"] == "Failed" and st["Step"] == "testSecret" and st["Test"] is True, st
    assert "status 4" in st["Message"]
    assert [c["event"]["Step"] for c in calls(srv, token)] == ["testSecret"]
    # The test version is removed even so; the value and AWSCURRENT are untouched.
    assert sm.describe_secret(SecretId=n)["VersionIdsToStages"] == {v0: ["AWSCURRENT"]}
    assert json.loads(sm.get_secret_value(SecretId=n)["SecretString"])["password"] == "p0"
    assert "rotation test of secret %s (version %s) failed at testSecret" % (arn, token) in \
        open(srv.log_path).read()
    # No pending rotation is left behind: a real rotation can start.
    t2 = sm.rotate_secret(SecretId=n, RotationLambdaARN=FN)["VersionId"]
    st = wait_rotation(srv, arn, t2)
    assert st["Status"] == "Succeeded" and "Test" not in st, st
    assert [c["event"]["Step"] for c in calls(srv, t2)] == ["createSecret", "setSecret",
                                                           "testSecret", "finishSecret"]
    assert sm.get_secret_value(SecretId=n)["VersionId"] == t2


def test_rotate_later_refused_while_a_rotation_is_unfinished(srv):
    sm = srv.client("secretsmanager")
    n, arn, v0 = new_secret(sm)
    # An unfinished rotation: AWSPENDING on a version that is not AWSCURRENT.
    sm.put_secret_value(SecretId=n, SecretString="{}", VersionStages=["AWSPENDING"])
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=n, RotationLambdaARN=FN, RotateImmediately=False,
                         RotationRules={"AutomaticallyAfterDays": 7})
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "previous rotation isn't complete" in e.value.response["Error"]["Message"]
    assert calls(srv) == [] or all(c["event"]["SecretId"] != arn for c in calls(srv))
    assert sm.describe_secret(SecretId=n).get("RotationEnabled") is not True


def test_rotate_later_with_an_existing_token_is_refused(srv):
    sm = srv.client("secretsmanager")
    n, arn, v0 = new_secret(sm)
    with pytest.raises(ClientError) as e:
        sm.rotate_secret(SecretId=n, RotationLambdaARN=FN, RotateImmediately=False,
                         ClientRequestToken=v0, RotationRules={"AutomaticallyAfterDays": 7})
    assert e.value.response["Error"]["Code"] == "ResourceExistsException"
    assert sm.describe_secret(SecretId=n).get("RotationEnabled") is not True


def test_rotation_started_during_a_test_takes_over(srv):
    sm = srv.client("secretsmanager")
    n, arn, v0 = new_secret(sm)
    # The test's testSecret waits until the file "go" exists.
    t_test = sm.rotate_secret(SecretId=n, RotationLambdaARN=FN + "-slow-test",
                              RotateImmediately=False,
                              RotationRules={"AutomaticallyAfterDays": 7})["VersionId"]
    assert sm.describe_secret(SecretId=n)["VersionIdsToStages"][t_test] == ["AWSPENDING"]
    # A rotation now is not "a previous rotation" in progress: it takes AWSPENDING.
    t2 = sm.rotate_secret(SecretId=n, RotationLambdaARN=FN)["VersionId"]
    st = wait_rotation(srv, arn, t2)
    assert st["Status"] == "Succeeded" and "Test" not in st, st
    srv.go.write_text("go")
    deadline = time.time() + 60
    while time.time() < deadline and len(calls(srv, t_test)) == 0:
        time.sleep(0.1)
    assert [c["event"]["Step"] for c in calls(srv, t_test)] == ["testSecret"]
    # The test version goes; the rotation's outcome stays the reported one.
    while time.time() < deadline and t_test in [
            v["VersionId"] for v in
            sm.list_secret_version_ids(SecretId=n, IncludeDeprecated=True)["Versions"]]:
        time.sleep(0.1)
    ids = {v["VersionId"]: v["VersionStages"] for v in
           sm.list_secret_version_ids(SecretId=n, IncludeDeprecated=True)["Versions"]}
    assert t_test not in ids
    assert "AWSCURRENT" in ids[t2] and ids[v0] == ["AWSPREVIOUS"]
    st = raw_describe(srv, arn)["KinkoRotationStatus"]
    assert st["VersionId"] == t2 and st["Status"] == "Succeeded"
