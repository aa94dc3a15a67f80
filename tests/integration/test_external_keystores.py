"""External key stores in KMS through kinko's XKS client: a second kinko
serves the XKS proxy API (`--xks-listen`, HTTPS under a certificate made
here, SigV4 credentials from its config); the first kinko, the KMS, trusts
that certificate (`--xks-proxy-ca`) and connects EXTERNAL_KEY_STORE custom
key stores to it with ConnectCustomKeyStore (GetHealthStatus), through
boto3 and the AWS CLI.

AWS's XksProxyUriEndpoint has no port, so the proxy listens on port 443 of
an address of the loopback range picked at random (127.A.B.C): no other
run's proxy is there, and a neighbouring address has nothing listening.

Keys in those stores (CreateKey with XksKeyId) are double-encrypted: under
kinko's own material, then by the proxy under the external key, which is
a key of the proxy's own kinko (its `xks.keys` map, by alias)."""
import json
import os
import base64
import hashlib
import random
import shutil
import signal
import ssl
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials

import pytest

from conftest import Server, _sanitizer_clean

URI_PATH = "/kms/xks/v1"
ACCESS_KEY = "BA6ALBUAHQZQ3SXO3IVDI6ONPE"
SECRET = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE="
WRONG_SECRET = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8="
# The proxy's external keys: external key id -> an alias of the proxy's kinko.
EXTERNAL_KEYS = ("ext-1", "ext-2", "ext-3", "ext-4", "ext-5", "ext-sm", "ext-off", "ext-hmac")


def proxy_key_map():
    return {x: "arn:aws:kms:us-east-1:000000000000:alias/" + x for x in EXTERNAL_KEYS}


def proxy_kms(proxy, cert):
    """A KMS client of the proxy's own kinko (HTTPS under the test certificate)."""
    import boto3
    import botocore.config
    return boto3.client("kms", endpoint_url=proxy.endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", verify=cert,
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def make_external_keys(proxy, cert):
    """The proxy kinko's keys behind the external key ids."""
    pk = proxy_kms(proxy, cert)
    for x in EXTERNAL_KEYS:
        if x == "ext-hmac":
            kid = pk.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
        else:
            kid = pk.create_key()
        kid = kid["KeyMetadata"]["KeyId"]
        pk.create_alias(AliasName="alias/" + x, TargetKeyId=kid)
        if x == "ext-off":
            pk.disable_key(KeyId=kid)


def make_cert(d, ip):
    """A self-signed certificate for the proxy with IP:ip as its name (and
    127.0.0.1, where the proxy's own KMS listener is)."""
    cert, key = os.path.join(d, "proxy-cert.pem"), os.path.join(d, "proxy-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + ip,
                    "-addext", "subjectAltName=IP:%s,IP:127.0.0.1" % ip, "-addext",
                    "basicConstraints=critical,CA:TRUE", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


def can_bind_443():
    """Port 443 is privileged unless net.ipv4.ip_unprivileged_port_start says not."""
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read()) <= 443
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def world():
    if not can_bind_443():
        pytest.skip("the proxy must listen on port 443 (XksProxyUriEndpoint has no port): "
                    "run as root, or lower net.ipv4.ip_unprivileged_port_start")
    d = tempfile.mkdtemp(prefix="kinko-xkswire-")
    ip = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 254),
                           random.randint(2, 253))
    cert, key = make_cert(d, ip)
    cfg = os.path.join(d, "proxy.json")
    with open(cfg, "w") as f:
        json.dump({"xks": {"uri_path": URI_PATH, "region": "us-east-1",
                           "credentials": [{"access_key_id": ACCESS_KEY,
                                            "secret_access_key": SECRET}],
                           "keys": proxy_key_map()}}, f)
    pdata = os.path.join(d, "proxy-data")
    os.mkdir(pdata)
    proxy_args = ["--dev", "--tls-cert", cert, "--tls-key", key, "--config", cfg,
                  "--xks-listen", ip + ":443"]
    proxy = Server(proxy_args, data_dir=pdata).start()
    line = proxy.proc.stdout.readline().decode()
    assert "XKS proxy listening on https://%s:443" % ip in line, line
    make_external_keys(proxy, cert)
    kdata = os.path.join(d, "kms-data")
    os.mkdir(kdata)
    kms_server = Server(["--dev", "--xks-proxy-ca", cert], data_dir=kdata).start()

    class World:
        pass
    w = World()
    w.ip, w.proxy, w.server, w.proxy_args, w.pdata = ip, proxy, kms_server, proxy_args, pdata
    w.cert = cert
    w.endpoint = "https://" + ip
    # a neighbour of the proxy's address: loopback, nothing listens there
    parts = ip.split(".")
    w.nowhere = "https://%s.%s.%s.%d" % (parts[0], parts[1], parts[2], int(parts[3]) + 1)
    yield w
    rcs = [kms_server.stop(), w.proxy.stop()]
    _sanitizer_clean(kms_server)
    _sanitizer_clean(w.proxy)
    shutil.rmtree(d, ignore_errors=True)
    assert rcs == [0, 0]


