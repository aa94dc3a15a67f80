"""Three kinko nodes on one PostgreSQL behind nginx (pgcluster.py): the
clients talk to nginx only, except where a test addresses one node on
purpose. The tests share one cluster and run in file order: the node kill
and the database restart come after the calls that need every node, the
deletion (which moves the nodes' test clocks 8 days on) after those, and
the audit check last (it stops the nodes).

Skipped, with the reason, where nginx or PostgreSQL is not installed.
"""
import json
import os
import subprocess
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import KINKO
from pgcluster import pg_cluster  # noqa: F401 (fixture)
from cluster import run_schedulers_at_once
from test_cluster_scheduling import deletions
from test_pg_store import enc, err, refused_with, until

DAY = 86400
ACCOUNT = "arn:aws:iam::000000000000"


def upstream(resp):
    """The node (host:port) nginx sent a call to."""
    return resp["ResponseMetadata"]["HTTPHeaders"]["x-kinko-upstream"]


def test_kms_and_secrets_through_nginx(pg_cluster):
    front = pg_cluster.front
    kms, sm = front.client(), front.client("secretsmanager")
    key = kms.create_key(Description="through nginx")["KeyMetadata"]["KeyId"]

    # Encrypt on one call, Decrypt on the next: round robin puts them on
    # different nodes, and every node decrypts what another encrypted.
    served = set()
    for i in range(6):
        e = kms.encrypt(KeyId=key, Plaintext=b"p%d" % i)
        d = kms.decrypt(CiphertextBlob=e["CiphertextBlob"])
        assert d["Plaintext"] == b"p%d" % i
        served |= {upstream(e), upstream(d)}
    assert len(served) == 3, served

    kms.create_alias(AliasName="alias/lb", TargetKeyId=key)
    for _ in range(3):
        assert kms.describe_key(KeyId="alias/lb")["KeyMetadata"]["KeyId"] == key
    assert any(a["AliasName"] == "alias/lb" for a in kms.list_aliases()["Aliases"])

    g = kms.create_grant(KeyId=key, GranteePrincipal=ACCOUNT + ":role/app",
                         Operations=["Decrypt", "Encrypt"])
    # A node that caches the key learns of the grant through the change
    # feed: within a second, as AWS's grants too are eventually consistent.
    lists = [n.client() for n in pg_cluster.nodes]
    ok, took = until(1.0, lambda: all([x["GrantId"] for x in c.list_grants(KeyId=key)["Grants"]]
                                      == [g["GrantId"]] for c in lists))
    assert ok, "a new grant not listed on every node after %.2f s" % took
    kms.revoke_grant(KeyId=key, GrantId=g["GrantId"])
    ok, took = until(1.0, lambda: all(c.list_grants(KeyId=key)["Grants"] == [] for c in lists))
    assert ok, "a revoked grant still listed after %.2f s" % took

    # A secret, its versions, and the two steps of a rotation (a pending
    # version, then AWSCURRENT moved onto it), each call on the next node.
    arn = sm.create_secret(Name="lb/db", SecretString=json.dumps({"password": "one"}))["ARN"]
    cur = sm.get_secret_value(SecretId=arn)
    assert json.loads(cur["SecretString"]) == {"password": "one"}
    pending = sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"password": "two"}),
                                  VersionStages=["AWSPENDING"])["VersionId"]
    got = sm.get_secret_value(SecretId=arn, VersionStage="AWSPENDING")
    assert got["VersionId"] == pending
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                   MoveToVersionId=pending, RemoveFromVersionId=cur["VersionId"])
    for _ in range(3):
        now = sm.get_secret_value(SecretId=arn)
        assert now["VersionId"] == pending and json.loads(now["SecretString"])["password"] == "two"
    prev = sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    assert prev["VersionId"] == cur["VersionId"]

    # The AWS CLI through nginx as well.
    _, out, _ = front.aws("kms", "describe-key", "--key-id", "alias/lb")
    assert json.loads(out)["KeyMetadata"]["KeyId"] == key
    _, out, _ = front.aws("secretsmanager", "get-secret-value", "--secret-id", "lb/db")
    assert json.loads(out)["VersionId"] == pending


