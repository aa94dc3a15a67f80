"""The PostgreSQL store (docs/CLUSTER.md): the storage contract against a
real server, two kinko nodes sharing one database and its change feed,
PostgreSQL going away and coming back, one root of trust, and `kinko
store copy` between SQLite and PostgreSQL both ways.

Every test makes its own database on the session's PostgreSQL (conftest's
Postgres); the outage test stops a PostgreSQL of its own.
"""
import base64
import os
import subprocess
import threading
import time

import pytest
from botocore.exceptions import ClientError

from conftest import KINKO, Postgres, Server, _sanitizer_clean

_counter = [0]


def folder(path):
    os.makedirs(str(path), mode=0o700, exist_ok=True)
    return str(path)


def fresh_db(pg, tag):
    _counter[0] += 1
    return pg.create_database("pgt_%s_%d_%d" % (tag, os.getpid(), _counter[0]))


def err(e):
    return e.response["Error"]["Code"]


def until(deadline_s, probe):
    """Calls probe() until it returns truthy or deadline_s (monotonic) passes;
    returns (value, seconds taken)."""
    start = time.monotonic()
    while True:
        v = probe()
        if v or time.monotonic() - start > deadline_s:
            return v, time.monotonic() - start
        time.sleep(0.02)


@pytest.fixture
def two_nodes(make_server, postgres, tmp_path):
    """Two nodes on one database: different data folders, one root key file."""
    url = fresh_db(postgres, "nodes")
    a = make_server(["--dev", "--store", url + "?application_name=kinko-a"],
                    data_dir=folder(tmp_path / "a"))
    b = make_server(["--dev", "--store", url + "?application_name=kinko-b",
                     "--root-key", str(tmp_path / "a" / "root.key")],
                    data_dir=folder(tmp_path / "b"))
    return a, b, url


def test_storage_contract_on_postgresql(postgres):
    """The C contract tests (tests/unit/storage/pg_test.c) on a fresh database."""
    binary = os.path.join(os.path.dirname(KINKO), "tests", "storage", "pg_test")
    if not os.path.exists(binary):
        pytest.skip("the unit tests are not built beside %s" % KINKO)
    env = dict(os.environ, KINKO_TEST_PG_URL=fresh_db(postgres, "contract"))
    p = subprocess.run([binary], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert " 0 failed" in p.stdout and not p.stdout.startswith("0 passed"), p.stdout


def enc(kms, key):
    return kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]


def refused_with(call, code):
    """A probe: True once call() fails with the error code."""
    def probe():
        try:
            call()
            return False
        except ClientError as e:
            assert err(e) == code, e
            return True
    return probe


def test_changes_reach_the_other_node_within_a_second(two_nodes):
    a, b, _ = two_nodes
    ka, kb = a.client(), b.client()
    sa, sb = a.client("secretsmanager"), b.client("secretsmanager")

    # DisableKey on A: B stops encrypting with the key it has cached.
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    enc(kb, key)
    ka.disable_key(KeyId=key)
    ok, took = until(1.0, refused_with(lambda: enc(kb, key), "DisabledException"))
    assert ok, "B still encrypts %.2f s after DisableKey on A" % took

    # A key policy that denies Encrypt, put on A, holds on B.
    key2 = ka.create_key()["KeyMetadata"]["KeyId"]
    enc(kb, key2)
    import json
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "no", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt",
         "Resource": "*"}]}
    ka.put_key_policy(KeyId=key2, PolicyName="default", Policy=json.dumps(policy))
    ok, took = until(1.0, refused_with(lambda: enc(kb, key2), "AccessDeniedException"))
    assert ok, "B ignores A's policy after %.2f s" % took

    # A grant revoked on A is gone on B (grants live in the cached key).
    key3 = ka.create_key()["KeyMetadata"]["KeyId"]
    g = ka.create_grant(KeyId=key3, GranteePrincipal="arn:aws:iam::000000000000:role/app",
                        Operations=["Decrypt"])
    assert len(kb.list_grants(KeyId=key3)["Grants"]) == 1
    ka.revoke_grant(KeyId=key3, GrantId=g["GrantId"])
    ok, took = until(1.0, lambda: kb.list_grants(KeyId=key3)["Grants"] == [])
    assert ok, "B still lists the revoked grant after %.2f s" % took

    # An alias deleted on A no longer resolves on B.
    ka.create_alias(AliasName="alias/feed", TargetKeyId=key3)
    enc(kb, "alias/feed")
    ka.delete_alias(AliasName="alias/feed")
    ok, took = until(1.0, refused_with(lambda: enc(kb, "alias/feed"), "NotFoundException"))
    assert ok, "B still resolves the deleted alias after %.2f s" % took

    # A secret value changed on A is what B answers.
    sa.create_secret(Name="feed/s", SecretString="one")
    assert sb.get_secret_value(SecretId="feed/s")["SecretString"] == "one"
    sa.put_secret_value(SecretId="feed/s", SecretString="two")
    ok, took = until(1.0, lambda: sb.get_secret_value(SecretId="feed/s")["SecretString"] == "two")
    assert ok, "B still answers the old value after %.2f s" % took


