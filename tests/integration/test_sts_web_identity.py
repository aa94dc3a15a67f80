"""STS AssumeRoleWithWebIdentity: OpenID Connect ID tokens (JWTs signed in
the test with python3-cryptography, their keys in a JWKS file the
configuration names) buy role sessions that then work on a KMS key whose
policy names the role — through boto3 and the AWS CLI, errors included.
"""
import base64
import json
import os
import tempfile
import time

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
import boto3
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from helpers import allow, iam_user, private_server

A = "333333333333"
ISSUER = "https://oidc.example.test/cluster-1"
PROVIDER = "oidc.example.test/cluster-1"
PROVIDER_ARN = "arn:aws:iam::%s:oidc-provider/%s" % (A, PROVIDER)
KEYS = {}

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


def rsa_jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64u(uint(pub.n)),
            "e": b64u(uint(pub.e))}


def ec_jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(uint(pub.x, 32)),
            "y": b64u(uint(pub.y, 32))}


def sign(claims, alg="RS256", kid="rsa-1", key=None):
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = (b64u(json.dumps(header).encode()) + "." +
                     b64u(json.dumps(claims).encode())).encode()
    if alg == "RS256":
        sig = (key or RSA_KEY).sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "ES256":
        r, s = decode_dss_signature((key or EC_KEY).sign(signing_input, ec.ECDSA(hashes.SHA256())))
        sig = uint(r, 32) + uint(s, 32)
    elif alg == "HS256":
        # Algorithm confusion: the RSA public key's bytes as an HMAC secret.
        h = hmac.HMAC(key, hashes.SHA256())
        h.update(signing_input)
        sig = h.finalize()
    else:
        sig = b""
    return signing_input.decode() + "." + b64u(sig)


def claims(**over):
    now = int(time.time())
    c = {"iss": ISSUER, "sub": "system:serviceaccount:prod:app", "aud": "sts.amazonaws.com",
         "iat": now, "nbf": now - 5, "exp": now + 600}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def role_arn(name):
    return "arn:aws:iam::%s:role/%s" % (A, name)


def trust(*conditions):
    st = {"Effect": "Allow", "Principal": {"Federated": PROVIDER_ARN},
          "Action": "sts:AssumeRoleWithWebIdentity"}
    if conditions:
        st["Condition"] = {"StringEquals": dict(conditions)}
    return {"Version": "2012-10-17", "Statement": [st]}


@pytest.fixture(scope="module")
def srv():
    d = tempfile.mkdtemp(prefix="kinko-oidc-jwks-")
    jwks = os.path.join(d, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [rsa_jwk(RSA_KEY, "rsa-1"), ec_jwk(EC_KEY, "ec-1")]}, f)
    config = {
        "accounts": [{
            "id": A,
            "root_access_keys": [{"access_key_id": "AKIAROOTOIDC", "secret_access_key": "root-o"}],
            "users": [iam_user(KEYS, A, "plain", [], key_fill="XXXXXXXXXXXX",
                               secret_prefix="secret-")],
            "roles": [
                {"name": "k8s-app",
                 "trust_policy": trust((PROVIDER + ":aud", "sts.amazonaws.com"),
                                       (PROVIDER + ":sub", "system:serviceaccount:prod:app")),
                 "policies": [allow(["kms:Encrypt", "kms:Decrypt"])]},
                {"name": "ci",
                 "trust_policy": trust((PROVIDER + ":aud", "ci-runner")),
                 "policies": []},
                {"name": "users-only",
                 "trust_policy": {"Version": "2012-10-17", "Statement": [
                     {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % A},
                      "Action": "sts:AssumeRole"}]},
                 "policies": []},
            ],
        }],
        "oidc_providers": [{"account": A, "url": ISSUER,
                            "client_ids": ["sts.amazonaws.com", "ci-runner"],
                            "jwks_file": jwks}],
    }
    yield from private_server(config, "kinko-oidc-")


def anon(srv):
    return boto3.client("sts", endpoint_url=srv.endpoint, region_name="us-east-1",
                        config=Config(signature_version=UNSIGNED,
                                      retries={"max_attempts": 1, "mode": "standard"}))


def web_identity(srv, token, role="k8s-app", session="pod-1", **kw):
    return anon(srv).assume_role_with_web_identity(RoleArn=role_arn(role), RoleSessionName=session,
                                                   WebIdentityToken=token, **kw)


def code(e):
    return e.value.response["Error"]["Code"]


