"""Grants at AWS's scale: 50,000 on one key ("Grants per KMS key: 50,000",
https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html),
created through the API from several connections, listed page by page,
and used by their grantees; grants kept inside key documents by older
versions are moved to grant records and still honoured; a key's deletion
deletes its grants."""
import json
import os
import sqlite3
import threading
import time

import pytest
from botocore.exceptions import ClientError

from helpers import iam_user, private_server

A = "111111111111"
MAX_GRANTS = 50000
THREADS = 6

KEYS = {"root": ("AKIAGRSROOTAAAAAAAAA", "grants-root")}
CONFIG = {"accounts": [
    {"id": A,
     "root_access_keys": [{"access_key_id": KEYS["root"][0], "secret_access_key": KEYS["root"][1]}],
     "users": [iam_user(KEYS, A, "worker", [], key_fill="GRSZZZZZZZZZZZZ", secret_prefix="grs-"),
               iam_user(KEYS, A, "idle", [], key_fill="GRSYYYYYYYYYYYY", secret_prefix="grs-")]},
]}


def user_arn(name):
    return "arn:aws:iam::%s:user/%s" % (A, name)


def code(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def srv():
    yield from private_server(CONFIG, "kinko-grants-scale-")


def client(s, who):
    ak, sk = KEYS[who]
    return s.client("kms", key=ak, secret=sk)


def create_many(s, key, total, threads):
    """total grants on key, each to its own grantee, from `threads` connections."""
    errors = []

    def work(t):
        kms = client(s, "root")
        try:
            for i in range(t, total, threads):
                kms.create_grant(KeyId=key, GranteePrincipal=user_arn("g%05d" % i),
                                 Operations=["Decrypt"])
        except Exception as e:  # reported below, with the thread's share unfinished
            errors.append(e)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []


def test_50000_grants_on_one_key(srv):
    root = client(srv, "root")
    worker = client(srv, "worker")
    key = root.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        worker.encrypt(KeyId=key, Plaintext=b"before")
    assert code(e) == "AccessDeniedException"

    mine = root.create_grant(KeyId=key, GranteePrincipal=user_arn("worker"),
                             Operations=["Encrypt", "Decrypt"], RetiringPrincipal=user_arn("idle"))
    time.sleep(0.01)  # grant ids begin with their creation time: this one lists first
    t0 = time.monotonic()
    create_many(srv, key, MAX_GRANTS - 1, THREADS)
    took = time.monotonic() - t0
    print("\n%d CreateGrant calls from %d connections: %.1f s (%.0f per second)"
          % (MAX_GRANTS - 1, THREADS, took, (MAX_GRANTS - 1) / took))

    # The 50,001st is refused, as AWS refuses it.
    with pytest.raises(ClientError) as e:
        root.create_grant(KeyId=key, GranteePrincipal=user_arn("one-too-many"),
                          Operations=["Decrypt"])
    assert code(e) == "LimitExceededException"
    assert e.value.response["Error"]["Message"] == (
        "The request was rejected because the KMS key arn:aws:kms:us-east-1:%s:key/%s already "
        "has 50000 grants, the maximum number of grants per KMS key." % (A, key))

    # Encrypt with one grant among 50,000; the others give the idle user nothing.
    blob = worker.encrypt(KeyId=key, Plaintext=b"one among many")["CiphertextBlob"]
    assert worker.decrypt(CiphertextBlob=blob)["Plaintext"] == b"one among many"
    with pytest.raises(ClientError) as e:
        client(srv, "idle").encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"

    # ListGrants pages through all of them, each once, in creation order.
    seen, pages, marker = [], 0, None
    while True:
        kw = {"KeyId": key, "Limit": 100}
        if marker:
            kw["Marker"] = marker
        page = root.list_grants(**kw)
        seen += [g["GrantId"] for g in page["Grants"]]
        pages += 1
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert len(seen) == MAX_GRANTS and len(set(seen)) == MAX_GRANTS
    assert seen[0] == mine["GrantId"]
    assert pages == MAX_GRANTS // 100
    one = root.list_grants(KeyId=key, GranteePrincipal=user_arn("g00042"))["Grants"]
    assert [g["GranteePrincipal"] for g in one] == [user_arn("g00042")]

    # The retiring principal finds its grant without a walk over every key.
    retirable = client(srv, "root").list_retirable_grants(RetiringPrincipal=user_arn("idle"))
    assert [g["GrantId"] for g in retirable["Grants"]] == [mine["GrantId"]]

    # A revoked grant frees its place and stops working at once.
    root.revoke_grant(KeyId=key, GrantId=mine["GrantId"])
    with pytest.raises(ClientError) as e:
        worker.encrypt(KeyId=key, Plaintext=b"after")
    assert code(e) == "AccessDeniedException"
    again = root.create_grant(KeyId=key, GranteePrincipal=user_arn("worker"), Operations=["Encrypt"])
    worker.encrypt(KeyId=key, Plaintext=b"again")
    root.retire_grant(GrantToken=again["GrantToken"])
    with pytest.raises(ClientError) as e:
        worker.encrypt(KeyId=key, Plaintext=b"retired")
    assert code(e) == "AccessDeniedException"


def legacy_layout(db_path):
    """Rewrites the store as older versions kept it: every grant inside its
    key's document ("Grants": [...], with its token), no grant records."""
    db = sqlite3.connect(db_path)
    with db:
        rows = db.execute("SELECT ns, id, doc FROM docs WHERE kind='grant'").fetchall()
        by_key = {}
        for ns, rid, doc in rows:
            g = json.loads(doc)
            g.pop("KeyArn")
            g["Token"] = "legacy"
            by_key.setdefault((ns, rid.split("/")[0]), []).append(g)
        for (ns, key_id), grants in by_key.items():
            (doc,) = db.execute("SELECT doc FROM docs WHERE kind='key' AND ns=? AND id=?",
                                (ns, key_id)).fetchone()
            d = json.loads(doc)
            d["Grants"] = grants
            db.execute("UPDATE docs SET doc=? WHERE kind='key' AND ns=? AND id=?",
                       (json.dumps(d).encode(), ns, key_id))
        db.execute("DELETE FROM docs WHERE kind IN ('grant', 'grant-retiree')")
    db.close()
    return len(rows)


def kinds(db_path):
    db = sqlite3.connect(db_path)
    out = dict(db.execute("SELECT kind, count(*) FROM docs GROUP BY kind").fetchall())
    grants_inside = db.execute(
        "SELECT count(*) FROM docs WHERE kind='key' AND instr(doc, '\"Grants\"') > 0").fetchone()[0]
    db.close()
    return out, grants_inside


def test_grants_of_older_key_documents_still_honoured(make_server):
    srv = make_server(["--dev", "--test-mode"])
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    root = "arn:aws:iam::000000000000:root"
    g1 = kms.create_grant(KeyId=key, GranteePrincipal="arn:aws:iam::000000000000:user/a",
                          Operations=["Encrypt"], RetiringPrincipal=root)
    g2 = kms.create_grant(KeyId=key, GranteePrincipal="arn:aws:iam::000000000000:user/b",
                          Operations=["Decrypt"], Name="named")
    srv.stop()
    db_path = os.path.join(srv.data_dir, "kinko.db")
    assert legacy_layout(db_path) == 2
    srv.start()
    kms = srv.client()
    listed = kms.list_grants(KeyId=key)["Grants"]
    assert sorted(g["GrantId"] for g in listed) == sorted([g1["GrantId"], g2["GrantId"]])
    retirable = kms.list_retirable_grants(RetiringPrincipal=root)["Grants"]
    assert [g["GrantId"] for g in retirable] == [g1["GrantId"]]
    # The named grant is found again, not made twice.
    same = kms.create_grant(KeyId=key, GranteePrincipal="arn:aws:iam::000000000000:user/b",
                            Operations=["Decrypt"], Name="named")
    assert same["GrantId"] == g2["GrantId"]
    found, inside = kinds(db_path)
    assert found.get("grant") == 2 and found.get("grant-retiree") == 1 and inside == 0
    kms.retire_grant(GrantToken=g1["GrantToken"])
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key)["Grants"]] == [g2["GrantId"]]


def test_key_deletion_deletes_its_grants(make_server):
    srv = make_server(["--dev", "--test-mode"])
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    root = "arn:aws:iam::000000000000:root"
    for k in (key, other):
        kms.create_grant(KeyId=k, GranteePrincipal="arn:aws:iam::000000000000:user/a",
                         Operations=["Encrypt"], RetiringPrincipal=root)
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    srv.advance_clock(8 * 86400)
    srv.run_scheduler()
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=key)
    assert code(e) == "NotFoundException"
    db = sqlite3.connect(os.path.join(srv.data_dir, "kinko.db"))
    rows = db.execute("SELECT kind, id FROM docs WHERE kind IN ('grant', 'grant-retiree')").fetchall()
    db.close()
    assert len(rows) == 2 and all(other in rid for _, rid in rows), rows
    assert len(kms.list_retirable_grants(RetiringPrincipal=root)["Grants"]) == 1
