"""Slow key generation runs off the request threads.

CreateKey, GenerateDataKeyPair and GetParametersForImport may generate an
RSA key (a second or more for RSA_4096); their rows say runs_long and the
HTTP layer runs them on its offload threads (src/http/offload.h). These
tests start a server with one request thread, so that a generation on
that thread would hold every other connection: while RSA_4096 keys are
being made, other calls must be answered, and answered right. They check
answers and the order of events, never timings."""
import base64
import hashlib
import threading

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, utils

from conftest import with_store

CREATORS = 4


def create_in_background(s, n, spec="RSA_4096"):
    """Starts n threads, each creating one key of spec; returns the
    threads, the created key ids, the errors, and an event set once every
    thread has finished."""
    ids, errors, done = [], [], threading.Event()
    remaining = [n]
    lock = threading.Lock()
    clients = [s.client() for _ in range(n)]  # made one at a time (boto3's session)

    def body(kms):
        try:
            ids.append(kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"])
        except Exception as e:  # reported by the test
            errors.append(repr(e))
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    threads = [threading.Thread(target=body, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    return threads, ids, errors, done


def test_calls_answered_while_rsa_4096_keys_are_made(make_server):
    s = make_server(with_store(["--dev", "--threads", "1"]))
    kms = s.client()
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    threads, ids, errors, done = create_in_background(s, CREATORS)
    answered_meanwhile = 0
    for i in range(200):
        if done.is_set():
            break
        assert len(kms.generate_random(NumberOfBytes=32)["Plaintext"]) == 32
        plain = b"while keys are made %d" % i
        blob = kms.encrypt(KeyId=sym, Plaintext=plain)["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plain
        assert kms.describe_key(KeyId=sym)["KeyMetadata"]["KeyState"] == "Enabled"
        if not done.is_set():
            answered_meanwhile += 1
    for t in threads:
        t.join(300)
    assert errors == []
    assert len(ids) == CREATORS
    assert answered_meanwhile >= 1, "no call was answered while the keys were being made"

    # The keys made on the offload threads are whole RSA_4096 signing keys.
    digest = hashlib.sha256(b"offloaded").digest()
    for key_id in ids:
        md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert (md["KeySpec"], md["KeyState"]) == ("RSA_4096", "Enabled")
        pub = serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])
        assert pub.key_size == 4096
        sig = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST",
                       SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
        pub.verify(sig, digest, padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                   utils.Prehashed(hashes.SHA256()))


def test_data_key_pair_made_off_the_request_thread(make_server):
    """GenerateDataKeyPair runs on an offload thread too: its private key
    matches its public key and its encrypted copy decrypts to it."""
    s = make_server(with_store(["--dev", "--threads", "1"]))
    kms = s.client()
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    pair = kms.generate_data_key_pair(KeyId=sym, KeyPairSpec="RSA_3072")
    priv = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
    pub_der = priv.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pub_der == pair["PublicKey"]
    assert priv.key_size == 3072
    again = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"]
    assert again == pair["PrivateKeyPlaintext"]


def test_errors_of_an_offloaded_operation_are_answered(make_server):
    """A CreateKey refused by validation or authentication comes back as
    the same error from an offload thread as from a request thread."""
    s = make_server(with_store(["--dev", "--threads", "1"]))
    import botocore.exceptions
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s.client(validate=False).create_key(KeySpec="RSA_1024")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s.client(secret="wrong").create_key(KeySpec="RSA_4096")
    assert e.value.response["Error"]["Code"] in ("InvalidSignatureException",
                                                 "UnrecognizedClientException")


def test_server_stops_with_keys_in_flight(make_server):
    """A server asked to stop while RSA keys are being made finishes them,
    answers, and exits cleanly (libmicrohttpd cannot stop while a
    connection is suspended), the key pool's thread stopped too."""
    s = make_server(with_store(["--dev", "--threads", "2"]))
    kms = s.client()
    threads, ids, errors, done = create_in_background(s, 2, spec="RSA_3072")
    assert len(kms.generate_random(NumberOfBytes=8)["Plaintext"]) == 8
    rc = s.stop()
    for t in threads:
        t.join(120)
    assert rc == 0
    assert len(ids) + len(errors) == 2


def test_pooled_rsa_keys_are_each_used_once(make_server):
    """RSA keys come from a pool made ahead of time once a spec is asked
    for: back-to-back CreateKeys and data key pairs of that spec never
    share a key, and every key is of its spec."""
    s = make_server(with_store(["--dev"]))
    kms = s.client()
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    seen = set()
    for _ in range(6):
        key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"][
            "KeyId"]
        der = kms.get_public_key(KeyId=key_id)["PublicKey"]
        assert serialization.load_der_public_key(der).key_size == 2048
        seen.add(der)
        pair = kms.generate_data_key_pair_without_plaintext(KeyId=sym, KeyPairSpec="RSA_2048")
        seen.add(pair["PublicKey"])
    assert len(seen) == 12
