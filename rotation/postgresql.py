#!/usr/bin/python3
"""kinko's rotation function for PostgreSQL passwords.

The analogue of AWS's RDS PostgreSQL rotation functions, run by kinko as a
local executable (see docs/SECRETS.md). kinko starts it once per rotation
step with the event on standard input:

    {"SecretId": ARN, "ClientRequestToken": VERSION, "Step": STEP}

and with credentials to call kinko back in the environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
SECRETS_MANAGER_ENDPOINT). Exit status 0 means the step succeeded.

The secret is a JSON document:
    {"engine": "postgres", "host": "...", "port": 5432, "dbname": "...",
     "username": "...", "password": "..."}

Strategies (the ROTATION_STRATEGY environment variable, or the secret's
"rotation_strategy" member):
  single-user        changes the password of the secret's own user.
  alternating-users  keeps two users, USER and USER_clone, and each rotation
                     switches the secret to the other one with a new
                     password, so the user applications hold keeps working
                     until its next rotation. The secret's "masterarn" names
                     a secret with the credentials of a user allowed to
                     create roles and change their passwords.

Steps, as Secrets Manager defines them:
  createSecret  put a new value with AWSPENDING under the ClientRequestToken
  setSecret     make the database accept the pending credentials
  testSecret    log in with the pending credentials
  finishSecret  move AWSCURRENT to the new version

Nothing this program prints contains a password.
"""
import json
import os
import sys

import boto3
import psycopg2
from psycopg2 import sql

EXCLUDE = os.environ.get("EXCLUDE_CHARACTERS", ":/@\"'\\")
PASSWORD_LENGTH = int(os.environ.get("PASSWORD_LENGTH", "32"))


def log(msg):
    print("postgresql-rotation: %s" % msg, file=sys.stderr, flush=True)


def client():
    endpoint = (os.environ.get("SECRETS_MANAGER_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
                or os.environ.get("KINKO_ENDPOINT"))
    return boto3.client("secretsmanager", endpoint_url=endpoint,
                        region_name=os.environ.get("AWS_REGION", "us-east-1"))


def get_dict(sm, arn, stage, token=None):
    """The secret value for a stage (and version) as a dict; raises when absent."""
    kwargs = {"SecretId": arn, "VersionStage": stage}
    if token:
        kwargs["VersionId"] = token
    value = json.loads(sm.get_secret_value(**kwargs)["SecretString"])
    for member in ("host", "username", "password"):
        if member not in value:
            raise ValueError("the secret has no %r member" % member)
    return value


def connect(value, user=None, password=None):
    """A connection with these credentials, or None if the login fails."""
    try:
        conn = psycopg2.connect(host=value["host"], port=int(value.get("port", 5432)),
                                dbname=value.get("dbname", "postgres"),
                                user=user or value["username"],
                                password=password if password is not None else value["password"],
                                connect_timeout=5)
        conn.autocommit = True
        return conn
    except psycopg2.OperationalError:
        return None


def strategy(value):
    return os.environ.get("ROTATION_STRATEGY") or value.get("rotation_strategy") or "single-user"


def other_user(username):
    return username[:-len("_clone")] if username.endswith("_clone") else username + "_clone"


def create_secret(sm, arn, token):
    current = get_dict(sm, arn, "AWSCURRENT")
    try:
        get_dict(sm, arn, "AWSPENDING", token)
        log("createSecret: the pending version already exists")
        return
    except sm.exceptions.ResourceNotFoundException:
        pass
    pending = dict(current)
    if strategy(current) == "alternating-users":
        pending["username"] = other_user(current["username"])
    pending["password"] = sm.get_random_password(PasswordLength=PASSWORD_LENGTH,
                                                 ExcludeCharacters=EXCLUDE)["RandomPassword"]
    sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                        SecretString=json.dumps(pending), VersionStages=["AWSPENDING"])
    log("createSecret: new pending version for user %s" % pending["username"])


def set_password(conn, username, password, create=False):
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,))
        exists = cur.fetchone() is not None
        if not exists and not create:
            raise ValueError("user %s does not exist" % username)
        if exists:
            cur.execute(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(
                sql.Identifier(username), sql.Literal(password)))
        else:
            cur.execute(sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(username), sql.Literal(password)))


def copy_memberships(conn, source, target):
    """Gives the new user of an alternating pair the roles the old one has."""
    with conn.cursor() as cur:
        cur.execute("SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                    "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s", (source,))
        for (role,) in cur.fetchall():
            cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(target)))


def set_secret(sm, arn, token):
    pending = get_dict(sm, arn, "AWSPENDING", token)
    current = get_dict(sm, arn, "AWSCURRENT")
    conn = connect(pending)
    if conn is not None:
        conn.close()
        log("setSecret: the database already accepts the pending credentials")
        return
    if strategy(current) == "alternating-users":
        master_arn = current.get("masterarn") or pending.get("masterarn")
        if not master_arn:
            raise ValueError("alternating-users needs a masterarn member in the secret")
        master = get_dict(sm, master_arn, "AWSCURRENT")
        conn = connect(master)
        if conn is None:
            raise ValueError("cannot log in with the master secret")
        try:
            set_password(conn, pending["username"], pending["password"], create=True)
            if pending["username"] != current["username"]:
                copy_memberships(conn, current["username"], pending["username"])
        finally:
            conn.close()
        log("setSecret: password set for user %s" % pending["username"])
        return
    conn = connect(current)
    if conn is None:
        try:
            previous = get_dict(sm, arn, "AWSPREVIOUS")
            conn = connect(previous)
        except sm.exceptions.ResourceNotFoundException:
            conn = None
    if conn is None:
        raise ValueError("cannot log in with the current or previous credentials")
    try:
        set_password(conn, pending["username"], pending["password"])
    finally:
        conn.close()
    log("setSecret: password changed for user %s" % pending["username"])


def test_secret(sm, arn, token):
    pending = get_dict(sm, arn, "AWSPENDING", token)
    conn = connect(pending)
    if conn is None:
        raise ValueError("cannot log in with the pending credentials")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT now()")
            cur.fetchone()
    finally:
        conn.close()
    log("testSecret: the pending credentials log in")


def finish_secret(sm, arn, token):
    versions = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current = None
    for version, stages in versions.items():
        if "AWSCURRENT" in stages:
            if version == token:
                log("finishSecret: the version is already AWSCURRENT")
                return
            current = version
            break
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                   MoveToVersionId=token, RemoveFromVersionId=current)
    log("finishSecret: AWSCURRENT moved to the new version")


STEPS = {"createSecret": create_secret, "setSecret": set_secret,
         "testSecret": test_secret, "finishSecret": finish_secret}


def main():
    event = json.load(sys.stdin)
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    sm = client()
    metadata = sm.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise ValueError("rotation is not enabled for the secret")
    stages = metadata.get("VersionIdsToStages", {})
    if token not in stages:
        raise ValueError("version %s has no stage for rotation" % token)
    if "AWSCURRENT" in stages[token] and step != "finishSecret":
        log("%s: the version is already AWSCURRENT" % step)
        return 0
    if "AWSPENDING" not in stages[token] and "AWSCURRENT" not in stages[token]:
        raise ValueError("version %s is not AWSPENDING" % token)
    if step not in STEPS:
        raise ValueError("unknown step %s" % step)
    STEPS[step](sm, arn, token)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # the step failed: say why, never with a secret value
        log("failed: %s: %s" % (type(e).__name__, str(e)[:300]))
        sys.exit(1)
