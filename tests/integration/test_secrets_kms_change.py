"""UpdateSecret with a new KmsKeyId. AWS: "When you change the encryption
key, Secrets Manager re-encrypts AWSCURRENT, AWSPENDING, and AWSPREVIOUS
versions with the new key. To avoid locking you out of the secret, Secrets
Manager keeps all existing versions encrypted with the previous key. That
means you can decrypt AWSCURRENT, AWSPENDING, and AWSPREVIOUS versions with
the previous key or the new key. If you don't have kms:Decrypt permission
to the previous key, ... the existing versions aren't reencrypted."
(Secrets Manager user guide, "Change the encryption key for a secret")."""
import uuid

import pytest
from botocore.exceptions import ClientError


@pytest.fixture
def sm(server):
    return server.client("secretsmanager")


def code(e):
    return e.value.response["Error"]["Code"]


def name():
    return "kmschange/%s" % uuid.uuid4().hex[:12]


def key_ids(sm, n):
    return {v["VersionId"]: v.get("KmsKeyIds") for v in
            sm.list_secret_version_ids(SecretId=n, IncludeDeprecated=True)["Versions"]}


def value(sm, n, **kw):
    return sm.get_secret_value(SecretId=n, **kw)["SecretString"]


def decryption_fails(sm, n, **kw):
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=n, **kw)
    return code(e) == "DecryptionFailure"


def test_labelled_versions_are_reencrypted_and_others_are_not(sm, kms):
    k1 = kms.create_key()["KeyMetadata"]
    k2 = kms.create_key()["KeyMetadata"]
    n = name()
    v1 = sm.create_secret(Name=n, SecretString="one", KmsKeyId=k1["KeyId"])["VersionId"]
    v2 = sm.put_secret_value(SecretId=n, SecretString="two")["VersionId"]
    v3 = sm.put_secret_value(SecretId=n, SecretString="three")["VersionId"]
    vp = sm.put_secret_value(SecretId=n, SecretString="pending",
                             VersionStages=["AWSPENDING"])["VersionId"]
    vc = sm.put_secret_value(SecretId=n, SecretString="custom",
                             VersionStages=["MYLABEL"])["VersionId"]
    stages = sm.describe_secret(SecretId=n)["VersionIdsToStages"]
    assert stages == {v3: ["AWSCURRENT"], v2: ["AWSPREVIOUS"], vp: ["AWSPENDING"],
                      vc: ["MYLABEL"]}
    assert all(k == [k1["Arn"]] for k in key_ids(sm, n).values())

    sm.update_secret(SecretId=n, KmsKeyId=k2["Arn"])
    assert sm.describe_secret(SecretId=n)["KmsKeyId"] == k2["Arn"]
    ids = key_ids(sm, n)
    # AWSCURRENT, AWSPREVIOUS, AWSPENDING: under the new key and still the previous one.
    for v in (v3, v2, vp):
        assert ids[v] == [k2["Arn"], k1["Arn"]], (v, ids)
    # The others stay under the previous key only.
    assert ids[v1] == [k1["Arn"]] and ids[vc] == [k1["Arn"]]

    # Disable the previous key: the three labelled versions still read ...
    kms.disable_key(KeyId=k1["KeyId"])
    assert value(sm, n) == "three"
    assert value(sm, n, VersionStage="AWSPREVIOUS") == "two"
    assert value(sm, n, VersionStage="AWSPENDING") == "pending"
    assert value(sm, n, VersionId=v3) == "three"
    # ... the others do not.
    assert decryption_fails(sm, n, VersionStage="MYLABEL")
    assert decryption_fails(sm, n, VersionId=v1)
    # "you can decrypt AWSCURRENT, AWSPENDING, and AWSPREVIOUS versions with
    # the previous key or the new key": with only the previous one enabled too.
    kms.enable_key(KeyId=k1["KeyId"])
    kms.disable_key(KeyId=k2["KeyId"])
    assert value(sm, n) == "three"
    assert value(sm, n, VersionStage="AWSPREVIOUS") == "two"
    assert value(sm, n, VersionStage="AWSPENDING") == "pending"
    assert value(sm, n, VersionId=v1) == "one"
    # With neither key, the error names the new one.
    kms.disable_key(KeyId=k1["KeyId"])
    with pytest.raises(ClientError) as e:
        sm.get_secret_value(SecretId=n)
    assert code(e) == "DecryptionFailure" and k2["Arn"] in e.value.response["Error"]["Message"]
    kms.enable_key(KeyId=k1["KeyId"])
    kms.enable_key(KeyId=k2["KeyId"])
    # New versions use the new key alone.
    v4 = sm.put_secret_value(SecretId=n, SecretString="four")["VersionId"]
    assert key_ids(sm, n)[v4] == [k2["Arn"]]
    kms.disable_key(KeyId=k1["KeyId"])
    assert value(sm, n) == "four"
    assert value(sm, n, VersionStage="AWSPREVIOUS") == "three"


