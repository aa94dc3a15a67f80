"""Audit across nodes (docs/CLUSTER.md, "Audit across nodes"): each node
keeps its own chain, its records name it, and `kinko audit verify`
verifies a set of node folders."""
import glob
import json
import time
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


def lookup_all(node, **kw):
    """Every page of LookupEvents on node, in the order given."""
    ct = node.client("cloudtrail")
    out, token = [], None
    while True:
        args = dict(kw)
        if token:
            args["NextToken"] = token
        r = ct.lookup_events(**args)
        out += r["Events"]
        token = r.get("NextToken")
        if not token:
            return out


def test_lookup_events_on_any_node_sees_every_node(make_cluster):
    c = make_cluster(2)
    a, b = c.nodes
    kid = a.client().create_key()["KeyMetadata"]["KeyId"]
    rids = {}
    for n in c.nodes:
        rids[n.node_id] = [n.client().encrypt(KeyId=kid, Plaintext=b"x")["ResponseMetadata"]["RequestId"]
                           for _ in range(3)]
    want = set(rids["node-1"] + rids["node-2"])
    attrs = [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}]
    for n in c.nodes:
        deadline = time.time() + 10
        while True:
            events = lookup_all(n, LookupAttributes=attrs, MaxResults=2)
            got = [json.loads(e["CloudTrailEvent"])["requestID"] for e in events]
            if set(got) == want or time.time() > deadline:
                break
            time.sleep(0.2)
        assert set(got) == want and len(got) == len(want), (n.node_id, got)
        times = [e["EventTime"] for e in events]
        assert times == sorted(times, reverse=True)
    # Only the caller's account and region, as on one node.
    assert lookup_all(a, LookupAttributes=attrs) == lookup_all(a, LookupAttributes=attrs)
    other = a.client("cloudtrail", region="eu-west-1").lookup_events(LookupAttributes=attrs)
    assert other["Events"] == []
