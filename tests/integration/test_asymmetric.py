"""Asymmetric, HMAC and key-agreement keys, data key pairs and imported key
material, through boto3, the AWS CLI and the JS SDK. Every signature,
ciphertext and shared secret is checked outside kinko with
python3-cryptography or the openssl command."""
import base64
import datetime
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile

import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JS_DIR = os.path.join(ROOT, "tests", "js")

HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
RSA_ALGS = ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
            "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"]
SIGN_SPECS = {
    "RSA_2048": RSA_ALGS, "RSA_3072": RSA_ALGS, "RSA_4096": RSA_ALGS,
    "ECC_NIST_P256": ["ECDSA_SHA_256"], "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"], "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
}


def err(excinfo):
    return excinfo.value.response["Error"]["Code"]


def errmsg(excinfo):
    return excinfo.value.response["Error"].get("Message", "")


def hash_of(alg):
    return HASHES[alg.rsplit("_", 1)[1]]()


def external_verify(pub_der, alg, message, sig, is_digest=False):
    """Verifies with python3-cryptography; raises InvalidSignature."""
    pub = serialization.load_der_public_key(pub_der)
    if alg == "ED25519_SHA_512":
        assert isinstance(pub, ed25519.Ed25519PublicKey)
        pub.verify(sig, message)
        return
    h = hash_of(alg)
    algo = utils.Prehashed(h) if is_digest else h
    if alg.startswith("RSASSA_PSS_"):
        pub.verify(sig, message, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), algo)
    elif alg.startswith("RSASSA_PKCS1_V1_5_"):
        pub.verify(sig, message, padding.PKCS1v15(), algo)
    else:
        pub.verify(sig, message, ec.ECDSA(algo))


def new_key(kms, spec, usage):
    return kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]


# ---- key specs and DescribeKey ------------------------------------------------