def test_back_to_the_aws_managed_key(sm, kms):
    k1 = kms.create_key()["KeyMetadata"]
    n = name()
    v1 = sm.create_secret(Name=n, SecretString="one", KmsKeyId=k1["Arn"])["VersionId"]
    sm.update_secret(SecretId=n, KmsKeyId="")
    assert "KmsKeyId" not in sm.describe_secret(SecretId=n)
    managed = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]["Arn"]
    assert key_ids(sm, n)[v1] == [managed, k1["Arn"]]
    kms.disable_key(KeyId=k1["KeyId"])
    assert value(sm, n) == "one"


def test_new_key_that_cannot_encrypt_changes_nothing(sm, kms):
    k1 = kms.create_key()["KeyMetadata"]
    k2 = kms.create_key()["KeyMetadata"]
    kms.disable_key(KeyId=k2["KeyId"])
    n = name()
    v1 = sm.create_secret(Name=n, SecretString="one", KmsKeyId=k1["Arn"])["VersionId"]
    with pytest.raises(ClientError) as e:
        sm.update_secret(SecretId=n, KmsKeyId=k2["Arn"], Description="changed")
    assert code(e) == "EncryptionFailure"
    d = sm.describe_secret(SecretId=n)
    assert d["KmsKeyId"] == k1["Arn"] and "Description" not in d
    assert key_ids(sm, n)[v1] == [k1["Arn"]]
    # Nothing was re-encrypted: the old key is still the only one.
    kms.enable_key(KeyId=k2["KeyId"])
    kms.disable_key(KeyId=k1["KeyId"])
    assert decryption_fails(sm, n)


def test_previous_key_unusable_leaves_versions_as_they_are(sm, kms):
    k1 = kms.create_key()["KeyMetadata"]
    k2 = kms.create_key()["KeyMetadata"]
    n = name()
    v1 = sm.create_secret(Name=n, SecretString="one", KmsKeyId=k1["Arn"])["VersionId"]
    kms.disable_key(KeyId=k1["KeyId"])
    # The key changes; the versions cannot be decrypted, so they are not re-encrypted.
    sm.update_secret(SecretId=n, KmsKeyId=k2["Arn"])
    assert sm.describe_secret(SecretId=n)["KmsKeyId"] == k2["Arn"]
    assert key_ids(sm, n)[v1] == [k1["Arn"]]
    assert decryption_fails(sm, n)
    kms.enable_key(KeyId=k1["KeyId"])
    assert value(sm, n) == "one"
    v2 = sm.put_secret_value(SecretId=n, SecretString="two")["VersionId"]
    assert key_ids(sm, n)[v2] == [k2["Arn"]]


def test_same_key_again_changes_no_version(sm, kms):
    k1 = kms.create_key()["KeyMetadata"]
    n = name()
    v1 = sm.create_secret(Name=n, SecretString="one", KmsKeyId=k1["Arn"])["VersionId"]
    sm.update_secret(SecretId=n, KmsKeyId=k1["KeyId"])
    assert key_ids(sm, n)[v1] == [k1["Arn"]]
    assert value(sm, n) == "one"


def test_key_change_with_a_new_value(sm, kms):
    k1 = kms.create_key()["KeyMetadata"]
    k2 = kms.create_key()["KeyMetadata"]
    n = name()
    v1 = sm.create_secret(Name=n, SecretString="one", KmsKeyId=k1["Arn"])["VersionId"]
    v2 = sm.update_secret(SecretId=n, SecretString="two", KmsKeyId=k2["Arn"])["VersionId"]
    ids = key_ids(sm, n)
    assert ids[v2] == [k2["Arn"]]
    # The version that was AWSCURRENT (now AWSPREVIOUS) is re-encrypted too.
    assert ids[v1] == [k2["Arn"], k1["Arn"]]
    kms.disable_key(KeyId=k1["KeyId"])
    assert value(sm, n) == "two"
    assert value(sm, n, VersionStage="AWSPREVIOUS") == "one"


def test_largest_binary_value_is_reencrypted(sm, kms):
    import os
    k1 = kms.create_key()["KeyMetadata"]
    k2 = kms.create_key()["KeyMetadata"]
    blob = os.urandom(65536)
    n = name()
    sm.create_secret(Name=n, SecretBinary=blob, KmsKeyId=k1["Arn"])
    sm.update_secret(SecretId=n, KmsKeyId=k2["Arn"])
    kms.disable_key(KeyId=k1["KeyId"])
    assert sm.get_secret_value(SecretId=n)["SecretBinary"] == blob
