"""What a new operator sees: the dev banner (data folder, test mode, lines
to paste) and the warning when dev or test mode listens beyond loopback."""
import os
import subprocess

from conftest import KINKO


def start(tmp_path, *args):
    proc = subprocess.Popen([KINKO, "serve", "--data", str(tmp_path / "data")] + list(args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline().decode()
        banner = []
        if "listening on" in first and "--dev" in args:
            for _ in range(6):
                banner.append(proc.stdout.readline().decode())
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        err = proc.stderr.read().decode()
        proc.stdout.close()
        proc.stderr.close()
    return first, "".join(banner), err


def test_dev_banner(tmp_path):
    first, banner, err = start(tmp_path, "--dev", "--listen", "127.0.0.1:0")
    assert "listening on http://127.0.0.1:" in first, err
    url = first.split("listening on ")[1].split()[0]
    assert "data folder: %s " % os.path.realpath(tmp_path / "data") in banner
    assert "test mode: off" in banner
    assert "export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1" in banner
    assert "export AWS_ENDPOINT_URL=%s " % url in banner
    assert "aws --endpoint-url %s kms list-keys" % url in banner
    assert "beyond this machine" not in err


def test_dev_test_mode_beyond_loopback_warns(tmp_path):
    first, banner, err = start(tmp_path, "--dev", "--test-mode", "--listen", "0.0.0.0:0")
    assert "listening on" in first, err
    assert "test mode: on" in banner
    assert "*** dev and test mode listen on http://0.0.0.0:" in err
    assert 'anyone who can reach it can use the access key "test"' in err
