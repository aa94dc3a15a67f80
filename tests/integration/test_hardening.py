"""Hardening: what kinko promises under attack and failure (docs/SECURITY.md).

- SigV4: every body is signed (UNSIGNED-PAYLOAD refused).
- TLS: HTTPS with a configured or self-signed certificate, TLS 1.2/1.3 only,
  used by boto3 and the AWS CLI with their CA-bundle options.
- Slow clients: many idle or trickling connections do not stop others;
  idle connections are closed; per-address, header and body caps hold.
- Crash consistency: SIGKILL under concurrent load (CreateKey, Encrypt,
  ScheduleKeyDeletion, PutSecretValue), many rounds; every acknowledged
  write survives and the store passes `kinko check`.
- Secret hygiene: no plaintext, data key, secret value or root key in the
  data folder (SQLite WAL included), the log or the audit trail; the server
  process cannot dump core.
- Faults: a locked database, a full disk and a filesystem that turns
  read-only under the server make writes fail with KMSInternalException
  while reads and crypto on cached keys go on; the store is intact and
  writes work again, without a restart, once the fault clears (for the
  read-only filesystem: unmounted, checked and mounted again).
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

import boto3
import botocore.config
import botocore.exceptions
import pytest

from conftest import KINKO, Server, _sanitizer_clean, with_store, write_json

AWS_CLI = os.environ.get("KINKO_AWS_CLI", "/usr/bin/aws")


def error_code(exc):
    return exc.response["Error"]["Code"]


def client_for(endpoint, verify=None, retries=1, read_timeout=60):
    cfg = botocore.config.Config(retries={"max_attempts": retries, "mode": "standard"},
                                 connect_timeout=10, read_timeout=read_timeout)
    return boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        verify=verify, config=cfg)


def has_operation(kms, call):
    """True unless the server answers UnknownOperationException (not landed yet)."""
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return error_code(e) != "UnknownOperationException"
    return True


# ---------------------------------------------------------------------------
# SigV4: UNSIGNED-PAYLOAD
# ---------------------------------------------------------------------------

def _sigv4_post(endpoint, target, body, payload_hash_header):
    """Posts a request signed by hand; the payload line of the canonical
    request is `payload_hash_header` (the real hash or UNSIGNED-PAYLOAD),
    which is also sent as X-Amz-Content-Sha256."""
    host = endpoint.split("://", 1)[1]
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    headers = {
        "content-type": "application/x-amz-json-1.1",
        "host": host,
        "x-amz-content-sha256": payload_hash_header,
        "x-amz-date": amz_date,
        "x-amz-target": target,
    }
    names = sorted(headers)
    canonical = "\n".join(["POST", "/", ""] + ["%s:%s" % (n, headers[n]) for n in names] +
                          ["", ";".join(names), payload_hash_header])
    scope = "%s/us-east-1/kms/aws4_request" % day
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + "test").encode()
    for part in (day, "us-east-1", "kms", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=test/%s, SignedHeaders=%s, Signature=%s"
                                % (scope, ";".join(names), sig))
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request("POST", "/", body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data) if data else {}


def test_signed_payload_hash_accepted(server):
    body = b"{}"
    status, doc = _sigv4_post(server.endpoint, "TrentService.ListKeys", body,
                              hashlib.sha256(body).hexdigest())
    assert status == 200, doc
    assert "Keys" in doc


def test_unsigned_payload_refused(server):
    # A client that signed UNSIGNED-PAYLOAD (Amazon S3's option) is refused
    # as AWS's other services refuse it: the signature does not match.
    for body in (b"{}", b'{"NumberOfBytes": 16}'):
        target = "TrentService.ListKeys" if body == b"{}" else "TrentService.GenerateRandom"
        status, doc = _sigv4_post(server.endpoint, target, body, "UNSIGNED-PAYLOAD")
        assert status == 400
        assert doc["__type"] == "InvalidSignatureException"
        assert doc["message"].startswith("The request signature we calculated does not match")


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------

def _tls_roundtrip(kms):
    key = kms.create_key(Description="tls")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"over tls")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"over tls"
    return key


def _handshake(port, cafile, version=None, max_version=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if version is not None:
        ctx.minimum_version = version
    if max_version is not None:
        ctx.maximum_version = max_version
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return s.version()


def test_tls_self_signed_boto3_and_cli(make_server):
    srv = make_server(["--dev", "--tls-self-signed"])
    assert srv.endpoint.startswith("https://")
    cert = os.path.join(srv.data_dir, "tls-cert.pem")
    key_file = os.path.join(srv.data_dir, "tls-key.pem")
    assert os.stat(key_file).st_mode & 0o077 == 0, "TLS key must be private"

    kms = client_for(srv.endpoint, verify=cert)
    key = _tls_roundtrip(kms)

    # The AWS CLI with --ca-bundle.
    rc, out, err = srv.aws("--ca-bundle", cert, "kms", "describe-key", "--key-id", key)
    assert json.loads(out)["KeyMetadata"]["KeyId"] == key
    # Without the CA bundle the certificate is not trusted.
    rc, out, err = srv.aws("kms", "list-keys", check=False)
    assert rc != 0 and ("SSL" in err.upper() or "CERTIFICATE" in err.upper()), err
    with pytest.raises(botocore.exceptions.SSLError):
        client_for(srv.endpoint).list_keys()

    # Modern protocol versions only.
    assert _handshake(srv.port, cert, max_version=ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(srv.port, cert) == "TLSv1.3"
    with pytest.raises(ssl.SSLError), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
            with old.wrap_socket(raw) as s:
                s.version()
    # Plain HTTP to the TLS port gets no API answer.
    with pytest.raises((botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)):
        client_for(srv.endpoint.replace("https://", "http://"), read_timeout=10).list_keys()

    # A restart reuses the same certificate (clients keep trusting it).
    before = open(cert, "rb").read()
    srv.stop()
    again = make_server(["--dev", "--tls-self-signed"], data_dir=srv.data_dir)
    assert open(cert, "rb").read() == before
    kms = client_for(again.endpoint, verify=cert)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyId"] == key


def test_tls_from_config_and_flags(make_server, tmp_path):
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    # From the config file.
    cfg = write_json(str(tmp_path / "kinko.json"), {"tls_cert_file": cert, "tls_key_file": key})
    srv = make_server(["--dev", "--config", cfg])
    assert srv.endpoint.startswith("https://")
    _tls_roundtrip(client_for(srv.endpoint, verify=cert))
    # From the flags.
    srv2 = make_server(["--dev", "--tls-cert", cert, "--tls-key", key])
    _tls_roundtrip(client_for(srv2.endpoint, verify=cert))
    # One without the other, or an unreadable file: the server refuses to start.
    for args in (["--tls-cert", cert], ["--tls-cert", cert, "--tls-key", str(tmp_path / "none")]):
        p = subprocess.run([KINKO, "serve", "--dev", "--listen", "127.0.0.1:0",
                            "--data", str(tmp_path / "d")] + args,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        assert "listening" not in p.stdout


def test_tls_secure_transport_condition(make_server):
    """aws:SecureTransport reflects the listener: a key policy that denies
    Encrypt without TLS lets it through HTTPS and refuses it over HTTP."""
    srv = make_server(["--dev", "--tls-self-signed"])
    cert = os.path.join(srv.data_dir, "tls-cert.pem")
    kms = client_for(srv.endpoint, verify=cert)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "tls", "Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
    if not has_operation(kms, lambda: kms.put_key_policy(KeyId=key, PolicyName="default",
                                                         Policy=policy)):
        pytest.skip("key policies are not served yet")
    kms.encrypt(KeyId=key, Plaintext=b"x")
    srv.stop()
    plain = make_server(["--dev"], data_dir=srv.data_dir)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client_for(plain.endpoint).encrypt(KeyId=key, Plaintext=b"x")
    assert error_code(e.value) == "AccessDeniedException"


# ---------------------------------------------------------------------------
# Limits and slow clients
# ---------------------------------------------------------------------------

class Trickler:
    """Holds n connections that send a request head one byte at a time."""

    def __init__(self, port, n, interval=2.0):
        self.socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            self.socks.append(s)
        self.stop_flag = threading.Event()
        self.interval = interval
        self.sent = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag.wait(self.interval):
            for s in self.socks:
                try:
                    s.sendall(b"a")
                    self.sent += 1
                except OSError:
                    pass

    def close(self):
        self.stop_flag.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def test_slowloris_does_not_stop_service(make_server):
    srv = make_server(["--dev"])
    kms = client_for(srv.endpoint, read_timeout=30)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    slow = Trickler(srv.port, 200, interval=1.0)
    try:
        # Let the trickle start (one byte on each connection) before the work,
        # so that the work really runs while they are being fed.
        deadline = time.time() + 15
        while slow.sent < 200 and time.time() < deadline:
            time.sleep(0.05)
        # Many rounds of real work while 200 connections trickle headers.
        for i in range(25):
            blob = kms.encrypt(KeyId=key, Plaintext=b"p%d" % i)["CiphertextBlob"]
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"p%d" % i
        assert kms.create_key()["KeyMetadata"]["KeyState"] == "Enabled"
        rc, out, _ = srv.aws("kms", "generate-random", "--number-of-bytes", "8")
        assert len(base64.b64decode(json.loads(out)["Plaintext"])) == 8
        assert slow.sent > 0
        # The slow connections are still open (held, not dropped): each
        # still accepts bytes.
        alive = 0
        for s in slow.socks:
            try:
                s.sendall(b"b")
                alive += 1
            except OSError:
                pass
        assert alive > 150
    finally:
        slow.close()


def _closed_by_peer(sock, wait):
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_idle_connections_are_closed(make_server, tmp_path):
    cfg = write_json(str(tmp_path / "kinko.json"), {"idle_timeout_s": 2})
    srv = make_server(["--dev", "--config", cfg])
    idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(20)]
    half = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    half.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
    # Silent connections, and one that stopped mid-header, are closed by
    # the server once idle for the configured time.
    for s in idle + [half]:
        assert _closed_by_peer(s, 30)
        s.close()
    assert client_for(srv.endpoint).list_keys()["Keys"] is not None


def test_per_address_connection_cap(make_server, tmp_path):
    cfg = write_json(str(tmp_path / "kinko.json"), {"per_ip_connections": 20})
    srv = make_server(["--dev", "--config", cfg])
    held = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(20)]
    try:
        # Let the server accept all of them, then one more is refused.
        time.sleep(0.5)
        extra = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        assert _closed_by_peer(extra, 20)
        extra.close()
    finally:
        for s in held:
            s.close()
    # Once released, the address is served again.
    for _ in range(50):
        try:
            client_for(srv.endpoint).list_keys()
            break
        except botocore.exceptions.BotoCoreError:
            time.sleep(0.2)
    assert "Keys" in client_for(srv.endpoint).list_keys()


def _raw_request(port, head, body=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(head + body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            hdr, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in hdr.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if len(rest) >= length:
                break
    s.close()
    return int(data.split(b" ", 2)[1]) if data else 0, data


def test_header_and_body_caps(direct_server):
    port = direct_server.port
    # A request head far past the caps: refused, never served.
    big = b"X-Big: " + b"a" * 200000 + b"\r\n"
    status, _ = _raw_request(port, b"POST / HTTP/1.1\r\nHost: x\r\n" + big +
                             b"Content-Length: 2\r\n\r\n", b"{}")
    assert status in (0, 413, 431)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    status, data = _raw_request(port, b"POST / HTTP/1.1\r\nHost: x\r\n" + many +
                                b"Content-Length: 2\r\nConnection: close\r\n\r\n", b"{}")
    assert status == 413 and b"RequestEntityTooLargeException" in data
    # A body over the largest any operation takes (1 MiB).
    body = b"{" + b" " * (1 << 20) + b"}"
    status, data = _raw_request(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                b"application/x-amz-json-1.1\r\nX-Amz-Target: TrentService.ListKeys\r\n"
                                b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body), body)
    assert status in (400, 413)
    # The server still serves.
    assert "Keys" in direct_server.client().list_keys()


# ---------------------------------------------------------------------------
# Crash consistency
# ---------------------------------------------------------------------------

def kinko_check(data_dir):
    p = subprocess.run([KINKO] + with_store(["check", "--data", data_dir]), capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout + p.stderr


class Ledger:
    """What the server acknowledged, across rounds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.keys = set()
        self.blobs = []          # (key, blob, plaintext, context)
        self.pending = set()     # keys whose deletion was acknowledged
        self.maybe = set()       # deletion sent, answer lost in the crash: either state
        self.secrets = {}        # secret name -> last acknowledged value
        self.sec_inflight = {}   # secret name -> values sent since, answers lost
        self.verified_keys = set()  # keys checked after an earlier crash
        self.checked_blobs = 0      # blobs[:n] checked after an earlier crash


