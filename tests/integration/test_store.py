"""The store as a service: --store picks the backend, the caches follow the
store's change feed, and writers of different secrets do not wait for each
other while writers of one secret lose no update."""
import os
import subprocess
import threading

import pytest
from botocore.exceptions import ClientError

from conftest import KINKO


def _code(e):
    return e.response["Error"]["Code"]


def test_store_url_flag(make_server, tmp_path):
    db = tmp_path / "elsewhere" / "keys.db"
    s = make_server(["--dev", "--store", "sqlite:%s" % db])
    kms = s.client()
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    assert db.exists()
    assert not os.path.exists(os.path.join(s.data_dir, "kinko.db"))
    assert s.stop() == 0
    # `kinko check` opens the same store by its URL.
    p = subprocess.run([KINKO, "check", "--data", s.data_dir, "--store", "sqlite:%s" % db],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "1 keys" in p.stdout
    # Started again on the same store, the key is there.
    s2 = make_server(["--dev", "--store", str(db)], data_dir=s.data_dir)
    assert s2.client().describe_key(KeyId=kid)["KeyMetadata"]["KeyId"] == kid


def test_two_servers_on_one_store_refused(make_server, tmp_path):
    """A SQLite store outside the data folder is locked like the folder:
    a second server with another data folder but the same store would
    never see the first one's writes in its caches, so it is refused and
    changes nothing."""
    db = tmp_path / "shared" / "keys.db"
    s = make_server(["--dev", "--store", "sqlite:%s" % db])
    kid = s.client().create_key()["KeyMetadata"]["KeyId"]
    other = tmp_path / "other-data"
    p = subprocess.run([KINKO, "serve", "--dev", "--listen", "127.0.0.1:0", "--data",
                        str(other), "--store", "sqlite:%s" % db],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "another kinko (pid %d) is using %s" % (s.proc.pid, db.parent) in p.stderr, p.stderr
    assert not (other / "audit").exists()
    assert s.client().describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"


@pytest.mark.parametrize("url,message", [
    ("postgresql://kinko@127.0.0.1:1/kinko", "cannot connect to the PostgreSQL store"),
    ("mysql://db/kinko", "unknown store scheme"),
    ("sqlite:", "no path"),
])
def test_store_url_refused(tmp_path, url, message):
    p = subprocess.run([KINKO, "serve", "--dev", "--listen", "127.0.0.1:0", "--data",
                        str(tmp_path / "data"), "--store", url],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert message in p.stderr


def test_scheduled_deletion_reaches_the_caches(make_server):
    """The scheduler deletes a key and its alias straight in the store; the
    key and alias caches, warm from an Encrypt, hear it from the change feed."""
    s = make_server(["--dev", "--test-mode"])
    kms = s.client()
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/feed", TargetKeyId=kid)
    kms.encrypt(KeyId=kid, Plaintext=b"x")
    kms.encrypt(KeyId="alias/feed", Plaintext=b"x")
    kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    s.advance_clock(8 * 86400)
    s.run_scheduler()
    for key_id in (kid, "alias/feed"):
        with pytest.raises(ClientError) as e:
            kms.encrypt(KeyId=key_id, Plaintext=b"x")
        assert _code(e.value) == "NotFoundException"


def test_alias_change_reaches_the_cache(kms):
    k1 = kms.create_key()["KeyMetadata"]["KeyId"]
    k2 = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/feed-moves", TargetKeyId=k1)
    assert k1 in kms.encrypt(KeyId="alias/feed-moves", Plaintext=b"x")["KeyId"]
    kms.update_alias(AliasName="alias/feed-moves", TargetKeyId=k2)
    assert k2 in kms.encrypt(KeyId="alias/feed-moves", Plaintext=b"x")["KeyId"]
    kms.delete_alias(AliasName="alias/feed-moves")
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId="alias/feed-moves", Plaintext=b"x")
    assert _code(e.value) == "NotFoundException"


def test_disable_then_encrypt_refused(kms):
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=kid, Plaintext=b"x")
    kms.disable_key(KeyId=kid)
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=kid, Plaintext=b"x")
    assert _code(e.value) == "DisabledException"


def test_reset_reaches_the_caches(make_server):
    s = make_server(["--dev", "--test-mode"])
    kms = s.client()
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/reset-me", TargetKeyId=kid)
    kms.encrypt(KeyId="alias/reset-me", Plaintext=b"x")
    s.reset()
    for key_id in (kid, "alias/reset-me"):
        with pytest.raises(ClientError) as e:
            kms.encrypt(KeyId=key_id, Plaintext=b"x")
        assert _code(e.value) == "NotFoundException"


def test_secret_writers_in_parallel(server):
    """Threads write two secrets at once: every write succeeds, and on each
    secret every tag written by every thread is there (no lost update)."""
    sm = server.client("secretsmanager")
    names = ["store-parallel-a", "store-parallel-b"]
    for n in names:
        sm.create_secret(Name=n, SecretString="v0")
    errors = []
    per_thread = 8

    def writer(name, t):
        c = server.client("secretsmanager")
        try:
            for i in range(per_thread):
                c.tag_resource(SecretId=name, Tags=[{"Key": "t%d-%d" % (t, i), "Value": "x"}])
                c.put_secret_value(SecretId=name, SecretString="t%d-%d" % (t, i))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=writer, args=(n, t)) for n in names for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    for n in names:
        d = sm.describe_secret(SecretId=n)
        tags = {t["Key"] for t in d.get("Tags", [])}
        assert tags == {"t%d-%d" % (t, i) for t in range(3) for i in range(per_thread)}
        current = [v for v, st in d["VersionIdsToStages"].items() if "AWSCURRENT" in st]
        assert len(current) == 1
        value = sm.get_secret_value(SecretId=n)["SecretString"]
        assert value.startswith("t")
