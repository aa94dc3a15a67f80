/*
 * key_warm.c — the key cache loaded at start (see key_warm.h).
 */
#include "kms/key_warm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/log.h"
#include "kms/key_cache.h"
#include "kms/kms.h"
#include "kms/store.h"
#include "metrics/metrics.h"
#include "core/banned.h"

/* Namespaces (account:region) a pass walks at most; beyond, the rest stay cold. */
#define WARM_MAX_NAMESPACES 4096

/* The pass's progress, read by /metrics while the thread writes it. */
static struct {
	atomic_uint_fast64_t listed, loaded, skipped, refused, failed;
	atomic_bool running, done;
	atomic_bool stop;
	atomic_int_fast64_t started_ms, ended_ms;
} progress;

static pthread_t thread;
static bool thread_running;
static struct kms_warm_options thread_opts;
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the namespaces ----------------------------------------------------------- */

struct ns_list {
	char (*names)[STORAGE_MAX_NAME + 1];
	size_t n;
	size_t rows, max_rows;
};

/* Rows come ordered by namespace: a new one starts where the name changes. */
static K_MUST_CHECK k_status ns_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				   int64_t version)
{
	struct ns_list *l = arg;
	if (l->rows++ >= l->max_rows)
		return K_E_LIMIT_EXCEEDED;
	if (l->n > 0 && strcmp(l->names[l->n - 1], ns) == 0)
		return K_OK;
	if (l->n == WARM_MAX_NAMESPACES) {
		LOG_WARN("kms: warming the key cache: more than %d namespaces, the rest stay cold",
			 WARM_MAX_NAMESPACES);
		return K_E_LIMIT_EXCEEDED;
	}
	snprintf(l->names[l->n++], sizeof l->names[0], "%s", ns);
	return K_OK;
}

/* The namespaces holding the first max_rows keys, in store order. */
static K_MUST_CHECK k_status list_namespaces(struct ns_list *l, size_t max_rows)
{
	*l = (struct ns_list){.max_rows = max_rows};
	l->names = calloc(WARM_MAX_NAMESPACES, sizeof l->names[0]);
	ENSURE(l->names != NULL, K_E_INTERNAL);
	k_status rc = storage_list(kms_store(), "key", NULL, NULL, NULL, 0, ns_cb, l);
	if (k_is(rc, K_E_LIMIT_EXCEEDED))
		return K_OK;
	return rc;
}

/* ---- one batch ------------------------------------------------------------------ */

struct batch {
	const char *ns;
	size_t left; /* keys the pass may still list */
	size_t rows; /* listed in this batch */
	char after[STORAGE_MAX_NAME + 1];
	json_t *docs[KMS_WARM_BATCH];
	int64_t versions[KMS_WARM_BATCH];
	size_t n;
};

/* Keeps each listed key that is not cached yet, parsed, for after the read. */
static K_MUST_CHECK k_status batch_cb(void *arg, const char *ns, const char *id, struct kslice doc,
				      int64_t version)
{
	struct batch *b = arg;
	if (b->left == 0 || atomic_load(&progress.stop))
		return K_E_LIMIT_EXCEEDED;
	b->left--;
	b->rows++;
	snprintf(b->after, sizeof b->after, "%s", id);
	atomic_fetch_add(&progress.listed, 1);
	struct kms_key *k = NULL;
	if (kms_key_cached(ns, id, &k)) {
		kms_key_unref(k);
		atomic_fetch_add(&progress.skipped, 1);
		return K_OK;
	}
	json_error_t err;
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, &err);
	if (j == NULL) {
		LOG_ERROR("kms: warming the key cache: key %s in %s is not JSON", id, ns);
		atomic_fetch_add(&progress.failed, 1);
		return K_OK;
	}
	b->docs[b->n] = j;
	b->versions[b->n] = version;
	b->n++;
	return K_OK;
}

/*
 * Opens the batch's keys (material unwrapped, policy parsed) and installs
 * each against the generations taken before the batch was read.
 */
