"""A cluster of kinko nodes on one shared store, for the test_cluster_*
modules.

The store URL comes from KINKO_CLUSTER_STORE, with "{tmp}" replaced by a
fresh temporary folder; by default each cluster gets its own SQLite file
("sqlite:{tmp}/shared.db"), which the nodes open with --shared-store. A
shared backend (a postgresql:// URL naming an empty database) is used the
same way. Every node has its own data folder (and so its own audit trail)
and all share one root key file, as the nodes of a real cluster do.
"""
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.request

import pytest

from conftest import Server, _sanitizer_clean, write_json
from helpers import TEST_MODE_SWITCH

STORE_URL = os.environ.get("KINKO_CLUSTER_STORE", "sqlite:{tmp}/shared.db")


class Node(Server):
    """A kinko node of a Cluster; knows its node id and its /metrics URL."""

    def __init__(self, args, node_id):
        super().__init__(args)
        self.node_id = node_id
        self.metrics_url = None

    def start(self, port=0):
        super().start(port)
        line = self.proc.stdout.readline().decode()
        assert "metrics on " in line, line
        self.metrics_url = line.split("metrics on ")[1].strip()
        return self

    def metric(self, name):
        """The value of an unlabelled gauge of this node's /metrics."""
        text = urllib.request.urlopen(self.metrics_url, timeout=10).read().decode()
        m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
        return float(m.group(1)) if m else None

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


class Cluster:
    """N nodes on one store URL; node i has node id "node-i". With a
    configuration (a dict, as in docs/CONFIG.md) every node reads the same
    file, as the nodes of a real cluster do; without one they run --dev."""

    def __init__(self, store_url=None, extra_args=(), config=None):
        self.tmp = tempfile.mkdtemp(prefix="kinko-cluster-")
        os.chmod(self.tmp, 0o700)
        self.store_url = (store_url or STORE_URL).replace("{tmp}", self.tmp)
        self.root_key = os.path.join(self.tmp, "root.key")
        self.extra_args = list(extra_args)
        self.nodes = []
        self.mode = ["--dev"]
        self.test_creds = {}  # who calls KinkoTest.*: dev mode's "test", or the first root
        if config is not None:
            rk = config["accounts"][0]["root_access_keys"][0]
            self.test_creds = {"key": rk["access_key_id"], "secret": rk["secret_access_key"]}
            with open(self.root_key, "wb") as f:
                f.write(os.urandom(32))
            os.chmod(self.root_key, 0o600)
            path = write_json(os.path.join(self.tmp, "kinko.json"),
                              dict(config, **{TEST_MODE_SWITCH: True}))
            self.mode = ["--config", path, "--quotas", "off"]

    def node_args(self, node_id):
        return self.mode + ["--test-mode", "--store", self.store_url, "--root-key", self.root_key,
                            "--shared-store", "--node-id", node_id,
                            "--metrics-listen", "127.0.0.1:0"] + self.extra_args

    def add(self, node_id=None):
        """Starts one more node (the first creates the root key file)."""
        node_id = node_id or "node-%d" % (len(self.nodes) + 1)
        n = Node(self.node_args(node_id), node_id).start()
        self.nodes.append(n)
        return n

    def advance_clock(self, seconds):
        """Moves every running node's test clock by the same amount."""
        for n in self.nodes:
            if n.proc.poll() is None:
                n.advance_clock(seconds, **self.test_creds)

    def wait_live_nodes(self, node, want, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if node.metric("kinko_cluster_live_nodes") == want:
                return
            time.sleep(0.2)
        raise AssertionError("%s never saw %d live nodes (last %r)" %
                             (node.node_id, want, node.metric("kinko_cluster_live_nodes")))

    def stop(self):
        """Stops every node, then checks their logs for sanitizer reports
        (so that a report on one node never leaves another running)."""
        rcs = []
        for n in self.nodes:
            if n.proc.poll() is None:
                rcs.append((n.node_id, n.stop()))
            else:
                n.stop()
        try:
            for n in self.nodes:
                _sanitizer_clean(n)
        finally:
            for n in self.nodes:
                n.cleanup()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return rcs


@pytest.fixture
def make_cluster():
    """make_cluster(n) starts a cluster of n nodes; all are stopped at the end,
    and each node stopped normally must exit 0."""
    made = []

    def make(n, **kw):
        c = Cluster(**kw)
        made.append(c)
        for _ in range(n):
            c.add()
        return c

    yield make
    for c in made:
        for node_id, rc in c.stop():
            assert rc == 0, "%s exited with %s" % (node_id, rc)


def run_schedulers_at_once(nodes):
    """Runs every node's scheduler at the same moment (one thread each);
    fails if any run raised."""
    errors = []

    def run(n):
        try:
            n.run_scheduler()
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
