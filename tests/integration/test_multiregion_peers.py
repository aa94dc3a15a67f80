"""Multi-Region keys across deployments (docs/REGIONS.md, "Across
deployments"): two kinko deployments on loopback, each its own process,
store and root key, each over HTTPS with its own certificate, each naming
the other as the peer that serves its Region (us-east-1 is A's, eu-west-1
is B's). Through boto3 and the AWS CLI: ReplicateKey from A to B's Region,
encryption and signatures across, a rotation that reaches B (and reaches
it after B was down), the audit events on both sides, and the refusals: a
wrong pinned wrapping key, wrong credentials, a caller that is not a peer.
"""
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import http.server
import time
import urllib.error
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from conftest import AWS_CLI, KINKO, Server, _sanitizer_clean, with_store

EAST, WEST = "us-east-1", "eu-west-1"
# Regions A names as served by B, but with a wrong pinned key or wrong
# credentials, and one served by a fake peer that records what it gets.
WRONG_KEY, WRONG_SECRET, RECORDER = "eu-west-2", "eu-central-1", "ap-south-1"
ROOT = "arn:aws:iam::000000000000:root"
OTHER = "111122223333"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder(http.server.BaseHTTPRequestHandler):
    """A peer that answers nothing useful and keeps every request body."""
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        Recorder.bodies.append((self.headers.get("X-Amz-Target"), self.rfile.read(n)))
        out = json.dumps({"__type": "KMSInternalException", "message": "recorder"}).encode()
        self.send_response(500)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