def test_listener_reconnect_flushes_the_caches(two_nodes, postgres):
    """A change B was never told of (made behind kinko's back, so no NOTIFY)
    is enforced once B's listening connection is cut and B listens again."""
    a, b, url = two_nodes
    ka, kb = a.client(), b.client()
    dbname = url.rsplit("/", 1)[1]
    c = postgres.connect(dbname=dbname)
    cur = c.cursor()
    # The premise: B's cache still holds the key as enabled, since nothing
    # told it. On a loaded machine B may drop its cache for a reason of its
    # own first (a reconnect of its listener); then try again with a new key.
    for _ in range(3):
        key = ka.create_key()["KeyMetadata"]["KeyId"]
        enc(kb, key)
        cur.execute("UPDATE kinko_docs SET version = version + 1, doc = convert_to(jsonb_set("
                    "convert_from(doc, 'UTF8')::jsonb, '{KeyState}', '\"Disabled\"')::text,"
                    " 'UTF8') WHERE kind = 'key' AND id = %s", (key,))
        assert cur.rowcount == 1
        time.sleep(0.3)
        try:
            enc(kb, key)
            break
        except ClientError as e:
            assert err(e) == "DisabledException", e
    else:
        pytest.fail("B dropped its cache on its own three times; the premise never held")
    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'kinko-b' AND query IN ('LISTEN kinko_feed', 'SELECT 1')")
    assert cur.rowcount >= 1
    c.close()
    ok, took = until(2.0, refused_with(lambda: enc(kb, key), "DisabledException"))
    assert ok, "B kept its cache %.2f s after its listener was cut" % took
    assert "change feed listening again" in open(b.log_path).read()


def test_postgresql_down_and_back(make_server, tmp_path):
    """PostgreSQL stopped under load: clean internal errors, fast; Encrypt
    on a cached key goes on; service resumes by itself once it is back."""
    pg = Postgres()
    try:
        url = pg.create_database("down")
        s = make_server(["--dev", "--store", url], data_dir=folder(tmp_path / "n"))
        kms, sm = s.client(), s.client("secretsmanager")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        enc(kms, key)
        sm.create_secret(Name="down/s", SecretString="v")

        stop = threading.Event()
        seen = {"ok": 0, "internal": 0, "other": []}
        slow = []

        def load():
            c = s.client()
            while not stop.is_set():
                t = time.monotonic()
                try:
                    c.create_key()
                    seen["ok"] += 1
                except ClientError as e:
                    if err(e) == "KMSInternalException":
                        seen["internal"] += 1
                    else:
                        seen["other"].append(err(e))
                slow.append(time.monotonic() - t)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        pg.halt()
        time.sleep(1.5)

        # Crypto on the cached key goes on.
        for _ in range(5):
            enc(kms, key)
        # Calls that need the database fail fast with the internal dependency error.
        t = time.monotonic()
        with pytest.raises(ClientError) as e:
            kms.create_key()
        assert err(e.value) == "KMSInternalException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        with pytest.raises(ClientError) as e:
            sm.get_secret_value(SecretId="down/s")
        assert err(e.value) == "InternalServiceError"
        assert time.monotonic() - t < 5.0

        pg.resume()

        def create_or_none():  # the internal error until kinko has reconnected
            try:
                return kms.create_key()["KeyMetadata"]["KeyId"]
            except ClientError as e:
                if err(e) == "KMSInternalException":
                    return None
                raise

        ok, took = until(10.0, create_or_none)
        stop.set()
        for th in threads:
            th.join()
        assert ok, "kinko did not serve again %.1f s after PostgreSQL came back" % took
        assert sm.get_secret_value(SecretId="down/s")["SecretString"] == "v"
        assert seen["ok"] > 0 and seen["internal"] > 0, seen
        assert seen["other"] == [], seen
        assert max(slow) < 8.0, "a call took %.1f s" % max(slow)
    finally:
        pg.stop()