def sm_client(endpoint):
    return boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=botocore.config.Config(retries={"max_attempts": 1},
                                                      connect_timeout=10, read_timeout=20))


def _put_secret(sm, ledger, name, created, value):
    """CreateSecret, then PutSecretValue: the acknowledged value is current."""
    with ledger.lock:
        ledger.sec_inflight.setdefault(name, []).append(value)
    if created:
        sm.put_secret_value(SecretId=name, SecretString=value)
    else:
        sm.create_secret(Name=name, SecretString=value)
    with ledger.lock:
        ledger.secrets[name] = value
        ledger.sec_inflight[name] = []


def _load(endpoint, ledger, stop, seed, can_delete, can_secrets):
    rnd = random.Random(seed)
    kms = client_for(endpoint, read_timeout=20)
    sm = sm_client(endpoint)
    secret_name = "crash-%d" % seed
    mine = []
    while not stop.is_set():
        try:
            r = rnd.random()
            if can_secrets and r > 0.85:
                _put_secret(sm, ledger, secret_name, secret_name in ledger.secrets,
                            "value-%d-%s" % (seed, os.urandom(8).hex()))
            elif r < 0.3 or not mine:
                k = kms.create_key(Description="crash-%d" % seed)["KeyMetadata"]["KeyId"]
                with ledger.lock:
                    ledger.keys.add(k)
                mine.append(k)
            elif r < 0.9:
                k = rnd.choice(mine)
                pt = os.urandom(rnd.randint(1, 64))
                ctx = {"round": str(seed), "n": str(rnd.randint(0, 99))}
                blob = kms.encrypt(KeyId=k, Plaintext=pt, EncryptionContext=ctx)["CiphertextBlob"]
                with ledger.lock:
                    ledger.blobs.append((k, blob, pt, ctx))
            elif can_delete and len(mine) > 1:
                k = mine.pop(rnd.randrange(len(mine)))
                with ledger.lock:
                    ledger.maybe.add(k)
                kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=7)
                with ledger.lock:
                    ledger.maybe.discard(k)
                    ledger.pending.add(k)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            if stop.is_set():
                return
            time.sleep(0.05)


