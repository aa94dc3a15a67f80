"""The foundation: symmetric KMS through boto3, errors and isolation."""
import base64
import datetime
import json
import os
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from conftest import write_json


def err(excinfo):
    return excinfo.value.response["Error"]["Code"]


def errmsg(excinfo):
    return excinfo.value.response["Error"].get("Message", "")


def test_create_key_defaults(kms, server):
    md = kms.create_key(Description="app key")["KeyMetadata"]
    assert md["KeyState"] == "Enabled" and md["Enabled"] is True
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert md["Origin"] == "AWS_KMS" and md["KeyManager"] == "CUSTOMER"
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert md["AWSAccountId"] == "000000000000"
    assert md["Arn"] == "arn:aws:kms:us-east-1:000000000000:key/" + md["KeyId"]
    assert md["Description"] == "app key"
    assert md["MultiRegion"] is False
    assert isinstance(md["CreationDate"], datetime.datetime)


def test_describe_by_id_and_arn(kms):
    md = kms.create_key()["KeyMetadata"]
    for ref in (md["KeyId"], md["Arn"]):
        got = kms.describe_key(KeyId=ref)["KeyMetadata"]
        assert got["KeyId"] == md["KeyId"]


def test_describe_unknown_key(kms):
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId="11111111-2222-3333-4444-555555555555")
    assert err(e) == "NotFoundException"
    assert "does not exist" in errmsg(e)
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId="alias/nope")
    assert err(e) == "NotFoundException"


def test_encrypt_decrypt_roundtrip(kms):
    key = kms.create_key()["KeyMetadata"]
    for pt in (b"x", b"hello world", os.urandom(4096)):
        enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=pt)
        assert enc["KeyId"] == key["Arn"]
        assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
        dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])
        assert dec["Plaintext"] == pt
        assert dec["KeyId"] == key["Arn"]
        dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], KeyId=key["Arn"])
        assert dec["Plaintext"] == pt


def test_two_encryptions_differ(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    a = kms.encrypt(KeyId=key, Plaintext=b"same")["CiphertextBlob"]
    b = kms.encrypt(KeyId=key, Plaintext=b"same")["CiphertextBlob"]
    assert a != b


def test_encryption_context_is_authenticated(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    ctx = {"purpose": "test", "tenant": "42"}
    blob = kms.encrypt(KeyId=key, Plaintext=b"secret", EncryptionContext=ctx)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=dict(reversed(list(ctx.items()))))["Plaintext"] == b"secret"
    for bad in ({}, {"purpose": "test"}, {"purpose": "test", "tenant": "43"}):
        with pytest.raises(ClientError) as e:
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=bad)
        assert err(e) == "InvalidCiphertextException"


def test_context_encoding_is_unambiguous(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"p", EncryptionContext={"a": "bc"})["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"ab": "c"})
    assert err(e) == "InvalidCiphertextException"


def test_tampered_ciphertext(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = bytearray(kms.encrypt(KeyId=key, Plaintext=b"payload")["CiphertextBlob"])
    for pos in (len(blob) - 1, len(blob) - 20, 30):
        t = bytearray(blob)
        t[pos] ^= 1
        with pytest.raises(ClientError) as e:
            kms.decrypt(CiphertextBlob=bytes(t))
        assert err(e) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=b"not a ciphertext at all")
    assert err(e) == "InvalidCiphertextException"


def test_decrypt_with_wrong_key_id(kms):
    k1 = kms.create_key()["KeyMetadata"]["KeyId"]
    k2 = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=k1, Plaintext=b"data")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, KeyId=k2)
    assert err(e) == "IncorrectKeyException"


def test_encrypt_limits(kms_raw):
    key = kms_raw.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms_raw.encrypt(KeyId=key, Plaintext=b"x" * 4097)
    assert err(e) == "ValidationException"
    assert "4096" in errmsg(e)
    with pytest.raises(ClientError) as e:
        kms_raw.encrypt(KeyId=key)
    assert err(e) == "ValidationException"
    assert "plaintext" in errmsg(e)
    with pytest.raises(ClientError) as e:
        kms_raw.encrypt(Plaintext=b"x")
    assert err(e) == "ValidationException"
    assert "Value null at 'keyId'" in errmsg(e)