def create_store(kms, name, endpoint, secret=SECRET):
    return kms.create_custom_key_store(
        CustomKeyStoreName=name, CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint=endpoint, XksProxyUriPath=URI_PATH,
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY,
                                          "RawSecretAccessKey": secret})["CustomKeyStoreId"]


def state(kms, sid):
    e = kms.describe_custom_key_stores(CustomKeyStoreId=sid)["CustomKeyStores"][0]
    return e["ConnectionState"], e.get("ConnectionErrorCode")


def test_connect_disconnect(world):
    kms = world.server.client()
    sid = create_store(kms, "xks-ok", world.endpoint)
    assert state(kms, sid) == ("DISCONNECTED", None)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("CONNECTED", None)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)  # connected already: no change
    assert state(kms, sid) == ("CONNECTED", None)
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("DISCONNECTED", None)
    kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_wrong_credential_then_updated(world):
    kms = world.server.client()
    sid = create_store(kms, "xks-wrong", world.endpoint, secret=WRONG_SECRET)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("FAILED", "INVALID_CREDENTIALS")
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.update_custom_key_store(
        CustomKeyStoreId=sid,
        XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY, "RawSecretAccessKey": SECRET})
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("CONNECTED", None)
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_wrong_path_and_unreachable(world):
    kms = world.server.client()
    sid = kms.create_custom_key_store(
        CustomKeyStoreName="xks-path", CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint=world.endpoint, XksProxyUriPath="/other/kms/xks/v1",
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY,
                                          "RawSecretAccessKey": SECRET})["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("FAILED", "XKS_PROXY_INVALID_CONFIGURATION")
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.delete_custom_key_store(CustomKeyStoreId=sid)
    sid = create_store(kms, "xks-nowhere", world.nowhere)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("FAILED", "XKS_PROXY_NOT_REACHABLE")
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_proxy_stopped_then_reconnect_with_aws_cli(world):
    s = world.server
    _, out, _ = s.aws("kms", "create-custom-key-store", "--custom-key-store-name", "xks-cli",
                      "--custom-key-store-type", "EXTERNAL_KEY_STORE",
                      "--xks-proxy-uri-endpoint", world.endpoint,
                      "--xks-proxy-uri-path", URI_PATH,
                      "--xks-proxy-connectivity", "PUBLIC_ENDPOINT",
                      "--xks-proxy-authentication-credential",
                      "AccessKeyId=%s,RawSecretAccessKey=%s" % (ACCESS_KEY, SECRET))
    sid = json.loads(out)["CustomKeyStoreId"]
    assert world.proxy.stop() == 0
    s.aws("kms", "connect-custom-key-store", "--custom-key-store-id", sid)
    _, out, _ = s.aws("kms", "describe-custom-key-stores", "--custom-key-store-id", sid)
    entry = json.loads(out)["CustomKeyStores"][0]
    assert (entry["ConnectionState"], entry["ConnectionErrorCode"]) == \
        ("FAILED", "XKS_PROXY_NOT_REACHABLE")
    world.proxy = Server(world.proxy_args, data_dir=world.pdata).start()
    assert "XKS proxy listening" in world.proxy.proc.stdout.readline().decode()
    s.aws("kms", "disconnect-custom-key-store", "--custom-key-store-id", sid)
    s.aws("kms", "connect-custom-key-store", "--custom-key-store-id", sid)
    _, out, _ = s.aws("kms", "describe-custom-key-stores", "--custom-key-store-id", sid)
    assert json.loads(out)["CustomKeyStores"][0]["ConnectionState"] == "CONNECTED"
    s.aws("kms", "disconnect-custom-key-store", "--custom-key-store-id", sid)
    s.aws("kms", "delete-custom-key-store", "--custom-key-store-id", sid)


# ---- keys in external key stores ------------------------------------------------


@pytest.fixture(scope="module")
def xstore(world):
    """One external key store for the key tests (two stores may not share the
    proxy's URI); each test finds it CONNECTED. An external key serves one KMS
    key of the store, deleted or not, so each test takes its own."""
    kms = world.server.client()
    sid = create_store(kms, "xks-keys", world.endpoint)
    yield sid


def connected_store(kms, sid):
    if state(kms, sid)[0] != "CONNECTED":
        if state(kms, sid)[0] != "DISCONNECTED":
            kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
        kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert state(kms, sid) == ("CONNECTED", None)
    return sid


def create_xks_key(kms, sid, xks_key_id):
    return kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid,
                          XksKeyId=xks_key_id)["KeyMetadata"]


