"""kinko serve --seed FILE (and "seed_file" in the configuration): keys and
secrets created at start through the operations themselves, usable by
boto3, written to the audit trail, and left as they are on a restart."""
import base64
import glob
import json
import os
import subprocess

import pytest

from conftest import KINKO, Server, wait_audit_drained, write_json

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "root", "Effect": "Allow",
                   "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
                   "Action": "kms:*", "Resource": "*"}],
}

SEED = {
    "region": "us-east-1",
    "keys": [
        {"AliasName": "alias/app", "Description": "application data",
         "Tags": [{"TagKey": "team", "TagValue": "payments"}]},
        {"AliasName": "alias/signing", "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY",
         "Policy": POLICY},
    ],
    "secrets": [
        {"Name": "app/db", "SecretString": "{\"password\":\"s3cret\"}", "KmsKeyId": "alias/app",
         "Description": "database login", "Tags": [{"Key": "env", "Value": "test"}]},
        {"Name": "app/blob", "SecretBinary": base64.b64encode(b"\x00\x01\x02").decode()},
    ],
}


def aliases(kms):
    return {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]
            if not a["AliasName"].startswith("alias/aws/")}


def seed_events(data_dir):
    wait_audit_drained(os.path.join(data_dir, "audit"))
    events = []
    for f in sorted(glob.glob(os.path.join(data_dir, "audit", "kinko-audit-*.jsonl"))):
        for line in open(f):
            rec = json.loads(line)
            ev = rec.get("event") or {}
            if rec.get("kinkoType") == "event" and ev.get("sourceIPAddress") == "kinko-seed":
                events.append(ev)
    return events


def test_seed_creates_and_restart_changes_nothing(make_server, tmp_path):
    seed = write_json(str(tmp_path / "seed.json"), SEED)
    s = make_server(["--dev", "--seed", seed])
    kms = s.client()
    found = aliases(kms)
    assert set(found) == {"alias/app", "alias/signing"}
    app = kms.describe_key(KeyId="alias/app")["KeyMetadata"]
    assert app["Description"] == "application data"
    assert kms.list_resource_tags(KeyId=app["KeyId"])["Tags"] == [
        {"TagKey": "team", "TagValue": "payments"}]
    ct = kms.encrypt(KeyId="alias/app", Plaintext=b"hello")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"hello"
    sig = kms.describe_key(KeyId="alias/signing")["KeyMetadata"]
    assert sig["KeySpec"] == "ECC_NIST_P256" and sig["KeyUsage"] == "SIGN_VERIFY"
    policy = json.loads(kms.get_key_policy(KeyId=sig["KeyId"], PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Sid"] == "root"
    signed = kms.sign(KeyId="alias/signing", Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    assert kms.verify(KeyId="alias/signing", Message=b"m", Signature=signed["Signature"],
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]

    sm = s.client("secretsmanager")
    v = sm.get_secret_value(SecretId="app/db")
    assert json.loads(v["SecretString"]) == {"password": "s3cret"}
    d = sm.describe_secret(SecretId="app/db")
    assert d["Description"] == "database login"
    assert d["KmsKeyId"].endswith(app["KeyId"]) or d["KmsKeyId"] == "alias/app"
    assert sm.get_secret_value(SecretId="app/blob")["SecretBinary"] == b"\x00\x01\x02"
    version = v["VersionId"]
    keys_before = sorted(k["KeyId"] for k in kms.list_keys()["Keys"])

    # Each creation is in the audit trail, as the account root, like any call.
    names = [e["eventName"] for e in seed_events(s.data_dir) if "errorCode" not in e]
    for op in ("CreateKey", "CreateAlias", "CreateSecret"):
        assert op in names
    assert names.count("CreateKey") == 2 and names.count("CreateSecret") == 2
    assert all(e["userIdentity"]["arn"] == "arn:aws:iam::000000000000:root"
               for e in seed_events(s.data_dir))

    # A restart with the same file: the same keys, aliases and secret versions, nothing new.
    assert s.stop() == 0
    s2 = make_server(["--dev", "--seed", seed], data_dir=s.data_dir)
    kms2 = s2.client()
    assert aliases(kms2) == found
    assert sorted(k["KeyId"] for k in kms2.list_keys()["Keys"]) == keys_before
    assert s2.client("secretsmanager").get_secret_value(SecretId="app/db")["VersionId"] == version
    assert s2.stop() == 0
    names = [e["eventName"] for e in seed_events(s.data_dir) if "errorCode" not in e]
    assert names.count("CreateKey") == 2 and names.count("CreateSecret") == 2
    assert "0 created, 4 already there" in open(s2.log_path).read()


def test_seed_file_in_configuration(make_server, tmp_path):
    """"seed_file" in the configuration, relative to the configuration file's folder."""
    write_json(str(tmp_path / "seed.json"), {
        "account": "111122223333", "region": "eu-west-1",
        "keys": [{"AliasName": "alias/from-config"}],
        "secrets": [{"Name": "cfg-secret", "SecretString": "v", "KmsKeyId": "alias/from-config"}]})
    cfg = write_json(str(tmp_path / "kinko.json"), {
        "seed_file": "seed.json",
        "accounts": [{"id": "111122223333",
                      "root_access_keys": [{"access_key_id": "AKIASEEDROOT",
                                            "secret_access_key": "seed-secret"}]}]})
    s = make_server(["--config", cfg, "--root-key", str(tmp_path / "root.key"), "--dev"])
    kms = s.client(region="eu-west-1", key="AKIASEEDROOT", secret="seed-secret")
    assert "alias/from-config" in aliases(kms)
    sm = s.client("secretsmanager", region="eu-west-1", key="AKIASEEDROOT", secret="seed-secret")
    assert sm.get_secret_value(SecretId="cfg-secret")["SecretString"] == "v"
    # Another region of the same account sees none of it.
    assert "alias/from-config" not in aliases(
        s.client(region="us-east-1", key="AKIASEEDROOT", secret="seed-secret"))


def start_fails(tmp_path, seed_doc):
    seed = write_json(str(tmp_path / "bad.json"), seed_doc)
    data = tmp_path / "data"
    p = subprocess.run([KINKO, "serve", "--dev", "--listen", "127.0.0.1:0", "--data", str(data),
                        "--seed", seed], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "listening on" not in p.stdout
    return p.stderr


@pytest.mark.parametrize("doc, expect", [
    ({"keys": [{"AliasName": "alias/ok"}, {"AliasName": "alias/bad", "KeySpec": "RSA_1"}]},
     "keys[1] (alias/bad): CreateKey: ValidationException"),
    ({"keys": [{"AliasName": "alias/aws/mine"}]},
     "keys[0] (alias/aws/mine): CreateAlias: "),
    ({"keys": [{"Description": "no alias"}]}, "keys[0] (?): a key needs \"AliasName\""),
    ({"secrets": [{"Name": "s", "SecretString": "v", "KmsKeyId": "alias/missing"}]},
     "secrets[0] (s): CreateSecret: "),
    ({"account": "999999999999", "keys": []}, "the account \"999999999999\" is not configured"),
    ({"kees": []}, "unknown member \"kees\""),
])
def test_seed_error_stops_the_server(tmp_path, doc, expect):
    err = start_fails(tmp_path, doc)
    assert expect in err, err
