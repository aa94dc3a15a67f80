"""STS GetSessionToken, GetAccessKeyInfo and DecodeAuthorizationMessage
through boto3 and the AWS CLI: a session token acts as its user with the
user's policies, MFA members are validated, session credentials cannot
get another session token."""
import json

import pytest
from botocore.exceptions import ClientError

from helpers import allow, arn_user, iam_user, private_server

A = "444444444444"
KEYS = {}
DENY_STS = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Action": ["sts:GetSessionToken", "sts:GetAccessKeyInfo"],
     "Resource": "*"}]}


def user(name, policies=()):
    return iam_user(KEYS, A, name, policies, key_fill="XXXXXXXXXXXX", secret_prefix="secret-")


CONFIG = {"accounts": [{
    "id": A,
    "root_access_keys": [{"access_key_id": "AKIAROOTTOKENSXX", "secret_access_key": "root-t"}],
    "users": [user("worker", [allow(["kms:CreateKey", "kms:Encrypt", "kms:Decrypt",
                                     "sts:GetAccessKeyInfo",
                                     "sts:DecodeAuthorizationMessage"]),
                              allow("sts:GetFederationToken",
                                    "arn:aws:sts::%s:federated-user/app-*" % A)]),
              user("nobody"),
              user("denied", [allow("kms:*"), DENY_STS])],
}]}


@pytest.fixture(scope="module")
def srv():
    yield from private_server(CONFIG, "kinko-sts-tokens-")


def cli(srv, name, service="sts", validate=True):
    if name == "root":
        return srv.client(service, key="AKIAROOTTOKENSXX", secret="root-t", validate=validate)
    ak, sk = KEYS[name]
    return srv.client(service, key=ak, secret=sk, validate=validate)


def session(srv, creds, service="kms"):
    return srv.client(service, key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                      token=creds["SessionToken"])


def code(e):
    return e.value.response["Error"]["Code"]


def test_session_token_acts_as_the_user(srv):
    creds = cli(srv, "worker").get_session_token(DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    who = session(srv, creds, "sts").get_caller_identity()
    assert who["Arn"] == arn_user(A, "worker") and who["UserId"].startswith("AIDA")
    kms = session(srv, creds)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    with pytest.raises(ClientError) as e:
        kms.schedule_key_deletion(KeyId=key)  # the user's policies do not allow it
    assert code(e) == "AccessDeniedException"
    # Session credentials cannot get another session token.
    with pytest.raises(ClientError) as e:
        session(srv, creds, "sts").get_session_token()
    assert code(e) == "AccessDenied"
    # The user without any policy may still get one; the account root too (at most an hour).
    cli(srv, "nobody").get_session_token()
    r = cli(srv, "root").get_session_token(DurationSeconds=7200)["Credentials"]
    assert session(srv, r, "sts").get_caller_identity()["Arn"] == "arn:aws:iam::%s:root" % A


def test_session_token_refusals(srv):
    with pytest.raises(ClientError) as e:
        cli(srv, "denied").get_session_token()
    assert code(e) == "AccessDenied"
    raw = cli(srv, "worker", validate=False)
    for bad in (899, 129601):
        with pytest.raises(ClientError) as e:
            raw.get_session_token(DurationSeconds=bad)
        assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        raw.get_session_token(SerialNumber="arn:aws:iam::%s:mfa/worker" % A, TokenCode="12ab56")
    assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        raw.get_session_token(SerialNumber="bad serial!", TokenCode="123456")
    assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        raw.get_session_token(TokenCode="123456")
    assert code(e) == "ValidationError"
    # Well formed, but kinko has no MFA device to check the code with.
    with pytest.raises(ClientError) as e:
        raw.get_session_token(SerialNumber="arn:aws:iam::%s:mfa/worker" % A, TokenCode="123456")
    assert code(e) == "AccessDenied" and "MultiFactorAuthentication" in e.value.response["Error"]["Message"]


def test_get_access_key_info(srv):
    w = cli(srv, "worker")
    assert w.get_access_key_info(AccessKeyId=KEYS["nobody"][0])["Account"] == A
    assert w.get_access_key_info(AccessKeyId="AKIAROOTTOKENSXX")["Account"] == A
    creds = cli(srv, "nobody").get_session_token()["Credentials"]
    assert w.get_access_key_info(AccessKeyId=creds["AccessKeyId"])["Account"] == A
    with pytest.raises(ClientError) as e:
        w.get_access_key_info(AccessKeyId="AKIANOSUCHKEYXXXXXXX")
    assert code(e) == "ValidationError"
    for who in ("nobody", "denied"):
        with pytest.raises(ClientError) as e:
            cli(srv, who).get_access_key_info(AccessKeyId=KEYS["worker"][0])
        assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        cli(srv, "worker", validate=False).get_access_key_info(AccessKeyId="AKIA-not-valid-xx")
    assert code(e) == "ValidationError"


def test_decode_authorization_message(srv):
    with pytest.raises(ClientError) as e:
        cli(srv, "worker").decode_authorization_message(EncodedMessage="abc123")
    assert code(e) == "InvalidAuthorizationMessageException"
    with pytest.raises(ClientError) as e:
        cli(srv, "nobody").decode_authorization_message(EncodedMessage="abc123")
    assert code(e) == "AccessDenied"


def test_cli(srv):
    ak, sk = KEYS["worker"]
    _, out, _ = srv.aws("sts", "get-session-token", "--duration-seconds", "900", key=ak, secret=sk)
    creds = json.loads(out)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    _, out, _ = srv.aws("sts", "get-access-key-info", "--access-key-id", ak, key=ak, secret=sk)
    assert json.loads(out)["Account"] == A


def test_federation_token(srv):
    w = cli(srv, "worker")
    pol = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:ScheduleKeyDeletion"], "Resource": "*"}]}
    r = w.get_federation_token(Name="app-bob", Policy=json.dumps(pol), DurationSeconds=900)
    arn = "arn:aws:sts::%s:federated-user/app-bob" % A
    assert r["FederatedUser"] == {"FederatedUserId": "%s:app-bob" % A, "Arn": arn}
    assert r["PackedPolicySize"] > 0
    creds = r["Credentials"]
    assert session(srv, creds, "sts").get_caller_identity()["Arn"] == arn
    key = cli(srv, "worker", "kms").create_key()["KeyMetadata"]["KeyId"]
    fed = session(srv, creds)
    blob = fed.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]  # both allow it
    with pytest.raises(ClientError) as e:
        fed.decrypt(CiphertextBlob=blob)             # the user allows, the policy does not
    assert code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        fed.schedule_key_deletion(KeyId=key)         # the policy allows, the user does not
    assert code(e) == "AccessDeniedException"
    # Without a policy the federated user may do nothing.
    bare = session(srv, w.get_federation_token(Name="app-none")["Credentials"])
    with pytest.raises(ClientError) as e:
        bare.encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "AccessDeniedException"
    # Refusals: a name the policy does not cover, a caller without permission,
    # session credentials, a bad name.
    for who, name in (("worker", "other"), ("nobody", "app-x")):
        with pytest.raises(ClientError) as e:
            cli(srv, who).get_federation_token(Name=name)
        assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        session(srv, creds, "sts").get_federation_token(Name="app-again")
    assert code(e) == "AccessDenied"
    with pytest.raises(ClientError) as e:
        cli(srv, "worker", validate=False).get_federation_token(Name="bad name!")
    assert code(e) == "ValidationError"
