"""The service's own error names: every row of `kinko ops --json` for KMS
and Secrets Manager is called in the ways that fail cheaply (a member
too long for the model, a resource that does not exist, a principal with
no permission, and the walk's ordinary request), and every exception
name that comes back must be one the operation's botocore model lists,
or one of the errors common to every AWS JSON service. Secrets Manager
answers InternalServiceError, ResourceNotFoundException ... where KMS
answers KMSInternalException, NotFoundException ...: no Secrets Manager
call may answer with a KMS-only name.

Operations newer than Debian's botocore models (BatchGetSecretValue,
RotateKeyOnDemand ...) are checked against every name their service's
model lists.
"""
import glob
import json
import os

import pytest

import botocore

from test_operation_table import BODIES, KEY_KINDS, TABLES, World, call, private_server, CONFIG

# Errors any AWS JSON-protocol service may answer, whatever the operation
# (the "common errors" of the API references).
COMMON = {
    "AccessDeniedException", "ThrottlingException", "UnrecognizedClientException",
    "InvalidSignatureException", "IncompleteSignatureException",
    "MissingAuthenticationTokenException", "ExpiredTokenException", "ValidationException",
}

MISSING_KEY = "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-4000-8000-000000000000"
MISSING_SECRET = "walk-error-names-missing-secret"


def model(service):
    """{operation: set of error names} and the union, from botocore's newest model."""
    root = os.path.join(os.path.dirname(botocore.__file__), "data", service)
    path = sorted(glob.glob(os.path.join(root, "*", "service-2.json")))[-1]
    with open(path) as f:
        m = json.load(f)
    ops = {name: {e["shape"] for e in op.get("errors", [])} for name, op in m["operations"].items()}
    return ops, set().union(*ops.values())


MODELS = {"kms": model("kms"), "secretsmanager": model("secretsmanager")}
ROWS = [(svc, op) for svc in TABLES if svc["signingName"] in MODELS for op in svc["operations"]]


def allowed(svc, op):
    ops, every = MODELS[svc["signingName"]]
    return COMMON | ops.get(op["name"], every)


def ids(p):
    svc, op = p
    return "%s.%s" % (svc["signingName"], op["name"])


@pytest.fixture(scope="module")
def srv():
    yield from private_server(CONFIG, "kinko-errnames-")


@pytest.fixture(scope="module")
def world(srv):
    return World(srv)


def check(svc, op, status, code, out):
    if status < 300:
        return
    assert code is not None, (status, out)
    assert code in allowed(svc, op), (op["name"], status, out)


def missing_body(world, svc, op):
    """A request naming a resource that does not exist, or None when the row names none."""
    res, member = op["resource"], op["member"]
    if res in KEY_KINDS:
        b = {member: MISSING_KEY}
    elif res == "alias":
        b = {member: world.name("alias/walk-missing-"), "TargetKeyId": MISSING_KEY}
    elif res == "secret":
        b = {member: MISSING_SECRET}
    else:
        return None
    extra = BODIES.get((svc["signingName"], op["name"]))
    b.update(extra(world) if callable(extra) else (extra or {}))
    return b


@pytest.mark.parametrize("entry", ROWS, ids=ids)
def test_bad_member(srv, world, entry):
    svc, op = entry
    if op["member"] is None:
        pytest.skip("the row names no member")
    body = world.body(svc, op, key=world.key, secret=world.secret)
    body[op["member"]] = "x" * 3000  # longer than any identifier the models accept
    status, code, out = call(srv, svc, op, body, "everyone")
    assert status == 400, out
    check(svc, op, status, code, out)


@pytest.mark.parametrize("entry", ROWS, ids=ids)
def test_missing_resource(srv, world, entry):
    svc, op = entry
    body = missing_body(world, svc, op)
    if body is None:
        pytest.skip("the row names no resource")
    status, code, out = call(srv, svc, op, body, "everyone")
    assert status == 400, out
    check(svc, op, status, code, out)
    if svc["signingName"] == "secretsmanager":
        assert code == "ResourceNotFoundException", out


@pytest.mark.parametrize("entry", ROWS, ids=ids)
def test_denied_and_allowed(srv, world, entry):
    svc, op = entry
    status, code, out = call(srv, svc, op, world.body(svc, op, key=world.key, secret=world.secret),
                             "nobody")
    check(svc, op, status, code, out)
    if op["name"] in ("Reset",):
        return
    status, code, out = call(srv, svc, op, world.body(svc, op), "everyone")
    check(svc, op, status, code, out)


def test_secrets_manager_never_speaks_kms():
    """No name a Secrets Manager row may answer is one only KMS's model has."""
    _, sm_every = MODELS["secretsmanager"]
    _, kms_every = MODELS["kms"]
    kms_only = kms_every - sm_every - COMMON
    for svc, op in ROWS:
        if svc["signingName"] == "secretsmanager":
            assert not (allowed(svc, op) & kms_only), op["name"]
