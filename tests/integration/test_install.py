"""`make install`: the binary, the rotation functions, the man page, the
systemd unit (hardened, verified with systemd-analyze where it exists, and
started from its own ExecStart line) and the bash completion."""
import json
import re
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess

import boto3
import pytest

from conftest import KINKO

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "/usr/local"


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    dest = tmp_path_factory.mktemp("install")
    subprocess.run(["make", "-s", "-C", ROOT, "install", "DESTDIR=%s" % dest,
                    "PREFIX=%s" % PREFIX, "INSTALL_BIN=%s" % os.path.abspath(KINKO)],
                   check=True, capture_output=True)
    return str(dest) + PREFIX


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_modes(staged):
    assert mode(staged + "/bin/kinko") == 0o755
    assert mode(staged + "/lib/kinko/rotation/postgresql.py") == 0o755
    assert mode(staged + "/share/man/man1/kinko.1") == 0o644
    assert mode(staged + "/lib/systemd/system/kinko.service") == 0o644
    assert mode(staged + "/share/bash-completion/completions/kinko") == 0o644
    out = subprocess.run([staged + "/bin/kinko", "version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("kinko ")


@pytest.mark.skipif(shutil.which("man") is None, reason="no man command on this machine")
def test_man_page_renders(staged):
    out = subprocess.run(["man", "-l", staged + "/share/man/man1/kinko.1"], capture_output=True,
                         text=True, env=dict(os.environ, MANPAGER="cat", PAGER="cat", COLUMNS="100"))
    assert out.returncode == 0, out.stderr
    for word in ("kinko serve", "audit verify", "policy simulate", "SIGHUP"):
        assert word in out.stdout


def complete(staged, *words):
    script = ("source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _kinko; printf '%%s\\n' \"${COMPREPLY[@]}\""
              % (shlex.quote(staged + "/share/bash-completion/completions/kinko"),
                 " ".join(shlex.quote(w) for w in words), len(words) - 1))
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_bash_completion(staged):
    assert complete(staged, "kinko", "se") == ["serve"]
    assert complete(staged, "kinko", "a") == ["audit"]
    assert complete(staged, "kinko", "serve", "--te") == ["--test-mode"]
    assert complete(staged, "kinko", "serve", "--log-level", "") == ["debug", "info", "warn", "error"]
    assert complete(staged, "kinko", "audit", "") == ["verify", "prune"]


def test_every_serve_flag_is_completed(staged):
    """The completion offers every flag `kinko serve --help` names."""
    out = subprocess.run([KINKO, "serve", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == ""
    offered = set(complete(staged, "kinko", "serve", "--"))
    flags = set(re.findall(r"--[a-z][a-z-]+", out.stdout))
    assert flags and flags <= offered, flags - offered


# Every command, as typed on the command line.
COMMANDS = [["serve"], ["check"], ["store", "copy"], ["backup"], ["restore"], ["audit", "verify"], ["audit", "prune"], ["status"],
            ["usage"], ["ops"], ["policy", "simulate"], ["xks", "check"], ["peer", "wrapping-key"]]


def test_every_command_and_its_flags_are_completed(staged):
    """Each command's completion offers every flag its own --help names,
    and the first word completes to every command `kinko help` lists."""
    listed = subprocess.run([KINKO, "help"], capture_output=True, text=True).stdout
    firsts = set(complete(staged, "kinko", ""))
    for words in COMMANDS:
        assert re.search(r"^  %s " % re.escape(" ".join(words)), listed, re.M), words
        assert words[0] in firsts, words
        if len(words) == 2:
            assert words[1] in complete(staged, "kinko", words[0], "")
        out = subprocess.run([KINKO] + words + ["--help"], capture_output=True, text=True)
        assert out.returncode == 0, words
        flags = set(re.findall(r"--[a-z][a-z-]+", out.stdout))
        offered = set(complete(staged, "kinko", *words, "--"))
        assert flags and flags <= offered, (words, flags - offered)


def unit_lines(staged):
    with open(staged + "/lib/systemd/system/kinko.service") as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def test_unit_is_hardened(staged):
    lines = unit_lines(staged)
    for want in ("NoNewPrivileges=yes", "ProtectSystem=strict", "MemoryDenyWriteExecute=yes",
                 "LimitMEMLOCK=infinity", "LimitCORE=0", "PrivateTmp=yes", "ProtectHome=yes",
                 "CapabilityBoundingSet=", "User=kinko", "UMask=0077"):
        assert want in lines, want
    exec_start = [l for l in lines if l.startswith("ExecStart=")]
    assert exec_start == ["ExecStart=%s/bin/kinko serve --config /etc/kinko/kinko.json" % PREFIX]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_unit_verifies(staged, tmp_path):
    text = open(staged + "/lib/systemd/system/kinko.service").read()
    unit = tmp_path / "kinko.service"
    unit.write_text(text.replace(PREFIX + "/bin/kinko", staged + "/bin/kinko"))
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "kinko.service" not in out.stderr, out.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unit_exec_start_serves(staged, tmp_path):
    """The unit's own ExecStart line, with its configuration path pointed at
    a configuration in a temporary folder, starts a server that answers
    signed calls and stops cleanly on SIGTERM (the unit's KillSignal)."""
    exec_start = [l for l in unit_lines(staged) if l.startswith("ExecStart=")][0]
    argv = shlex.split(exec_start[len("ExecStart="):])
    argv[0] = staged + "/bin/kinko"
    keydir = tmp_path / "etc"
    keydir.mkdir()
    rk = keydir / "root.key"
    rk.write_bytes(os.urandom(32))
    os.chmod(rk, 0o600)
    cfg = keydir / "kinko.json"
    cfg.write_text(json.dumps({
        "listen": "127.0.0.1:%d" % free_port(), "data_dir": str(tmp_path / "data"), "root_key_file": str(rk),
        "accounts": [{"id": "111122223333", "root_access_keys": [
            {"access_key_id": "AKIAINSTALLTEST00001", "secret_access_key": "install-secret"}]}]}))
    argv[argv.index("/etc/kinko/kinko.json")] = str(cfg)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode()
        assert "listening on" in line, line + proc.stderr.read(4096).decode()
        endpoint = line.split("listening on ")[1].split()[0]
        kms = boto3.client("kms", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="AKIAINSTALLTEST00001",
                           aws_secret_access_key="install-secret")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key, Plaintext=b"unit")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"unit"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        proc.stdout.close()
        proc.stderr.close()
    assert rc == 0