def test_crash_consistency_sigkill_under_load(make_server, tmp_path):
    data_dir = str(tmp_path / "data")
    os.mkdir(data_dir, 0o700)
    ledger = Ledger()
    rounds = int(os.environ.get("KINKO_CRASH_ROUNDS", "15"))
    rnd = random.Random(1234)
    for rnd_i in range(rounds):
        srv = Server(["--dev"], data_dir=data_dir).start()
        probe = client_for(srv.endpoint)
        can_delete = has_operation(probe, lambda: probe.schedule_key_deletion(
            KeyId="00000000-0000-0000-0000-000000000000", PendingWindowInDays=7))
        sm_probe = sm_client(srv.endpoint)
        can_secrets = has_operation(sm_probe, lambda: sm_probe.list_secrets())
        stop = threading.Event()
        workers = [threading.Thread(target=_load, args=(srv.endpoint, ledger, stop,
                                                        rnd_i * 10 + w, can_delete, can_secrets),
                                    daemon=True)
                   for w in range(4)]
        for w in workers:
            w.start()
        time.sleep(rnd.uniform(0.2, 1.0))
        srv.kill9()
        stop.set()
        for w in workers:
            w.join()
        srv.stop()
        _sanitizer_clean(srv)

        # Restart and check everything this round acknowledged, and a
        # sample of the earlier rounds' (each was fully checked after its
        # own crash; later crashes must not lose them either).
        srv = Server(["--dev"], data_dir=data_dir).start()
        try:
            kms = client_for(srv.endpoint, read_timeout=30)
            sample = 100 if rnd_i == rounds - 1 else 25
            with ledger.lock:
                all_keys = sorted(ledger.keys)
                blobs = list(ledger.blobs)
                pending = set(ledger.pending)
                maybe = set(ledger.maybe)
            new_keys = set(all_keys) - ledger.verified_keys
            keys = new_keys | maybe | set(
                rnd.sample(sorted(ledger.verified_keys), min(sample, len(ledger.verified_keys))))
            old = blobs[:ledger.checked_blobs]
            blobs = blobs[ledger.checked_blobs:] + rnd.sample(old, min(sample, len(old)))
            states = {}
            for k in keys:
                state = kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"]
                states[k] = state
                if k in maybe:
                    assert state in ("PendingDeletion", "Enabled"), (k, state)
                else:
                    assert state == ("PendingDeletion" if k in pending else "Enabled"), (k, state)
            with ledger.lock:  # a lost answer is settled by what the store holds
                for k in maybe:
                    if states.get(k) == "PendingDeletion":
                        ledger.pending.add(k)
                ledger.maybe.clear()
            for k, blob, pt, ctx in blobs:
                if k not in states:
                    states[k] = kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"]
                if states[k] != "Enabled":
                    assert states[k] == "PendingDeletion" and (k in pending or k in maybe)
                    continue
                out = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
                assert out["Plaintext"] == pt
                assert out["KeyId"].endswith(k)
            # Secrets: the current value is the last acknowledged one, or
            # one sent after it whose answer the crash swallowed.
            sm = sm_client(srv.endpoint)
            with ledger.lock:
                names = set(ledger.secrets) | set(ledger.sec_inflight)
            for name in sorted(names):
                acked = ledger.secrets.get(name)
                allowed = set(ledger.sec_inflight.get(name, [])) | ({acked} if acked else set())
                try:
                    current = sm.get_secret_value(SecretId=name)["SecretString"]
                except botocore.exceptions.ClientError as e:
                    assert acked is None and error_code(e) == "ResourceNotFoundException", e
                    continue
                assert current in allowed, (name, current)
                with ledger.lock:
                    ledger.secrets[name] = current
                    ledger.sec_inflight[name] = []
            with ledger.lock:
                ledger.verified_keys |= new_keys
                ledger.checked_blobs = len(ledger.blobs)
        finally:
            assert srv.stop() == 0
            _sanitizer_clean(srv)
        rc, out = kinko_check(data_dir)
        assert rc == 0, out
        assert "store sound" in out
    assert len(ledger.keys) > rounds and len(ledger.blobs) > rounds
    if can_secrets:
        assert len(ledger.secrets) >= rounds, "the secret workload did not run"