def error_code(fn, **kw):
    with pytest.raises(Exception) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"].get("Message", "")


def drop_keys(kms, keys):
    for k in keys:
        kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=7)


def test_xks_key_double_encryption_round_trips(world, xstore):
    kms = world.server.client()
    sid = connected_store(kms, xstore)
    md = create_xks_key(kms, sid, "ext-1")
    assert md["Origin"] == "EXTERNAL_KEY_STORE"
    assert md["CustomKeyStoreId"] == sid
    assert md["XksKeyConfiguration"] == {"Id": "ext-1"}
    assert md["KeyState"] == "Enabled" and md["KeySpec"] == "SYMMETRIC_DEFAULT"
    kid = md["KeyId"]
    d = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert (d["Origin"], d["CustomKeyStoreId"], d["XksKeyConfiguration"]) == \
        ("EXTERNAL_KEY_STORE", sid, {"Id": "ext-1"})

    ctx = {"purpose": "xks", "dept": "x"}
    blob = kms.encrypt(KeyId=kid, Plaintext=b"double sealed", EncryptionContext=ctx)
    ct = blob["CiphertextBlob"]
    assert ct[:2] == b"K\x02"  # format 2: both layers
    out = kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx)
    assert out["Plaintext"] == b"double sealed" and out["KeyId"] == md["Arn"]
    assert kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx, KeyId=kid)["Plaintext"] == \
        b"double sealed"
    assert error_code(kms.decrypt, CiphertextBlob=ct,
                      EncryptionContext={"purpose": "other", "dept": "x"})[0] == \
        "InvalidCiphertextException"
    assert error_code(kms.decrypt, CiphertextBlob=ct)[0] == "InvalidCiphertextException"
    tampered = ct[:-1] + bytes([ct[-1] ^ 1])
    assert error_code(kms.decrypt, CiphertextBlob=tampered,
                      EncryptionContext=ctx)[0] == "InvalidCiphertextException"

    # GenerateDataKey (with and without the plaintext)
    dk = kms.generate_data_key(KeyId=kid, KeySpec="AES_256", EncryptionContext=ctx)
    assert len(dk["Plaintext"]) == 32 and dk["CiphertextBlob"][:2] == b"K\x02"
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"],
                       EncryptionContext=ctx)["Plaintext"] == dk["Plaintext"]
    wp = kms.generate_data_key_without_plaintext(KeyId=kid, NumberOfBytes=16)
    assert "Plaintext" not in wp
    assert len(kms.decrypt(CiphertextBlob=wp["CiphertextBlob"])["Plaintext"]) == 16

    # ReEncrypt to a software key and back
    soft = kms.create_key()["KeyMetadata"]["KeyId"]
    r = kms.re_encrypt(CiphertextBlob=ct, SourceEncryptionContext=ctx,
                       DestinationKeyId=soft, DestinationEncryptionContext={"a": "b"})
    assert r["CiphertextBlob"][:2] == b"K\x01"
    back = kms.re_encrypt(CiphertextBlob=r["CiphertextBlob"], SourceEncryptionContext={"a": "b"},
                          DestinationKeyId=kid)
    assert back["CiphertextBlob"][:2] == b"K\x02" and back["KeyId"] == md["Arn"]
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"double sealed"

    # the largest plaintext still fits a ciphertext Decrypt accepts
    big = os.urandom(4096)
    ct = kms.encrypt(KeyId=kid, Plaintext=big)["CiphertextBlob"]
    assert len(ct) <= 6144 and kms.decrypt(CiphertextBlob=ct)["Plaintext"] == big

    # other paths that would skip the proxy's layer are refused
    assert error_code(kms.generate_data_key_pair, KeyId=kid, KeyPairSpec="ECC_NIST_P256")[0] == \
        "UnsupportedOperationException"
    assert error_code(kms.enable_key_rotation, KeyId=kid)[0] == "UnsupportedOperationException"

    # a store with keys cannot be deleted
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert error_code(kms.delete_custom_key_store, CustomKeyStoreId=sid)[0] == \
        "CustomKeyStoreHasCMKsException"
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    drop_keys(kms, [kid, soft])


