"""Data-driven wire tests: every case of tests/wire/ (a raw request in a
file, the expected answer beside it), sent byte for byte to a dev server
in test mode. The format is in docs/TESTING.md ("Wire tests"); the engine
is wire.py. Each suite (a folder) runs in order on one server, sharing the
values its cases capture."""
import os
import shutil
import tempfile

import pytest

import wire
from conftest import Server, _sanitizer_clean

VARIABLES = {}   # suite name -> the variables its cases captured so far
FAILED = {}      # suite name -> the first case of the suite that failed


@pytest.fixture(scope="module")
def wire_server():
    """A dev server in test mode, with the extra principals of
    tests/wire/server.json (a configuration must be private to be read)."""
    d = tempfile.mkdtemp(prefix="kinko-wire-")
    cfg = os.path.join(d, "kinko.json")
    shutil.copyfile(os.path.join(wire.WIRE_DIR, "server.json"), cfg)
    os.chmod(cfg, 0o600)
    s = Server(["--dev", "--test-mode", "--config", cfg]).start()
    yield s
    rc = s.stop()
    _sanitizer_clean(s)
    s.cleanup()
    shutil.rmtree(d, ignore_errors=True)
    assert rc == 0, "server exited with %s" % rc


@pytest.mark.parametrize("case_id", wire.case_ids())
def test_wire(wire_server, case_id):
    suite, name = case_id.split("/", 1)
    variables = VARIABLES.setdefault(suite, {})
    case = os.path.join(wire.WIRE_DIR, suite, name)
    try:
        wire.run_case(case, "127.0.0.1", wire_server.port, variables)
        return
    except wire.WireError as e:
        error = str(e)
    first = FAILED.setdefault(suite, name)
    note = "" if first == name else " (an earlier case of this suite failed: %s)" % first
    pytest.fail("%s: %s%s" % (case_id, error, note), pytrace=False)
