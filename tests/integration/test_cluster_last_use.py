"""GetKeyLastUsage answers with the cluster's last use (docs/CLUSTER.md,
"Key last use"): each node shares its keys' last uses through the store
in the background, and any node answers with the latest."""
import time

from cluster import make_cluster  # noqa: F401 (fixture)
from test_audit import events, raw_kms


def last_use(node, key_id):
    status, body = raw_kms(node, "GetKeyLastUsage", {"KeyId": key_id})
    assert status == 200, body
    return body.get("KeyLastUsage")


def wait_last_use(node, key_id, want_request_id, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        use = last_use(node, key_id)
        if use is not None and use["KmsRequestId"] == want_request_id:
            return use
        time.sleep(0.1)
    raise AssertionError("%s never answered with request %s (last %r)" %
                         (node.node_id, want_request_id, last_use(node, key_id)))


def test_a_use_on_one_node_is_the_last_use_on_every_node(make_cluster):
    c = make_cluster(2)
    a, b = c.nodes
    kid = a.client().create_key()["KeyMetadata"]["KeyId"]
    assert last_use(b, kid) is None
    r = a.client().encrypt(KeyId=kid, Plaintext=b"x")
    rid = r["ResponseMetadata"]["RequestId"]
    use = wait_last_use(b, kid, rid)
    enc = [e for e in events(a, "Encrypt") if e["requestID"] == rid]
    assert use["Operation"] == "Encrypt" and use["CloudTrailEventId"] == enc[0]["eventID"]
    # A later use on B wins on A too; an earlier one never overwrites it.
    blob = r["CiphertextBlob"]
    time.sleep(1.1)  # uses are recorded to the second
    rid2 = b.client().decrypt(CiphertextBlob=blob)["ResponseMetadata"]["RequestId"]
    use = wait_last_use(a, kid, rid2)
    assert use["Operation"] == "Decrypt"
    time.sleep(2.5)  # two sharing rounds: A's own older use stays behind
    assert last_use(a, kid)["KmsRequestId"] == rid2
    assert last_use(b, kid)["KmsRequestId"] == rid2
