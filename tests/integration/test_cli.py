"""The command line: `kinko help`, each command's --help, unknown commands
and options named with the nearest match, flags missing their value,
--log-level checked, `kinko usage` reading the data folder's trail by
default, and `kinko policy simulate` naming keys as the API does and
flagging principals and actions it cannot match."""
import json
import os
import re
import subprocess

import pytest

from conftest import KINKO, with_store

# Every command, as typed, with a flag its --help must list.
COMMANDS = [
    (["serve"], "--listen"),
    (["check"], "--root-key"),
    (["store", "copy"], "--force"),
    (["backup"], "--to"),
    (["restore"], "--from"),
    (["audit", "verify"], "--public-key"),
    (["usage"], "--audit-dir"),
    (["ops"], "--json"),
    (["policy", "simulate"], "--principal"),
    (["version"], None),
]


def run(*args, cwd=None):
    p = subprocess.run([os.path.abspath(KINKO)] + list(args), capture_output=True, text=True, timeout=60, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def test_help_lists_every_command_one_line_each():
    for args in (["help"], ["--help"]):
        rc, out, err = run(*args)
        assert rc == 0 and err == ""
        for words, _ in COMMANDS:
            assert re.search(r"^  %s +\S" % re.escape(" ".join(words)), out, re.M), words
        assert "--listen" not in out  # the list, not every command's flags


@pytest.mark.parametrize("words,flag", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_command_help_is_its_own(words, flag):
    rc, out, err = run(*words, "--help")
    assert rc == 0 and err == "", err
    assert out.startswith("usage: kinko %s" % " ".join(words))
    assert run("help", *words)[1] == out
    if flag is not None:
        assert flag in out
    # Another command's synopsis is not there.
    for other, _ in COMMANDS:
        if other != words:
            assert "kinko %s " % " ".join(other) not in out.replace("kinko %s" % " ".join(words), "")


def test_check_help_lists_only_checks_flags():
    """serve's audit, metrics and quota flags once sat under `kinko check`."""
    out = run("check", "--help")[1]
    for serve_only in ("--audit-sync", "--metrics-listen", "--quota", "--dev"):
        assert serve_only not in out


def test_two_word_command_without_its_subcommand():
    rc, out, _ = run("store", "--help")
    assert rc == 0 and out.startswith("usage: kinko store copy")
    rc, _, err = run("store")
    assert rc == 2 and "kinko store copy" in err


def test_unknown_command_names_the_nearest():
    rc, out, err = run("srve")
    assert rc == 2 and out == ""
    assert err.startswith('kinko: unknown command "srve" (did you mean "serve"?)')
    assert re.search(r"^  backup +\S", err, re.M)  # the command list follows
    rc, _, err = run("bakup")
    assert rc == 2 and 'did you mean "backup"?' in err
    rc, _, err = run("zzzzzzzz")
    assert rc == 2 and 'unknown command "zzzzzzzz"\n' in err and "did you mean" not in err
    rc, _, err = run("help", "srve")
    assert rc == 2 and 'did you mean "serve"?' in err


def test_unknown_option_names_the_nearest_with_that_commands_usage():
    rc, out, err = run("serve", "--lisen", "127.0.0.1:0")
    assert rc == 2 and out == ""
    assert err.startswith("kinko serve: unknown option --lisen (did you mean --listen?)")
    assert "usage: kinko serve" in err and "usage: kinko check" not in err
    rc, _, err = run("serve", "--frob")
    assert rc == 2 and err.startswith("kinko serve: unknown option --frob\n")
    rc, _, err = run("store", "copy", "--frob", "x")
    assert rc == 2 and err.startswith("kinko store copy: unknown option --frob (did you mean --from?)")
    assert "usage: kinko store copy" in err
    rc, _, err = run("backup", "--dta", "x", "--to", "y")
    assert rc == 2 and "kinko backup: unknown option --dta (did you mean --data?)" in err
    rc, _, err = run("policy", "simulate", "--principle", "x")
    assert rc == 2 and "(did you mean --principal?)" in err
    rc, _, err = run("audit", "verify", "/nonexistent", "--witnes", "f")
    assert rc == 2 and "(did you mean --witness?)" in err


def test_flag_missing_its_value_says_so():
    for args, name in ((["serve", "--dev", "--data"], "serve"), (["check", "--data"], "check"),
                       (["backup", "--to"], "backup"), (["usage", "--from"], "usage"),
                       (["policy", "simulate", "--key"], "policy simulate")):
        rc, out, err = run(*args)
        assert rc == 2 and out == ""
        assert err.startswith("kinko %s: %s needs a value" % (name, args[-1])), err


def test_log_level_refuses_unknown_levels(tmp_path):
    rc, _, err = run("serve", "--dev", "--data", str(tmp_path), "--log-level", "verbose")
    assert rc == 2
    assert 'kinko serve: --log-level takes debug, info, warn or error, not "verbose"' in err
    assert not os.path.exists(tmp_path / "kinko.db")


def test_usage_reads_the_data_folders_trail_by_default(make_server, tmp_path):
    os.mkdir(tmp_path / "data")
    srv = make_server(["--dev"], data_dir=str(tmp_path / "data"))
    srv.client().list_keys()
    srv.stop()
    rc, out, err = run("usage", "--data", srv.data_dir, "--json")
    assert rc == 0, err
    assert "reading the audit trail in %s/audit" % srv.data_dir in err
    json.loads(out)
    # Without --data: ./kinko-data/audit, the server's default data folder.
    os.symlink(srv.data_dir, tmp_path / "kinko-data")
    rc, out, err = run("usage", cwd=str(tmp_path))
    assert rc == 0, err
    assert "reading the audit trail in kinko-data/audit" in err
    # The same report as --audit-dir names (a fixed period: the default ends now).
    period = ["--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z", "--json"]
    by_dir = run("usage", "--audit-dir", srv.data_dir + "/audit", *period)
    by_data = run("usage", "--data", srv.data_dir, *period)
    assert by_dir[0] == 0 and by_dir[1] == by_data[1] and "ListKeys" in by_dir[1]


ACCOUNT = "000000000000"


@pytest.fixture
def keyed(make_server, tmp_path):
    """A dev server with one key behind an alias, and a configuration file
    declaring one user of the dev account."""
    srv = make_server(["--dev"])
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=key["KeyId"])
    cfg = tmp_path / "kinko.json"
    cfg.write_text(json.dumps({"accounts": [{"id": ACCOUNT, "users": [
        {"name": "app", "access_keys": [{"access_key_id": "AKIAAPPXXXXXXXXXXXXX",
                                          "secret_access_key": "app-secret"}],
         "policies": [{"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}]}]}]}))
    return srv, key, str(cfg)


def simulate(srv, *args):
    p = subprocess.run([KINKO] + with_store(["policy", "simulate", "--data", srv.data_dir]) + list(args),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_simulate_takes_the_key_as_the_api_does(keyed):
    srv, key, cfg = keyed
    root = "arn:aws:iam::%s:root" % ACCOUNT
    alias_arn = "arn:aws:kms:us-east-1:%s:alias/app" % ACCOUNT
    decisions = []
    for ref in (key["KeyId"], key["Arn"], "alias/app", alias_arn):
        rc, out, err = simulate(srv, "--principal", root, "--action", "kms:Encrypt", "--key", ref)
        assert rc == 0, (ref, err)
        decisions.append(json.loads(out))
    assert all(d == decisions[0] for d in decisions) and decisions[0]["Decision"] == "allowed"
    rc, _, err = simulate(srv, "--principal", root, "--action", "kms:Encrypt", "--key", "alias/none")
    assert rc == 2 and "no alias alias/none in %s:us-east-1" % ACCOUNT in err
    # A key id is looked up in the given Region: the key is not in eu-west-1.
    rc, _, err = simulate(srv, "--principal", root, "--action", "kms:Encrypt", "--key", key["KeyId"],
                          "--region", "eu-west-1")
    assert rc == 2 and "no key %s in %s:eu-west-1" % (key["KeyId"], ACCOUNT) in err


def test_simulate_flags_unknown_actions_and_unconfigured_principals(keyed):
    srv, key, cfg = keyed
    app = "arn:aws:iam::%s:user/app" % ACCOUNT
    rc, out, err = simulate(srv, "--config", cfg, "--principal", app, "--action", "kms:Decrpyt",
                            "--key", "alias/app")
    doc = json.loads(out)
    assert rc == 1 and doc["Decision"] != "allowed"
    assert any("kms:Decrpyt does not exist (did you mean kms:Decrypt?)" in w for w in doc["Warnings"])
    assert "warning: the action kms:Decrpyt does not exist" in err
    rc, out, err = simulate(srv, "--config", cfg, "--principal", app, "--action", "kms:Decrypt",
                            "--key", "alias/app")
    doc = json.loads(out)
    assert rc == 0 and doc["Decision"] == "allowed" and "Warnings" not in doc, err
    ghost = "arn:aws:iam::%s:user/ghost" % ACCOUNT
    rc, out, err = simulate(srv, "--config", cfg, "--principal", ghost, "--action", "kms:Decrypt",
                            "--key", "alias/app")
    doc = json.loads(out)
    assert rc == 1 and doc["Decision"] != "allowed"
    assert any("%s is not declared in the configuration" % ghost in w for w in doc["Warnings"])


def test_simulate_secrets_manager_actions_on_a_secret(keyed):
    """A Secrets Manager action is simulated with the secret's resource
    policy beside the identity policies, as a request would be decided."""
    srv, _, cfg = keyed
    app = "arn:aws:iam::%s:user/app" % ACCOUNT
    sm = srv.client("secretsmanager")
    arn = sm.create_secret(Name="app/db", SecretString="x")["ARN"]

    def policy(effect):
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": effect, "Principal": {"AWS": app}, "Action": "secretsmanager:GetSecretValue",
            "Resource": "*"}]})

    sm.put_resource_policy(SecretId=arn, ResourcePolicy=policy("Allow"))
    base = ["--config", cfg, "--principal", app, "--action", "secretsmanager:GetSecretValue"]
    for ref in ("app/db", arn):
        rc, out, err = simulate(srv, *base, "--secret", ref)
        doc = json.loads(out)
        assert rc == 0 and doc["Decision"] == "allowed" and doc["Resource"] == arn, (ref, out, err)
    # Without the secret: Resource "*", where only the identity policies (kms:Decrypt) speak.
    rc, out, _ = simulate(srv, *base)
    doc = json.loads(out)
    assert rc == 1 and doc["Decision"] == "implicitDeny"
    assert "because no identity-based policy allows the secretsmanager:GetSecretValue action" in doc["Reason"]
    sm.put_resource_policy(SecretId=arn, ResourcePolicy=policy("Deny"))
    rc, out, _ = simulate(srv, *base, "--secret", "app/db")
    doc = json.loads(out)
    assert rc == 1 and doc["Decision"] == "explicitDeny"
    assert "with an explicit deny in a resource-based policy" in doc["Reason"]
    # A key says nothing about a Secrets Manager action.
    rc, _, _ = simulate(srv, *base, "--key", "alias/app")
    assert rc == 2
    rc, _, err = simulate(srv, *base, "--secret", "app/none")
    assert rc == 2 and "no secret app/none" in err