def test_token_gets_credentials_that_work_on_a_key_naming_the_role(srv):
    r = web_identity(srv, sign(claims()))
    assert r["SubjectFromWebIdentityToken"] == "system:serviceaccount:prod:app"
    assert r["Audience"] == "sts.amazonaws.com" and r["Provider"] == ISSUER
    assert r["AssumedRoleUser"]["Arn"] == "arn:aws:sts::%s:assumed-role/k8s-app/pod-1" % A
    creds = r["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    session = dict(key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                   token=creds["SessionToken"])
    ident = srv.client("sts", **session).get_caller_identity()
    assert ident["Arn"] == r["AssumedRoleUser"]["Arn"]
    # A key whose policy names the role (and not the account): the session may use it.
    root = srv.client("kms", key="AKIAROOTOIDC", secret="root-o")
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::%s:root" % A},
         "Action": ["kms:Create*", "kms:Describe*", "kms:Put*", "kms:Get*"], "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": role_arn("k8s-app")},
         "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]}
    key = root.create_key(Policy=json.dumps(policy))["KeyMetadata"]["KeyId"]
    kms = srv.client("kms", **session)
    blob = kms.encrypt(KeyId=key, Plaintext=b"pod secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"pod secret"
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=key)
    assert code(e) == "AccessDeniedException"


def test_es256_token_and_audience_list(srv):
    tok = sign(claims(aud=["other", "ci-runner"], sub="repo:acme/app:ref:main"), alg="ES256",
               kid="ec-1")
    r = web_identity(srv, tok, role="ci", session="build-7")
    assert r["Audience"] == "ci-runner"
    assert r["AssumedRoleUser"]["Arn"].endswith("assumed-role/ci/build-7")


def test_bad_tokens_are_invalid_identity_token(srv):
    cases = [
        "not-a-jwt",
        sign(claims(), key=OTHER_RSA),                      # signed by a key not in the JWKS
        sign(claims(), kid="nosuchkid"),
        sign(claims(), alg="none"),                         # alg: none
        sign(claims(), alg="HS256", key=RSA_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)),
        sign(claims(), alg="ES256", kid="rsa-1"),           # an EC signature with the RSA key's kid
        sign(claims(iss="https://evil.example.test")),       # no such provider
        sign(claims(aud="someone-else")),                    # audience not a client id
        sign(claims(sub=None)),                              # no subject
        sign(claims(nbf=int(time.time()) + 3600)),           # not valid yet
        sign(claims(iat=int(time.time()) + 3600)),           # issued in the future
        sign(claims(exp=None)),                              # no expiry
    ]
    for tok in cases:
        with pytest.raises(ClientError) as e:
            web_identity(srv, tok)
        assert code(e) == "InvalidIdentityToken", tok
    # A token tampered with after signing.
    head, body, sig = sign(claims()).split(".")
    forged = b64u(json.dumps(claims(sub="system:serviceaccount:prod:admin")).encode())
    with pytest.raises(ClientError) as e:
        web_identity(srv, ".".join([head, forged, sig]))
    assert code(e) == "InvalidIdentityToken"


def test_expired_token(srv):
    with pytest.raises(ClientError) as e:
        web_identity(srv, sign(claims(exp=int(time.time()) - 10, iat=int(time.time()) - 700)))
    assert code(e) == "ExpiredTokenException"


def test_trust_policy_conditions_and_principal(srv):
    # The k8s-app role trusts one service account only.
    with pytest.raises(ClientError) as e:
        web_identity(srv, sign(claims(sub="system:serviceaccount:prod:other")))
    assert code(e) == "AccessDenied"
    # The ci role wants the ci-runner audience.
    with pytest.raises(ClientError) as e:
        web_identity(srv, sign(claims()), role="ci")
    assert code(e) == "AccessDenied"
    # A role that does not trust the provider, and one that does not exist.
    for role in ("users-only", "nosuchrole"):
        with pytest.raises(ClientError) as e:
            web_identity(srv, sign(claims()), role=role)
        assert code(e) == "AccessDenied"


def test_request_checks(srv):
    with pytest.raises(ClientError) as e:
        web_identity(srv, sign(claims()), session="bad name!")
    assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        web_identity(srv, sign(claims()), DurationSeconds=7200)  # over the role's 3600
    assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        web_identity(srv, sign(claims()), ProviderId="www.amazon.com")
    assert code(e) == "ValidationError"
    # Other operations still need a signature.
    with pytest.raises(ClientError) as e:
        anon(srv).get_caller_identity()
    assert code(e) in ("MissingAuthenticationToken", "MissingAuthenticationTokenException")


def test_cli(srv):
    tok = sign(claims())
    rc, out, err = srv.aws("sts", "assume-role-with-web-identity", "--role-arn", role_arn("k8s-app"),
                           "--role-session-name", "cli", "--web-identity-token", tok,
                           "--duration-seconds", "900", key="unused", secret="unused")
    doc = json.loads(out)
    assert doc["AssumedRoleUser"]["Arn"].endswith("assumed-role/k8s-app/cli")
    assert doc["SubjectFromWebIdentityToken"] == "system:serviceaccount:prod:app"
