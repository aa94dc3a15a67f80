"""The request line: one per call at info level with the request id,
principal, operation, resource, status, error code and latency; refused
signatures and throttling at warn with the access key id; --log-format
json makes every line a JSON object; no plaintext or secret value ever
reaches the log."""
import base64
import json
import re

import pytest
from botocore.exceptions import ClientError


def log_text(s):
    return open(s.log_path, errors="replace").read()


def request_lines(s):
    return [l for l in log_text(s).splitlines() if " request requestId=" in l]


def fields(line):
    return dict(re.findall(r" (\w+)=(\S+)", line.split(": request", 1)[1]))


def json_lines(s):
    return [json.loads(l) for l in log_text(s).splitlines() if l.strip()]


def test_text_request_lines(make_server):
    s = make_server(["--dev"])
    kms = s.client()
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    kms.encrypt(KeyId=arn, Plaintext=b"x")
    with pytest.raises(ClientError):
        kms.describe_key(KeyId="alias/no-such-alias")
    lines = request_lines(s)
    enc = [fields(l) for l in lines if "operation=Encrypt" in l]
    assert len(enc) == 1, lines
    f = enc[0]
    assert f["principal"] == "arn:aws:iam::000000000000:root"
    assert (f["service"], f["resource"], f["status"], f["errorCode"]) == ("kms", arn, "200", "-")
    assert re.fullmatch(r"[0-9a-f-]{36}", f["requestId"])
    assert float(f["latencyMs"]) >= 0
    assert " kinko info: request " in [l for l in lines if "operation=Encrypt" in l][0]
    nf = [fields(l) for l in lines if "operation=DescribeKey" in l][0]
    assert (nf["status"], nf["errorCode"], nf["resource"]) == ("400", "NotFoundException", "-")
    # The request id in the line is the one the client got.
    try:
        kms.describe_key(KeyId="alias/other-missing")
    except ClientError as e:
        rid = e.response["ResponseMetadata"]["RequestId"]
    assert any("requestId=%s " % rid in l for l in request_lines(s))


def test_refused_signature_and_unknown_client(make_server):
    s = make_server(["--dev"])
    with pytest.raises(ClientError):
        s.client(secret="wrong-secret").list_keys()
    with pytest.raises(ClientError):
        s.client(key="AKIANOBODY0000000000", secret="x").list_keys()
    lines = request_lines(s)
    bad = [l for l in lines if "InvalidSignatureException" in l]
    assert len(bad) == 1 and " kinko warn: " in bad[0]
    f = fields(bad[0])
    assert (f["accessKeyId"], f["principal"], f["status"]) == ("test", "-", "400")
    unk = [fields(l) for l in lines if "UnrecognizedClientException" in l]
    assert unk and unk[0]["accessKeyId"] == "AKIANOBODY0000000000"
    # Never the signature.
    assert "Signature=" not in log_text(s) and "wrong-secret" not in log_text(s)


def test_throttled_call_is_a_warning(make_server):
    s = make_server(["--dev", "--quota", "symmetric=2"])
    kms = s.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    throttled = False
    for _ in range(30):
        try:
            kms.encrypt(KeyId=key, Plaintext=b"x")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ThrottlingException"
            throttled = True
            break
    assert throttled
    t = [l for l in request_lines(s) if "ThrottlingException" in l]
    assert t and " kinko warn: " in t[0]
    f = fields(t[0])
    assert (f["operation"], f["principal"]) == ("Encrypt", "arn:aws:iam::000000000000:root")
    assert f["accessKeyId"] == "test"