def test_re_encrypt(kms):
    k1 = kms.create_key()["KeyMetadata"]
    k2 = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=k1["KeyId"], Plaintext=b"move me", EncryptionContext={"x": "1"})["CiphertextBlob"]
    r = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"x": "1"},
                       DestinationKeyId=k2["KeyId"], DestinationEncryptionContext={"y": "2"})
    assert r["SourceKeyId"] == k1["Arn"] and r["KeyId"] == k2["Arn"]
    out = kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext={"y": "2"})
    assert out["Plaintext"] == b"move me" and out["KeyId"] == k2["Arn"]
    with pytest.raises(ClientError) as e:
        kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=k2["KeyId"])
    assert err(e) == "InvalidCiphertextException"


def test_generate_data_key(kms):
    key = kms.create_key()["KeyMetadata"]
    for kwargs, n in (({"KeySpec": "AES_256"}, 32), ({"KeySpec": "AES_128"}, 16),
                      ({"NumberOfBytes": 1}, 1), ({"NumberOfBytes": 1024}, 1024)):
        r = kms.generate_data_key(KeyId=key["KeyId"], EncryptionContext={"f": "g"}, **kwargs)
        assert len(r["Plaintext"]) == n and r["KeyId"] == key["Arn"]
        d = kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext={"f": "g"})
        assert d["Plaintext"] == r["Plaintext"]


