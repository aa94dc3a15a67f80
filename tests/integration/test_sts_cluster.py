"""Sessions of AssumeRoleWithWebIdentity and GetSessionToken are valid on
every node of a cluster (the store-kept sessions of sts/sessions.c)."""
import json
import os
import tempfile

import pytest
from botocore.exceptions import ClientError

from cluster import make_cluster  # noqa: F401 (fixture)
from helpers import allow, arn_user, iam_user
import test_sts_web_identity as web

A = web.A
KEYS = {}


def config():
    d = tempfile.mkdtemp(prefix="kinko-oidc-cluster-")
    jwks = os.path.join(d, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [web.rsa_jwk(web.RSA_KEY, "rsa-1")]}, f)
    return {
        "accounts": [{
            "id": A,
            "root_access_keys": [{"access_key_id": "AKIACLUSTEROIDC", "secret_access_key": "r"}],
            "users": [iam_user(KEYS, A, "worker", [allow(["kms:CreateKey", "kms:Encrypt",
                                                           "kms:Decrypt",
                                                           "sts:GetFederationToken"])],
                               key_fill="XXXXXXXXXXXX", secret_prefix="secret-")],
            "roles": [{"name": "k8s-app",
                       "trust_policy": web.trust((web.PROVIDER + ":aud", "sts.amazonaws.com")),
                       "policies": [allow(["kms:CreateKey", "kms:Encrypt", "kms:Decrypt"])]},
                      {"name": "tagged",
                       "trust_policy": {"Version": "2012-10-17", "Statement": [
                           {"Effect": "Allow", "Principal": {"Federated": web.PROVIDER_ARN},
                            "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]}]},
                       "policies": [allow("kms:Decrypt", "*", Condition={
                           "StringEquals": {"aws:PrincipalTag/Project": "blue"}})]}],
        }],
        "oidc_providers": [{"account": A, "url": web.ISSUER,
                            "client_ids": ["sts.amazonaws.com"], "jwks_file": jwks}],
    }


def session(node, creds, service="kms"):
    return node.client(service, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                       token=creds["SessionToken"])


def test_web_identity_and_session_token_sessions_work_on_other_nodes(make_cluster):
    c = make_cluster(2, config=config())
    a, b = c.nodes
    r = web.web_identity(a, web.sign(web.claims()))
    creds = r["Credentials"]
    assert session(b, creds, "sts").get_caller_identity()["Arn"] == r["AssumedRoleUser"]["Arn"]
    kid = session(b, creds).create_key()["KeyMetadata"]["KeyId"]
    blob = session(a, creds).encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"]
    assert session(b, creds).decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"

    ak, sk = KEYS["worker"]
    st = a.client("sts", key=ak, secret=sk).get_session_token(DurationSeconds=900)["Credentials"]
    assert session(b, st, "sts").get_caller_identity()["Arn"] == arn_user(A, "worker")
    assert session(b, st).decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"

    pol = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}]}
    fed = a.client("sts", key=ak, secret=sk).get_federation_token(
        Name="fed", Policy=json.dumps(pol))["Credentials"]
    assert session(b, fed, "sts").get_caller_identity()["Arn"].endswith(":federated-user/fed")
    session(b, fed).encrypt(KeyId=kid, Plaintext=b"y")
    with pytest.raises(ClientError) as e:
        session(b, fed).decrypt(CiphertextBlob=blob)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_session_policy_holds_on_other_nodes(make_cluster):
    c = make_cluster(2, config=config())
    a, b = c.nodes
    pol = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:CreateKey", "kms:Encrypt"], "Resource": "*"}]}
    r = web.web_identity(a, web.sign(web.claims()), Policy=json.dumps(pol))
    creds = r["Credentials"]
    kms_b = session(b, creds)
    kid = kms_b.create_key()["KeyMetadata"]["KeyId"]
    blob = kms_b.encrypt(KeyId=kid, Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as e:
        kms_b.decrypt(CiphertextBlob=blob)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"


def test_session_tags_hold_on_other_nodes(make_cluster):
    c = make_cluster(2, config=config())
    a, b = c.nodes
    creds = web.web_identity(a, web.sign(web.claims()))["Credentials"]
    kid = session(a, creds).create_key()["KeyMetadata"]["KeyId"]
    blob = session(a, creds).encrypt(KeyId=kid, Plaintext=b"t")["CiphertextBlob"]
    for project, ok in (("blue", True), ("red", False)):
        claim = {"principal_tags": {"Project": [project]}}
        tok = web.sign(web.claims(**{"https://aws.amazon.com/tags": claim}))
        tagged = web.web_identity(a, tok, role="tagged")["Credentials"]
        if ok:
            assert session(b, tagged).decrypt(CiphertextBlob=blob)["Plaintext"] == b"t"
        else:
            with pytest.raises(ClientError) as e:
                session(b, tagged).decrypt(CiphertextBlob=blob)
            assert e.value.response["Error"]["Code"] == "AccessDeniedException"