def test_xks_create_key_errors(world, xstore):
    kms = world.server.client()
    sid = connected_store(kms, xstore)
    bad = [
        (dict(XksKeyId="ext-1"), "ValidationException"),  # no Origin
        (dict(Origin="EXTERNAL_KEY_STORE", XksKeyId="ext-1"), "ValidationException"),
        (dict(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid), "ValidationException"),
        (dict(Origin="AWS_KMS", CustomKeyStoreId=sid, XksKeyId="ext-1"), "ValidationException"),
        (dict(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="bad id!"),
         "ValidationException"),
        (dict(Origin="AWS_CLOUDHSM", CustomKeyStoreId=sid), "UnsupportedOperationException"),
        (dict(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="ext-1",
              KeySpec="RSA_2048"), "UnsupportedOperationException"),
        (dict(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId="cks-1234567890abcdef1",
              XksKeyId="ext-1"), "CustomKeyStoreNotFoundException"),
        (dict(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="ext-none"),
         "XksKeyNotFoundException"),
        (dict(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="ext-off"),
         "XksKeyInvalidConfigurationException"),
        (dict(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId="ext-hmac"),
         "XksKeyInvalidConfigurationException"),
    ]
    for kw, code in bad:
        assert error_code(kms.create_key, **kw)[0] == code, kw
    kid = create_xks_key(kms, sid, "ext-2")["KeyId"]
    code, msg = error_code(create_xks_key, kms=kms, sid=sid, xks_key_id="ext-2")
    assert code == "XksKeyAlreadyInUseException", msg
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert error_code(create_xks_key, kms=kms, sid=sid, xks_key_id="ext-4")[0] == \
        "CustomKeyStoreInvalidStateException"
    # a key of a disconnected store is Unavailable; its cryptography KMSInvalidStateException
    d = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert (d["KeyState"], d["Enabled"]) == ("Unavailable", False)
    assert error_code(kms.encrypt, KeyId=kid, Plaintext=b"x")[0] == "KMSInvalidStateException"
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    drop_keys(kms, [kid])