def deny_encrypt_policy():
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": ACCOUNT + ":root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "no", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt",
         "Resource": "*"}]})


def on_all(others, probe_for):
    """A probe true once probe_for(node) holds on every node of others."""
    return lambda: all(probe_for(n)() for n in others)


def test_a_change_on_one_node_is_enforced_on_the_others_within_a_second(pg_cluster):
    a, others = pg_cluster.nodes[0], pg_cluster.nodes[1:]
    ka, sa = a.client(), a.client("secretsmanager")
    clients = {n.node_id: n.client() for n in others}
    secrets = {n.node_id: n.client("secretsmanager") for n in others}

    def refused(key, code):
        return lambda n: refused_with(lambda: enc(clients[n.node_id], key), code)

    def warm(key):  # every other node caches the key (and its grants)
        for c in clients.values():
            enc(c, key)

    key = ka.create_key()["KeyMetadata"]["KeyId"]
    warm(key)
    ka.disable_key(KeyId=key)
    ok, took = until(1.0, on_all(others, refused(key, "DisabledException")))
    assert ok, "DisableKey on node-1 not enforced everywhere after %.2f s" % took

    key2 = ka.create_key()["KeyMetadata"]["KeyId"]
    warm(key2)
    ka.put_key_policy(KeyId=key2, PolicyName="default", Policy=deny_encrypt_policy())
    ok, took = until(1.0, on_all(others, refused(key2, "AccessDeniedException")))
    assert ok, "PutKeyPolicy on node-1 not enforced everywhere after %.2f s" % took

    key3 = ka.create_key()["KeyMetadata"]["KeyId"]
    g = ka.create_grant(KeyId=key3, GranteePrincipal=ACCOUNT + ":role/app", Operations=["Decrypt"])
    for c in clients.values():
        assert len(c.list_grants(KeyId=key3)["Grants"]) == 1
    ka.revoke_grant(KeyId=key3, GrantId=g["GrantId"])
    ok, took = until(1.0, lambda: all(c.list_grants(KeyId=key3)["Grants"] == []
                                      for c in clients.values()))
    assert ok, "RevokeGrant on node-1 not enforced everywhere after %.2f s" % took

    ka.create_alias(AliasName="alias/feed3", TargetKeyId=key3)
    for c in clients.values():
        enc(c, "alias/feed3")
    ka.delete_alias(AliasName="alias/feed3")
    ok, took = until(1.0, on_all(others, refused("alias/feed3", "NotFoundException")))
    assert ok, "DeleteAlias on node-1 not enforced everywhere after %.2f s" % took

    sa.create_secret(Name="feed3/s", SecretString="one")
    for c in secrets.values():
        assert c.get_secret_value(SecretId="feed3/s")["SecretString"] == "one"
    sa.put_secret_value(SecretId="feed3/s", SecretString="two")
    ok, took = until(1.0, lambda: all(c.get_secret_value(SecretId="feed3/s")["SecretString"] == "two"
                                      for c in secrets.values()))
    assert ok, "a secret value put on node-1 not answered everywhere after %.2f s" % took