@pytest.mark.parametrize("spec,usage,member,algs", [
    ("RSA_2048", "ENCRYPT_DECRYPT", "EncryptionAlgorithms", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]),
    ("RSA_3072", "SIGN_VERIFY", "SigningAlgorithms", RSA_ALGS),
    ("ECC_NIST_P256", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("ECC_NIST_P384", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_384"]),
    ("ECC_NIST_P521", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_512"]),
    ("ECC_SECG_P256K1", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("HMAC_224", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_224"]),
    ("HMAC_256", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_256"]),
    ("HMAC_384", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_384"]),
    ("HMAC_512", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_512"]),
])
def test_describe_lists_algorithms(kms, spec, usage, member, algs):
    md = new_key(kms, spec, usage)
    assert md["KeySpec"] == spec and md["CustomerMasterKeySpec"] == spec
    assert md["KeyUsage"] == usage and md["KeyState"] == "Enabled"
    got = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert sorted(got[member]) == sorted(algs)
    for other in ("EncryptionAlgorithms", "SigningAlgorithms", "MacAlgorithms"):
        if other != member:
            assert other not in got


@pytest.mark.parametrize("spec,usage", [
    ("ECC_NIST_P256", "ENCRYPT_DECRYPT"), ("ECC_SECG_P256K1", "KEY_AGREEMENT"),
    ("HMAC_256", "SIGN_VERIFY"), ("RSA_2048", "GENERATE_VERIFY_MAC"),
    ("RSA_2048", "KEY_AGREEMENT"), ("SYMMETRIC_DEFAULT", "SIGN_VERIFY"),
])
def test_incompatible_usage_refused(kms, spec, usage):
    with pytest.raises(ClientError) as e:
        kms.create_key(KeySpec=spec, KeyUsage=usage)
    assert err(e) == "ValidationException"


def test_ecc_without_usage_refused(kms):
    # The KeyUsage default is ENCRYPT_DECRYPT, which no ECC spec allows.
    with pytest.raises(ClientError) as e:
        kms.create_key(KeySpec="ECC_NIST_P256")
    assert err(e) == "ValidationException"


# ---- Sign / Verify -------------------------------------------------------------

@pytest.mark.parametrize("spec", sorted(SIGN_SPECS))
def test_sign_verify_every_spec(kms, spec):
    md = new_key(kms, spec, "SIGN_VERIFY")
    pub = kms.get_public_key(KeyId=md["KeyId"])
    assert pub["KeySpec"] == spec and pub["KeyUsage"] == "SIGN_VERIFY"
    assert sorted(pub["SigningAlgorithms"]) == sorted(SIGN_SPECS[spec])
    assert pub["KeyId"] == md["Arn"]
    der = pub["PublicKey"]
    message = os.urandom(300)
    for alg in SIGN_SPECS[spec]:
        # RAW: kinko hashes the message.
        out = kms.sign(KeyId=md["KeyId"], Message=message, SigningAlgorithm=alg)
        assert out["SigningAlgorithm"] == alg and out["KeyId"] == md["Arn"]
        sig = out["Signature"]
        external_verify(der, alg, message, sig)
        assert kms.verify(KeyId=md["KeyId"], Message=message, Signature=sig,
                          SigningAlgorithm=alg)["SignatureValid"] is True
        # DIGEST: the caller hashes.
        h = hashlib.new("sha" + alg.rsplit("_", 1)[1], message).digest()
        sig2 = kms.sign(KeyId=md["KeyId"], Message=h, MessageType="DIGEST",
                        SigningAlgorithm=alg)["Signature"]
        external_verify(der, alg, h, sig2, is_digest=True)
        external_verify(der, alg, message, sig2)
        assert kms.verify(KeyId=md["KeyId"], Message=message, Signature=sig2,
                          SigningAlgorithm=alg)["SignatureValid"] is True
        # A changed message does not verify, in kinko or outside.
        with pytest.raises(ClientError) as e:
            kms.verify(KeyId=md["KeyId"], Message=message + b"x", Signature=sig, SigningAlgorithm=alg)
        assert err(e) == "KMSInvalidSignatureException"
        with pytest.raises(InvalidSignature):
            external_verify(der, alg, message + b"x", sig)


def test_ecdsa_signature_is_der(kms):
    md = new_key(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    sig = kms.sign(KeyId=md["KeyId"], Message=b"der please", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    r, s = utils.decode_dss_signature(sig)  # raises unless DER Ecdsa-Sig-Value
    assert utils.encode_dss_signature(r, s) == sig


def test_sign_verified_by_openssl_command(kms, tmp_path):
    for spec, alg, opts in (("RSA_2048", "RSASSA_PSS_SHA_256",
                             ["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", "rsa_pss_saltlen:32"]),
                            ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", []),
                            ("ECC_NIST_P256", "ECDSA_SHA_256", [])):
        md = new_key(kms, spec, "SIGN_VERIFY")
        der = kms.get_public_key(KeyId=md["KeyId"])["PublicKey"]
        msg = b"verified by the openssl command, outside kinko\n"
        sig = kms.sign(KeyId=md["KeyId"], Message=msg, SigningAlgorithm=alg)["Signature"]
        (tmp_path / "pub.der").write_bytes(der)
        (tmp_path / "msg").write_bytes(msg)
        (tmp_path / "sig").write_bytes(sig)
        subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", str(tmp_path / "pub.der"),
                        "-out", str(tmp_path / "pub.pem")], check=True, capture_output=True)
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"),
                            "-signature", str(tmp_path / "sig")] + [o.replace("-pkeyopt", "-sigopt") for o in opts]
                           + [str(tmp_path / "msg")], capture_output=True, text=True)
        assert p.returncode == 0 and "Verified OK" in p.stdout, p.stdout + p.stderr
        (tmp_path / "msg").write_bytes(msg + b"!")
        p = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"),
                            "-signature", str(tmp_path / "sig")] + [o.replace("-pkeyopt", "-sigopt") for o in opts]
                           + [str(tmp_path / "msg")], capture_output=True, text=True)
        assert p.returncode != 0


def test_ed25519_sign_verify(kms_raw):
    # ECC_NIST_EDWARDS25519 is newer than Debian's botocore model: no client-side validation.
    md = kms_raw.create_key(KeySpec="ECC_NIST_EDWARDS25519", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert md["SigningAlgorithms"] == ["ED25519_SHA_512"]
    der = kms_raw.get_public_key(KeyId=md["KeyId"])["PublicKey"]
    msg = os.urandom(4096)
    sig = kms_raw.sign(KeyId=md["KeyId"], Message=msg, SigningAlgorithm="ED25519_SHA_512")["Signature"]
    assert len(sig) == 64
    external_verify(der, "ED25519_SHA_512", msg, sig)
    assert kms_raw.verify(KeyId=md["KeyId"], Message=msg, Signature=sig,
                          SigningAlgorithm="ED25519_SHA_512")["SignatureValid"]
    with pytest.raises(ClientError) as e:
        kms_raw.sign(KeyId=md["KeyId"], Message=hashlib.sha512(msg).digest(), MessageType="DIGEST",
                     SigningAlgorithm="ED25519_SHA_512")
    assert err(e) == "ValidationException"


def test_sign_bad_input(kms, kms_raw):
    md = new_key(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    kid = md["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=kid, Message=b"m", SigningAlgorithm="ECDSA_SHA_384")
    assert err(e) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=kid, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert err(e) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=kid, Message=b"\x00" * 31, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")
    assert err(e) == "ValidationException" and "invalid length" in errmsg(e)
    with pytest.raises(ClientError) as e:
        kms_raw.sign(KeyId=kid, Message=b"\x00" * 4097, SigningAlgorithm="ECDSA_SHA_256")
    assert err(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms_raw.verify(KeyId=kid, Message=b"m", Signature=b"\x30\x00", SigningAlgorithm="ECDSA_SHA_256")
    assert err(e) == "KMSInvalidSignatureException"
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=sym, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    assert err(e) == "InvalidKeyUsageException"
    with pytest.raises(ClientError) as e:
        kms.get_public_key(KeyId=sym)
    assert err(e) == "UnsupportedOperationException"
    mac = new_key(kms, "HMAC_256", "GENERATE_VERIFY_MAC")["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.get_public_key(KeyId=mac)
    assert err(e) == "UnsupportedOperationException"


def test_sign_disabled_key(kms):
    kid = new_key(kms, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    kms.disable_key(KeyId=kid)
    with pytest.raises(ClientError) as e:
        kms.sign(KeyId=kid, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    assert err(e) == "DisabledException"
    kms.enable_key(KeyId=kid)
    assert kms.sign(KeyId=kid, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]


def test_awscli_sign_and_get_public_key(server, kms, tmp_path):
    kid = new_key(kms, "ECC_NIST_P384", "SIGN_VERIFY")["KeyId"]
    (tmp_path / "msg").write_bytes(b"signed through the AWS CLI")
    _, out, _ = server.aws("kms", "sign", "--key-id", kid, "--message", "fileb://" + str(tmp_path / "msg"),
                           "--signing-algorithm", "ECDSA_SHA_384")
    sig = base64.b64decode(json.loads(out)["Signature"])
    _, out, _ = server.aws("kms", "get-public-key", "--key-id", kid)
    der = base64.b64decode(json.loads(out)["PublicKey"])
    external_verify(der, "ECDSA_SHA_384", b"signed through the AWS CLI", sig)


# ---- RSAES-OAEP ------------------------------------------------------------------

@pytest.mark.parametrize("spec,limits", [("RSA_2048", (214, 190)), ("RSA_3072", (342, 318)),
                                         ("RSA_4096", (470, 446))])
def test_rsa_encrypt_decrypt(kms, spec, limits):
    md = new_key(kms, spec, "ENCRYPT_DECRYPT")
    kid = md["KeyId"]
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=kid)["PublicKey"])
    for alg, limit, h in (("RSAES_OAEP_SHA_1", limits[0], hashes.SHA1),
                          ("RSAES_OAEP_SHA_256", limits[1], hashes.SHA256)):
        pt = os.urandom(limit)
        enc = kms.encrypt(KeyId=kid, Plaintext=pt, EncryptionAlgorithm=alg)
        assert enc["EncryptionAlgorithm"] == alg and enc["KeyId"] == md["Arn"]
        dec = kms.decrypt(KeyId=kid, CiphertextBlob=enc["CiphertextBlob"], EncryptionAlgorithm=alg)
        assert dec["Plaintext"] == pt and dec["EncryptionAlgorithm"] == alg
        # Encrypted outside kinko with the public key, decrypted inside.
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm=h()), algorithm=h(), label=None)
        outside = pub.encrypt(b"from outside", oaep)
        assert kms.decrypt(KeyId=kid, CiphertextBlob=outside, EncryptionAlgorithm=alg)["Plaintext"] == b"from outside"
        with pytest.raises(ClientError) as e:
            kms.encrypt(KeyId=kid, Plaintext=os.urandom(limit + 1), EncryptionAlgorithm=alg)
        assert err(e) == "ValidationException"


def test_rsa_encrypt_bad_input(kms):
    kid = new_key(kms, "RSA_2048", "ENCRYPT_DECRYPT")["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=kid, Plaintext=b"x")  # SYMMETRIC_DEFAULT by default
    assert err(e) == "InvalidKeyUsageException"
    ct = kms.encrypt(KeyId=kid, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert err(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.decrypt(KeyId=kid, CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert err(e) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as e:
        kms.decrypt(KeyId=kid, CiphertextBlob=ct[:-1] + bytes([ct[-1] ^ 1]), EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert err(e) == "InvalidCiphertextException"
    signer = new_key(kms, "RSA_2048", "SIGN_VERIFY")["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=signer, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert err(e) == "InvalidKeyUsageException"


def test_reencrypt_between_symmetric_and_rsa(kms):
    rsa_key = new_key(kms, "RSA_2048", "ENCRYPT_DECRYPT")
    sym = kms.create_key()["KeyMetadata"]
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=rsa_key["KeyId"])["PublicKey"])
    oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    # RSA (encrypted outside kinko) -> symmetric.
    out = kms.re_encrypt(CiphertextBlob=pub.encrypt(b"moving keys", oaep), SourceKeyId=rsa_key["KeyId"],
                         SourceEncryptionAlgorithm="RSAES_OAEP_SHA_256", DestinationKeyId=sym["KeyId"],
                         DestinationEncryptionContext={"to": "sym"})
    assert out["SourceKeyId"] == rsa_key["Arn"] and out["KeyId"] == sym["Arn"]
    assert out["SourceEncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    assert out["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = out["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"to": "sym"})["Plaintext"] == b"moving keys"
    # Symmetric -> RSA.
    out = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"to": "sym"},
                         DestinationKeyId=rsa_key["KeyId"], DestinationEncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert out["DestinationEncryptionAlgorithm"] == "RSAES_OAEP_SHA_1"
    assert kms.decrypt(KeyId=rsa_key["KeyId"], CiphertextBlob=out["CiphertextBlob"],
                       EncryptionAlgorithm="RSAES_OAEP_SHA_1")["Plaintext"] == b"moving keys"
    with pytest.raises(ClientError) as e:
        kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"to": "sym"},
                       DestinationKeyId=rsa_key["KeyId"])
    assert err(e) == "InvalidKeyUsageException"


# ---- data key pairs ----------------------------------------------------------------

@pytest.mark.parametrize("pair_spec", ["RSA_2048", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384",
                                       "ECC_NIST_P521", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"])
def test_generate_data_key_pair(kms_raw, pair_spec):
    kms = kms_raw
    sym = kms.create_key()["KeyMetadata"]
    ctx = {"purpose": "pair", "spec": pair_spec}
    out = kms.generate_data_key_pair(KeyId=sym["KeyId"], KeyPairSpec=pair_spec, EncryptionContext=ctx)
    assert out["KeyPairSpec"] == pair_spec and out["KeyId"] == sym["Arn"]
    priv = serialization.load_der_private_key(out["PrivateKeyPlaintext"], password=None)
    pub_der = priv.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pub_der == out["PublicKey"]
    # PKCS#8: the DER re-encodes as PKCS#8 unchanged.
    assert priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()) == out["PrivateKeyPlaintext"]
    dec = kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext=ctx)
    assert dec["Plaintext"] == out["PrivateKeyPlaintext"]
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext={"purpose": "other"})
    assert err(e) == "InvalidCiphertextException"

    w = kms.generate_data_key_pair_without_plaintext(KeyId=sym["KeyId"], KeyPairSpec=pair_spec)
    assert "PrivateKeyPlaintext" not in w
    priv2 = serialization.load_der_private_key(kms.decrypt(CiphertextBlob=w["PrivateKeyCiphertextBlob"])["Plaintext"],
                                               password=None)
    assert priv2.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo) == w["PublicKey"]
    assert w["PublicKey"] != out["PublicKey"]


def test_data_key_pair_bad_input(kms):
    signer = new_key(kms, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.generate_data_key_pair(KeyId=signer, KeyPairSpec="ECC_NIST_P256")
    assert err(e) == "InvalidKeyUsageException"
    rsa_enc = new_key(kms, "RSA_2048", "ENCRYPT_DECRYPT")["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.generate_data_key_pair(KeyId=rsa_enc, KeyPairSpec="ECC_NIST_P256")
    assert err(e) == "InvalidKeyUsageException"
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.generate_data_key_pair(KeyId=sym, KeyPairSpec="SM2")
    assert err(e) == "UnsupportedOperationException"


# ---- MAC ------------------------------------------------------------------------

@pytest.mark.parametrize("bits", ["224", "256", "384", "512"])
def test_generate_verify_mac(kms, bits):
    kid = new_key(kms, "HMAC_" + bits, "GENERATE_VERIFY_MAC")["KeyId"]
    alg = "HMAC_SHA_" + bits
    out = kms.generate_mac(KeyId=kid, Message=b"token payload", MacAlgorithm=alg)
    assert out["MacAlgorithm"] == alg and len(out["Mac"]) == int(bits) // 8
    assert kms.verify_mac(KeyId=kid, Message=b"token payload", Mac=out["Mac"],
                          MacAlgorithm=alg)["MacValid"] is True
    assert kms.generate_mac(KeyId=kid, Message=b"token payload", MacAlgorithm=alg)["Mac"] == out["Mac"]
    bad = bytes([out["Mac"][0] ^ 1]) + out["Mac"][1:]
    for mac, msg in ((bad, b"token payload"), (out["Mac"], b"token payloaD"), (out["Mac"][:-1], b"token payload")):
        with pytest.raises(ClientError) as e:
            kms.verify_mac(KeyId=kid, Message=msg, Mac=mac, MacAlgorithm=alg)
        assert err(e) == "KMSInvalidMacException"
    other = "HMAC_SHA_256" if bits != "256" else "HMAC_SHA_512"
    with pytest.raises(ClientError) as e:
        kms.generate_mac(KeyId=kid, Message=b"m", MacAlgorithm=other)
    assert err(e) == "InvalidKeyUsageException"


def test_mac_with_wrong_key(kms):
    sym = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.generate_mac(KeyId=sym, Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert err(e) == "InvalidKeyUsageException"


# ---- imported key material ---------------------------------------------------------

def cli_params(server, kid, alg, spec="RSA_2048"):
    _, out, _ = server.aws("kms", "get-parameters-for-import", "--key-id", kid,
                           "--wrapping-algorithm", alg, "--wrapping-key-spec", spec)
    p = json.loads(out)
    return base64.b64decode(p["PublicKey"]), base64.b64decode(p["ImportToken"]), p


def openssl_wrap(workdir, alg, public_key, material):
    """AWS's documented openssl commands
    (https://docs.aws.amazon.com/kms/latest/developerguide/importing-keys-encrypt-key-material.html)."""
    d = str(workdir)
    with open(os.path.join(d, "WrappingPublicKey.bin"), "wb") as f:
        f.write(public_key)
    with open(os.path.join(d, "PlaintextKeyMaterial.bin"), "wb") as f:
        f.write(material)
    md = "sha256" if alg.endswith("SHA_256") else "sha1"
    oaep = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:" + md,
            "-pkeyopt", "rsa_mgf1_md:" + md]
    if alg.startswith("RSAES_OAEP_"):
        cmds = ["openssl pkeyutl -encrypt -in PlaintextKeyMaterial.bin -out EncryptedKeyMaterial.bin "
                "-inkey WrappingPublicKey.bin -keyform DER -pubin " + " ".join(oaep)]
    else:
        cmds = ["openssl rand -out aes-key.bin 32",
                "openssl enc -id-aes256-wrap-pad -K \"$(xxd -p < aes-key.bin | tr -d '\\n')\" "
                "-iv A65959A6 -in PlaintextKeyMaterial.bin -out key-material-wrapped.bin",
                "openssl pkeyutl -encrypt -in aes-key.bin -out aes-key-wrapped.bin "
                "-inkey WrappingPublicKey.bin -keyform DER -pubin " + " ".join(oaep),
                "cat aes-key-wrapped.bin key-material-wrapped.bin > EncryptedKeyMaterial.bin"]
    for c in cmds:
        subprocess.run(["bash", "-c", c], cwd=d, check=True, capture_output=True)
    return os.path.join(d, "EncryptedKeyMaterial.bin")


@pytest.mark.parametrize("alg", ["RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256",
                                 "RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_1"])
def test_import_with_openssl_commands(server, kms, tmp_path, alg):
    md = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
    kid = md["KeyId"]
    assert md["KeyState"] == "PendingImport" and md["Origin"] == "EXTERNAL"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=kid, Plaintext=b"x")
    assert err(e) == "KMSInvalidStateException"
    pub, token, p = cli_params(server, kid, alg)
    assert p["KeyId"] == md["Arn"]
    valid_to = datetime.datetime.fromisoformat(str(p["ParametersValidTo"]).replace("Z", "+00:00")) \
        if not isinstance(p["ParametersValidTo"], (int, float)) else \
        datetime.datetime.fromtimestamp(p["ParametersValidTo"], datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(hours=23) < valid_to - now <= datetime.timedelta(hours=24, minutes=5)
    assert isinstance(serialization.load_der_public_key(pub), rsa.RSAPublicKey)
    material = os.urandom(32)
    enc_path = openssl_wrap(tmp_path, alg, pub, material)
    (tmp_path / "token.bin").write_bytes(token)
    server.aws("kms", "import-key-material", "--key-id", kid,
               "--encrypted-key-material", "fileb://" + enc_path,
               "--import-token", "fileb://" + str(tmp_path / "token.bin"),
               "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    got = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert got["KeyState"] == "Enabled" and got["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    ct = kms.encrypt(KeyId=kid, Plaintext=b"imported works")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported works"

    # Delete: PendingImport, unusable; the same material brings it back and
    # old ciphertexts decrypt again.
    kms.delete_imported_key_material(KeyId=kid)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=ct)
    assert err(e) == "KMSInvalidStateException"
    pub2, token2, _ = cli_params(server, kid, alg)
    enc2 = openssl_wrap(tmp_path, alg, pub2, material)
    kms.import_key_material(KeyId=kid, ImportToken=token2, EncryptedKeyMaterial=open(enc2, "rb").read(),
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported works"

    # Different material is refused and changes nothing.
    pub3, token3, _ = cli_params(server, kid, alg)
    enc3 = openssl_wrap(tmp_path, alg, pub3, os.urandom(32))
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=kid, ImportToken=token3, EncryptedKeyMaterial=open(enc3, "rb").read(),
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert err(e) == "IncorrectKeyMaterialException"
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported works"


def test_import_hmac_material_matches_python_hmac(kms_raw, tmp_path):
    kms = kms_raw
    kid = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC", Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    p = kms.get_parameters_for_import(KeyId=kid, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_3072")
    key = os.urandom(32)
    enc = openssl_wrap(tmp_path, "RSAES_OAEP_SHA_256", p["PublicKey"], key)
    kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=open(enc, "rb").read(),
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    msg = b"mac me outside kinko too"
    mac = kms.generate_mac(KeyId=kid, Message=msg, MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert mac == hmac.new(key, msg, hashlib.sha256).digest()


def test_import_ecc_private_key_signs(kms, tmp_path):
    kid = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    p = kms.get_parameters_for_import(KeyId=kid, WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
                                      WrappingKeySpec="RSA_2048")
    priv = ec.generate_private_key(ec.SECP256R1())
    der = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    enc = openssl_wrap(tmp_path, "RSA_AES_KEY_WRAP_SHA_256", p["PublicKey"], der)
    kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=open(enc, "rb").read(),
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    sig = kms.sign(KeyId=kid, Message=b"own key", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    priv.public_key().verify(sig, b"own key", ec.ECDSA(hashes.SHA256()))
    # A P-384 key is not material for a P-256 KMS key.
    kid2 = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    p2 = kms.get_parameters_for_import(KeyId=kid2, WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
                                       WrappingKeySpec="RSA_2048")
    other = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    enc2 = openssl_wrap(tmp_path, "RSA_AES_KEY_WRAP_SHA_256", p2["PublicKey"], other)
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=kid2, ImportToken=p2["ImportToken"],
                                EncryptedKeyMaterial=open(enc2, "rb").read(),
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert err(e) == "IncorrectKeyMaterialException"
    assert kms.describe_key(KeyId=kid2)["KeyMetadata"]["KeyState"] == "PendingImport"


def test_import_bad_input(kms, tmp_path):
    kid = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    other = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    p = kms.get_parameters_for_import(KeyId=kid, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    po = kms.get_parameters_for_import(KeyId=other, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                       WrappingKeySpec="RSA_2048")
    enc = open(openssl_wrap(tmp_path, "RSAES_OAEP_SHA_256", p["PublicKey"], os.urandom(32)), "rb").read()
    # A token of another key.
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=kid, ImportToken=po["ImportToken"], EncryptedKeyMaterial=enc,
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert err(e) == "InvalidImportTokenException"
    # Corrupted wrapped material.
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc[:-1] + bytes([enc[-1] ^ 1]),
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert err(e) == "InvalidCiphertextException"
    # Material of the wrong length for SYMMETRIC_DEFAULT.
    short = open(openssl_wrap(tmp_path, "RSAES_OAEP_SHA_256", p["PublicKey"], os.urandom(16)), "rb").read()
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=short,
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert err(e) == "IncorrectKeyMaterialException"
    # ExpirationModel / ValidTo rules.
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc,
                                ExpirationModel="KEY_MATERIAL_EXPIRES")
    assert err(e) == "ValidationException"
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc,
                                ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=past)
    assert err(e) == "ValidationException"
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingImport"
    # Import operations on an AWS_KMS key.
    normal = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.get_parameters_for_import(KeyId=normal, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                      WrappingKeySpec="RSA_2048")
    assert err(e) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as e:
        kms.delete_imported_key_material(KeyId=normal)
    assert err(e) == "UnsupportedOperationException"
    # The import still works with the right inputs afterwards.
    kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    # A key pending deletion takes no import operation.
    kms.schedule_key_deletion(KeyId=other, PendingWindowInDays=7)
    with pytest.raises(ClientError) as e:
        kms.get_parameters_for_import(KeyId=other, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                      WrappingKeySpec="RSA_2048")
    assert err(e) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=other, ImportToken=po["ImportToken"], EncryptedKeyMaterial=enc,
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert err(e) == "KMSInvalidStateException"


def test_import_token_expires_and_material_expires(make_server, tmp_path):
    s = make_server(["--dev", "--test-mode"])
    kms = s.client()
    kid = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    p = kms.get_parameters_for_import(KeyId=kid, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    material = os.urandom(32)
    enc = open(openssl_wrap(tmp_path, "RSAES_OAEP_SHA_256", p["PublicKey"], material), "rb").read()
    s.advance_clock(25 * 3600)
    with pytest.raises(ClientError) as e:
        kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc,
                                ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert err(e) == "ExpiredImportTokenException"

    p = kms.get_parameters_for_import(KeyId=kid, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    enc = open(openssl_wrap(tmp_path, "RSAES_OAEP_SHA_256", p["PublicKey"], material), "rb").read()
    server_now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=25)
    kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc,
                            ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=server_now + datetime.timedelta(hours=2))
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert md["KeyState"] == "Enabled" and md["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert "ValidTo" in md
    ct = kms.encrypt(KeyId=kid, Plaintext=b"until it expires")["CiphertextBlob"]
    s.advance_clock(3600)
    s.run_scheduler()
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Enabled"
    s.advance_clock(2 * 3600)
    s.run_scheduler()
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=ct)
    assert err(e) == "KMSInvalidStateException"
    # The same material, re-imported, brings the key back.
    p = kms.get_parameters_for_import(KeyId=kid, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    enc = open(openssl_wrap(tmp_path, "RSAES_OAEP_SHA_256", p["PublicKey"], material), "rb").read()
    kms.import_key_material(KeyId=kid, ImportToken=p["ImportToken"], EncryptedKeyMaterial=enc,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"until it expires"


# ---- the JS SDK: DeriveSharedSecret and an Ethereum signer ---------------------------

def run_js(server, script, *args):
    assert shutil.which("node"), "node is not installed (scripts/setup.sh installs it)"
    assert os.path.isdir(os.path.join(JS_DIR, "node_modules")), \
        "tests/js has no node_modules: run scripts/setup.sh (npm ci there)"
    env = dict(os.environ, KINKO_ENDPOINT=server.endpoint, AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1")
    env.pop("AWS_PROFILE", None)
    p = subprocess.run(["node", os.path.join(JS_DIR, script)] + list(args), capture_output=True,
                       text=True, env=env, timeout=120, cwd=JS_DIR)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("spec,curve", [("ECC_NIST_P256", ec.SECP256R1), ("ECC_NIST_P384", ec.SECP384R1),
                                        ("ECC_NIST_P521", ec.SECP521R1)])
def test_derive_shared_secret_js(server, kms, spec, curve):
    md = new_key(kms, spec, "KEY_AGREEMENT")
    kms_pub = serialization.load_der_public_key(kms.get_public_key(KeyId=md["KeyId"])["PublicKey"])
    peer = ec.generate_private_key(curve())
    peer_der = peer.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    out = run_js(server, "derive_shared_secret.mjs", md["KeyId"], base64.b64encode(peer_der).decode())
    assert out["KeyId"] == md["Arn"] and out["KeyAgreementAlgorithm"] == "ECDH"
    assert out["KeyOrigin"] == "AWS_KMS"
    # The peer derives the same secret on its side, outside kinko.
    assert base64.b64decode(out["SharedSecret"]) == peer.exchange(ec.ECDH(), kms_pub)
    assert out["Describe"]["KeyAgreementAlgorithms"] == ["ECDH"]


def test_derive_shared_secret_bad_input_js(server, kms):
    md = new_key(kms, "ECC_NIST_P256", "KEY_AGREEMENT")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    out = run_js(server, "derive_shared_secret.mjs", md["KeyId"], base64.b64encode(p384).decode(), "expect-error")
    assert out["error"] == "ValidationException"
    out = run_js(server, "derive_shared_secret.mjs", md["KeyId"], base64.b64encode(b"\x30\x03junk").decode(),
                 "expect-error")
    assert out["error"] == "ValidationException"
    signer = new_key(kms, "ECC_NIST_P256", "SIGN_VERIFY")["KeyId"]
    peer = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    out = run_js(server, "derive_shared_secret.mjs", signer, base64.b64encode(peer).decode(), "expect-error")
    assert out["error"] == "InvalidKeyUsageException"


def test_ethereum_signer_secp256k1_js(server, kms):
    md = new_key(kms, "ECC_SECG_P256K1", "SIGN_VERIFY")
    out = run_js(server, "ethereum_signer.mjs", md["KeyId"])
    # The address from the SPKI (computed in JS) equals the address ethers
    # recovers from the KMS signature of a message and of a transaction.
    assert out["address"] == out["recoveredMessage"] == out["recoveredTx"]
    # And python3-cryptography agrees on the public key behind it.
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=md["KeyId"])["PublicKey"])
    raw = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert raw.hex() == out["publicKeyHex"].removeprefix("0x")
