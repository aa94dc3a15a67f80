"""Custom key stores: the six operations through boto3 and the AWS CLI,
AWS_CLOUDHSM stores over throw-away SoftHSM2 tokens, keys generated and
used inside a token, keys of a store that is not connected Unavailable, a
token that goes away and comes back, a restart, the root key in a token,
and external key stores' settings (kinko has no external key store proxy client yet: connecting
one fails as for a proxy AWS cannot reach).

Skipped when SoftHSM2 is not installed (scripts/setup.sh installs it).
"""
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile

import botocore.exceptions
import pytest

from conftest import KINKO, Server, TEST_STORE, _sanitizer_clean
from helpers import TOKEN_SESSION

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
pytestmark = pytest.mark.skipif(
    not os.path.exists(MODULE) or shutil.which("softhsm2-util") is None,
    reason="SoftHSM2 is not installed (scripts/setup.sh)")

# One token per test that connects a store: a token serves one store.
TOKENS = {name: "cluster-%s" % name.ljust(11, "a") for name in
          ("errors", "state", "keys", "removed", "cli", "restart", "nodes", "missing")}
PINS = {name: "pin-%s-4567" % name for name in TOKENS}
SO_PIN = "so-pin-7654321"

XKS_CRED = {"AccessKeyId": "ABCDEFGHIJKLMNOPQRST",
            "RawSecretAccessKey": "a" * 20 + "B" * 20 + "c0/="}


def error_code(exc):
    return exc.value.response["Error"]["Code"]


class World:
    def __init__(self, root):
        self.root = root
        self.tokendir = os.path.join(root, "tokens")
        self.away = os.path.join(root, "tokens.away")
        os.mkdir(self.tokendir, 0o700)
        self.conf = os.path.join(root, "softhsm2.conf")
        with open(self.conf, "w") as f:
            f.write("directories.tokendir = %s\nobjectstore.backend = file\n" % self.tokendir)
        self.env = dict(os.environ, SOFTHSM2_CONF=self.conf)
        for name in TOKENS:
            subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", name,
                            "--pin", PINS[name], "--so-pin", SO_PIN],
                           check=True, capture_output=True, env=self.env)
        self.anchor_path = os.path.join(root, "customerCA.crt")
        self.other_anchor_path = os.path.join(root, "other.crt")
        for path in (self.anchor_path, self.other_anchor_path):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", path + ".key",
                            "-out", path, "-subj", "/CN=kinko test CA", "-days", "2"],
                           check=True, capture_output=True)
        self.anchor = open(self.anchor_path).read()
        self.other_anchor = open(self.other_anchor_path).read()
        self.config = os.path.join(root, "kinko.json")
        with open(self.config, "w") as f:
            json.dump({"hsm_tokens": [
                {"id": TOKENS[n], "module": MODULE, "token_label": n,
                 "trust_anchor_file": "customerCA.crt"} for n in TOKENS]}, f)
        self.data = os.path.join(root, "data")
        os.mkdir(self.data, 0o700)
        self.server = None

    def start(self):
        os.environ["SOFTHSM2_CONF"] = self.conf  # the server inherits it
        self.server = Server(["--dev", "--config", self.config], data_dir=self.data).start()
        return self.server

    def stop(self):
        rc = self.server.stop()
        _sanitizer_clean(self.server)
        return rc


@pytest.fixture(scope="module")
def world():
    root = tempfile.mkdtemp(prefix="kinko-cks-")
    saved = os.environ.get("SOFTHSM2_CONF")
    w = World(root)
    w.start()
    yield w
    rc = w.stop()
    log = open(w.server.log_path, errors="replace").read()[-3000:]
    w.server.cleanup()
    if saved is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = saved
    shutil.rmtree(root, ignore_errors=True)
    assert rc == 0, "server exited with %s:\n%s" % (rc, log)


@pytest.fixture
def kms(world):
    return world.server.client()


def new_store(kms, world, name, token, pin=None, anchor=None):
    return kms.create_custom_key_store(
        CustomKeyStoreName=name, CloudHsmClusterId=TOKENS[token],
        TrustAnchorCertificate=anchor or world.anchor,
        KeyStorePassword=pin or PINS[token])["CustomKeyStoreId"]


