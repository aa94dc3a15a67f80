"""Quotas hold for the cluster as a whole (docs/CLUSTER.md, "Quotas"):
each node allows its share of the rate, rate / live nodes."""
import threading
import time

from botocore.exceptions import ClientError

from cluster import make_cluster  # noqa: F401 (fixture)

RATE = 10    # --quota symmetric=RATE: Encrypt is in the symmetric class
WINDOW = 2.0  # seconds of saturating load


def allowed(node, key, threads=4):
    """(calls allowed, seconds) while several clients call Encrypt on the
    node as fast as they can for about WINDOW seconds; the seconds run from
    the start to the end of the last call. The bucket allows at most one
    second's worth of the node's share at once, then the share per second."""
    counts = []
    clients = [node.client() for _ in range(threads)]
    start = threading.Barrier(threads)
    window = {}

    def run(kms):
        ok = 0
        if start.wait() == 0:
            window["start"] = time.time()
            window["end"] = window["start"] + WINDOW
        start.wait()
        while time.time() < window["end"]:
            try:
                kms.encrypt(KeyId=key, Plaintext=b"x")
                ok += 1
            except ClientError as e:
                assert e.response["Error"]["Code"] == "ThrottlingException"
        counts.append(ok)
        window["last"] = max(window.get("last", 0), time.time())
    ts = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts), window["last"] - window["start"]


def test_each_node_allows_its_share_of_the_rate(make_cluster):
    c = make_cluster(2, extra_args=["--quota", "symmetric=%d" % RATE])
    a, b = c.nodes
    c.wait_live_nodes(a, 2)
    c.wait_live_nodes(b, 2)
    key = a.client().create_key()["KeyMetadata"]["KeyId"]
    share = RATE / 2
    for n in (a, b):
        got, secs = allowed(n, key)
        assert share * WINDOW <= got <= share * (1 + secs) + 1, (n.node_id, got, secs)
    # Alone, a node allows the whole rate (its bucket fills again meanwhile).
    b.kill9()
    c.wait_live_nodes(a, 1)
    got, secs = allowed(a, key)
    assert RATE * WINDOW <= got <= RATE * (1 + secs) + 1, (got, secs)