class MixedLoad:
    """Client threads through nginx, with the SDKs' standard retries, each
    doing CreateKey, Encrypt and PutSecretValue in turn and recording what
    was acknowledged."""

    def __init__(self, front, threads=4, attempts=6):
        self.front = front
        self.attempts = attempts
        self.stop_flag = threading.Event()
        self.keys, self.blobs, self.versions, self.errors = [], [], [], []
        self.lock = threading.Lock()
        sm = front.retrying_client("secretsmanager")
        self.secrets = [sm.create_secret(Name="load/%d" % i, SecretString="v0")["ARN"]
                        for i in range(threads)]
        self.key = front.retrying_client().create_key()["KeyMetadata"]["KeyId"]
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]

    def run(self, i):
        kms = self.front.retrying_client(attempts=self.attempts)
        sm = self.front.retrying_client("secretsmanager", attempts=self.attempts)
        n = 0
        while not self.stop_flag.is_set():
            n += 1
            op = "CreateKey"
            try:
                kid = kms.create_key()["KeyMetadata"]["KeyId"]
                with self.lock:
                    self.keys.append(kid)
                pt = b"%d-%d" % (i, n)
                op = "Encrypt"
                blob = kms.encrypt(KeyId=kid if n % 2 else self.key, Plaintext=pt)["CiphertextBlob"]
                with self.lock:
                    self.blobs.append((blob, pt))
                value = "v%d-%d" % (i, n)
                if n % 50 == 0:  # a secret keeps at most 100 versions (AWS's quota)
                    op = "CreateSecret"
                    self.secrets[i] = sm.create_secret(Name="load/%d/%d" % (i, n),
                                                       SecretString="v0")["ARN"]
                op = "PutSecretValue"
                vid = sm.put_secret_value(SecretId=self.secrets[i], SecretString=value)["VersionId"]
                with self.lock:
                    self.versions.append((self.secrets[i], vid, value))
            except ClientError as e:
                with self.lock:
                    self.errors.append((op, err(e), e.response["Error"].get("Message")))
            except Exception as e:  # a connection error the retries did not absorb
                with self.lock:
                    self.errors.append((op, type(e).__name__, str(e)))

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join()

    def check_nothing_lost(self):
        kms = self.front.retrying_client()
        sm = self.front.retrying_client("secretsmanager")
        for kid in self.keys:
            assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
        for blob, pt in self.blobs:
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == pt
        # Each secret gets at most 50 versions: versions with no stage are
        # all kept below AWS's 100.
        for arn, vid, value in self.versions:
            assert sm.get_secret_value(SecretId=arn, VersionId=vid)["SecretString"] == value


