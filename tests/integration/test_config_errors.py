"""A configuration that cannot be silently wrong: unknown members, wrong
types and ranges are refused with the member's JSON path (and the nearest
known name), before anything is created; a missing or malformed root key
says how to make or fix one."""
import json
import os
import subprocess

import pytest

from conftest import KINKO


def serve(tmp_path, cfg, root_key=None, extra=()):
    path = tmp_path / "kinko.json"
    path.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    if root_key is None:
        root_key = tmp_path / "keys" / "root.key"
        root_key.parent.mkdir(exist_ok=True)
        root_key.write_bytes(os.urandom(32))
        os.chmod(root_key, 0o600)
    data = tmp_path / "data"
    r = subprocess.run([KINKO, "serve", "--config", str(path), "--data", str(data), "--root-key",
                        str(root_key), "--listen", "127.0.0.1:0"] + list(extra),
                       capture_output=True, text=True, timeout=20)
    return r, data


def first_line(argv, cwd=None):
    """Starts kinko with argv, reads its first line of standard output, stops
    it; returns (that line, its standard error)."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        err = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
    return line, err


@pytest.mark.parametrize("cfg,want", [
    ({"max_conections": 10},
     'unknown member "max_conections" (did you mean "max_connections"?)'),
    ({"accounts": [{"id": "111122223333", "acces_keys": []}]},
     'unknown member "accounts[0].acces_keys"'),
    ({"accounts": [{"id": "111122223333", "users": [{"name": "a", "acces_keys": []}]}]},
     'unknown member "accounts[0].users[0].acces_keys" (did you mean "access_keys"?)'),
    ({"listen": 4599}, '"listen" must be a string, not a number'),
    ({"threads": 1000}, '"threads" must be from 0 to 256, not 1000'),
    ({"max_connections": "many"}, '"max_connections" must be a whole number, not a string'),
    ({"regions": "us-east-1"}, '"regions" must be a list of strings, not a string'),
    ({"rotation_functions": [{"arn": "arn:aws:lambda:us-east-1:111122223333:function:f",
                              "command": "/bin/true"}]},
     '"rotation_functions[0].command" must be a list of strings, not a string'),
    ({"accounts": [{"id": "111122223333", "roles": [{"name": "r", "max_session_duration": 60}]}]},
     '"accounts[0].roles[0].max_session_duration" must be from 900 to 43200, not 60'),
])
def test_config_mistakes_named(tmp_path, cfg, want):
    r, data = serve(tmp_path, cfg)
    assert r.returncode != 0
    assert want in r.stderr, r.stderr
    assert not data.exists(), "nothing is created for a refused configuration"


def test_documented_example_config_starts(tmp_path):
    """The example of docs/CONFIG.md passes the check and serves (with its
    folders moved into a temporary one)."""
    here = os.path.dirname(os.path.abspath(__file__))
    text = open(os.path.join(here, "..", "..", "docs", "CONFIG.md")).read()
    example = text.split("```json\n", 1)[1].split("```", 1)[0]
    cfg = json.loads(example)
    cfg.pop("root_key_file")
    cfg.pop("data_dir")
    cfg.pop("listen")
    path = tmp_path / "kinko.json"
    path.write_text(json.dumps(cfg))
    key = tmp_path / "root.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o600)
    line, err = first_line([KINKO, "serve", "--config", str(path), "--data", str(tmp_path / "d"),
                             "--root-key", str(key), "--listen", "127.0.0.1:0"])
    assert "listening on" in line, err


def test_missing_root_key_says_how_to_make_one(tmp_path):
    missing = tmp_path / "nowhere" / "root.key"
    r, data = serve(tmp_path, {}, root_key=missing)
    assert r.returncode != 0
    assert "there is no root key file %s" % missing in r.stderr, r.stderr
    assert "head -c 32 /dev/urandom > %s && chmod 600 %s" % (missing, missing) in r.stderr


def test_hex_root_key_named_with_its_size(tmp_path):
    key = tmp_path / "root.hex"
    key.write_text(os.urandom(32).hex())
    os.chmod(key, 0o600)
    r, _ = serve(tmp_path, {}, root_key=key)
    assert r.returncode != 0
    assert "root key file %s holds 64 bytes" % key in r.stderr, r.stderr
    assert "32 raw bytes, not hex or base64" in r.stderr


def test_root_key_mode_says_chmod(tmp_path):
    key = tmp_path / "root.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o644)
    r, _ = serve(tmp_path, {}, root_key=key)
    assert r.returncode != 0
    assert "chmod 600 %s" % key in r.stderr, r.stderr


def test_relative_paths_follow_the_config_file(tmp_path):
    """data_dir and root_key_file relative to the configuration file's
    folder, whatever folder kinko starts in; the log says so."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "root.key").write_bytes(os.urandom(32))
    os.chmod(etc / "root.key", 0o600)
    (etc / "kinko.json").write_text(json.dumps({"data_dir": "data", "root_key_file": "root.key"}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    line, err = first_line([os.path.abspath(KINKO), "serve", "--config", str(etc / "kinko.json"),
                             "--listen", "127.0.0.1:0"], cwd=str(elsewhere))
    assert "listening on" in line, err
    assert (etc / "data" / "kinko.db").exists()
    assert not (elsewhere / "data").exists()
    assert 'data_dir "data" is relative to the configuration file: %s' % (etc / "data") in err


def test_unknown_policy_actions_are_flagged(tmp_path):
    """An identity or trust policy naming an action that does not exist in
    a service kinko serves is warned about at start, with the nearest
    action; wildcards that match, other services' actions and IAM actions
    without an operation of their own are not."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kms:Decrpyt", "kms:Encrypt*", "s3:GetObject",
                                       "kms:ReEncryptFrom", "secretsmanager:GetSecretValue"],
         "Resource": "*"},
        {"Effect": "Allow", "NotAction": "kms:Frobnicate", "Resource": "*"}]}
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
         "Action": "sts:AsumeRole"}]}
    cfg = {"accounts": [{"id": "111122223333",
                         "users": [{"name": "a", "access_keys": [], "policies": [policy]}],
                         "roles": [{"name": "r", "trust_policy": trust, "policies": []}]}]}
    path = tmp_path / "kinko.json"
    path.write_text(json.dumps(cfg))
    key = tmp_path / "root.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o600)
    line, err = first_line([KINKO, "serve", "--config", str(path), "--data", str(tmp_path / "d"),
                             "--root-key", str(key), "--listen", "127.0.0.1:0"])
    assert "listening on" in line, err
    warnings = [l for l in err.splitlines() if "does not exist" in l]
    assert len(warnings) == 3, warnings
    assert ('accounts[0].users[0].policies[0] Statement[0].Action names the action "kms:Decrpyt", '
            'which does not exist (did you mean "kms:Decrypt"?)') in warnings[0]
    assert 'Statement[1].NotAction names the action "kms:Frobnicate"' in warnings[1]
    assert ('accounts[0].roles[0].trust_policy Statement[0].Action names the action '
            '"sts:AsumeRole", which does not exist (did you mean "sts:AssumeRole"?)') in warnings[2]


def test_dev_clashing_with_a_configured_test_key_names_the_clash(tmp_path):
    cfg = {"accounts": [{"id": "111122223333", "users": [{"name": "alice", "access_keys": [
        {"access_key_id": "test", "secret_access_key": "other"}]}]}]}
    path = tmp_path / "kinko.json"
    path.write_text(json.dumps(cfg))
    r = subprocess.run([KINKO, "serve", "--dev", "--config", str(path), "--data",
                        str(tmp_path / "d"), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0
    assert ('--dev adds the access key "test" (account 000000000000), but the configuration '
            'already gives that access key to the user alice of account 111122223333') in r.stderr, \
        r.stderr


def test_misspelt_region_is_flagged(tmp_path):
    """An added region one or two letters away from an AWS Region is said at
    start (it would be served as a region of its own)."""
    path = tmp_path / "kinko.json"
    path.write_text(json.dumps({"regions": ["us-esat-1", "local-1"]}))
    key = tmp_path / "root.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o600)
    line, err = first_line([KINKO, "serve", "--config", str(path), "--data", str(tmp_path / "d"),
                             "--root-key", str(key), "--listen", "127.0.0.1:0"])
    assert "listening on" in line, err
    assert ('"regions"[0] "us-esat-1" is not an AWS Region (did you mean "us-east-1"?)') in err
    assert "local-1" not in err
