"""Audit across nodes (docs/CLUSTER.md, "Audit across nodes"): each node
keeps its own chain, its records name it, and `kinko audit verify`
verifies a set of node folders."""
import glob
import os
import shutil
import subprocess

from cluster import make_cluster  # noqa: F401 (fixture)
from conftest import KINKO
from test_audit import read_records


def verify(*dirs):
    p = subprocess.run([KINKO, "audit", "verify"] + list(dirs), capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout + p.stderr


def audit_dir(node):
    return os.path.join(node.data_dir, "audit")


def test_each_node_chains_its_own_records_and_the_set_verifies(make_cluster, tmp_path):
    c = make_cluster(2)
    a, b = c.nodes
    kid = a.client().create_key()["KeyMetadata"]["KeyId"]
    for n in c.nodes:
        for _ in range(3):
            n.client().encrypt(KeyId=kid, Plaintext=b"x")
    for n in c.nodes:
        recs = read_records(n)
        assert recs and {r.get("kinkoNode") for r in recs} == {n.node_id}
        names = [os.path.basename(f) for f in glob.glob(os.path.join(audit_dir(n), "kinko-audit-*.jsonl"))]
        assert names and all(f.endswith("-%s.jsonl" % n.node_id) for f in names), names
    dirs = [str(tmp_path / n.node_id) for n in c.nodes]
    for n in c.nodes:
        assert n.stop() == 0
    for n, d in zip(c.nodes, dirs):
        shutil.copytree(audit_dir(n), d)
    rc, out = verify(*dirs)
    assert rc == 0, out
    assert "node node-1" in out and "node node-2" in out
    assert "OK: 2 node trails" in out
    for d, n in zip(dirs, c.nodes):
        assert any(f.endswith("-%s.jsonl.digest" % n.node_id) for f in os.listdir(d))
    # The same trail twice is not a set of nodes.
    rc, out = verify(dirs[0], dirs[0])
    assert rc == 1 and "DUPLICATE node node-1" in out
    # A record of node-2 slipped into node-1's trail is named.
    f1 = sorted(glob.glob(os.path.join(dirs[0], "kinko-audit-*.jsonl")))[-1]
    f2 = sorted(glob.glob(os.path.join(dirs[1], "kinko-audit-*.jsonl")))[-1]
    stranger = open(f2, "rb").read().splitlines(keepends=True)[-1]
    with open(f1, "ab") as f:
        f.write(stranger)
    rc, out = verify(*dirs)
    assert rc == 1 and "MIXED nodes" in out and "FAILED" in out
