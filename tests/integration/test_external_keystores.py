"""External key stores in KMS through kinko's XKS client: a second kinko
serves the XKS proxy API (`--xks-listen`, HTTPS under a certificate made
here, SigV4 credentials from its config); the first kinko, the KMS, trusts
that certificate (`--xks-proxy-ca`) and connects EXTERNAL_KEY_STORE custom
key stores to it with ConnectCustomKeyStore (GetHealthStatus), through
boto3 and the AWS CLI.

AWS's XksProxyUriEndpoint has no port, so the proxy listens on port 443 of
an address of the loopback range picked at random (127.A.B.C): no other
run's proxy is there, and a neighbouring address has nothing listening."""
import json
import os
import random
import shutil
import subprocess
import tempfile

import pytest

from conftest import Server, _sanitizer_clean

URI_PATH = "/kms/xks/v1"
ACCESS_KEY = "BA6ALBUAHQZQ3SXO3IVDI6ONPE"
SECRET = "FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE="
WRONG_SECRET = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8="


def make_cert(d, ip):
    """A self-signed certificate for the proxy with IP:ip as its name."""
    cert, key = os.path.join(d, "proxy-cert.pem"), os.path.join(d, "proxy-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + ip,
                    "-addext", "subjectAltName=IP:" + ip, "-addext",
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
                           "keys": {}}}, f)
    pdata = os.path.join(d, "proxy-data")
    os.mkdir(pdata)
    proxy_args = ["--dev", "--tls-cert", cert, "--tls-key", key, "--config", cfg,
                  "--xks-listen", ip + ":443"]
    proxy = Server(proxy_args, data_dir=pdata).start()
    line = proxy.proc.stdout.readline().decode()
    assert "XKS proxy listening on https://%s:443" % ip in line, line
    kdata = os.path.join(d, "kms-data")
    os.mkdir(kdata)
    kms_server = Server(["--dev", "--xks-proxy-ca", cert], data_dir=kdata).start()

    class World:
        pass
    w = World()
    w.ip, w.proxy, w.server, w.proxy_args, w.pdata = ip, proxy, kms_server, proxy_args, pdata
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