static void install_batch(struct batch *b, const uint64_t gens[KMS_CACHE_SHARDS])
{
	for (size_t i = 0; i < b->n; i++) {
		struct kms_key *k = NULL;
		bool made = !atomic_load(&progress.stop) &&
			    k_ok(kms_key_from_doc(b->ns, b->docs[i], b->versions[i], &k));
		/*
		 * The key holds a reference to the document: the batch's own is
		 * dropped before the key is published, so that no other thread
		 * shares the document's reference count with this one.
		 */
		json_decref(b->docs[i]);
		if (made) {
			bool in = kms_cache_install(k, gens);
			atomic_fetch_add(in ? &progress.loaded : &progress.refused, 1);
		} else if (!atomic_load(&progress.stop)) {
			atomic_fetch_add(&progress.failed, 1);
		}
	}
	b->n = 0;
}

/* Waits until `ms` (monotonic) or a stop, whichever comes first. */
static void pace_until(int64_t ms)
{
	pthread_mutex_lock(&stop_mu);
	while (!atomic_load(&progress.stop)) {
		int64_t left = ms - mono_ms();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (left % 1000) * 1000000;
		ts.tv_sec += (time_t)(left / 1000 + ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		pthread_cond_timedwait(&stop_cv, &stop_mu, &ts);
	}
	pthread_mutex_unlock(&stop_mu);
}

/* Walks one namespace in id order, a batch per read. */
static K_MUST_CHECK k_status warm_namespace(const char *ns, const struct kms_warm_options *o,
					    size_t *left, int64_t t0)
{
	struct batch *b = calloc(1, sizeof *b);
	ENSURE(b != NULL, K_E_INTERNAL);
	b->ns = ns;
	k_status rc = K_OK;
	do {
		uint64_t gens[KMS_CACHE_SHARDS];
		kms_cache_gens(gens); /* before the read: see key_cache.h */
		b->rows = 0;
		b->left = *left < KMS_WARM_BATCH ? *left : KMS_WARM_BATCH;
		rc = storage_list(kms_store(), "key", ns, NULL, b->after, KMS_WARM_BATCH, batch_cb,
				  b);
		if (k_is(rc, K_E_LIMIT_EXCEEDED))
			rc = K_OK;
		*left -= b->rows;
		install_batch(b, gens);
		if (o->rate > 0)
			pace_until(t0 + (int64_t)(atomic_load(&progress.listed) * 1000 / o->rate));
	} while (k_ok(rc) && b->rows == KMS_WARM_BATCH && *left > 0 &&
		 !atomic_load(&progress.stop));
	free(b);
	return rc;
}

k_status kms_warm_run(const struct kms_warm_options *o, struct kms_warm_stats *out)
{
	ENSURE(o != NULL && kms_store() != NULL, K_E_VALIDATION);
	int64_t t0 = mono_ms();
	atomic_store(&progress.listed, 0);
	atomic_store(&progress.loaded, 0);
	atomic_store(&progress.skipped, 0);
	atomic_store(&progress.refused, 0);
	atomic_store(&progress.failed, 0);
	atomic_store(&progress.started_ms, t0);
	atomic_store(&progress.running, true);
	struct ns_list l = {0};
	k_status rc = o->max_keys > 0 ? list_namespaces(&l, o->max_keys) : K_OK;
	size_t left = o->max_keys;
	for (size_t i = 0; k_ok(rc) && i < l.n && left > 0 && !atomic_load(&progress.stop); i++)
		rc = warm_namespace(l.names[i], o, &left, t0);
	free(l.names);
	atomic_store(&progress.ended_ms, mono_ms());
	atomic_store(&progress.running, false);
	atomic_store(&progress.done, true);
	if (out != NULL) {
		*out = (struct kms_warm_stats){
			.listed = atomic_load(&progress.listed),
			.loaded = atomic_load(&progress.loaded),
			.skipped = atomic_load(&progress.skipped),
			.refused = atomic_load(&progress.refused),
			.failed = atomic_load(&progress.failed),
			.done = true,
		};
	}
	return rc;
}

/* ---- the server's thread -------------------------------------------------------- */

static void lower_priority(void)
{
	id_t tid = (id_t)syscall(SYS_gettid);
	int now = getpriority(PRIO_PROCESS, tid);
	if (setpriority(PRIO_PROCESS, tid, now + KMS_WARM_NICE) != 0)
		LOG_DEBUG("kms: the key cache's warming thread keeps its priority");
}

static void *warm_main(void *arg)
{
	(void)arg;
	lower_priority();
	struct kms_warm_stats st;
	k_status rc = kms_warm_run(&thread_opts, &st);
	int64_t ms = atomic_load(&progress.ended_ms) - atomic_load(&progress.started_ms);
	if (k_failed(rc))
		LOG_WARN("kms: warming the key cache stopped on a store error after %llu keys",
			 (unsigned long long)st.listed);
	LOG_INFO("kms: key cache warmed in %lld ms: %llu keys read, %llu loaded, %llu already "
		 "cached, %llu changed meanwhile, %llu failed",
		 (long long)ms, (unsigned long long)st.listed, (unsigned long long)st.loaded,
		 (unsigned long long)st.skipped, (unsigned long long)st.refused,
		 (unsigned long long)st.failed);
	return NULL;
}

k_status kms_warm_start(const struct kms_warm_options *o)
{
	ENSURE(o != NULL && !thread_running, K_E_VALIDATION);
	metrics_add_source(kms_warm_metrics);
	if (o->max_keys == 0)
		return K_OK;
	thread_opts = *o;
	atomic_store(&progress.stop, false);
	atomic_store(&progress.running, true);
	ENSURE(pthread_create(&thread, NULL, warm_main, NULL) == 0, K_E_INTERNAL);
	thread_running = true;
	return K_OK;
}

void kms_warm_stop(void)
{
	if (!thread_running)
		return;
	pthread_mutex_lock(&stop_mu);
	atomic_store(&progress.stop, true);
	pthread_cond_broadcast(&stop_cv);
	pthread_mutex_unlock(&stop_mu);
	pthread_join(thread, NULL);
	thread_running = false;
}

void kms_warm_metrics(struct kbuf *b)
{
	int64_t end = atomic_load(&progress.running) ? mono_ms() : atomic_load(&progress.ended_ms);
	int64_t ms =
		atomic_load(&progress.started_ms) > 0 ? end - atomic_load(&progress.started_ms) : 0;
	kbuf_note(
		b,
		"# HELP kinko_kms_cached_keys Keys held in the key cache.\n"
		"# TYPE kinko_kms_cached_keys gauge\n"
		"kinko_kms_cached_keys %zu\n"
		"# HELP kinko_kms_warm_running 1 while the key cache is being loaded at start.\n"
		"# TYPE kinko_kms_warm_running gauge\n"
		"kinko_kms_warm_running %d\n"
		"# HELP kinko_kms_warm_seconds How long loading the key cache took (so far).\n"
		"# TYPE kinko_kms_warm_seconds gauge\n"
		"kinko_kms_warm_seconds %.3f\n"
		"# HELP kinko_kms_warm_keys Keys the start's pass read, by what it did with them.\n"
		"# TYPE kinko_kms_warm_keys counter\n"
		"kinko_kms_warm_keys{result=\"loaded\"} %llu\n"
		"kinko_kms_warm_keys{result=\"already_cached\"} %llu\n"
		"kinko_kms_warm_keys{result=\"changed\"} %llu\n"
		"kinko_kms_warm_keys{result=\"failed\"} %llu\n",
		kms_cache_size(), atomic_load(&progress.running) ? 1 : 0, (double)ms / 1000.0,
		(unsigned long long)atomic_load(&progress.loaded),
		(unsigned long long)atomic_load(&progress.skipped),
		(unsigned long long)atomic_load(&progress.refused),
		(unsigned long long)atomic_load(&progress.failed));
}