def test_check_detects_damage(make_server, tmp_path):
    data_dir = str(tmp_path / "data")
    os.mkdir(data_dir, 0o700)
    srv = make_server(["--dev"], data_dir=data_dir)
    kms = client_for(srv.endpoint)
    for _ in range(3):
        kms.create_key()
    srv.stop()
    rc, out = kinko_check(data_dir)
    assert rc == 0 and "3 keys, all key material unwraps" in out, out
    # A wrapped material that no longer authenticates is found.
    # (The store's layout is the SQLite backend's: one "docs" table.)
    db = sqlite3.connect(os.path.join(data_dir, "kinko.db"))
    damaged = False
    for kind, ns, id_, doc in db.execute("select kind, ns, id, doc from docs").fetchall():
        text = doc.decode() if isinstance(doc, bytes) else doc
        if kind != "key" or '"Wrapped"' not in text:
            continue
        d = json.loads(text)
        w = bytearray(base64.b64decode(d["Materials"][0]["Wrapped"]))
        w[-1] ^= 1
        d["Materials"][0]["Wrapped"] = base64.b64encode(bytes(w)).decode()
        new = json.dumps(d)
        db.execute("update docs set doc=? where kind=? and ns=? and id=?",
                   (new.encode() if isinstance(doc, bytes) else new, kind, ns, id_))
        damaged = True
        break
    db.commit()
    db.close()
    assert damaged
    rc, out = kinko_check(data_dir)
    assert rc == 1 and "does not unwrap" in out, out
    rc, out = kinko_check(str(tmp_path / "nothing-here"))
    assert rc == 1


