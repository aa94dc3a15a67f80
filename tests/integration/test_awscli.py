"""The README's walk-through, through the real AWS CLI."""
import base64
import json
import os

import pytest


def test_cli_create_encrypt_decrypt(server, tmp_path):
    _, out, _ = server.aws("kms", "create-key", "--description", "cli key")
    key = json.loads(out)["KeyMetadata"]
    assert key["KeyState"] == "Enabled"
    pt = tmp_path / "pt.txt"
    pt.write_bytes(b"hello from the cli\n")
    _, out, _ = server.aws("kms", "encrypt", "--key-id", key["KeyId"], "--plaintext", "fileb://" + str(pt),
                           "--encryption-context", "app=demo")
    blob = base64.b64decode(json.loads(out)["CiphertextBlob"])
    ct = tmp_path / "ct.bin"
    ct.write_bytes(blob)
    _, out, _ = server.aws("kms", "decrypt", "--ciphertext-blob", "fileb://" + str(ct),
                           "--encryption-context", "app=demo", "--query", "Plaintext", "--output", "text")
    assert base64.b64decode(out.strip()) == b"hello from the cli\n"
    rc, _, errtext = server.aws("kms", "decrypt", "--ciphertext-blob", "fileb://" + str(ct), check=False)
    assert rc != 0 and "InvalidCiphertextException" in errtext


def test_cli_generate_data_key_and_random(server):
    _, out, _ = server.aws("kms", "create-key")
    key = json.loads(out)["KeyMetadata"]["KeyId"]
    _, out, _ = server.aws("kms", "generate-data-key", "--key-id", key, "--key-spec", "AES_256")
    r = json.loads(out)
    assert len(base64.b64decode(r["Plaintext"])) == 32
    _, out, _ = server.aws("kms", "generate-data-key-without-plaintext", "--key-id", key,
                           "--number-of-bytes", "64")
    assert "Plaintext" not in json.loads(out)
    _, out, _ = server.aws("kms", "generate-random", "--number-of-bytes", "48")
    assert len(base64.b64decode(json.loads(out)["Plaintext"])) == 48
    _, out, _ = server.aws("kms", "describe-key", "--key-id", key)
    assert json.loads(out)["KeyMetadata"]["KeyId"] == key
    _, out, _ = server.aws("kms", "list-keys")
    assert key in [k["KeyId"] for k in json.loads(out)["Keys"]]


def test_cli_wrong_secret_refused(server):
    rc, _, errtext = server.aws("kms", "list-keys", secret="wrong", check=False)
    assert rc != 0 and "InvalidSignatureException" in errtext
    rc, _, errtext = server.aws("kms", "list-keys", key="nobody", check=False)
    assert rc != 0 and "UnrecognizedClientException" in errtext
