/*
 * node.c — the node id, its heartbeat and the live-node count (cluster.h).
 */
#include "cluster/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "crypto/uuid.h"
#include "core/banned.h"

static char node_id[CLUSTER_NODE_ID_MAX + 1];
static struct storage *store;
static int64_t started_at;
static _Atomic unsigned live_nodes = 1;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static bool running, stopping;
static pthread_t thread;

int cluster_node_id_valid(const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;
	if (n == 0 || n > CLUSTER_NODE_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
		if (!ok)
			return 0;
	}
	return 1;
}

const char *cluster_node_id(void)
{
	return node_id;
}

/* Reads the id kept in path into out. K_E_NOT_FOUND if there is no file. */
static K_MUST_CHECK k_status read_id_file(const char *path, char *out, size_t n, struct kbuf *msg)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return K_E_NOT_FOUND;
	if (fd < 0) {
		kbuf_note(msg, "cannot read %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	char buf[CLUSTER_NODE_ID_MAX + 2];
	ssize_t got = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (got < 0) {
		kbuf_note(msg, "cannot read %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	size_t len = (size_t)got;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = 0;
	if (!cluster_node_id_valid(buf) || len >= n) {
		kbuf_note(msg,
			  "%s does not hold a node id (1 to %d characters of A-Z a-z 0-9 . _ -)",
			  path, CLUSTER_NODE_ID_MAX);
		return K_E_VALIDATION;
	}
	memcpy(out, buf, len + 1);
	return K_OK;
}

/*
 * Writes a new random id to path, durably. The file is created
 * exclusively: two processes racing on one data folder cannot both write
 * (the data folder's lock already keeps a second server out).
 */
static K_MUST_CHECK k_status write_id_file(const char *path, char *out, size_t n, struct kbuf *msg)
{
	char uuid[37];
	crypto_uuid_random(uuid);
	int len = snprintf(out, n, "node-%.8s%.4s", uuid, uuid + 9);
	ENSURE(len > 0 && (size_t)len < n, K_E_INTERNAL);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		kbuf_note(msg, "cannot create %s: %s", path, strerror(errno));
		return K_E_INTERNAL;
	}
	char line[CLUSTER_NODE_ID_MAX + 2];
	int ll = snprintf(line, sizeof line, "%s\n", out);
	bool ok = ll > 0 && write(fd, line, (size_t)ll) == (ssize_t)ll && fsync(fd) == 0;
	close(fd);
	if (!ok) {
		kbuf_note(msg, "cannot write %s", path);
		(void)unlink(path);
		return K_E_INTERNAL;
	}
	return K_OK;
}

k_status cluster_node_id_init(const char *configured, const char *data_dir, struct kbuf *msg)
{
	if (configured != NULL && configured[0] != 0) {
		if (!cluster_node_id_valid(configured)) {
			kbuf_note(msg,
				  "bad node id \"%s\" (1 to %d characters of A-Z a-z 0-9 . _ -)",
				  configured, CLUSTER_NODE_ID_MAX);
			return K_E_VALIDATION;
		}
		snprintf(node_id, sizeof node_id, "%s", configured);
		return K_OK;
	}
	ENSURE(data_dir != NULL, K_E_VALIDATION);
	char path[1024];
	int pl = snprintf(path, sizeof path, "%s/%s", data_dir, CLUSTER_NODE_ID_FILE);
	ENSURE(pl > 0 && (size_t)pl < sizeof path, K_E_VALIDATION);
	k_status rc = read_id_file(path, node_id, sizeof node_id, msg);
	if (k_is(rc, K_E_NOT_FOUND))
		rc = write_id_file(path, node_id, sizeof node_id, msg);
	if (k_failed(rc))
		node_id[0] = 0;
	return rc;
}

static int64_t wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* This node's document: who it is and when it was last seen. */
static K_MUST_CHECK k_status heartbeat(int64_t now)
{
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) != 0)
		host[0] = 0;
	json_t *d = json_pack("{s:s, s:s, s:I, s:I, s:I}", "NodeId", node_id, "Host", host, "Pid",
			      (json_int_t)getpid(), "StartedAt", (json_int_t)started_at, "LastSeen",
			      (json_int_t)now);
	ENSURE(d != NULL, K_E_INTERNAL);
	char *text = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	ENSURE(text != NULL, K_E_INTERNAL);
	struct storage_op op = {.op = STORAGE_PUT,
				.kind = CLUSTER_NODE_KIND,
				.ns = "",
				.id = node_id,
				.doc = kslice_cstr(text),
				.expect = STORAGE_ANY};
	k_status rc = storage_apply(store, &op, 1);
	kjson_free(text);
	return rc;
}

