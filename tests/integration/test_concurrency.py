"""Concurrent load on one server: several clients at once on the same
keys, alias and secret. Each test checks what must hold however the calls
interleave; the ThreadSanitizer run of tests/run-all.sh runs them against
build-tsan/kinko, where they are what makes the server's threads meet."""
import base64
import threading
import uuid

import botocore.exceptions

WORKERS = 6


def run_workers(target, n=WORKERS):
    """Runs target(i) on n threads that start together; returns the
    exceptions they raised (an empty list when all went well)."""
    errors = []
    start = threading.Barrier(n)

    def body(i):
        try:
            start.wait()
            target(i)
        except Exception as e:  # reported by the test, with its thread
            errors.append("worker %d: %r" % (i, e))

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a worker did not finish"
    return errors


def test_crypto_while_the_key_changes(server):
    """Encrypt/Decrypt round trips on one key while other clients disable
    and enable a second key, move an alias between the two and create keys:
    every answer is either right or the documented error."""
    admin = server.client()
    a = admin.create_key()["KeyMetadata"]["Arn"]
    b = admin.create_key()["KeyMetadata"]["Arn"]
    alias = "alias/concurrency-" + uuid.uuid4().hex[:8]
    admin.create_alias(AliasName=alias, TargetKeyId=a)
    clients = [server.client() for _ in range(WORKERS)]
    created = [[] for _ in range(WORKERS)]

    def work(i):
        kms = clients[i]
        for j in range(12):
            pt = ("%d-%d" % (i, j)).encode()
            blob = kms.encrypt(KeyId=a, Plaintext=pt, EncryptionContext={"w": str(i)})["CiphertextBlob"]
            out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"w": str(i)})
            assert out["Plaintext"] == pt and out["KeyId"] == a
            if i % 3 == 0:
                (kms.disable_key if j % 2 == 0 else kms.enable_key)(KeyId=b)
            elif i % 3 == 1:
                kms.update_alias(AliasName=alias, TargetKeyId=b if j % 2 == 0 else a)
            else:
                created[i].append(kms.create_key()["KeyMetadata"]["KeyId"])
            try:
                got = kms.encrypt(KeyId=alias, Plaintext=b"x")["KeyId"]
                assert got in (a, b)
            except botocore.exceptions.ClientError as e:
                # Only the second key can be disabled.
                assert e.response["Error"]["Code"] == "DisabledException", e.response

    assert run_workers(work) == []
    admin.enable_key(KeyId=b)
    listed = set()
    for page in admin.get_paginator("list_keys").paginate():
        listed.update(k["KeyId"] for k in page["Keys"])
    for ids in created:
        assert set(ids) <= listed
    target = [x for x in admin.list_aliases(KeyId=a)["Aliases"] + admin.list_aliases(KeyId=b)["Aliases"]
              if x["AliasName"] == alias]
    assert len(target) == 1


def test_secret_versions_written_at_once(server):
    """Clients put new versions of one secret and read it at the same time:
    every put succeeds, each read sees a value that was written, and in the
    end exactly one version is AWSCURRENT and one AWSPREVIOUS."""
    sm0 = server.client("secretsmanager")
    name = "concurrency/" + uuid.uuid4().hex[:8]
    sm0.create_secret(Name=name, SecretString="v0")
    clients = [server.client("secretsmanager") for _ in range(WORKERS)]
    written = {"v0"}
    lock = threading.Lock()

    def work(i):
        sm = clients[i]
        for j in range(8):
            value = "v-%d-%d" % (i, j)
            with lock:
                written.add(value)
            token = str(uuid.uuid4())
            out = sm.put_secret_value(SecretId=name, SecretString=value, ClientRequestToken=token)
            assert out["VersionId"] == token
            got = sm.get_secret_value(SecretId=name)["SecretString"]
            with lock:
                assert got in written, got
            if j % 4 == 0:
                sm.describe_secret(SecretId=name)

    assert run_workers(work) == []
    versions = sm0.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    stages = [s for v in versions for s in v.get("VersionStages", [])]
    assert stages.count("AWSCURRENT") == 1 and stages.count("AWSPREVIOUS") == 1
    assert len(versions) == 1 + WORKERS * 8
    current = sm0.get_secret_value(SecretId=name)["SecretString"]
    assert current in written and current != "v0"


def test_data_keys_and_random_at_once(server):
    """GenerateDataKey, GenerateRandom and ReEncrypt from every client at
    once: each data key decrypts to its plaintext."""
    admin = server.client()
    a = admin.create_key()["KeyMetadata"]["Arn"]
    b = admin.create_key()["KeyMetadata"]["Arn"]
    clients = [server.client() for _ in range(WORKERS)]

    def work(i):
        kms = clients[i]
        for _ in range(10):
            dk = kms.generate_data_key(KeyId=a, KeySpec="AES_256")
            moved = kms.re_encrypt(CiphertextBlob=dk["CiphertextBlob"], DestinationKeyId=b)
            assert moved["KeyId"] == b and moved["SourceKeyId"] == a
            assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
            assert len(base64.b64encode(kms.generate_random(NumberOfBytes=32)["Plaintext"])) == 44

    assert run_workers(work) == []
