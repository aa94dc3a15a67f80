"""A request body the JSON parser refuses gets a SerializationException
whose message says why (docs/SECURITY.md, "Bad input"): a NUL in a string,
a duplicate member, a number beyond 64 bits, invalid UTF-8, deep nesting,
a cut-off body and trailing bytes each have their own message, and none of
them quotes the body. A well-formed body that is not an object keeps AWS's
"Start of structure or map found where not expected."
"""
import pytest

from helpers import signed_call


def raw_call(server, target, body, service="kms"):
    """Sends `body` (bytes, as they are) signed to `target`; returns (status, JSON)."""
    return signed_call(server, target, body, service=service)


CASES = [
    ("nul", b'{"KeyId":"a\\u0000b"}', "NUL character"),
    ("nul_in_name", b'{"Key\\u0000Id":"ab"}', "NUL character"),
    ("duplicate", b'{"KeyId":"a","KeyId":"b"}', "appears twice"),
    ("overflow", b'{"NumberOfBytes":99999999999999999999999}', "64 bits"),
    ("utf8", b'{"KeyId":"\xff\xfe"}', "not valid UTF-8"),
    ("deep", b"[" * 5000 + b"]" * 5000, "nest too deeply"),
    ("cut_off", b'{"KeyId":"ab', "ends before"),
    ("trailing", b'{"KeyId":"ab"} {}', "more follows"),
    ("syntax", b'{"KeyId" "ab"}', "syntax error"),
]


@pytest.mark.parametrize("name,body,reason", CASES, ids=[c[0] for c in CASES])
def test_each_json_rejection_says_why(server, name, body, reason):
    status, out = raw_call(server, "TrentService.DescribeKey", body)
    assert status == 400, out
    assert out["__type"] == "SerializationException", out
    msg = out["message"]
    assert reason in msg, msg
    assert "Start of structure" not in msg, msg
    assert msg.startswith(("Invalid JSON in the request body", )), msg
    assert "(at byte " in msg, msg


def test_json_rejections_are_distinct(server):
    """Seven reasons, seven messages (the position aside)."""
    seen = set()
    for _, body, _ in CASES:
        _, out = raw_call(server, "TrentService.DescribeKey", body)
        seen.add(out["message"].split(" (at byte")[0])
    assert len(seen) == len(CASES) - 1  # the two NUL cases share one message


def test_message_does_not_quote_the_body(server):
    _, out = raw_call(server, "TrentService.Encrypt", b'{"Plaintext":"c2VjcmV0","KeyId":"x" "sekrit"}')
    assert out["__type"] == "SerializationException"
    assert "sekrit" not in out["message"] and "c2VjcmV0" not in out["message"]


def test_secrets_manager_says_why_too(server):
    status, out = raw_call(server, "secretsmanager.GetSecretValue",
                           b'{"SecretId":"a","SecretId":"b"}', service="secretsmanager")
    assert status == 400
    assert out["__type"] == "SerializationException"
    assert "appears twice" in out["message"]


@pytest.mark.parametrize("body", [b"[]", b'"KeyId"', b"42", b"null"])
def test_non_object_body_keeps_aws_message(server, body):
    status, out = raw_call(server, "TrentService.DescribeKey", body)
    assert status == 400
    assert out["__type"] == "SerializationException"
    assert out["message"] == "Start of structure or map found where not expected."