struct live_count {
	int64_t since;
	unsigned n;
};

static K_MUST_CHECK k_status count_live(void *arg, const char *ns, const char *id,
					struct kslice doc, int64_t version)
{
	(void)ns;
	(void)id;
	(void)version;
	struct live_count *lc = arg;
	json_t *d = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	json_int_t seen = json_integer_value(json_object_get(d, "LastSeen"));
	json_decref(d);
	if (seen >= lc->since)
		lc->n++;
	return K_OK;
}

/*
 * One beat: write this node's document, then count the nodes seen within
 * the TTL. A failed write or listing keeps the last count (a store that
 * is down says nothing about the other nodes) and is logged at debug.
 */
static K_MUST_CHECK k_status beat(void)
{
	int64_t now = wall_s();
	k_status rc = heartbeat(now);
	if (k_failed(rc)) {
		LOG_DEBUG("cluster: heartbeat of %s failed: %s", node_id, k_status_name(rc));
		return rc;
	}
	struct live_count lc = {.since = now - CLUSTER_NODE_TTL_S, .n = 0};
	rc = storage_list(store, CLUSTER_NODE_KIND, "", NULL, NULL, 0, count_live, &lc);
	if (k_ok(rc))
		atomic_store(&live_nodes, lc.n > 0 ? lc.n : 1);
	return K_OK;
}

static void *heartbeat_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!stopping) {
		struct timespec deadline;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += CLUSTER_HEARTBEAT_S;
		while (!stopping && pthread_cond_timedwait(&cv, &mu, &deadline) != ETIMEDOUT)
			;
		if (stopping)
			break;
		pthread_mutex_unlock(&mu);
		k_ignore(beat()); /* a failure keeps the last count; the next beat retries */
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

unsigned cluster_live_nodes(void)
{
	return atomic_load(&live_nodes);
}

void cluster_metrics(struct kbuf *b)
{
	kbuf_note(b,
		  "# HELP kinko_cluster_live_nodes Nodes whose heartbeat reached the store within "
		  "%d s.\n"
		  "# TYPE kinko_cluster_live_nodes gauge\n"
		  "kinko_cluster_live_nodes %u\n"
		  "# HELP kinko_cluster_node This node's id.\n"
		  "# TYPE kinko_cluster_node gauge\n"
		  "kinko_cluster_node{node_id=\"%s\"} 1\n",
		  CLUSTER_NODE_TTL_S, cluster_live_nodes(), node_id);
}

k_status cluster_start(struct storage *st)
{
	ENSURE(st != NULL && node_id[0] != 0, K_E_VALIDATION);
	store = st;
	started_at = wall_s();
	GUARD(beat()); /* the first write must succeed */
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	int e = pthread_cond_init(&cv, &attr);
	pthread_condattr_destroy(&attr);
	ENSURE(e == 0, K_E_INTERNAL);
	stopping = false;
	if (pthread_create(&thread, NULL, heartbeat_main, NULL) != 0) {
		pthread_cond_destroy(&cv);
		return K_E_INTERNAL;
	}
	running = true;
	LOG_INFO("cluster: node %s registered (%u live nodes)", node_id, cluster_live_nodes());
	return K_OK;
}

void cluster_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&mu);
	stopping = true;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(thread, NULL);
	pthread_cond_destroy(&cv);
	running = false;
}