def canonical_context(ctx):
    out = struct.pack(">I", len(ctx))
    for k in sorted(ctx, key=lambda s: s.encode()):
        for s in (k, ctx[k]):
            out += struct.pack(">I", len(s.encode())) + s.encode()
    return out


def parse_format2(blob):
    """header (22), IV, ciphertextMetadata, tag, the proxy's ciphertext."""
    header, rest = blob[:22], blob[22:]
    iv, rest = rest[1:1 + rest[0]], rest[1 + rest[0]:]
    meta, rest = rest[1:1 + rest[0]], rest[1 + rest[0]:]
    return header, iv, meta, rest[:16], rest[16:]


def proxy_decrypt(world, key_id, body):
    """The proxy's own Decrypt, called directly with its credential."""
    url = world.endpoint + URI_PATH + "/keys/%s/decrypt" % key_id
    req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET),
                            "kms-xks-proxy", "us-east-1").add_auth(req)
    p = req.prepare()
    ctx = ssl.create_default_context(cafile=world.cert)
    r = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=10, context=ctx) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise AssertionError("the proxy's Decrypt: %d %s" % (e.code, e.read()))


def test_xks_neither_layer_alone(world, xstore):
    """The proxy's key alone gives back only kinko's layer, which needs kinko's
    material; kinko's material alone (the proxy's key disabled) opens nothing."""
    kms = world.server.client()
    sid = connected_store(kms, xstore)
    md = create_xks_key(kms, sid, "ext-3")
    kid = md["KeyId"]
    ctx = {"tenant": "t1"}
    secret = b"only both layers open this"
    blob = kms.encrypt(KeyId=kid, Plaintext=secret, EncryptionContext=ctx)["CiphertextBlob"]
    header, iv, meta, tag, sealed = parse_format2(blob)
    assert secret not in blob
    aad = header + hashlib.sha256(canonical_context(ctx)).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    body = {"requestMetadata": {"awsPrincipalArn": "arn:aws:iam::000000000000:root",
                                "kmsOperation": "Decrypt", "kmsRequestId": "test",
                                "kmsKeyArn": md["Arn"]},
            "encryptionAlgorithm": "AES_GCM", "ciphertext": b64(sealed),
            "initializationVector": b64(iv), "authenticationTag": b64(tag),
            "additionalAuthenticatedData": b64(aad)}
    if meta:
        body["ciphertextMetadata"] = b64(meta)
    inner = base64.b64decode(proxy_decrypt(world, "ext-3", body)["plaintext"])
    # the proxy's layer off: what remains is kinko's format-1 blob, still sealed
    assert inner[:2] == b"K\x01" and inner[2:18] == header[2:18]
    assert secret not in inner and len(inner) == len(secret) + 54
    # ... which kinko does not accept in place of the double-encrypted blob
    assert error_code(kms.decrypt, CiphertextBlob=inner, EncryptionContext=ctx)[0] == \
        "InvalidCiphertextException"
    # kinko's material alone: the proxy's key disabled, nothing decrypts
    pk = proxy_kms(world.proxy, world.cert)
    behind = pk.describe_key(KeyId="alias/ext-3")["KeyMetadata"]["KeyId"]
    pk.disable_key(KeyId=behind)
    code, msg = error_code(kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx)
    assert code == "KMSInvalidStateException" and "XksKeyInvalidConfigurationException" in msg, msg
    pk.enable_key(KeyId=behind)
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == secret
    drop_keys(kms, [kid])