def test_wrong_root_key_refused_before_serving(postgres, tmp_path):
    url = fresh_db(postgres, "root")
    a = Server(["--dev", "--store", url], data_dir=folder(tmp_path / "a")).start()
    try:
        a.client().create_key()
    finally:
        a.stop()
    # Another node with its own (new) root key: refused, with the reason.
    p = subprocess.run([KINKO, "serve", "--dev", "--listen", "127.0.0.1:0", "--data",
                        str(tmp_path / "b"), "--store", url],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "does not match the store" in p.stderr
    assert "listening" not in p.stdout


def run(*args, check=True):
    p = subprocess.run([KINKO] + list(args), capture_output=True, text=True, timeout=300)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_store_copy_both_ways(postgres, tmp_path):
    src = folder(tmp_path / "src")
    s = Server(["--dev", "--store", "sqlite:" + src + "/store"], data_dir=src).start()
    kms, sm = s.client(), s.client("secretsmanager")
    keys = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(3)]
    blobs = {k: enc(kms, k) for k in keys}
    kms.create_alias(AliasName="alias/copied", TargetKeyId=keys[0])
    kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    sm.create_secret(Name="copied/s", SecretString="secret-value")
    sm.put_secret_value(SecretId="copied/s", SecretString="second")
    assert s.stop() == 0
    _sanitizer_clean(s)
    root_key = os.path.join(src, "root.key")

    # sqlite -> postgresql
    url = fresh_db(postgres, "copy")
    out = run("store", "copy", "--from", "sqlite:" + src + "/store", "--to", url).stdout
    assert "records copied" in out
    run("check", "--data", src, "--store", url, "--root-key", root_key)
    # A second copy into the now non-empty target is refused, unless told.
    p = run("store", "copy", "--from", "sqlite:" + src + "/store", "--to", url, check=False)
    assert p.returncode == 1 and "already holds records" in p.stderr
    run("store", "copy", "--from", "sqlite:" + src + "/store", "--to", url, "--force")

    # postgresql -> sqlite (a fresh folder)
    back = str(tmp_path / "back")
    run("store", "copy", "--from", url, "--to", "sqlite:" + back)
    run("check", "--data", src, "--store", "sqlite:" + back, "--root-key", root_key)

    # Every key still decrypts, on both targets, and the secret kept its versions.
    for store in (url, "sqlite:" + back):
        n = Server(["--dev", "--store", store, "--root-key", root_key],
                   data_dir=folder(tmp_path / ("n%d" % len(store)))).start()
        try:
            k = n.client()
            for key, blob in blobs.items():
                assert k.decrypt(CiphertextBlob=blob)["KeyId"].endswith(key)
            assert k.describe_key(KeyId="alias/copied")["KeyMetadata"]["KeyId"] == keys[0]
            c = n.client("secretsmanager")
            assert c.get_secret_value(SecretId="copied/s")["SecretString"] == "second"
            prev = c.get_secret_value(SecretId="copied/s", VersionStage="AWSPREVIOUS")
            assert prev["SecretString"] == "secret-value"
        finally:
            assert n.stop() == 0
            _sanitizer_clean(n)
            n.cleanup()


def test_store_copy_usage_and_missing_source(tmp_path):
    assert run("store", check=False).returncode == 2
    assert run("store", "copy", "--from", "x", check=False).returncode == 2
    p = run("store", "copy", "--from", "sqlite:" + str(tmp_path / "nope"), "--to",
            "sqlite:" + str(tmp_path / "t"), check=False)
    assert p.returncode == 1 and "does not exist" in p.stderr