# ---------------------------------------------------------------------------
# Secret hygiene
# ---------------------------------------------------------------------------

def _forms(raw):
    """The ways a secret could show up in a file."""
    b64 = base64.b64encode(raw)
    return {raw, b64, b64.rstrip(b"="), raw.hex().encode(), raw.hex().upper().encode(),
            base64.urlsafe_b64encode(raw).rstrip(b"=")}


def _scan(paths, needles):
    found = []
    for root in paths:
        if not os.path.exists(root):
            continue
        walk = [(root, [], [os.path.basename(root)])] if os.path.isfile(root) else os.walk(root)
        for d, _, files in walk:
            for f in files:
                p = os.path.join(d if not os.path.isfile(root) else os.path.dirname(root), f)
                if os.path.abspath(p) in _scan.exclude:
                    continue
                try:
                    data = open(p, "rb").read()
                except OSError:
                    continue
                for label, forms in needles.items():
                    for form in forms:
                        if form and form in data:
                            found.append((p, label))
    return found


_scan.exclude = set()


def test_secret_hygiene_scan(make_server, tmp_path):
    data_dir = str(tmp_path / "data")
    os.mkdir(data_dir, 0o700)
    srv = make_server(["--dev", "--log-level", "debug"], data_dir=data_dir)
    kms = client_for(srv.endpoint)
    needles = {}
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    for i in range(20):
        pt = b"PLAINTEXT-%02d-" % i + os.urandom(24)
        needles["plaintext %d" % i] = _forms(pt)
        blob = kms.encrypt(KeyId=key, Plaintext=pt, EncryptionContext={"i": str(i)})["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"i": str(i)})["Plaintext"] == pt
        blob2 = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"i": str(i)},
                               DestinationKeyId=other)["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob2)["Plaintext"] == pt
        dk = kms.generate_data_key(KeyId=key, KeySpec="AES_256")
        needles["data key %d" % i] = _forms(dk["Plaintext"])
        assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
        rnd = kms.generate_random(NumberOfBytes=32)["Plaintext"]
        needles["random %d" % i] = _forms(rnd)
    # Through the AWS CLI as well (its own request encoding).
    cli_pt = b"CLI-PLAINTEXT-" + os.urandom(16).hex().encode()
    pt_file = tmp_path / "pt.bin"
    pt_file.write_bytes(cli_pt)
    srv.aws("kms", "encrypt", "--key-id", key, "--plaintext", "fileb://" + str(pt_file))
    needles["cli plaintext"] = _forms(cli_pt)
    # Secret values, once Secrets Manager is served.
    sm = boto3.client("secretsmanager", endpoint_url=srv.endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test",
                      config=botocore.config.Config(retries={"max_attempts": 1}))
    secret_value = "SECRET-VALUE-" + os.urandom(16).hex()
    try:
        sm.create_secret(Name="hygiene", SecretString=secret_value)
        assert sm.get_secret_value(SecretId="hygiene")["SecretString"] == secret_value
        needles["secret value"] = _forms(secret_value.encode())
    except botocore.exceptions.ClientError:
        pass  # Secrets Manager not served (yet): the KMS workload is still scanned
    # The root key: only in its own file.
    root_key_path = os.path.abspath(os.path.join(data_dir, "root.key"))
    root = open(root_key_path, "rb").read()
    needles["root key file"] = {root}
    if len(root) >= 32:
        needles["root key"] = _forms(root[-32:]) | _forms(root[:32])
    _scan.exclude = {root_key_path}

    # While running (the WAL holds recent writes) and after a clean stop.
    found = _scan([data_dir], needles)
    assert not found, found
    srv.stop()
    found = _scan([data_dir, srv.log_path], needles)
    assert not found, found
    assert os.path.getsize(srv.log_path) > 0, "the debug log should have been written"


def test_no_core_dumps(tmp_path):
    """The server is non-dumpable with RLIMIT_CORE 0. Run as an unprivileged
    user, its /proc entries then belong to root, which is how the kernel
    shows a non-dumpable process to others."""
    base = tempfile.mkdtemp(prefix="kinko-nodump-")
    os.chmod(base, 0o755)
    data_dir = os.path.join(base, "data")
    os.mkdir(data_dir, 0o700)
    os.chown(data_dir, 65534, 65534)

    def demote():
        os.setgid(65534)
        os.setuid(65534)

    log = open(str(tmp_path / "log"), "wb")
    p = subprocess.Popen([KINKO, "serve", "--dev", "--listen", "127.0.0.1:0", "--data", data_dir],
                         stdout=subprocess.PIPE, stderr=log, preexec_fn=demote)
    try:
        line = p.stdout.readline().decode()
        assert "listening on" in line, open(str(tmp_path / "log")).read()
        limits = open("/proc/%d/limits" % p.pid).read()
        core = [l for l in limits.splitlines() if l.startswith("Max core file size")][0]
        assert core.split()[4:6] == ["0", "0"], core
        st = os.stat("/proc/%d/status" % p.pid)
        assert os.stat("/proc/%d" % p.pid).st_uid == 65534
        assert st.st_uid == 0, "a dumpable process's /proc files belong to its user"
        # The process works as that user (it is really serving).
        endpoint = line.split("listening on ")[1].split()[0]
        assert "Keys" in client_for(endpoint).list_keys()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        p.stdout.close()
        log.close()
    shutil.rmtree(base, ignore_errors=True)
    assert p.returncode == 0
    text = open(str(tmp_path / "log"), errors="replace").read()
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert marker not in text


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------

def _write_fails(kms):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        kms.create_key(Description="during the fault")
    assert error_code(e.value) == "KMSInternalException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert "not applied" in e.value.response["Error"]["Message"]


def _reads_and_crypto_work(kms, key, blob):
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before the fault"
    b2 = kms.encrypt(KeyId=key, Plaintext=b"during")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=b2)["Plaintext"] == b"during"
    assert kms.generate_data_key(KeyId=key, KeySpec="AES_256")["Plaintext"]
    assert len(kms.list_keys()["Keys"]) >= 1


