"""kinko backup and kinko restore: an online copy of a serving data folder
(store, audit trail, manifest, never the root key), restored into a new
folder that `kinko check` and `kinko audit verify` pass and on which a
server decrypts every ciphertext made before the backup."""
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import KINKO, TEST_STORE

# kinko backup copies a SQLite store (a PostgreSQL store is refused with a
# pointer to pg_dump, which test_backup_refusals checks in the SQLite runs).
pytestmark = pytest.mark.skipif(TEST_STORE == "postgresql",
                                reason="kinko backup copies SQLite stores; PostgreSQL's is pg_dump's")


def run(*args):
    return subprocess.run([KINKO] + list(args), capture_output=True, text=True, timeout=120)


def root_key(path):
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(path, 0o600)
    return str(path)


def files_under(folder):
    for d, _, names in os.walk(folder):
        for n in names:
            yield os.path.join(d, n)


def assert_no_root_key(folder, key_path):
    key = open(key_path, "rb").read()
    for f in files_under(folder):
        assert os.path.basename(f) != "root.key", f
        assert key not in open(f, "rb").read(), "%s holds the root key's bytes" % f


def test_backup_under_load_restored_and_served(make_server, tmp_path):
    rk = root_key(tmp_path / "root.key")
    s = make_server(["--dev", "--root-key", rk])
    kms = s.client()
    before = []
    for i in range(5):
        kid = kms.create_key(Description="before %d" % i)["KeyMetadata"]["KeyId"]
        ct = kms.encrypt(KeyId=kid, Plaintext=b"plain %d" % i)["CiphertextBlob"]
        before.append((kid, ct, b"plain %d" % i))
    sm = s.client("secretsmanager")
    sm.create_secret(Name="app/db", SecretString="hunter2")
    grant = kms.create_grant(KeyId=before[0][0], GranteePrincipal="arn:aws:iam::000000000000:user/g",
                             RetiringPrincipal="arn:aws:iam::000000000000:root",
                             Operations=["Decrypt"])

    # Writers create keys and encrypt while the backup runs.
    stop = threading.Event()
    done = {"keys": 0, "errors": []}

    def writer():
        c = s.client()
        while not stop.is_set():
            try:
                k = c.create_key()["KeyMetadata"]["KeyId"]
                c.encrypt(KeyId=k, Plaintext=b"during")
                done["keys"] += 1
            except Exception as e:  # noqa: BLE001 - reported below
                done["errors"].append(repr(e))

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    backup = tmp_path / "backup"
    p = run("backup", "--data", s.data_dir, "--to", str(backup))
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert p.returncode == 0, p.stderr
    assert done["errors"] == []
    assert done["keys"] > 0
    assert "root key is NOT in the backup" in p.stdout
    assert "integrity check passed" in p.stdout

    # The manifest: time, version, the root key's check value, the counts, the reminder.
    m = json.load(open(backup / "manifest.json"))
    assert m["kinkoBackupVersion"] == 1
    assert m["kinkoVersion"]
    assert m["createdAt"].endswith("Z")
    assert len(m["keyCheckValue"]) == 64
    assert m["store"]["records"]["key"] >= 5
    assert m["store"]["records"]["secret"] == 1
    assert m["store"]["records"]["grant"] == 1 and m["store"]["records"]["grant-retiree"] == 1
    assert "root key is not in this backup" in m["rootKey"]
    assert m["audit"]["files"] >= 2
    assert (backup / "audit" / "kinko-audit-public.pem").exists()
    assert_no_root_key(str(backup), rk)

    # Restore into a new folder, with the right root key.
    new = tmp_path / "restored"
    p = run("restore", "--from", str(backup), "--data", str(new), "--root-key", rk)
    assert p.returncode == 0, p.stderr
    # The restored folder goes on as the same node: its audit trail is that node's chain.
    assert (new / "node-id").read_text() == open(os.path.join(s.data_dir, "node-id")).read()
    p = run("check", "--data", str(new), "--root-key", rk)
    assert p.returncode == 0, p.stderr
    assert "all key material unwraps" in p.stdout
    assert "matches the store's key check value" in p.stdout
    p = run("audit", "verify", str(new / "audit"), "--now", m["createdAt"])
    assert p.returncode == 0, p.stdout + p.stderr

    # A server on the restored folder decrypts every ciphertext made before the backup.
    r = make_server(["--dev", "--root-key", rk], data_dir=str(new))
    rkms = r.client()
    for kid, ct, plain in before:
        out = rkms.decrypt(CiphertextBlob=ct)
        assert out["Plaintext"] == plain
        assert out["KeyId"].endswith(kid)
    assert r.client("secretsmanager").get_secret_value(SecretId="app/db")["SecretString"] == "hunter2"
    # Grants are records of their own, carried with the rest.
    assert [g["GrantId"] for g in rkms.list_grants(KeyId=before[0][0])["Grants"]] == [grant["GrantId"]]
    retirable = rkms.list_retirable_grants(RetiringPrincipal="arn:aws:iam::000000000000:root")
    assert [g["GrantId"] for g in retirable["Grants"]] == [grant["GrantId"]]
    # Its trail goes on from the restored one and still verifies.
    rkms.create_key(Description="after restore")
    assert r.stop() == 0
    p = run("audit", "verify", str(new / "audit"))
    assert p.returncode in (0, 3), p.stdout + p.stderr
    assert "OK:" in p.stdout


