"""Session tags: Tags / TransitiveTagKeys on AssumeRole and the token's
"https://aws.amazon.com/tags" claim on AssumeRoleWithWebIdentity need
sts:TagSession in the trust policy, and become aws:PrincipalTag/KEY
condition keys for key policies and identity policies."""
import json
import os
import tempfile

import pytest
from botocore.exceptions import ClientError

from helpers import allow, arn_user, iam_user, private_server
import test_sts_web_identity as web

A = web.A
KEYS = {}


def role_arn(name):
    return "arn:aws:iam::%s:role/%s" % (A, name)


def trust(actions, extra=None):
    st = [{"Effect": "Allow", "Principal": {"AWS": arn_user(A, "caller")}, "Action": actions},
          {"Effect": "Allow", "Principal": {"AWS": role_arn("first")}, "Action": actions}]
    if extra:
        st.append(extra)
    return {"Version": "2012-10-17", "Statement": st}


# The role's identity policy lets a session decrypt only with its Project tag "blue".
BLUE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["kms:CreateKey", "kms:Encrypt", "sts:AssumeRole"],
     "Resource": "*"},
    {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalTag/Project": "blue"}}}]}


@pytest.fixture(scope="module")
def srv():
    d = tempfile.mkdtemp(prefix="kinko-tags-jwks-")
    jwks = os.path.join(d, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [web.rsa_jwk(web.RSA_KEY, "rsa-1")]}, f)
    fed = {"Effect": "Allow", "Principal": {"Federated": web.PROVIDER_ARN},
           "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]}
    config = {
        "accounts": [{
            "id": A,
            "root_access_keys": [{"access_key_id": "AKIAROOTTAGS", "secret_access_key": "r"}],
            "users": [iam_user(KEYS, A, "caller", [allow("sts:*")], key_fill="XXXXXXXXXXXX",
                               secret_prefix="secret-")],
            "roles": [
                {"name": "first", "policies": [BLUE],
                 "trust_policy": trust(["sts:AssumeRole", "sts:TagSession"], fed)},
                {"name": "second", "policies": [BLUE],
                 "trust_policy": trust(["sts:AssumeRole", "sts:TagSession"])},
                {"name": "notags", "policies": [BLUE], "trust_policy": trust("sts:AssumeRole")},
                {"name": "onlyteam", "policies": [BLUE],
                 "trust_policy": trust("sts:AssumeRole", {
                     "Effect": "Allow", "Principal": {"AWS": arn_user(A, "caller")},
                     "Action": "sts:TagSession",
                     "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["Team"]}}})},
            ],
        }],
        "oidc_providers": [{"account": A, "url": web.ISSUER, "client_ids": ["sts.amazonaws.com"],
                            "jwks_file": jwks}],
    }
    yield from private_server(config, "kinko-sts-tags-")


def assume(client, role, **kw):
    return client.assume_role(RoleArn=role_arn(role), RoleSessionName="tagged", **kw)


def caller(srv):
    ak, sk = KEYS["caller"]
    return srv.client("sts", key=ak, secret=sk)


def session(srv, creds, service="kms"):
    return srv.client(service, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                      token=creds["SessionToken"])


def code(e):
    return e.value.response["Error"]["Code"]


def blob_and_key(srv):
    kms = session(srv, assume(caller(srv), "notags")["Credentials"])
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    return key, kms.encrypt(KeyId=key, Plaintext=b"tagged")["CiphertextBlob"]


def tags(**kv):
    return [{"Key": k, "Value": v} for k, v in kv.items()]


def test_principal_tag_conditions(srv):
    key, blob = blob_and_key(srv)
    blue = session(srv, assume(caller(srv), "first", Tags=tags(Project="blue"))["Credentials"])
    assert blue.decrypt(CiphertextBlob=blob)["Plaintext"] == b"tagged"
    red = session(srv, assume(caller(srv), "first", Tags=tags(Project="red"))["Credentials"])
    with pytest.raises(ClientError) as e:
        red.decrypt(CiphertextBlob=blob)
    assert code(e) == "AccessDeniedException"
    untagged = session(srv, assume(caller(srv), "notags")["Credentials"])
    with pytest.raises(ClientError) as e:
        untagged.decrypt(CiphertextBlob=blob)
    assert code(e) == "AccessDeniedException"


def test_tag_session_needs_the_trust_policy(srv):
    with pytest.raises(ClientError) as e:
        assume(caller(srv), "notags", Tags=tags(Project="blue"))
    assert code(e) == "AccessDenied"
    assume(caller(srv), "onlyteam", Tags=tags(Team="a"))
    with pytest.raises(ClientError) as e:
        assume(caller(srv), "onlyteam", Tags=tags(Team="a", Project="blue"))
    assert code(e) == "AccessDenied"


def test_tag_validation(srv):
    for kw in ({"Tags": tags(Project="a", project="b")},                    # case-insensitive duplicate
               {"Tags": tags(Project="a"), "TransitiveTagKeys": ["Other"]},  # not among the tags
               {"Tags": [{"Key": "bad!key", "Value": "v"}]}):
        with pytest.raises(ClientError) as e:
            assume(caller(srv), "first", **kw)
        assert code(e) == "ValidationError", kw


def test_transitive_tags_follow_a_role_chain(srv):
    key, blob = blob_and_key(srv)
    r = assume(caller(srv), "first", Tags=tags(Project="blue", Stage="dev"),
               TransitiveTagKeys=["Project"])
    assert r["PackedPolicySize"] > 0
    first = session(srv, r["Credentials"], "sts")
    second = session(srv, assume(first, "second")["Credentials"])
    assert second.decrypt(CiphertextBlob=blob)["Plaintext"] == b"tagged"
    # A transitive tag cannot be set again down the chain.
    with pytest.raises(ClientError) as e:
        assume(first, "second", Tags=tags(Project="red"))
    assert code(e) == "ValidationError"
    # A tag that is not transitive does not follow.
    r = assume(caller(srv), "first", Tags=tags(Project="blue"))
    plain = session(srv, assume(session(srv, r["Credentials"], "sts"), "second")["Credentials"])
    with pytest.raises(ClientError) as e:
        plain.decrypt(CiphertextBlob=blob)
    assert code(e) == "AccessDeniedException"


def test_web_identity_token_tags(srv):
    key, blob = blob_and_key(srv)
    claim = {"principal_tags": {"Project": ["blue"]}, "transitive_tag_keys": ["Project"]}
    tok = web.sign(web.claims(**{"https://aws.amazon.com/tags": claim}))
    r = web.web_identity(srv, tok, role="first")
    kms = session(srv, r["Credentials"])
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"tagged"
    bad = web.sign(web.claims(**{"https://aws.amazon.com/tags": {"principal_tags": {"P": "x"}}}))
    with pytest.raises(ClientError) as e:
        web.web_identity(srv, bad, role="first")
    assert code(e) == "InvalidIdentityToken"


def test_cli_tags(srv):
    ak, sk = KEYS["caller"]
    _, out, _ = srv.aws("sts", "assume-role", "--role-arn", role_arn("first"),
                        "--role-session-name", "cli", "--tags", "Key=Project,Value=blue",
                        "--transitive-tag-keys", "Project", key=ak, secret=sk)
    assert json.loads(out)["PackedPolicySize"] > 0
