"""Node identity and liveness in a cluster (docs/CLUSTER.md): every node
has a node id and heartbeats into the shared store; /metrics counts the
live nodes."""
import os
import time

import pytest

from cluster import Cluster, Node, make_cluster  # noqa: F401 (fixture)
from conftest import Server


def test_each_node_counts_the_live_nodes(make_cluster):
    c = make_cluster(3)
    for n in c.nodes:
        c.wait_live_nodes(n, 3)
    text = open(c.nodes[0].log_path).read()
    assert "cluster: node node-1 registered" in text


def test_a_killed_node_stops_counting(make_cluster):
    c = make_cluster(3)
    c.wait_live_nodes(c.nodes[0], 3)
    c.nodes[2].kill9()
    c.wait_live_nodes(c.nodes[0], 2)
    c.wait_live_nodes(c.nodes[1], 2)


def test_a_generated_node_id_is_kept_in_the_data_folder(tmp_path):
    data = str(tmp_path / "data")
    os.mkdir(data, 0o700)
    s = Server(["--dev", "--metrics-listen", "127.0.0.1:0"], data_dir=data).start()
    try:
        kept = open(os.path.join(data, "node-id")).read().strip()
        assert kept.startswith("node-") and len(kept) > 8
        text = s.proc.stdout.readline().decode()
        assert "metrics on" in text
        import urllib.request
        metrics = urllib.request.urlopen(text.split("metrics on ")[1].strip(), timeout=10).read()
        assert ('kinko_cluster_node{node_id="%s"} 1' % kept).encode() in metrics
    finally:
        assert s.stop() == 0
    s2 = Server(["--dev"], data_dir=data).start()
    try:
        assert open(os.path.join(data, "node-id")).read().strip() == kept
        assert ("node %s registered" % kept) in open(s2.log_path).read()
    finally:
        assert s2.stop() == 0


@pytest.mark.parametrize("bad", ["a/b", "x" * 65, "node id", "../x"])
def test_a_bad_node_id_stops_the_start(tmp_path, bad):
    import subprocess
    from conftest import KINKO
    p = subprocess.run([KINKO, "serve", "--dev", "--listen", "127.0.0.1:0", "--data",
                        str(tmp_path / "d"), "--node-id", bad],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "node id" in p.stderr