def test_fault_locked_database(make_server, tmp_path):
    data_dir = str(tmp_path / "data")
    os.mkdir(data_dir, 0o700)
    srv = make_server(["--dev"], data_dir=data_dir)
    kms = client_for(srv.endpoint)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"before the fault")["CiphertextBlob"]

    # Another process holds the write lock.
    db = sqlite3.connect(os.path.join(data_dir, "kinko.db"), timeout=1, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        _write_fails(kms)
        _reads_and_crypto_work(kms, key, blob)
    finally:
        db.execute("ROLLBACK")
        db.close()
    # The fault cleared: writes work again, no restart.
    k2 = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.describe_key(KeyId=k2)["KeyMetadata"]["KeyState"] == "Enabled"
    srv.stop()
    rc, out = kinko_check(data_dir)
    assert rc == 0, out


@pytest.fixture
def tiny_fs(tmp_path):
    """A small tmpfs, so that the disk can really be filled."""
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", mnt],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + p.stderr.strip())
    yield mnt
    subprocess.run(["umount", "-l", mnt], capture_output=True)


def _fill(path):
    """Fills the filesystem of `path` to the brim; returns the filler file."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _audit_elsewhere(tmp_path):
    """Server flags that keep the audit trail off the faulty filesystem: the
    audit trail is fail-closed, so a full disk under it stops every call
    by design; this test is about the store."""
    usage = subprocess.run([KINKO, "serve", "--help"], capture_output=True, text=True).stdout
    if "--audit-dir" not in usage:
        return []
    d = str(tmp_path / "audit")
    os.makedirs(d, exist_ok=True)
    return ["--audit-dir", d]


def test_fault_disk_full(make_server, tiny_fs, tmp_path):
    data_dir = os.path.join(tiny_fs, "data")
    os.mkdir(data_dir, 0o700)
    srv = make_server(["--dev"] + _audit_elsewhere(tmp_path), data_dir=data_dir)
    kms = client_for(srv.endpoint)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"before the fault")["CiphertextBlob"]
    acknowledged = [key]

    filler = _fill(tiny_fs)
    try:
        # Keep writing until the WAL has no room (SQLite may still have
        # room in pages it already holds for the first few).
        failed = False
        for _ in range(400):
            try:
                acknowledged.append(kms.create_key(Description="x" * 4000)["KeyMetadata"]["KeyId"])
            except botocore.exceptions.ClientError as e:
                assert error_code(e) == "KMSInternalException"
                assert "not applied" in e.response["Error"]["Message"]
                failed = True
                break
        assert failed, "writes kept succeeding on a full disk"
        _write_fails(kms)
        _reads_and_crypto_work(kms, key, blob)
    finally:
        os.unlink(filler)
    # Space is back: writes work again without a restart.
    k2 = kms.create_key()["KeyMetadata"]["KeyId"]
    acknowledged.append(k2)
    for k in acknowledged:
        assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyId"] == k
    srv.stop()
    rc, out = kinko_check(data_dir)
    assert rc == 0, out
    # And after a restart everything acknowledged is still there.
    again = make_server(["--dev"] + _audit_elsewhere(tmp_path), data_dir=data_dir)
    kms = client_for(again.endpoint)
    for k in acknowledged:
        assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyId"] == k
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"before the fault"


class LoopExt4:
    """An ext4 image on a loop device, mounted with errors=remount-ro, so a
    filesystem error turns it read-only under a running server, the way a
    failing disk does. Such a filesystem cannot be remounted read-write:
    the operator's fix is to unmount it, check it and mount it again, at
    the same path, while the server's open files still point into the
    detached old mount."""

    def __init__(self, image, path):
        self.image = image
        self.path = path
        self.devs = []        # every loop device we attached
        self.mounted = False

    @staticmethod
    def _run(*cmd):
        return subprocess.run(list(cmd), capture_output=True, text=True, timeout=120)

    def mount(self):
        p = self._run("losetup", "--find", "--show", self.image)
        if p.returncode != 0:
            return "cannot attach a loop device: " + p.stderr.strip()
        dev = p.stdout.strip()
        self.devs.append(dev)
        p = self._run("mount", "-t", "ext4", "-o", "errors=remount-ro", dev, self.path)
        if p.returncode != 0:
            return "cannot mount an ext4 image: " + p.stderr.strip()
        self.mounted = True
        self.trigger = "/sys/fs/ext4/%s/trigger_fs_error" % os.path.basename(dev)
        if not os.path.exists(self.trigger):
            return "this kernel cannot inject an ext4 error (no %s)" % self.trigger
        return None

    def read_only(self):
        """Read-only, whether by mount flag or by ext4's emergency_ro state
        (which statvfs does not show)."""
        p = self._run("findmnt", "-n", "-o", "OPTIONS", "--mountpoint", self.path)
        opts = p.stdout.strip().split(",")
        return "ro" in opts or "emergency_ro" in opts

    def make_read_only(self):
        """Injects a filesystem error: ext4 turns the mount read-only at once."""
        with open(self.trigger, "w") as f:
            f.write("1")
        deadline = time.monotonic() + 30
        while not self.read_only() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.read_only(), "the filesystem did not turn read-only"

    def repair(self):
        """Clears the fault as an operator would: unmount, check, mount again."""
        p = self._run("umount", "-l", self.path)
        assert p.returncode == 0, p.stderr
        self.mounted = False
        p = self._run("e2fsck", "-fy", self.image)
        assert p.returncode & ~3 == 0, "e2fsck could not repair the image:\n" + p.stdout + p.stderr
        err = self.mount()
        assert err is None, err
        assert not self.read_only()

    def cleanup(self):
        if self.mounted:
            self._run("umount", "-l", self.path)
            self.mounted = False
        # A device still held by a detached mount is freed when its last user
        # goes (losetup -d then only marks it for clearing).
        for dev in self.devs:
            self._run("losetup", "-d", dev)


@pytest.fixture
def loop_ext4(tmp_path):
    """A 64 MiB ext4 on a loop device (errors=remount-ro); skipped where
    loop devices, mkfs.ext4 or mounting are not available."""
    for tool in ("mkfs.ext4", "e2fsck", "losetup", "mount", "umount", "findmnt"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed" % tool)
    image = str(tmp_path / "ext4.img")
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    p = subprocess.run(["mkfs.ext4", "-q", "-F", image], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("mkfs.ext4 failed: " + p.stderr.strip())
    mnt = str(tmp_path / "ext4")
    os.mkdir(mnt)
    fs = LoopExt4(image, mnt)
    try:
        err = fs.mount()
        if err is not None:
            pytest.skip(err)
        yield fs
    finally:
        fs.cleanup()


def _write_when_recovered(kms, deadline_s=30):
    """The first write once the fault has cleared. kinko reopens the store
    at most every 200 ms after a failure, so a write in that window may
    still be refused; it must succeed soon after, without a restart."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return kms.create_key(Description="after the fault")["KeyMetadata"]["KeyId"]
        except botocore.exceptions.ClientError as e:
            assert error_code(e) == "KMSInternalException"
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_fault_read_only_folder(loop_ext4, make_server, tmp_path):
    data_dir = os.path.join(loop_ext4.path, "data")
    os.mkdir(data_dir, 0o700)
    args = ["--dev"] + _audit_elsewhere(tmp_path)
    # The log goes elsewhere too: the server's log file on the faulty
    # filesystem would lose what the server says during and after the fault.
    srv = Server(args, data_dir=data_dir)
    srv.log_path = str(tmp_path / "server.log")
    srv.start()
    try:
        kms = client_for(srv.endpoint)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key, Plaintext=b"before the fault")["CiphertextBlob"]
        acknowledged = [key]
        # Several writes and reads first, so the store holds open connections
        # into the filesystem that is about to fail.
        for _ in range(3):
            k = kms.create_key()["KeyMetadata"]["KeyId"]
            acknowledged.append(k)
            kms.describe_key(KeyId=k)
        blobs = [(key, blob, b"before the fault")]

        loop_ext4.make_read_only()
        _write_fails(kms)
        _reads_and_crypto_work(kms, key, blob)
        during = kms.encrypt(KeyId=acknowledged[1], Plaintext=b"during the fault")["CiphertextBlob"]
        blobs.append((acknowledged[1], during, b"during the fault"))
        with pytest.raises(botocore.exceptions.ClientError) as e:
            kms.schedule_key_deletion(KeyId=acknowledged[2], PendingWindowInDays=7)
        assert error_code(e.value) == "KMSInternalException"
        assert "not applied" in e.value.response["Error"]["Message"]
        _write_fails(kms)

        # The operator unmounts, checks and remounts the filesystem: writes
        # work again without a restart, on the new mount.
        loop_ext4.repair()
        k2 = _write_when_recovered(kms)
        acknowledged.append(k2)
        acknowledged.append(kms.create_key()["KeyMetadata"]["KeyId"])
        after = kms.encrypt(KeyId=k2, Plaintext=b"after the fault")["CiphertextBlob"]
        blobs.append((k2, after, b"after the fault"))
        for k in acknowledged:
            assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "Enabled"
        # Nothing refused during the fault was applied.
        listed = {k["KeyId"] for k in kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]}
        assert listed == set(acknowledged)
    finally:
        rc = srv.stop()
        _sanitizer_clean(srv)
    assert rc == 0, "server exited with %s" % rc
    rc, out = kinko_check(data_dir)
    assert rc == 0, out
    # After a restart on the repaired filesystem everything acknowledged is
    # there, and every ciphertext handed out decrypts.
    again = make_server(args, data_dir=data_dir)
    kms = client_for(again.endpoint)
    listed = {k["KeyId"] for k in kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]}
    assert listed == set(acknowledged)
    for k in acknowledged:
        assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "Enabled"
    for k, b, pt in blobs:
        got = kms.decrypt(CiphertextBlob=b)
        assert got["Plaintext"] == pt and got["KeyId"].endswith(k)