def test_backup_of_dev_folder_leaves_its_root_key(make_server, tmp_path):
    """A dev server keeps its root key in the data folder; the backup does not copy it."""
    s = make_server(["--dev"])
    s.client().create_key()
    backup = tmp_path / "b"
    p = run("backup", "--data", s.data_dir, "--to", str(backup))
    assert p.returncode == 0, p.stderr
    assert os.path.exists(os.path.join(s.data_dir, "root.key"))
    assert_no_root_key(str(backup), os.path.join(s.data_dir, "root.key"))


def test_backup_refusals(make_server, tmp_path):
    rk = root_key(tmp_path / "root.key")
    s = make_server(["--dev", "--root-key", rk])
    s.client().create_key()
    # Inside the data folder (where a root key may live): refused, nothing left behind.
    inside = os.path.join(s.data_dir, "bk")
    p = run("backup", "--data", s.data_dir, "--to", inside)
    assert p.returncode == 1
    assert "inside" in p.stderr and "outside the data folder" in p.stderr
    assert not os.path.exists(inside)
    # Into the audit folder: refused too.
    p = run("backup", "--data", s.data_dir, "--to", os.path.join(s.data_dir, "audit", "bk"))
    assert p.returncode == 1
    # A destination that is not empty.
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    p = run("backup", "--data", s.data_dir, "--to", str(busy))
    assert p.returncode == 1 and "not empty" in p.stderr
    # A PostgreSQL store is left to pg_dump.
    p = run("backup", "--data", s.data_dir, "--store", "postgresql://db/kinko", "--to",
            str(tmp_path / "pg"))
    assert p.returncode == 1 and "pg_dump" in p.stderr
    # No store there.
    empty = tmp_path / "nodata"
    empty.mkdir()
    p = run("backup", "--data", str(empty), "--to", str(tmp_path / "none"))
    assert p.returncode == 1 and "no store" in p.stderr
    # Usage errors.
    assert run("backup", "--data", s.data_dir).returncode == 2
    assert run("backup", "--to", str(tmp_path / "x"), "--frob", "1").returncode == 2


def test_restore_refusals(make_server, tmp_path):
    rk = root_key(tmp_path / "root.key")
    s = make_server(["--dev", "--root-key", rk])
    s.client().create_key()
    backup = tmp_path / "backup"
    assert run("backup", "--data", s.data_dir, "--to", str(backup)).returncode == 0
    # A root key that is not the store's: refused by its check value, nothing written.
    wrong = root_key(tmp_path / "wrong.key")
    target = tmp_path / "t1"
    p = run("restore", "--from", str(backup), "--data", str(target), "--root-key", wrong)
    assert p.returncode == 1
    assert "is not the one this backup's store was written under" in p.stderr
    assert not target.exists()
    # A target that is not empty.
    full = tmp_path / "full"
    full.mkdir()
    (full / "kinko.db").write_text("")
    p = run("restore", "--from", str(backup), "--data", str(full), "--root-key", rk)
    assert p.returncode == 1 and "not empty" in p.stderr
    # Not a backup folder.
    p = run("restore", "--from", str(tmp_path), "--data", str(tmp_path / "t2"))
    assert p.returncode == 1 and "not a kinko backup" in p.stderr
    # Without --root-key the copy is made; `kinko check` then compares the key.
    t3 = tmp_path / "t3"
    p = run("restore", "--from", str(backup), "--data", str(t3))
    assert p.returncode == 0, p.stderr
    p = run("check", "--data", str(t3), "--root-key", wrong)
    assert p.returncode == 1
    p = run("check", "--data", str(t3), "--root-key", rk)
    assert p.returncode == 0, p.stderr


def test_backup_by_configuration_with_audit_elsewhere(make_server, tmp_path):
    """--config finds the data folder (and the store) as serve does; --audit-dir names a trail
    kept outside it."""
    from conftest import write_json
    rk = root_key(tmp_path / "root.key")
    data = tmp_path / "data"
    audit = tmp_path / "trail"
    cfg = write_json(str(tmp_path / "kinko.json"), {
        "data_dir": str(data), "root_key_file": rk,
        "accounts": [{"id": "111122223333",
                      "root_access_keys": [{"access_key_id": "AKIABACKUPROOT",
                                            "secret_access_key": "backup-secret"}]}]})
    data.mkdir(mode=0o700)
    s = make_server(["--config", cfg, "--audit-dir", str(audit)], data_dir=str(data))
    kms = s.client(key="AKIABACKUPROOT", secret="backup-secret")
    kid = kms.create_key()["KeyMetadata"]["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"]
    backup = tmp_path / "backup"
    p = run("backup", "--config", cfg, "--audit-dir", str(audit), "--to", str(backup))
    assert p.returncode == 0, p.stderr
    assert (backup / "audit" / "kinko-audit-public.pem").exists()
    p = run("backup", "--config", cfg, "--audit-dir", str(audit), "--to", str(audit / "b"))
    assert p.returncode == 1 and "inside" in p.stderr
    assert s.stop() == 0
    new = tmp_path / "restored"
    assert run("restore", "--from", str(backup), "--data", str(new), "--root-key", rk).returncode == 0
    r = make_server(["--config", cfg, "--root-key", rk], data_dir=str(new))
    rkms = r.client(key="AKIABACKUPROOT", secret="backup-secret")
    assert rkms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"x"