def test_concurrent_writes_from_two_nodes_are_not_errors(pg_cluster):
    """Two nodes writing the same secret and the same key at once: a
    versioned write that lost the race is run again by the pipeline on what
    the other wrote, so no client (without SDK retries) sees an error, and
    every write is there afterwards."""
    a, b = pg_cluster.nodes[0], pg_cluster.nodes[1]
    sm_a, sm_b = a.client("secretsmanager"), b.client("secretsmanager")
    kms_a, kms_b = a.client(), b.client()
    arn = sm_a.create_secret(Name="race-%d" % time.time_ns(), SecretString="v0")["ARN"]
    key = kms_a.create_key()["KeyMetadata"]["KeyId"]
    errors, versions = [], []

    def writer(sm, kms, tag):
        for i in range(24):
            try:
                versions.append(sm.put_secret_value(SecretId=arn,
                                                    SecretString="%s-%d" % (tag, i))["VersionId"])
                kms.tag_resource(KeyId=key,
                                 Tags=[{"TagKey": "%s%d" % (tag, i % 10), "TagValue": str(i)}])
            except ClientError as e:
                errors.append((e.operation_name, e.response["Error"]["Code"],
                               e.response["Error"]["Message"]))

    threads = [threading.Thread(target=writer, args=(sm, kms, tag))
               for sm, kms, tag in ((sm_a, kms_a, "a"), (sm_b, kms_b, "b"),
                                    (a.client("secretsmanager"), a.client(), "c"),
                                    (b.client("secretsmanager"), b.client(), "d"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listed = {v["VersionId"] for v in sm_a.list_secret_version_ids(SecretId=arn,
                                                                   IncludeDeprecated=True)["Versions"]}
    # Secrets Manager keeps the newest versions; every write was applied (no lost update).
    assert len(versions) == 96 and len(set(versions)) == 96  # under 100 versions a secret
    assert versions[-1] in listed or any(v in listed for v in versions[-2:])
    tags = {t["TagKey"] for t in kms_b.list_resource_tags(KeyId=key)["Tags"]}
    assert tags == {"%s%d" % (t, i) for t in "abcd" for i in range(10)}  # at most 50 tags a key


def test_the_feed_barrier_comes_after_the_writes_before_it_on_every_node(pg_cluster):
    """KinkoTest.FeedBarrier (docs/TESTING.md): a barrier sent through one
    node after writes made on another is delivered by every node's feed
    after those writes, the sender's included; once a node has seen it,
    it enforces them. This is what the suite through the cluster waits on."""
    n1, n2, n3 = pg_cluster.nodes
    k1, k3 = n1.client(), n3.client()
    keys = [k1.create_key()["KeyMetadata"]["KeyId"] for _ in range(4)]
    for k in keys:
        enc(k3, k)  # node-3 caches them, enabled
    for k in keys:
        k1.disable_key(KeyId=k)
    token = "t-%d" % time.time_ns()
    assert n2.test_call("FeedBarrier", {"Token": token}) == {"Token": token}
    ok, took = until(1.0, lambda: all(n.test_call("FeedBarrierSeen", {"Token": token})["Seen"]
                                      for n in (n1, n2, n3)))
    assert ok, "the barrier was not seen by every node within %.2f s" % took
    for k in keys:
        assert refused_with(lambda: enc(k3, k), "DisabledException")()
    assert n1.test_call("FeedBarrierSeen", {"Token": "never-sent"}) == {"Seen": False}
    for bad in ("", "a b", "a:b", "x" * 65):
        with pytest.raises(AssertionError, match="ValidationException"):
            n1.test_call("FeedBarrier", {"Token": bad})


def test_kill_9_of_a_node_under_mixed_load_loses_no_acknowledged_write(pg_cluster):
    victim = pg_cluster.nodes[1]
    load = MixedLoad(pg_cluster.front).start()
    try:
        time.sleep(1.5)
        before = len(load.keys)
        victim.kill9()
        time.sleep(2.5)
        assert len(load.keys) > before, "no CreateKey acknowledged after the kill"
    finally:
        load.stop()
    assert load.keys and load.blobs and load.versions
    assert load.errors == [], load.errors[:10]
    load.check_nothing_lost()

    # With the node down, the cluster keeps serving: a client without
    # retries sees no error (nginx moves a refused connection on).
    time.sleep(0.5)
    kms = pg_cluster.front.client()
    sm = pg_cluster.front.client("secretsmanager")
    for i in range(12):
        kid = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = enc(kms, kid)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
        sm.put_secret_value(SecretId=load.secrets[0], SecretString="after-%d" % i)

    # The node comes back on its folder and serves again.
    pg_cluster.restart(victim)
    assert victim.client().describe_key(KeyId=load.key)["KeyMetadata"]["Enabled"]


def test_postgresql_restarted_under_load(pg_cluster):
    """Clean internal errors while PostgreSQL is down, and service again
    without restarting kinko once it is back."""
    front = pg_cluster.front
    kms, sm = front.client(), front.client("secretsmanager")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    direct = [n.client() for n in pg_cluster.nodes]
    for c in direct:  # every node caches the key
        enc(c, key)
    sm.create_secret(Name="pgdown/s", SecretString="v")
    stop = threading.Event()
    seen = {"ok": 0, "errors": {}}
    lock = threading.Lock()

    def load(op):
        c = front.client("secretsmanager" if op == "get" else "kms")
        while not stop.is_set():
            try:
                if op == "get":
                    c.get_secret_value(SecretId="pgdown/s")
                else:
                    c.create_key()
                with lock:
                    seen["ok"] += 1
            except ClientError as e:
                code = (err(e), e.response["ResponseMetadata"]["HTTPStatusCode"])
                with lock:
                    seen["errors"][code] = seen["errors"].get(code, 0) + 1
            time.sleep(0.01)

    threads = [threading.Thread(target=load, args=(op,)) for op in ("create", "create", "get")]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        pg_cluster.pg.halt()
        time.sleep(1.5)
        for n, c in zip(pg_cluster.nodes, direct):  # crypto on the cached key goes on
            try:
                enc(c, key)
            except ClientError as e:
                raise AssertionError("%s: %s\n%s" % (n.node_id, e, n.log_text()[-3000:]))
        for _ in range(6):  # and through nginx, whichever node it picks
            enc(kms, key)
        pg_cluster.pg.resume()
        ok, took = until(10.0, lambda: kms.create_key()["KeyMetadata"]["KeyId"])
        assert ok, "the cluster did not serve again %.1f s after PostgreSQL came back" % took
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert seen["ok"] > 0, seen
    assert set(seen["errors"]) <= {("KMSInternalException", 500), ("InternalServiceError", 500)}, seen
    assert seen["errors"], "no call failed while PostgreSQL was down: %s" % seen
    # Every node serves writes again, without a restart.
    for n in pg_cluster.nodes:
        n.client().create_key()
        assert n.client("secretsmanager").get_secret_value(SecretId="pgdown/s")["SecretString"] == "v"


def test_a_key_scheduled_for_deletion_is_deleted_once(pg_cluster):
    kms = pg_cluster.front.client()
    ids = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)]
    for kid in ids:
        kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    pg_cluster.advance_clock(8 * DAY)
    run_schedulers_at_once(pg_cluster.nodes)
    for n in pg_cluster.nodes:  # a second round finds nothing left to do
        n.run_scheduler()
    for kid in ids:
        per_node = {n.node_id: len(deletions(n, kid)) for n in pg_cluster.nodes}
        assert sum(per_node.values()) == 1, (kid, per_node)
        for _ in range(3):
            with pytest.raises(ClientError) as e:
                kms.describe_key(KeyId=kid)
            assert err(e.value) == "NotFoundException"


def test_the_three_trails_verify_as_a_set(pg_cluster):
    """Last: stops the nodes (a trail is checked at rest), the one killed
    with -9 included."""
    kms = pg_cluster.front.client()
    kms.list_keys()
    dirs = [os.path.join(n.data_dir, "audit") for n in pg_cluster.nodes]
    for n in pg_cluster.nodes:
        assert n.stop() == 0, "%s did not stop cleanly" % n.node_id
    p = subprocess.run([KINKO, "audit", "verify"] + dirs, capture_output=True, text=True,
                       timeout=120)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "OK: 3 node trails" in out, out


def free_port_base(span=11):
    """A port P with P..P+span-1 all free on 127.0.0.1 (scripts/cluster.sh's fixed ports)."""
    import random
    import socket
    for _ in range(50):
        base = random.randrange(20000, 40000)
        socks = []
        try:
            for p in range(base, base + span):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no run of free ports")


def test_the_cluster_script_starts_serves_and_stops():
    """scripts/cluster.sh, as docs/CLUSTER.md shows it: start, the printed
    export lines, a call through nginx, status, stop."""
    from pgcluster import have_binaries
    reason = have_binaries()
    if reason:
        pytest.skip(reason)
    from conftest import ROOT
    script = os.path.join(ROOT, "scripts", "cluster.sh")
    import shutil
    import tempfile
    top = tempfile.mkdtemp(prefix="kinko-cluster-sh-")
    os.chmod(top, 0o711)  # PostgreSQL runs as the postgres user under root
    d = os.path.join(top, "c")
    env = dict(os.environ, KINKO_BIN=KINKO, KINKO_CLUSTER_PORT=str(free_port_base()))

    def sh(cmd):
        return subprocess.run([script, cmd, d], capture_output=True, text=True, env=env, timeout=120)
    p = sh("start")
    try:
        assert p.returncode == 0, p.stdout + p.stderr
        exports = dict(line[len("export "):].split("=", 1) for line in p.stdout.splitlines()
                       if line.startswith("export "))
        assert set(exports) == {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                "AWS_DEFAULT_REGION"}
        import boto3
        kms = boto3.client("kms", endpoint_url=exports["AWS_ENDPOINT_URL"],
                           region_name=exports["AWS_DEFAULT_REGION"],
                           aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"])
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        served = set()
        for _ in range(3):
            e = kms.encrypt(KeyId=key, Plaintext=b"hello")
            served.add(upstream(e))
            assert kms.decrypt(CiphertextBlob=e["CiphertextBlob"])["Plaintext"] == b"hello"
        assert len(served) == 3, served
        st = sh("status")
        assert st.returncode == 0 and st.stdout.count("/ready 200") == 3, st.stdout + st.stderr
    finally:
        stop = sh("stop")
        down = sh("status")
        shutil.rmtree(top, ignore_errors=True)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert down.returncode == 1 and "running" not in down.stdout, down.stdout