def test_json_format_and_no_secrets(make_server):
    s = make_server(["--dev", "--log-format", "json"])
    kms = s.client()
    sm = s.client("secretsmanager")
    plain = b"plaintext-marker-5e1f"
    secret = "secret-value-marker-9c3d"
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=plain)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plain
    dk = kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    arn = sm.create_secret(Name="log-test", SecretString=secret)["ARN"]
    assert sm.get_secret_value(SecretId="log-test")["SecretString"] == secret
    with pytest.raises(ClientError):
        s.client(secret="bad").list_keys()
    docs = json_lines(s)  # every line parses
    assert all({"time", "level", "message"} <= set(d) for d in docs)
    reqs = [d for d in docs if d["message"] == "request"]
    get = [d for d in reqs if d["operation"] == "GetSecretValue"][0]
    assert (get["service"], get["resource"], get["status"], get["errorCode"]) == (
        "secretsmanager", arn, 200, None)
    assert get["level"] == "info" and isinstance(get["latencyMs"], float)
    refused = [d for d in reqs if d["errorCode"] == "InvalidSignatureException"][0]
    assert refused["level"] == "warn" and refused["accessKeyId"] == "test"
    text = log_text(s)
    for value in (plain.decode(), base64.b64encode(plain).decode(), secret,
                  base64.b64encode(dk["Plaintext"]).decode(),
                  base64.b64encode(blob).decode()):
        assert value not in text


def test_log_format_in_the_configuration(make_server, tmp_path):
    import subprocess
    from conftest import KINKO, write_json
    cfg = write_json(str(tmp_path / "bad.json"), {"log_format": "yaml"})
    p = subprocess.run([KINKO, "serve", "--dev", "--config", cfg, "--data", str(tmp_path / "d"),
                        "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert '"log_format" must be "text" or "json", not "yaml"' in p.stderr, p.stderr
    p = subprocess.run([KINKO, "serve", "--dev", "--log-format", "xml"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "--log-format takes text or json" in p.stderr
    cfg = write_json(str(tmp_path / "good.json"), {"log_format": "json"})
    s = make_server(["--dev", "--config", cfg])
    s.client().list_keys()
    assert any(d.get("operation") == "ListKeys" for d in json_lines(s))


FN_ARN = "arn:aws:lambda:us-east-1:000000000000:function:noisy"


def test_rotation_stderr_in_the_server_log(make_server, tmp_path):
    import time
    fn = tmp_path / "noisy.sh"
    fn.write_text("#!/bin/sh\nread event\necho \"noisy says: cannot reach the database\" >&2\n"
                  "echo second line >&2\nprintf 'no newline at the end' >&2\nexit 1\n")
    fn.chmod(0o755)
    s = make_server(["--dev", "--rotation-function", "%s=%s" % (FN_ARN, fn)])
    sm = s.client("secretsmanager")
    sm.create_secret(Name="noisy-secret", SecretString="rotate-me-value-77ab")
    try:
        sm.rotate_secret(SecretId="noisy-secret", RotationLambdaARN=FN_ARN)
    except ClientError:
        pass  # the function fails on purpose
    want = ["rotation function %s: noisy says: cannot reach the database" % FN_ARN,
            "rotation function %s: second line" % FN_ARN,
            "rotation function %s: no newline at the end" % FN_ARN]
    deadline = time.time() + 20
    while time.time() < deadline and not all(w in log_text(s) for w in want):
        time.sleep(0.2)
    text = log_text(s)
    assert all(w in text for w in want), text[-3000:]
    assert "rotate-me-value-77ab" not in text


def test_bad_rotation_executable_refused_at_start(tmp_path):
    import os
    import subprocess
    from conftest import KINKO
    notexec = tmp_path / "notexec.sh"
    notexec.write_text("#!/bin/sh\n")
    notexec.chmod(0o644)
    open_to_all = tmp_path / "world.sh"
    open_to_all.write_text("#!/bin/sh\n")
    open_to_all.chmod(0o777)
    os.chmod(open_to_all, 0o777)
    cases = [(str(tmp_path / "missing.sh"), "does not exist"),
             (str(notexec), "is not executable"),
             (str(open_to_all), "is writable by every user"),
             (str(tmp_path), "is not a regular file"),
             ("no-such-rotation-command", "is not found in PATH")]
    for path, why in cases:
        p = subprocess.run([KINKO, "serve", "--dev", "--data", str(tmp_path / "d"),
                            "--listen", "127.0.0.1:0", "--rotation-function",
                            "%s=%s" % (FN_ARN, path)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        assert "rotation function %s: the executable %s %s" % (FN_ARN, path, why) in p.stderr, \
            p.stderr