def state(kms, sid):
    e = kms.describe_custom_key_stores(CustomKeyStoreId=sid)["CustomKeyStores"][0]
    return e["ConnectionState"], e.get("ConnectionErrorCode")


def test_create_custom_key_store_errors(kms, world):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_custom_key_store(CustomKeyStoreName="nowhere",
                                    CloudHsmClusterId="cluster-zzzzzzzzzzz",
                                    TrustAnchorCertificate=world.anchor,
                                    KeyStorePassword="1234567")
    assert error_code(e) == "CloudHsmClusterNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_store(kms, world, "wrong-anchor", "errors", anchor=world.other_anchor)
    assert error_code(e) == "IncorrectTrustAnchorException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_custom_key_store(CustomKeyStoreName="no-pin", CloudHsmClusterId=TOKENS["errors"],
                                    TrustAnchorCertificate=world.anchor)
    assert error_code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_custom_key_store(CustomKeyStoreName="bad-id", CloudHsmClusterId="cluster-1111111111111",
                                    TrustAnchorCertificate=world.anchor, KeyStorePassword="1234567")
    assert error_code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_custom_key_store(CustomKeyStoreName="mixed", CloudHsmClusterId=TOKENS["errors"],
                                    TrustAnchorCertificate=world.anchor, KeyStorePassword="1234567",
                                    XksProxyUriPath="/kms/xks/v1")
    assert error_code(e) == "ValidationException"
    sid = new_store(kms, world, "errors-store", "errors")
    assert sid.startswith("cks-") and len(sid) == 21
    # the anchor compares without its line breaks
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_store(kms, world, "errors-store", "state", anchor=world.anchor.replace("\n", "\r\n"))
    assert error_code(e) == "CustomKeyStoreNameInUseException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_store(kms, world, "same-token", "errors")
    assert error_code(e) == "CloudHsmClusterInUseException"
    # another account may not take the token either: a token serves one store
    other = world.server.client(region="eu-west-1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        new_store(other, world, "same-token-elsewhere", "errors")
    assert error_code(e) == "CloudHsmClusterInUseException"
    kms.delete_custom_key_store(CustomKeyStoreId=sid)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.delete_custom_key_store(CustomKeyStoreId=sid)
    assert error_code(e) == "CustomKeyStoreNotFoundException"


def test_describe_paging_and_filters(kms, world):
    made = []
    for i in range(3):
        made.append(kms.create_custom_key_store(
            CustomKeyStoreName="page-%d" % i, CustomKeyStoreType="EXTERNAL_KEY_STORE",
            XksProxyUriEndpoint="https://proxy%d.example.com" % i, XksProxyUriPath="/kms/xks/v1",
            XksProxyConnectivity="PUBLIC_ENDPOINT",
            XksProxyAuthenticationCredential=XKS_CRED)["CustomKeyStoreId"])
    seen, marker = [], None
    while True:
        kw = {"Limit": 1}
        if marker:
            kw["Marker"] = marker
        page = kms.describe_custom_key_stores(**kw)
        assert len(page["CustomKeyStores"]) <= 1
        seen += [s["CustomKeyStoreId"] for s in page["CustomKeyStores"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert set(made) <= set(seen) and len(seen) == len(set(seen))
    assert seen == sorted(seen)
    byname = kms.describe_custom_key_stores(CustomKeyStoreName="page-1")["CustomKeyStores"]
    assert [s["CustomKeyStoreId"] for s in byname] == [made[1]]
    entry = kms.describe_custom_key_stores(CustomKeyStoreId=made[2])["CustomKeyStores"][0]
    assert entry["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE"
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert entry["XksProxyConfiguration"] == {
        "Connectivity": "PUBLIC_ENDPOINT", "AccessKeyId": XKS_CRED["AccessKeyId"],
        "UriEndpoint": "https://proxy2.example.com", "UriPath": "/kms/xks/v1"}
    assert "CreationDate" in entry
    for kw, code in (({"CustomKeyStoreId": "cks-00000000000000000"}, "CustomKeyStoreNotFoundException"),
                     ({"CustomKeyStoreName": "no-such-store"}, "CustomKeyStoreNotFoundException"),
                     ({"Marker": "not-a-marker"}, "InvalidMarkerException")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kms.describe_custom_key_stores(**kw)
        assert error_code(e) == code
    for sid in made:
        kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_state_machine_wrong_pin_and_updates(kms, world):
    sid = new_store(kms, world, "state-store", "state", pin="wrong-pin-123")
    assert state(kms, sid) == ("DISCONNECTED", None)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    kms.connect_custom_key_store(CustomKeyStoreId=sid)  # accepted; the login fails
    assert state(kms, sid) == ("FAILED", "INVALID_CREDENTIALS")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_key(CustomKeyStoreId=sid, Origin="AWS_CLOUDHSM")
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("DISCONNECTED", None)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.update_custom_key_store(CustomKeyStoreId=sid, CloudHsmClusterId=TOKENS["keys"])
    assert error_code(e) == "CloudHsmClusterNotRelatedException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.update_custom_key_store(CustomKeyStoreId=sid, CloudHsmClusterId="cluster-zzzzzzzzzzz")
    assert error_code(e) == "CloudHsmClusterNotFoundException"
    kms.update_custom_key_store(CustomKeyStoreId=sid, KeyStorePassword=PINS["state"])
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("CONNECTED", None)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)  # already connected: no change
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.update_custom_key_store(CustomKeyStoreId=sid, KeyStorePassword="another-pin")
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    kms.update_custom_key_store(CustomKeyStoreId=sid, NewCustomKeyStoreName="state-renamed")
    assert kms.describe_custom_key_stores(CustomKeyStoreName="state-renamed")[
        "CustomKeyStores"][0]["CustomKeyStoreId"] == sid
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.delete_custom_key_store(CustomKeyStoreId=sid)
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_keys_in_a_token(kms, world):
    sid = new_store(kms, world, "keys-store", "keys")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_key(CustomKeyStoreId=sid, Origin="AWS_CLOUDHSM")
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    for kw in ({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}, {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kms.create_key(CustomKeyStoreId=sid, Origin="AWS_CLOUDHSM", **kw)
        assert error_code(e) == "UnsupportedOperationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_key(CustomKeyStoreId="cks-00000000000000000", Origin="AWS_CLOUDHSM")
    assert error_code(e) == "CustomKeyStoreNotFoundException"
    meta = kms.create_key(CustomKeyStoreId=sid, Origin="AWS_CLOUDHSM", Description="in a token")["KeyMetadata"]
    assert meta["Origin"] == "AWS_CLOUDHSM" and meta["CustomKeyStoreId"] == sid
    assert meta["CloudHsmClusterId"] == TOKENS["keys"] and meta["KeyState"] == "Enabled"
    kid = meta["KeyId"]
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["CustomKeyStoreId"] == sid
    ctx = {"purpose": "test"}
    ct = kms.encrypt(KeyId=kid, Plaintext=b"secret bytes", EncryptionContext=ctx)["CiphertextBlob"]
    assert len(ct) == 54 + len(b"secret bytes")  # CIPHERTEXT.md's layout
    assert kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx)["Plaintext"] == b"secret bytes"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.decrypt(CiphertextBlob=ct, EncryptionContext={"purpose": "other"})
    assert error_code(e) == "InvalidCiphertextException"
    tampered = ct[:-1] + bytes([ct[-1] ^ 1])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.decrypt(CiphertextBlob=tampered, EncryptionContext=ctx)
    assert error_code(e) == "InvalidCiphertextException"
    dk = kms.generate_data_key(KeyId=kid, KeySpec="AES_256", EncryptionContext=ctx)
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == dk["Plaintext"]
    wo = kms.generate_data_key_without_plaintext(KeyId=kid, NumberOfBytes=64)
    assert len(kms.decrypt(CiphertextBlob=wo["CiphertextBlob"])["Plaintext"]) == 64
    # ReEncrypt between a token key and a software key, both ways
    soft = kms.create_key()["KeyMetadata"]["KeyId"]
    to_soft = kms.re_encrypt(CiphertextBlob=ct, SourceEncryptionContext=ctx, DestinationKeyId=soft)
    back = kms.re_encrypt(CiphertextBlob=to_soft["CiphertextBlob"], DestinationKeyId=kid)
    assert back["KeyId"].endswith(kid)
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"secret bytes"
    # disconnected: Unavailable, and cryptography refused by the key-state table
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    m = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert m["KeyState"] == "Unavailable" and m["Enabled"] is False
    for call in (lambda: kms.encrypt(KeyId=kid, Plaintext=b"x"),
                 lambda: kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx),
                 lambda: kms.generate_data_key(KeyId=kid, KeySpec="AES_256")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_code(e) == "KMSInvalidStateException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.delete_custom_key_store(CustomKeyStoreId=sid)
    assert error_code(e) == "CustomKeyStoreHasCMKsException"
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx)["Plaintext"] == b"secret bytes"


def test_token_removed_then_reconnected(kms, world):
    sid = new_store(kms, world, "removed-store", "removed")
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    kid = kms.create_key(CustomKeyStoreId=sid)["KeyMetadata"]["KeyId"]  # Origin follows the store
    ct = kms.encrypt(KeyId=kid, Plaintext=b"before")["CiphertextBlob"]
    os.rename(world.tokendir, world.away)
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kms.encrypt(KeyId=kid, Plaintext=b"while away")
        assert error_code(e) == "KMSInvalidStateException"
        assert state(kms, sid) == ("FAILED", "NETWORK_ERRORS")
        assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Unavailable"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kms.connect_custom_key_store(CustomKeyStoreId=sid)
        assert error_code(e) == "CustomKeyStoreInvalidStateException"
        kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
        kms.connect_custom_key_store(CustomKeyStoreId=sid)
        assert state(kms, sid) == ("FAILED", "CLUSTER_NOT_FOUND")
    finally:
        os.rename(world.away, world.tokendir)
    # SoftHSM2 reads its token folder when the module starts: the module
    # starts afresh once no store uses it, so every store of the folder is
    # disconnected first (a FAILED one is disconnected anyway).
    for entry in kms.describe_custom_key_stores()["CustomKeyStores"]:
        if entry["CustomKeyStoreType"] == "AWS_CLOUDHSM" and entry["ConnectionState"] != "DISCONNECTED":
            kms.disconnect_custom_key_store(CustomKeyStoreId=entry["CustomKeyStoreId"])
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("CONNECTED", None)
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"before"


# Destroys, through the PKCS#11 API in a process of its own, the objects whose
# CKA_LABEL is argv[4] in the token labelled argv[2] (argv[1]: the module,
# argv[3]: the PIN); prints how many.
DESTROY_BY_LABEL = TOKEN_SESSION + r"""
label = sys.argv[4].encode()
buf = ctypes.create_string_buffer(label, len(label))
tmpl = (Attr * 1)(Attr(3, ctypes.cast(buf, ctypes.c_void_p), len(label)))  # CKA_LABEL
assert lib.C_FindObjectsInit(sess, tmpl, UL(1)) == 0
objs = (UL * 16)(); got = UL()
assert lib.C_FindObjects(sess, objs, UL(16), ctypes.byref(got)) == 0
lib.C_FindObjectsFinal(sess)
for i in range(got.value):
    assert lib.C_DestroyObject(sess, UL(objs[i])) == 0
lib.C_Logout(sess); lib.C_CloseSession(sess); lib.C_Finalize(None)
print(got.value)
"""


def test_key_object_removed_in_the_token(kms, world):
    """An object removed in the token behind kinko's back makes its key unusable
    (KMSInvalidStateException), not the token: the store stays CONNECTED and its
    other keys keep working."""
    sid = new_store(kms, world, "missing-store", "missing")
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    gone = kms.create_key(CustomKeyStoreId=sid)["KeyMetadata"]
    kept = kms.create_key(CustomKeyStoreId=sid)["KeyMetadata"]["KeyId"]
    old = kms.encrypt(KeyId=gone["KeyId"], Plaintext=b"made before")["CiphertextBlob"]
    ct = kms.encrypt(KeyId=kept, Plaintext=b"kept")["CiphertextBlob"]
    out = subprocess.run(["/usr/bin/python3", "-c", DESTROY_BY_LABEL, MODULE, "missing",
                          PINS["missing"], "kinko " + gone["Arn"]],
                         capture_output=True, text=True, env=world.env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == 1
    for call in (lambda: kms.encrypt(KeyId=gone["KeyId"], Plaintext=b"x"),
                 lambda: kms.decrypt(CiphertextBlob=old),
                 lambda: kms.generate_data_key(KeyId=gone["KeyId"], KeySpec="AES_256")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert error_code(e) == "KMSInvalidStateException", e.value.response
    assert state(kms, sid) == ("CONNECTED", None)
    assert kms.describe_key(KeyId=kept)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"kept"
    again = kms.encrypt(KeyId=kept, Plaintext=b"still")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=again)["Plaintext"] == b"still"
    log = open(world.server.log_path, errors="replace").read()
    assert "holds no object for the key's material" in log
    assert "token %s went away" % TOKENS["missing"] not in log


def xks_store(kms, name, endpoint, path="/kms/xks/v1", **kw):
    args = dict(CustomKeyStoreName=name, CustomKeyStoreType="EXTERNAL_KEY_STORE",
                XksProxyUriEndpoint=endpoint, XksProxyUriPath=path,
                XksProxyConnectivity="PUBLIC_ENDPOINT",
                XksProxyAuthenticationCredential=XKS_CRED)
    args.update(kw)
    return kms.create_custom_key_store(**args)["CustomKeyStoreId"]


def test_external_key_store_settings(kms, world):
    bad = [
        ({"XksProxyUriPath": "/not/the/xks/path"}, "ValidationException"),
        ({"XksProxyUriEndpoint": "http://plain.example.com"}, "ValidationException"),
        ({"XksProxyAuthenticationCredential": {"AccessKeyId": "lowercase-is-wrong-xx",
                                               "RawSecretAccessKey": XKS_CRED["RawSecretAccessKey"]}},
         "XksProxyIncorrectAuthenticationCredentialException"),
        ({"XksProxyAuthenticationCredential": {"AccessKeyId": XKS_CRED["AccessKeyId"],
                                               "RawSecretAccessKey": "too-short"}},
         "XksProxyIncorrectAuthenticationCredentialException"),
        ({"XksProxyConnectivity": "VPC_ENDPOINT_SERVICE"}, "ValidationException"),
        ({"XksProxyVpcEndpointServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"},
         "XksProxyInvalidConfigurationException"),
        ({"KeyStorePassword": "1234567"}, "ValidationException"),
    ]
    raw = world.server.client(validate=False)  # the server checks, not the SDK
    for kw, code in bad:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            xks_store(raw, "xks-bad", "https://xks.example.com", **kw)
        assert error_code(e) == code, kw
    # a proxy on loopback port 443 where nothing listens (test_external_keystores.py
    # connects to a running one)
    sid = xks_store(kms, "xks-1", "https://127.0.0.1", path="/tenant-1/kms/xks/v1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        xks_store(kms, "xks-2", "https://127.0.0.1", path="/tenant-1/kms/xks/v1")
    assert error_code(e) == "XksProxyUriInUseException"
    vpc = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"
    sid2 = xks_store(kms, "xks-vpc", "https://private.example.com",
                     XksProxyConnectivity="VPC_ENDPOINT_SERVICE", XksProxyVpcEndpointServiceName=vpc)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        xks_store(kms, "xks-vpc-2", "https://private.example.com", path="/other/kms/xks/v1",
                  XksProxyConnectivity="VPC_ENDPOINT_SERVICE", XksProxyVpcEndpointServiceName=vpc)
    assert error_code(e) == "XksProxyUriEndpointInUseException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        xks_store(kms, "xks-vpc-3", "https://private2.example.com",
                  XksProxyConnectivity="VPC_ENDPOINT_SERVICE", XksProxyVpcEndpointServiceName=vpc)
    assert error_code(e) == "XksProxyVpcEndpointServiceInUseException"
    # the proxy cannot be reached: the store is FAILED
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("FAILED", "XKS_PROXY_NOT_REACHABLE")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.update_custom_key_store(CustomKeyStoreId=sid, XksProxyUriPath="/kms/xks/v2")
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_key(CustomKeyStoreId=sid, Origin="EXTERNAL_KEY_STORE", XksKeyId="key-1")
    assert error_code(e) == "CustomKeyStoreInvalidStateException"
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.update_custom_key_store(CustomKeyStoreId=sid, KeyStorePassword="1234567")
    assert error_code(e) == "ValidationException"
    kms.update_custom_key_store(CustomKeyStoreId=sid, XksProxyUriPath="/kms/xks/v2")
    cfg = kms.describe_custom_key_stores(CustomKeyStoreId=sid)["CustomKeyStores"][0]["XksProxyConfiguration"]
    assert cfg["UriPath"] == "/kms/xks/v2" and cfg["AccessKeyId"] == XKS_CRED["AccessKeyId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:  # the other store's proxy
        kms.update_custom_key_store(CustomKeyStoreId=sid, XksProxyUriEndpoint="https://private.example.com",
                                    XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
                                    XksProxyVpcEndpointServiceName=vpc)
    assert error_code(e) == "XksProxyUriEndpointInUseException"
    for s in (sid, sid2):
        kms.delete_custom_key_store(CustomKeyStoreId=s)


def test_aws_cli(world):
    s = world.server
    _, out, _ = s.aws("kms", "create-custom-key-store", "--custom-key-store-name", "cli-store",
                      "--cloud-hsm-cluster-id", TOKENS["cli"], "--trust-anchor-certificate",
                      "file://" + world.anchor_path, "--key-store-password", PINS["cli"])
    sid = json.loads(out)["CustomKeyStoreId"]
    s.aws("kms", "connect-custom-key-store", "--custom-key-store-id", sid)
    _, out, _ = s.aws("kms", "describe-custom-key-stores", "--custom-key-store-name", "cli-store")
    entry = json.loads(out)["CustomKeyStores"][0]
    assert entry["ConnectionState"] == "CONNECTED" and entry["CloudHsmClusterId"] == TOKENS["cli"]
    _, out, _ = s.aws("kms", "create-key", "--origin", "AWS_CLOUDHSM", "--custom-key-store-id", sid)
    kid = json.loads(out)["KeyMetadata"]["KeyId"]
    _, out, _ = s.aws("kms", "encrypt", "--key-id", kid, "--plaintext", "aGVsbG8=")
    blob = json.loads(out)["CiphertextBlob"]
    _, out, _ = s.aws("kms", "decrypt", "--ciphertext-blob", "fileb://" + write_blob(world, blob))
    assert json.loads(out)["Plaintext"] == "aGVsbG8="
    rc, _, err = s.aws("kms", "delete-custom-key-store", "--custom-key-store-id", sid, check=False)
    assert rc != 0 and "CustomKeyStoreInvalidStateException" in err
    s.aws("kms", "update-custom-key-store", "--custom-key-store-id", sid,
          "--new-custom-key-store-name", "cli-store-renamed")
    s.aws("kms", "disconnect-custom-key-store", "--custom-key-store-id", sid)
    _, out, _ = s.aws("kms", "describe-key", "--key-id", kid)
    assert json.loads(out)["KeyMetadata"]["KeyState"] == "Unavailable"
    rc, _, err = s.aws("kms", "delete-custom-key-store", "--custom-key-store-id", sid, check=False)
    assert rc != 0 and "CustomKeyStoreHasCMKsException" in err


def write_blob(world, b64):
    import base64
    path = os.path.join(world.root, "blob.bin")
    with open(path, "wb") as f:
        f.write(base64.b64decode(b64))
    return path


def test_pin_never_stored_or_logged_and_restart(kms, world):
    sid = new_store(kms, world, "restart-store", "restart")
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    kid = kms.create_key(CustomKeyStoreId=sid, Origin="AWS_CLOUDHSM")["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"survives a restart")["CiphertextBlob"]
    doc = kms.describe_custom_key_stores(CustomKeyStoreId=sid)["CustomKeyStores"][0]
    assert "KeyStorePassword" not in json.dumps(doc, default=str)
    world.stop()
    try:
        log = open(world.server.log_path, errors="replace").read()
        audit = os.path.join(world.data, "audit")
        for f in os.listdir(audit):  # the audit trail drops the PIN and the proxy secret
            log += open(os.path.join(audit, f), errors="replace").read()
        assert "CreateCustomKeyStore" in log
        for name in PINS:
            assert PINS[name] not in log
        assert XKS_CRED["RawSecretAccessKey"] not in log
        if TEST_STORE == "sqlite":
            db = sqlite3.connect(os.path.join(world.data, "kinko.db"))
            rows = db.execute("SELECT doc FROM docs WHERE kind = 'customkeystore'").fetchall()
            db.close()
            assert rows
            for (text,) in rows:
                text = text if isinstance(text, str) else bytes(text).decode()
                for name in PINS:
                    assert PINS[name] not in text
                assert XKS_CRED["RawSecretAccessKey"] not in text
    finally:
        world.start()
    kms = world.server.client()
    # a CONNECTED store logs in again when its key is next used
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"survives a restart"
    assert state(kms, sid) == ("CONNECTED", None)


def test_root_key_in_a_token(world):
    """--root-key pkcs11:...: the root key never leaves the token, a restart
    still decrypts everything, a wrong PIN or another object is refused."""
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "rootkeys",
                    "--pin", "root-pin-123", "--so-pin", SO_PIN],
                   check=True, capture_output=True, env=world.env)
    pin = os.path.join(world.root, "root.pin")
    with open(pin, "w") as f:
        f.write("root-pin-123\n")
    uri = ("pkcs11:token=rootkeys;object=kinko-root?module-path=%s&pin-source=file:%s"
           % (MODULE, pin))
    data = tempfile.mkdtemp(prefix="kinko-cks-root-", dir=world.root)
    os.environ["SOFTHSM2_CONF"] = world.conf
    s = Server(["--dev", "--root-key", uri], data_dir=data).start()
    try:
        kms = s.client()
        kid = kms.create_key()["KeyMetadata"]["KeyId"]
        ct = kms.encrypt(KeyId=kid, Plaintext=b"under a token root")["CiphertextBlob"]
        sm = s.client("secretsmanager")
        sm.create_secret(Name="token-root-secret", SecretString="kept")
    finally:
        assert s.stop() == 0
    assert not os.path.exists(os.path.join(data, "root.key"))
    s = Server(["--dev", "--root-key", uri], data_dir=data).start()
    try:
        kms = s.client()
        assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"under a token root"
        sm = s.client("secretsmanager")
        assert sm.get_secret_value(SecretId="token-root-secret")["SecretString"] == "kept"
    finally:
        assert s.stop() == 0
        _sanitizer_clean(s)
    # another object of the token is another root key: the store refuses it
    other = uri.replace("object=kinko-root", "object=another-root")
    wrong_pin = os.path.join(world.root, "wrong.pin")
    with open(wrong_pin, "w") as f:
        f.write("not-the-pin\n")
    # a first line longer than a PIN is refused before any login, not cut short
    long_pin = os.path.join(world.root, "long.pin")
    with open(long_pin, "w") as f:
        f.write("p" * 129 + "\n")
    for bad, why in ((other, "does not match the store"),
                     (uri.replace(pin, wrong_pin), "INVALID_CREDENTIALS"),
                     (uri.replace(pin, long_pin), "longer than 128 characters")):
        p = subprocess.run([KINKO, "serve", "--dev",
                            "--root-key", bad, "--data", data, "--listen", "127.0.0.1:0"]
                           + (["--store", s.args[s.args.index("--store") + 1]]
                              if "--store" in s.args else []),
                           capture_output=True, text=True, timeout=60, env=world.env)
        assert p.returncode != 0 and why in p.stderr, p.stderr[-2000:]
    shutil.rmtree(data, ignore_errors=True)


def test_token_removed_under_load(kms, world):
    """Threads encrypting under a token key while its token goes away: each
    call succeeds or answers KMSInvalidStateException, the server lives on,
    and the store comes back with Disconnect and Connect."""
    import concurrent.futures
    import threading
    sid = kms.describe_custom_key_stores(CustomKeyStoreName="keys-store")["CustomKeyStores"][0][
        "CustomKeyStoreId"]
    if state(kms, sid)[0] != "DISCONNECTED":
        kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    kid = kms.create_key(CustomKeyStoreId=sid)["KeyMetadata"]["KeyId"]
    removed = threading.Event()

    def work(i):
        c = world.server.client()
        outcomes = set()
        for n in range(40):
            if i == 0 and n == 10:
                os.rename(world.tokendir, world.away)
                removed.set()
            try:
                ct = c.encrypt(KeyId=kid, Plaintext=b"load %d %d" % (i, n))["CiphertextBlob"]
                assert c.decrypt(CiphertextBlob=ct)["Plaintext"] == b"load %d %d" % (i, n)
                outcomes.add("ok")
            except botocore.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == "KMSInvalidStateException", e
                outcomes.add("unavailable")
        return outcomes

    try:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = set().union(*pool.map(work, range(6)))
    finally:
        if removed.is_set():
            os.rename(world.away, world.tokendir)
    assert results == {"ok", "unavailable"}
    assert state(kms, sid) == ("FAILED", "NETWORK_ERRORS")
    for entry in kms.describe_custom_key_stores()["CustomKeyStores"]:
        if entry["CustomKeyStoreType"] == "AWS_CLOUDHSM" and entry["ConnectionState"] != "DISCONNECTED":
            kms.disconnect_custom_key_store(CustomKeyStoreId=entry["CustomKeyStoreId"])
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    ct = kms.encrypt(KeyId=kid, Plaintext=b"after")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"after"


@pytest.mark.skipif(shutil.which("pg_ctl") is None and not any(
    os.path.exists("/usr/lib/postgresql/%d/bin/pg_ctl" % v) for v in range(10, 20)),
    reason="PostgreSQL is not installed")
def test_two_nodes_share_a_store(world, postgres):
    """Two nodes on one PostgreSQL database and one token folder: the other
    node logs in when it first uses the store, and stops using the token
    within moments of a Disconnect on the first."""
    import time
    url = postgres.create_database("cks_nodes_%d" % os.getpid())
    da, db = (tempfile.mkdtemp(prefix="kinko-cks-node-", dir=world.root) for _ in range(2))
    os.environ["SOFTHSM2_CONF"] = world.conf
    a = Server(["--dev", "--config", world.config, "--store", url], data_dir=da).start()
    b = Server(["--dev", "--config", world.config, "--store", url,
                "--root-key", os.path.join(da, "root.key")], data_dir=db).start()
    try:
        ka, kb = a.client(), b.client()
        sid = new_store(ka, world, "nodes-store", "nodes")
        ka.connect_custom_key_store(CustomKeyStoreId=sid)
        kid = ka.create_key(CustomKeyStoreId=sid)["KeyMetadata"]["KeyId"]
        ct = ka.encrypt(KeyId=kid, Plaintext=b"shared")["CiphertextBlob"]
        assert kb.decrypt(CiphertextBlob=ct)["Plaintext"] == b"shared"  # b logs in
        ka.disconnect_custom_key_store(CustomKeyStoreId=sid)
        deadline = time.monotonic() + 5
        while True:
            try:
                kb.encrypt(KeyId=kid, Plaintext=b"x")
            except botocore.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == "KMSInvalidStateException"
                break
            assert time.monotonic() < deadline, "node b still uses the token"
            time.sleep(0.05)
        assert kb.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Unavailable"
        ka.connect_custom_key_store(CustomKeyStoreId=sid)
        assert kb.decrypt(CiphertextBlob=ct)["Plaintext"] == b"shared"
    finally:
        for s in (a, b):
            assert s.stop() == 0
            _sanitizer_clean(s)
