/*
 * cluster_test.c — node ids, the heartbeat's live-node count, and the
 * scheduler's leases on due items, against a real SQLite store.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "scheduler/scheduler.h"
#include "storage/storage.h"
#include "testlib.h"
#include "core/banned.h"

static char dir[] = "/tmp/kinko-cluster-test-XXXXXX";
static struct storage *st;

static void test_node_id(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 512);
	CHECK(cluster_node_id_valid("node-1.a_B"));
	CHECK(!cluster_node_id_valid(""));
	CHECK(!cluster_node_id_valid("a/b"));
	CHECK(!cluster_node_id_valid("a b"));
	char long_id[70];
	memset(long_id, 'x', 65);
	long_id[65] = 0;
	CHECK(!cluster_node_id_valid(long_id));
	long_id[64] = 0;
	CHECK(cluster_node_id_valid(long_id));
	/* Configured wins; a bad one is refused with a reason. */
	CHECK_STATUS(cluster_node_id_init("node-x", dir, &msg), K_OK);
	CHECK_STR(cluster_node_id(), "node-x");
	kbuf_clear(&msg);
	CHECK_STATUS(cluster_node_id_init("bad/id", dir, &msg), K_E_VALIDATION);
	CHECK(strstr(kbuf_cstr(&msg), "bad node id") != NULL);
	/* Generated once, then read back from DIR/node-id. */
	CHECK_STATUS(cluster_node_id_init(NULL, dir, &msg), K_OK);
	char first[CLUSTER_NODE_ID_MAX + 1];
	snprintf(first, sizeof first, "%s", cluster_node_id());
	CHECK(strncmp(first, "node-", 5) == 0 && cluster_node_id_valid(first));
	CHECK_STATUS(cluster_node_id_init("", dir, &msg), K_OK);
	CHECK_STR(cluster_node_id(), first);
	/* A damaged file is refused, not replaced. */
	char path[300];
	snprintf(path, sizeof path, "%s/%s", dir, CLUSTER_NODE_ID_FILE);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f != NULL) {
		fputs("not a node id\n", f);
		fclose(f);
	}
	kbuf_clear(&msg);
	CHECK_STATUS(cluster_node_id_init(NULL, dir, &msg), K_E_VALIDATION);
	CHECK(strstr(kbuf_cstr(&msg), "does not hold a node id") != NULL);
	unlink(path);
	kbuf_release(&msg);
}

static void put_node(const char *id, int64_t last_seen)
{
	char doc[128];
	snprintf(doc, sizeof doc, "{\"NodeId\":\"%s\",\"LastSeen\":%lld}", id,
		 (long long)last_seen);
	struct storage_op op = {.op = STORAGE_PUT,
				.kind = CLUSTER_NODE_KIND,
				.ns = "",
				.id = id,
				.doc = kslice_cstr(doc),
				.expect = STORAGE_ANY};
	CHECK_STATUS(storage_apply(st, &op, 1), K_OK);
}

static void test_live_nodes(void)
{
	struct kbuf msg;
	kbuf_init(&msg, 512);
	CHECK_STATUS(cluster_node_id_init("node-a", dir, &msg), K_OK);
	kbuf_release(&msg);
	int64_t now = (int64_t)time(NULL);
	put_node("node-b", now);			  /* live */
	put_node("node-c", now - CLUSTER_NODE_TTL_S - 5); /* gone quiet */
	CHECK_STATUS(cluster_start(st), K_OK);
	CHECK_EQ_INT(cluster_live_nodes(), 2); /* node-a (this one) and node-b */
	struct kbuf doc;
	kbuf_init(&doc, 4096);
	CHECK_STATUS(storage_get(st, CLUSTER_NODE_KIND, "", "node-a", &doc, NULL), K_OK);
	CHECK(strstr(kbuf_cstr(&doc), "\"LastSeen\"") != NULL);
	kbuf_release(&doc);
	struct kbuf m;
	kbuf_init(&m, 4096);
	cluster_metrics(&m);
	CHECK(strstr(kbuf_cstr(&m), "kinko_cluster_live_nodes 2\n") != NULL);
	CHECK(strstr(kbuf_cstr(&m), "kinko_cluster_node{node_id=\"node-a\"} 1") != NULL);
	kbuf_release(&m);
	cluster_stop();
}

