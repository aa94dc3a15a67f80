"""Scheduled work runs once per cluster (docs/CLUSTER.md, "Scheduled work"):
each due item is claimed through a lease in the shared store, and the
lease of a node that died is taken over once it expires."""
import os
import threading
import time

import pytest
from botocore.exceptions import ClientError

from cluster import make_cluster, run_schedulers_at_once  # noqa: F401 (fixture)
from test_audit import events

LEASE_S = 120  # SCHEDULER_LEASE_S in src/scheduler/scheduler.h
DAY = 86400


def deletions(node, key_id):
    """The DeleteKey service events of key_id in node's audit trail."""
    return [e for e in events(node, "DeleteKey")
            if any(r.get("ARN", "").endswith(key_id) for r in e.get("resources", []))]


def wait_for_log(node, text, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in node.log_text():
            return
        time.sleep(0.05)
    raise AssertionError("%s never logged %r" % (node.node_id, text))


def test_a_due_deletion_runs_on_one_node_only(make_cluster):
    c = make_cluster(3)
    a = c.nodes[0]
    kms = a.client()
    ids = [kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(4)]
    for kid in ids:
        kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    c.advance_clock(8 * DAY)
    # Every node runs its scheduler at the same moment.
    run_schedulers_at_once(c.nodes)
    for kid in ids:
        per_node = {n.node_id: len(deletions(n, kid)) for n in c.nodes}
        assert sum(per_node.values()) == 1, (kid, per_node)
        doer = next(n for n in c.nodes if per_node[n.node_id] == 1)
        with pytest.raises(ClientError) as e:
            doer.client().describe_key(KeyId=kid)
        assert e.value.response["Error"]["Code"] == "NotFoundException"
    logged = sum(n.log_text().count("after its waiting period") for n in c.nodes)
    assert logged == len(ids)
    # Later runs find nothing more to do.
    for n in c.nodes:
        n.run_scheduler()
    assert sum(len(deletions(n, kid)) for n in c.nodes for kid in ids) == len(ids)


def test_the_lease_of_a_killed_node_is_taken_over_when_it_expires(make_cluster):
    c = make_cluster(2)
    a, b = c.nodes
    kid = a.client().create_key()["KeyMetadata"]["KeyId"]
    a.client().schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    c.advance_clock(8 * DAY)
    a.test_call("HoldLeases", {"Seconds": 600})
    held = threading.Thread(target=lambda: pytest.raises(Exception, a.run_scheduler))
    held.start()
    wait_for_log(a, "holding the lease on")
    a.kill9()
    held.join()
    # B honours A's lease while it lasts ...
    b.run_scheduler()
    assert b.client().describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    assert deletions(b, kid) == []
    # ... and takes the item once it has expired.
    b.advance_clock(LEASE_S + 1)
    b.run_scheduler()
    with pytest.raises(ClientError) as e:
        b.client().describe_key(KeyId=kid)
    assert e.value.response["Error"]["Code"] == "NotFoundException"
    assert len(deletions(b, kid)) == 1
    assert "after its waiting period" not in a.log_text()


def test_a_node_alone_runs_its_work_as_before(make_cluster):
    c = make_cluster(1)
    n = c.nodes[0]
    kid = n.client().create_key()["KeyMetadata"]["KeyId"]
    n.client().schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    n.advance_clock(8 * DAY)
    n.run_scheduler()
    assert len(deletions(n, kid)) == 1