def test_xks_proxy_down_bounded_then_back(world, xstore):
    """A proxy that is gone, or hangs, is KMSInvalidStateException within the
    client's timeout; once it is back (and the store reconnected) it works."""
    kms = world.server.client()
    sid = connected_store(kms, xstore)
    kid = create_xks_key(kms, sid, "ext-4")["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"before")["CiphertextBlob"]

    world.proxy.proc.send_signal(signal.SIGSTOP)  # hangs: connections open, no answer
    try:
        t0 = time.monotonic()
        code, msg = error_code(kms.decrypt, CiphertextBlob=ct)
        waited = time.monotonic() - t0
    finally:
        world.proxy.proc.send_signal(signal.SIGCONT)
    assert code == "KMSInvalidStateException" and "XksProxyUriUnreachableException" in msg, msg
    assert "in time" in msg and waited < 6, (waited, msg)

    assert world.proxy.stop() == 0
    t0 = time.monotonic()
    code, msg = error_code(kms.encrypt, KeyId=kid, Plaintext=b"x")
    assert code == "KMSInvalidStateException" and "XksProxyUriUnreachableException" in msg, msg
    assert time.monotonic() - t0 < 6
    # the AWS CLI sees the same
    rc, _, err = world.server.aws("kms", "decrypt", "--ciphertext-blob",
                                  "fileb://" + write_tmp(ct), check=False)
    assert rc != 0 and "KMSInvalidStateException" in err

    world.proxy = Server(world.proxy_args, data_dir=world.pdata).start()
    assert "XKS proxy listening" in world.proxy.proc.stdout.readline().decode()
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"before"
    drop_keys(kms, [kid])


def write_tmp(data):
    f = tempfile.NamedTemporaryFile(delete=False, suffix=".bin")
    f.write(data)
    f.close()
    return f.name


def test_xks_key_with_aws_cli(world, xstore):
    s = world.server
    kms = s.client()
    sid = connected_store(kms, xstore)
    _, out, _ = s.aws("kms", "create-key", "--origin", "EXTERNAL_KEY_STORE",
                      "--custom-key-store-id", sid, "--xks-key-id", "ext-5")
    md = json.loads(out)["KeyMetadata"]
    assert md["XksKeyConfiguration"] == {"Id": "ext-5"} and md["Origin"] == "EXTERNAL_KEY_STORE"
    pt = write_tmp(b"from the cli")
    _, out, _ = s.aws("kms", "encrypt", "--key-id", md["KeyId"], "--plaintext", "fileb://" + pt,
                      "--encryption-context", "app=cli")
    ct = base64.b64decode(json.loads(out)["CiphertextBlob"])
    _, out, _ = s.aws("kms", "decrypt", "--ciphertext-blob", "fileb://" + write_tmp(ct),
                      "--encryption-context", "app=cli")
    assert base64.b64decode(json.loads(out)["Plaintext"]) == b"from the cli"
    rc, _, err = s.aws("kms", "decrypt", "--ciphertext-blob", "fileb://" + write_tmp(ct),
                       "--encryption-context", "app=other", check=False)
    assert rc != 0 and "InvalidCiphertextException" in err
    rc, _, err = s.aws("kms", "create-key", "--origin", "EXTERNAL_KEY_STORE",
                       "--custom-key-store-id", sid, "--xks-key-id", "ext-5", check=False)
    assert rc != 0 and "XksKeyAlreadyInUseException" in err
    drop_keys(kms, [md["KeyId"]])


# ---- Secrets Manager values under a key of an external key store -------------


def restart_proxy(world):
    world.proxy = Server(world.proxy_args, data_dir=world.pdata).start()
    assert "XKS proxy listening" in world.proxy.proc.stdout.readline().decode()


def test_secrets_under_xks_key(world, xstore):
    """Secrets Manager's data keys under a key of an external key store are
    double-encrypted through the proxy; when KMS cannot use the key (store
    disconnected, proxy gone), Secrets Manager answers EncryptionFailure or
    DecryptionFailure with KMS's reason."""
    kms = world.server.client()
    sm = world.server.client("secretsmanager")
    sid = connected_store(kms, xstore)
    md = create_xks_key(kms, sid, "ext-sm")
    kms.create_alias(AliasName="alias/sm-xks", TargetKeyId=md["KeyId"])
    soft = kms.create_key()["KeyMetadata"]

    by_arn = sm.create_secret(Name="xks/by-arn", KmsKeyId=md["Arn"], SecretString="arn-v1")
    by_alias = sm.create_secret(Name="xks/by-alias", KmsKeyId="alias/sm-xks",
                                SecretBinary=b"\x00alias-v1")
    assert sm.get_secret_value(SecretId="xks/by-arn")["SecretString"] == "arn-v1"
    assert sm.get_secret_value(SecretId="xks/by-alias")["SecretBinary"] == b"\x00alias-v1"
    assert sm.describe_secret(SecretId="xks/by-arn")["KmsKeyId"] == md["Arn"]
    v2 = sm.put_secret_value(SecretId="xks/by-arn", SecretString="arn-v2")["VersionId"]
    got = sm.get_secret_value(SecretId="xks/by-arn")
    assert (got["SecretString"], got["VersionId"]) == ("arn-v2", v2)
    prev = sm.get_secret_value(SecretId="xks/by-arn", VersionStage="AWSPREVIOUS")
    assert (prev["SecretString"], prev["VersionId"]) == ("arn-v1", by_arn["VersionId"])

    # the store disconnected: the key is unavailable to Secrets Manager too
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    code, msg = error_code(sm.get_secret_value, SecretId="xks/by-arn")
    assert code == "DecryptionFailure" and "not connected" in msg, msg
    code, msg = error_code(sm.put_secret_value, SecretId="xks/by-arn", SecretString="x")
    assert code == "EncryptionFailure" and "not connected" in msg, msg
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert sm.get_secret_value(SecretId="xks/by-arn")["SecretString"] == "arn-v2"

    # the proxy gone: the proxy's failure, through the AWS CLI too
    assert world.proxy.stop() == 0
    try:
        code, msg = error_code(sm.get_secret_value, SecretId="xks/by-alias")
        assert code == "DecryptionFailure" and "XksProxyUriUnreachableException" in msg, msg
        code, msg = error_code(sm.create_secret, Name="xks/while-down", KmsKeyId=md["KeyId"],
                               SecretString="never")
        assert code == "EncryptionFailure" and "XksProxyUriUnreachableException" in msg, msg
        rc, _, err = world.server.aws("secretsmanager", "get-secret-value", "--secret-id",
                                      "xks/by-arn", check=False)
        assert rc != 0 and "DecryptionFailure" in err, err
    finally:
        restart_proxy(world)
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert sm.get_secret_value(SecretId="xks/by-alias")["SecretBinary"] == b"\x00alias-v1"
    assert error_code(sm.describe_secret, SecretId="xks/while-down")[0] == \
        "ResourceNotFoundException"

    # UpdateSecret moves a secret from a software key to the external one and back
    sm.create_secret(Name="xks/moving", KmsKeyId=soft["Arn"], SecretString="moving-v1")
    sm.update_secret(SecretId="xks/moving", KmsKeyId="alias/sm-xks")
    assert sm.describe_secret(SecretId="xks/moving")["KmsKeyId"] == "alias/sm-xks"
    assert sm.get_secret_value(SecretId="xks/moving")["SecretString"] == "moving-v1"
    sm.put_secret_value(SecretId="xks/moving", SecretString="moving-v2")
    kms.disable_key(KeyId=soft["KeyId"])  # the re-encrypted versions need the proxy's key only
    assert sm.get_secret_value(SecretId="xks/moving",
                               VersionStage="AWSPREVIOUS")["SecretString"] == "moving-v1"
    kms.enable_key(KeyId=soft["KeyId"])
    sm.update_secret(SecretId="xks/moving", KmsKeyId=soft["KeyId"])
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)  # now the software key's only
    try:
        assert sm.get_secret_value(SecretId="xks/moving")["SecretString"] == "moving-v2"
        assert sm.get_secret_value(SecretId="xks/moving",
                                   VersionStage="AWSPREVIOUS")["SecretString"] == "moving-v1"
    finally:
        kms.connect_custom_key_store(CustomKeyStoreId=sid)

    for name in ("xks/by-arn", "xks/by-alias", "xks/moving"):
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    kms.delete_alias(AliasName="alias/sm-xks")
    drop_keys(kms, [md["KeyId"], soft["KeyId"]])