def test_generate_data_key_spec_rules(kms_raw):
    key = kms_raw.create_key()["KeyMetadata"]["KeyId"]
    for kwargs in ({}, {"KeySpec": "AES_256", "NumberOfBytes": 32}):
        with pytest.raises(ClientError) as e:
            kms_raw.generate_data_key(KeyId=key, **kwargs)
        assert err(e) == "ValidationException"
    for n in (0, 1025):
        with pytest.raises(ClientError) as e:
            kms_raw.generate_data_key(KeyId=key, NumberOfBytes=n)
        assert err(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms_raw.generate_data_key(KeyId=key, KeySpec="AES_512")
    assert err(e) == "ValidationException"
    assert "enum value set" in errmsg(e)


def test_generate_data_key_without_plaintext(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    r = kms.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_256")
    assert "Plaintext" not in r
    assert len(kms.decrypt(CiphertextBlob=r["CiphertextBlob"])["Plaintext"]) == 32


def test_generate_random(kms, kms_raw):
    for n in (1, 32, 1024):
        assert len(kms.generate_random(NumberOfBytes=n)["Plaintext"]) == n
    assert kms.generate_random(NumberOfBytes=32)["Plaintext"] != kms.generate_random(NumberOfBytes=32)["Plaintext"]
    for n in (0, 1025):
        with pytest.raises(ClientError) as e:
            kms_raw.generate_random(NumberOfBytes=n)
        assert err(e) == "ValidationException"


def test_list_keys_paging(server):
    kms = server.client(region="ap-northeast-1")
    made = {kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)}
    seen, marker, pages = [], None, 0
    while True:
        kw = {"Limit": 2}
        if marker:
            kw["Marker"] = marker
        r = kms.list_keys(**kw)
        pages += 1
        assert len(r["Keys"]) <= 2
        seen += [k["KeyId"] for k in r["Keys"]]
        for k in r["Keys"]:
            assert k["KeyArn"].endswith(k["KeyId"])
        if not r["Truncated"]:
            break
        marker = r["NextMarker"]
    assert set(seen) == made and len(seen) == 5 and pages == 3
    all_keys = [k["KeyId"] for p in kms.get_paginator("list_keys").paginate() for k in p["Keys"]]
    assert set(all_keys) == made


def test_list_keys_bad_marker(kms_raw):
    with pytest.raises(ClientError) as e:
        kms_raw.list_keys(Marker="garbage")
    assert err(e) == "InvalidMarkerException"


def test_regions_are_isolated(server):
    east = server.client(region="us-east-1")
    west = server.client(region="eu-west-1")
    key = east.create_key()["KeyMetadata"]
    blob = east.encrypt(KeyId=key["KeyId"], Plaintext=b"r")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        west.describe_key(KeyId=key["KeyId"])
    assert err(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        west.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    assert err(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        west.decrypt(CiphertextBlob=blob)
    assert err(e) in ("InvalidCiphertextException", "NotFoundException")
    assert key["KeyId"] not in [k["KeyId"] for k in west.list_keys()["Keys"]]


def test_unknown_access_key(server):
    with pytest.raises(ClientError) as e:
        server.client(key="AKIDNOTKNOWN", secret="x").list_keys()
    assert err(e) == "UnrecognizedClientException"


def test_wrong_secret_key(server):
    with pytest.raises(ClientError) as e:
        server.client(secret="not-the-secret").list_keys()
    assert err(e) == "InvalidSignatureException"


def test_session_token_on_long_term_key_refused(server):
    with pytest.raises(ClientError) as e:
        server.client(token="bogus-token").list_keys()
    assert err(e) == "UnrecognizedClientException"


def raw_request(server, target, body, headers=None, sign=True, when=None, secret="test",
                service="kms", content_type="application/x-amz-json-1.1"):
    """Sends a hand-built request; returns (status, headers, parsed body)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {"Content-Type": content_type}
    if target:
        h["X-Amz-Target"] = target
    h.update(headers or {})
    req = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/", data=data, headers=h)
    if sign:
        creds = botocore.credentials.Credentials("test", secret)
        signer = botocore.auth.SigV4Auth(creds, service, "us-east-1")
        if when is not None:
            class FixedAuth(botocore.auth.SigV4Auth):
                def _modify_request_before_signing(self, request):
                    super()._modify_request_before_signing(request)
                    del request.headers["X-Amz-Date"]
                    request.headers["X-Amz-Date"] = when.strftime("%Y%m%dT%H%M%SZ")

                def add_auth(self, request):
                    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
                    self._modify_request_before_signing(request)
                    canonical_request = self.canonical_request(request)
                    string_to_sign = self.string_to_sign(request, canonical_request)
                    signature = self.signature(string_to_sign, request)
                    self._inject_signature_to_request(request, signature)
            signer = FixedAuth(creds, service, "us-east-1")
        signer.add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=prepared.body, method="POST",
                               headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def test_request_id_on_every_response(server):
    st, h, body = raw_request(server, "TrentService.ListKeys", {})
    assert st == 200 and len(h.get("x-amzn-RequestId", "")) == 36
    st, h, body = raw_request(server, "TrentService.ListKeys", {}, sign=False)
    assert st == 400 and len(h.get("x-amzn-RequestId", "")) == 36


def test_missing_authentication(server):
    st, h, body = raw_request(server, "TrentService.ListKeys", {}, sign=False)
    assert body["__type"] == "MissingAuthenticationTokenException"


def test_malformed_authorization(server):
    st, h, body = raw_request(server, "TrentService.ListKeys", {}, sign=False,
                              headers={"Authorization": "AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/kms/aws4_request",
                                       "X-Amz-Date": "20200101T000000Z"})
    assert st == 400 and body["__type"] == "IncompleteSignatureException"


def test_expired_signature(server):
    old = datetime.datetime.utcnow() - datetime.timedelta(minutes=10)
    st, h, body = raw_request(server, "TrentService.ListKeys", {}, when=old)
    assert body["__type"] == "InvalidSignatureException"
    assert "Signature expired" in body["message"]
    future = datetime.datetime.utcnow() + datetime.timedelta(minutes=10)
    st, h, body = raw_request(server, "TrentService.ListKeys", {}, when=future)
    assert body["__type"] == "InvalidSignatureException"
    ok = datetime.datetime.utcnow() - datetime.timedelta(minutes=2)
    st, h, body = raw_request(server, "TrentService.ListKeys", {}, when=ok)
    assert st == 200


def test_wrong_service_in_scope(server):
    st, h, body = raw_request(server, "TrentService.ListKeys", {}, service="s3")
    assert body["__type"] == "InvalidSignatureException"


def test_unknown_operation(server):
    st, h, body = raw_request(server, "TrentService.NoSuchThing", {})
    assert st == 400 and body["__type"] == "UnknownOperationException"
    st, h, body = raw_request(server, "Nonsense.ListKeys", {})
    assert body["__type"] == "UnknownOperationException"


def test_malformed_json(server):
    st, h, body = raw_request(server, "TrentService.ListKeys", b"{not json")
    assert st == 400 and body["__type"] == "SerializationException"
    st, h, body = raw_request(server, "TrentService.ListKeys", b"[1,2]")
    assert body["__type"] == "SerializationException"
    st, h, body = raw_request(server, "TrentService.Encrypt", {"KeyId": 5, "Plaintext": "eA=="})
    assert body["__type"] == "SerializationException"


def test_wrong_content_type(server):
    st, h, body = raw_request(server, "TrentService.ListKeys", {}, content_type="text/plain")
    assert st >= 400 and body["__type"] in ("SerializationException", "UnknownOperationException")


def test_tampered_body_fails_signature(server):
    data = json.dumps({"Limit": 5}).encode()
    req = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/", data=data,
                                         headers={"Content-Type": "application/x-amz-json-1.1",
                                                  "X-Amz-Target": "TrentService.ListKeys"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"), "kms", "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=json.dumps({"Limit": 6}).encode(), method="POST",
                               headers=dict(p.headers.items()))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(r, timeout=10)
    assert json.loads(e.value.read())["__type"] == "InvalidSignatureException"


def test_oversized_body(direct_server):
    st, h, body = raw_request(direct_server, "TrentService.Encrypt", {"KeyId": "k", "Plaintext": "A" * (2 << 20)})
    assert st in (400, 413)


def test_dry_run(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    try:
        kms.encrypt(KeyId=key, Plaintext=b"x", DryRun=True)
        raised = None
    except ClientError as e:
        raised = e.response["Error"]["Code"]
    except Exception:  # older botocore has no DryRun member
        pytest.skip("botocore without DryRun")
    assert raised == "DryRunOperationException"


def test_accounts_are_isolated(make_server, tmp_path):
    cfg = write_json(str(tmp_path / "kinko.json"), {
        "accounts": [
            {"id": "111111111111", "root_access_keys": [{"access_key_id": "AKIAONE", "secret_access_key": "secret-one"}]},
            {"id": "222222222222", "root_access_keys": [{"access_key_id": "AKIATWO", "secret_access_key": "secret-two"}]},
        ]})
    s = make_server(["--config", cfg, "--root-key", str(tmp_path / "root.key"), "--dev"])
    one = s.client(key="AKIAONE", secret="secret-one")
    two = s.client(key="AKIATWO", secret="secret-two")
    k = one.create_key()["KeyMetadata"]
    assert k["AWSAccountId"] == "111111111111"
    blob = one.encrypt(KeyId=k["KeyId"], Plaintext=b"mine")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        two.describe_key(KeyId=k["KeyId"])
    assert err(e) == "NotFoundException"
    with pytest.raises(ClientError) as e:
        two.decrypt(CiphertextBlob=blob)
    assert err(e) in ("InvalidCiphertextException", "NotFoundException", "AccessDeniedException")
    assert two.list_keys()["Keys"] == []
    with pytest.raises(ClientError) as e:
        s.client(key="AKIAONE", secret="secret-two").list_keys()
    assert err(e) == "InvalidSignatureException"


def test_acknowledged_writes_survive_kill9(make_server, tmp_path):
    d = str(tmp_path / "data")
    os.mkdir(d, 0o700)
    s = make_server(["--dev"], data_dir=d)
    kms = s.client()
    keys = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)]
    blobs = [kms.encrypt(KeyId=k, Plaintext=k.encode())["CiphertextBlob"] for k in keys]
    s.kill9()
    s2 = make_server(["--dev"], data_dir=d)
    kms2 = s2.client()
    for k, b in zip(keys, blobs):
        assert kms2.decrypt(CiphertextBlob=b)["Plaintext"] == k.encode()
        assert kms2.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "Enabled"


def test_root_key_file_mode(direct_server):
    st = os.stat(direct_server.root_key_path())
    assert st.st_mode & 0o777 == 0o600
    assert st.st_size == 32