class Deployment:
    def __init__(self, root, name):
        self.dir = os.path.join(root, name)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        self.port = free_port()
        self.cfg = os.path.join(self.dir, "kinko.json")
        self.server = None

    @property
    def ca(self):
        return os.path.join(self.data, "tls-cert.pem")

    @property
    def endpoint(self):
        return "https://127.0.0.1:%d" % self.port

    def start(self, with_config=True):
        args = ["--dev", "--tls-self-signed"] + (["--config", self.cfg] if with_config else [])
        self.server = Server(args, data_dir=self.data).start(port=self.port)
        return self

    def stop(self):
        rc = self.server.stop()
        _sanitizer_clean(self.server)
        assert rc == 0

    def wrapping_key(self):
        # with_store: on PostgreSQL, the database the server itself uses for this folder
        p = subprocess.run([KINKO] + with_store(["peer", "wrapping-key", "--data", self.data]),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("-----BEGIN PUBLIC KEY-----")
        path = os.path.join(self.dir, "wrapping-key.pem")
        with open(path, "w") as f:
            f.write(p.stdout)
        return path

    def client(self, region, service="kms", key="test", secret="test"):
        cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
        return boto3.client(service, endpoint_url=self.endpoint, region_name=region,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            verify=self.ca, config=cfg)

    def call(self, target, body, region, key="test", secret="test"):
        """A signed JSON call (operations Debian's botocore lacks, and KinkoPeer)."""
        req = botocore.awsrequest.AWSRequest(
            method="POST", url=self.endpoint + "/", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "kms",
                                region).add_auth(req)
        p = req.prepare()
        r = urllib.request.Request(p.url, data=p.body, method="POST",
                                   headers=dict(p.headers.items()))
        ctx = ssl.create_default_context(cafile=self.ca)
        try:
            with urllib.request.urlopen(r, timeout=30, context=ctx) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def aws(self, *args, region=EAST):
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_DEFAULT_REGION=region, AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="", AWS_MAX_ATTEMPTS="1")
        env.pop("AWS_PROFILE", None)
        p = subprocess.run([AWS_CLI, "--endpoint-url", self.endpoint, "--ca-bundle", self.ca,
                            "--output", "json"] + list(args),
                           capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else {}


def peer_entry(region, dep, secret_file, pem):
    return {"region": region, "endpoint": dep.endpoint, "ca_file": dep.ca,
            "access_key_id": "test", "secret_access_key_file": secret_file,
            "public_key_file": pem}


@pytest.fixture(scope="module")
def pair():
    root = tempfile.mkdtemp(prefix="kinko-peers-")
    a, b = Deployment(root, "a"), Deployment(root, "b")
    # A first start makes each deployment's root key, store and certificate.
    for d in (a, b):
        d.start(with_config=False).stop()
    pem_a, pem_b = a.wrapping_key(), b.wrapping_key()
    secret, wrong = os.path.join(root, "peer.secret"), os.path.join(root, "wrong.secret")
    with open(secret, "w") as f:
        f.write("test\n")
    with open(wrong, "w") as f:
        f.write("not-the-secret\n")
    rec_cert = os.path.join(root, "rec.pem")
    rec_key = os.path.join(root, "rec.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", rec_key, "-out", rec_cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(rec_cert, rec_key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    rec = {"region": RECORDER, "endpoint": "https://127.0.0.1:%d" % httpd.server_address[1],
           "ca_file": rec_cert, "access_key_id": "test", "secret_access_key_file": secret,
           "public_key_file": pem_b}
    with open(a.cfg, "w") as f:
        json.dump({"peers": {"accept": [ROOT], "regions": [
            peer_entry(WEST, b, secret, pem_b),
            peer_entry(WRONG_KEY, b, secret, pem_a),      # A's own key pinned for B
            peer_entry(WRONG_SECRET, b, wrong, pem_b),    # credentials B refuses
            rec]}}, f)
    with open(b.cfg, "w") as f:
        json.dump({"peers": {"accept": [ROOT], "regions": [
            peer_entry(EAST, a, secret, pem_a)]},
            # A principal B knows but does not accept as a peer.
            "accounts": [{"id": OTHER, "root_access_keys": [
                {"access_key_id": "OTHERROOTKEY", "secret_access_key": "other-secret"}]}]}, f)
    a.start()
    b.start()
    yield a, b
    httpd.shutdown()
    for d in (a, b):
        if d.server.proc.poll() is None:
            d.stop()
    shutil.rmtree(root, ignore_errors=True)


def blob_version(blob):
    return int.from_bytes(blob[18:22], "big")


def mrk(a, **kw):
    return a.client(EAST).create_key(MultiRegion=True, **kw)["KeyMetadata"]


def eventually(fn, timeout=40.0):
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except (AssertionError, ClientError):
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def test_replicate_key_to_a_peer_and_crypto_across(pair):
    a, b = pair
    md = mrk(a, Description="primary in A")
    out = a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST,
                                       Description="replica in B",
                                       Tags=[{"TagKey": "site", "TagValue": "b"}])
    west_arn = md["Arn"].replace(EAST, WEST)
    assert out["ReplicaKeyMetadata"]["Arn"] == west_arn
    assert out["ReplicaTags"] == [{"TagKey": "site", "TagValue": "b"}]
    # Both sides show both keys.
    got_b = b.client(WEST).describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    cfg_b = got_b["MultiRegionConfiguration"]
    assert cfg_b["MultiRegionKeyType"] == "REPLICA"
    assert cfg_b["PrimaryKey"] == {"Arn": md["Arn"], "Region": EAST}
    assert got_b["Description"] == "replica in B" and got_b["KeyState"] == "Enabled"
    assert b.client(WEST).list_resource_tags(KeyId=md["KeyId"])["Tags"] == \
        [{"TagKey": "site", "TagValue": "b"}]
    cfg_a = a.client(EAST).describe_key(KeyId=md["KeyId"])["KeyMetadata"][
        "MultiRegionConfiguration"]
    assert cfg_a["MultiRegionKeyType"] == "PRIMARY"
    assert {"Arn": west_arn, "Region": WEST} in cfg_a["ReplicaKeys"]
    # Encrypt in one deployment, decrypt in the other, both ways.
    ea, eb = a.client(EAST), b.client(WEST)
    ct = ea.encrypt(KeyId=md["KeyId"], Plaintext=b"from A",
                    EncryptionContext={"k": "v"})["CiphertextBlob"]
    got = eb.decrypt(CiphertextBlob=ct, EncryptionContext={"k": "v"})
    assert got["Plaintext"] == b"from A" and got["KeyId"] == west_arn
    ct = eb.encrypt(KeyId=md["KeyId"], Plaintext=b"from B")["CiphertextBlob"]
    assert ea.decrypt(CiphertextBlob=ct)["Plaintext"] == b"from A"[:0] + b"from B"
    # The same Region again is AlreadyExistsException.
    with pytest.raises(ClientError) as e:
        ea.replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    assert e.value.response["Error"]["Code"] == "AlreadyExistsException"
    # UpdatePrimaryRegion to a peer's Region without a replica there
    # (test_multiregion_peers_primary.py has the one with a replica).
    with pytest.raises(ClientError) as e:
        ea.update_primary_region(KeyId=md["KeyId"], PrimaryRegion=WRONG_KEY)
    assert e.value.response["Error"]["Code"] == "NotFoundException"


def test_signatures_verify_across(pair):
    a, b = pair
    md = mrk(a, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    sig = a.client(EAST).sign(KeyId=md["KeyId"], Message=b"m", MessageType="RAW",
                              SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert b.client(WEST).verify(KeyId=md["KeyId"], Message=b"m", MessageType="RAW",
                                 Signature=sig,
                                 SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
    assert a.client(EAST).get_public_key(KeyId=md["KeyId"])["PublicKey"] == \
        b.client(WEST).get_public_key(KeyId=md["KeyId"])["PublicKey"]


def rotate(a, key_id):
    st, out = a.call("TrentService.RotateKeyOnDemand", {"KeyId": key_id}, EAST)
    assert st == 200, out


def test_rotation_on_the_primary_reaches_the_peer(pair):
    a, b = pair
    md = mrk(a)
    a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    rotate(a, md["KeyId"])
    ct = a.client(EAST).encrypt(KeyId=md["KeyId"], Plaintext=b"v2")["CiphertextBlob"]
    assert blob_version(ct) == 2

    def converged():
        assert b.client(WEST).decrypt(CiphertextBlob=ct)["Plaintext"] == b"v2"
        mine = b.client(WEST).encrypt(KeyId=md["KeyId"], Plaintext=b"x")["CiphertextBlob"]
        assert blob_version(mine) == 2
    eventually(converged)
    st, rots = b.call("TrentService.ListKeyRotations", {"KeyId": md["KeyId"]}, WEST)
    assert st == 200 and [r["RotationType"] for r in rots["Rotations"]] == ["ON_DEMAND"]


def test_a_peer_that_was_down_catches_up(pair):
    a, b = pair
    md = mrk(a)
    a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    b.stop()
    rotate(a, md["KeyId"])
    rotate(a, md["KeyId"])
    ct = a.client(EAST).encrypt(KeyId=md["KeyId"], Plaintext=b"v3")["CiphertextBlob"]
    assert blob_version(ct) == 3
    time.sleep(2)  # A tries, fails, and backs off meanwhile
    b.start()
    eventually(lambda: b.client(WEST).decrypt(CiphertextBlob=ct))
    assert b.client(WEST).decrypt(CiphertextBlob=ct)["Plaintext"] == b"v3"


def lookup(d, region, arn, want, timeout=20.0):
    ct = d.client(region, service="cloudtrail")
    deadline = time.time() + timeout
    while True:
        events = ct.lookup_events(LookupAttributes=[
            {"AttributeKey": "ResourceName", "AttributeValue": arn}])["Events"]
        names = [e["EventName"] for e in events]
        if want in names or time.time() > deadline:
            return events
        time.sleep(0.3)


def test_each_side_records_its_half(pair):
    a, b = pair
    md = mrk(a)
    a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=WEST)
    west_arn = md["Arn"].replace(EAST, WEST)
    assert "ReplicateKey" in [e["EventName"] for e in lookup(a, EAST, md["Arn"],
                                                             "ReplicateKey")]
    made = [e for e in lookup(b, WEST, west_arn, "CreateKey") if e["EventName"] == "CreateKey"]
    assert made and json.loads(made[0]["CloudTrailEvent"])["eventType"] == "AwsServiceEvent"
    # B's record of the peer call itself keeps the sealed material out, as
    # ImportKeyMaterial's record keeps out EncryptedKeyMaterial.
    calls = b.client(WEST, service="cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "ReplicateKeyIn"}])["Events"]
    assert calls
    for e in calls:
        assert "ncryptedKeyMaterial" not in e["CloudTrailEvent"]
    rotate(a, md["KeyId"])
    synced = lookup(a, EAST, md["Arn"], "SynchronizeMultiRegionKey")
    assert "SynchronizeMultiRegionKey" in [e["EventName"] for e in synced]
    there = lookup(b, WEST, west_arn, "SynchronizeMultiRegionKey")
    assert "SynchronizeMultiRegionKey" in [e["EventName"] for e in there]


def test_wrong_pinned_key_and_wrong_credentials_are_refused(pair):
    a, b = pair
    for region in (WRONG_KEY, WRONG_SECRET):
        md = mrk(a)
        with pytest.raises(ClientError) as e:
            a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=region)
        assert e.value.response["Error"]["Code"] == "KMSInternalException", region
        # Nothing was made there, and A does not list it.
        with pytest.raises(ClientError) as e:
            b.client(region).describe_key(KeyId=md["KeyId"])
        assert e.value.response["Error"]["Code"] == "NotFoundException"
        cfg = a.client(EAST).describe_key(KeyId=md["KeyId"])["KeyMetadata"][
            "MultiRegionConfiguration"]
        assert cfg["ReplicaKeys"] == []


def test_peer_operations_are_for_peers_only(pair):
    a, b = pair
    md = mrk(a)
    # A principal B knows, but not as a peer.
    st, out = b.call("KinkoPeer.ReplicateKeyIn", {"Replica": {}}, WEST, key="OTHERROOTKEY",
                     secret="other-secret")
    assert st == 400 and out["__type"] == "AccessDeniedException", out
    assert "arn:aws:iam::%s:root" % OTHER in out["message"]
    # Unknown credentials, and a wrong secret.
    st, out = b.call("KinkoPeer.ReplicateKeyIn", {"Replica": {}}, WEST, key="nobody")
    assert st == 400 and out["__type"] == "UnrecognizedClientException"
    st, out = b.call("KinkoPeer.ReplicateKeyIn", {"Replica": {}}, WEST, secret="wrong")
    assert st == 400 and out["__type"] == "InvalidSignatureException"
    # An accepted peer that sends material not sealed for B.
    st, out = b.call("KinkoPeer.ReplicateKeyIn", {"Replica": {
        "KeyId": md["KeyId"], "Arn": md["Arn"].replace(EAST, WEST),
        "MaterialArn": md["Arn"].replace(EAST, ""), "Origin": "AWS_KMS",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "MultiRegionConfiguration": {"MultiRegionKeyType": "REPLICA",
                                     "PrimaryKey": {"Arn": md["Arn"], "Region": EAST},
                                     "ReplicaKeys": []}},
        "EncryptedKeyMaterial": base64.b64encode(b"KPW1" + bytes(600)).decode()}, WEST)
    assert st == 400 and out["__type"] == "InvalidCiphertextException", out


def test_the_wire_carries_only_sealed_material(pair):
    a, _ = pair
    Recorder.bodies.clear()
    md = mrk(a)
    with pytest.raises(ClientError):
        a.client(EAST).replicate_key(KeyId=md["KeyId"], ReplicaRegion=RECORDER)
    assert Recorder.bodies  # one per attempt of the SDK
    for target, body in Recorder.bodies:
        assert target == "KinkoPeer.ReplicateKeyIn"
        sent = json.loads(body)
        assert set(sent) == {"Replica", "EncryptedKeyMaterial"}
        assert base64.b64decode(sent["EncryptedKeyMaterial"])[:4] == b"KPW1"
        # The document carries no material reference of A's (wrapped under its root key).
        assert all(set(m) == {"Version", "Created"} for m in sent["Replica"]["Materials"])
        assert b"Wrapped" not in body


def test_the_walk_through_across_two_deployments_with_the_aws_cli(pair, tmp_path):
    a, b = pair
    md = a.aws("kms", "create-key", "--multi-region")["KeyMetadata"]
    assert md["KeyId"].startswith("mrk-")
    out = a.aws("kms", "replicate-key", "--key-id", md["KeyId"], "--replica-region", WEST)
    assert out["ReplicaKeyMetadata"]["Arn"] == md["Arn"].replace(EAST, WEST)
    (tmp_path / "plain.txt").write_bytes(b"seed walk-through")
    out = a.aws("kms", "encrypt", "--key-id", md["KeyId"], "--plaintext",
                "fileb://" + str(tmp_path / "plain.txt"))
    (tmp_path / "ct.bin").write_bytes(base64.b64decode(out["CiphertextBlob"]))
    got = b.aws("kms", "decrypt", "--ciphertext-blob", "fileb://" + str(tmp_path / "ct.bin"),
                region=WEST)
    assert base64.b64decode(got["Plaintext"]) == b"seed walk-through"