struct runs {
	int n;
	bool keep; /* leave the due record in place */
};

static K_MUST_CHECK k_status run_cb(void *arg, int64_t when, const char *ns, const char *id,
				    const char *due_id)
{
	(void)when;
	(void)ns;
	(void)id;
	struct runs *r = arg;
	r->n++;
	if (r->keep)
		return K_OK;
	struct storage_op op;
	scheduler_due_del_op(&op, due_id);
	return storage_apply(st, &op, 1);
}

static void put_due(const char *due_id, const char *doc)
{
	struct storage_op op;
	scheduler_due_put_op(&op, due_id);
	op.doc = kslice_cstr(doc);
	CHECK_STATUS(storage_apply(st, &op, 1), K_OK);
}

static void test_leases(void)
{
	/* This node is node-a (test_live_nodes). */
	char a[SCHEDULER_DUE_ID_MAX], b[SCHEDULER_DUE_ID_MAX], c[SCHEDULER_DUE_ID_MAX];
	CHECK_STATUS(scheduler_due_id(100, "lease", "1:r", "a", a, sizeof a), K_OK);
	CHECK_STATUS(scheduler_due_id(100, "lease", "1:r", "b", b, sizeof b), K_OK);
	CHECK_STATUS(scheduler_due_id(100, "lease", "1:r", "c", c, sizeof c), K_OK);
	put_due(a, "{\"Owner\":\"node-b\",\"Expires\":2000}"); /* another node's, live */
	put_due(b, "{\"Owner\":\"node-a\",\"Expires\":2000}"); /* this node's own */
	put_due(c, "{}");
	struct runs r = {0};
	CHECK_STATUS(scheduler_due_list("lease", 1000, run_cb, &r), K_OK);
	CHECK_EQ_INT(r.n, 2); /* b and c; a waits for node-b's lease */
	CHECK_STATUS(storage_get(st, SCHEDULER_DUE_KIND, "", b, NULL, NULL), K_E_NOT_FOUND);
	CHECK_STATUS(storage_get(st, SCHEDULER_DUE_KIND, "", a, NULL, NULL), K_OK);
	/* Once node-b's lease has expired, this node takes the item. */
	struct runs r2 = {0};
	CHECK_STATUS(scheduler_due_list("lease", 1999, run_cb, &r2), K_OK);
	CHECK_EQ_INT(r2.n, 0); /* a lease holds while now < Expires */
	CHECK_STATUS(scheduler_due_list("lease", 2000, run_cb, &r2), K_OK);
	CHECK_EQ_INT(r2.n, 1);
	CHECK_STATUS(storage_get(st, SCHEDULER_DUE_KIND, "", a, NULL, NULL), K_E_NOT_FOUND);
	/* An item its callback leaves is given back, lease cleared. */
	put_due(c, "{}");
	struct runs r3 = {.keep = true};
	CHECK_STATUS(scheduler_due_list("lease", 1000, run_cb, &r3), K_OK);
	CHECK_EQ_INT(r3.n, 1);
	struct kbuf doc;
	kbuf_init(&doc, 4096);
	int64_t v = 0;
	CHECK_STATUS(storage_get(st, SCHEDULER_DUE_KIND, "", c, &doc, &v), K_OK);
	CHECK_STR(kbuf_cstr(&doc), "{}");
	CHECK_EQ_INT(v, 3); /* created, claimed, given back */
	kbuf_release(&doc);
}

int main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	if (k_failed(storage_sqlite_open(dir, &st)))
		return 1;
	RUN(test_node_id);
	RUN(test_live_nodes);
	CHECK_STATUS(scheduler_start(st), K_OK);
	RUN(test_leases);
	scheduler_stop();
	storage_close(st);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return tl_summary();
}
