/*
 * mrk_peer_sync.c — the outbox worker of multi-Region keys across
 * deployments (mrk_peer.h).
 *
 * Each outbox record names a peer Region and a key of this deployment
 * whose shared properties changed. The worker sends the key's state as
 * it is when sent (every material version, sealed for the peer; the
 * rotations; the set of related keys), so records written several times
 * before a send become one call, and deletes the record once the peer
 * has acknowledged it, with the record's version as precondition: a
 * change written meanwhile keeps its record and is sent again.
 *
 * A peer that does not answer is tried again after a delay that doubles
 * from PEER_RETRY_MIN_MS to PEER_RETRY_MAX_MS, per peer; its records wait
 * in the store meanwhile, across restarts. Every node of a cluster runs
 * a worker: two nodes may send the same record, which the receiving side
 * takes as a repeat (it keeps the versions it has).
 */
#include "kms/mrk_peer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/peers.h"
#include "core/json.h"
#include "core/log.h"
#include "kms/store.h"
#include "core/banned.h"

#define PEER_RETRY_MIN_MS 1000
#define PEER_RETRY_MAX_MS 10000
#define PEER_POLL_MS 1000
/* Records read per pass. */
#define PASS_MAX 64

struct row {
	char id[KMS_MRK_OUTBOX_ID_MAX];
	int64_t version;
	char region[33];
	char ns[64];
	char key_id[40];
	bool deleted; /* the replica key_id of ns is gone (KMS_MRK_OUTBOX_DELETED) */
};

struct pass {
	size_t n, listed;		  /* rows kept, records listed */
	char last[KMS_MRK_OUTBOX_ID_MAX]; /* the id listed last: the next page starts after it */
	struct row rows[PASS_MAX];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t worker;
static bool running, stopping;
/* Per peer (config_peer_at's index): when to try again, and the delay after the next failure. */
static int64_t retry_at[CONFIG_PEERS_MAX], retry_delay[CONFIG_PEERS_MAX];

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static K_MUST_CHECK k_status collect(void *arg, const char *ns, const char *id, struct kslice doc,
				     int64_t version)
{
	(void)ns;
	struct pass *p = arg;
	p->listed++;
	kstr_copy(p->last, sizeof p->last, id);
	json_t *j = json_loadb((const char *)doc.ptr, doc.len, 0, NULL);
	const char *r = json_string_value(json_object_get(j, "Region"));
	const char *kns = json_string_value(json_object_get(j, "Ns"));
	const char *kid = json_string_value(json_object_get(j, "KeyId"));
	if (p->n < PASS_MAX && r != NULL && kns != NULL && kid != NULL) {
		struct row *w = &p->rows[p->n++];
		kstr_copy(w->id, sizeof w->id, id);
		w->version = version;
		kstr_copy(w->region, sizeof w->region, r);
		kstr_copy(w->ns, sizeof w->ns, kns);
		kstr_copy(w->key_id, sizeof w->key_id, kid);
		w->deleted = json_is_true(json_object_get(j, KMS_MRK_OUTBOX_DELETED));
	}
	json_decref(j);
	return K_OK;
}

static void drop_row(const struct row *w)
{
	struct storage_op op = {.op = STORAGE_DEL,
				.kind = KMS_MRK_OUTBOX_KIND,
				.ns = KMS_MRK_OUTBOX_NS,
				.id = w->id,
				.expect = w->version};
	k_status rc = storage_apply(kms_store(), &op, 1);
	if (k_failed(rc) && !k_is(rc, K_E_CONFLICT) && !k_is(rc, K_E_NOT_FOUND))
		LOG_WARN("mrk: outbox record %s not deleted: %s", w->id, k_status_name(rc));
}

/* The synchronization request of key k for the peer of region. */
static K_MUST_CHECK k_status sync_body(const struct kms_key *k, const char *region, json_t **out)
{
	json_t *sealed = NULL;
	GUARD(kms_mrk_peer_sealed(k, "synchronize", region, &sealed));
	json_t *key = json_pack("{s:O, s:o, s:o}", "MultiRegionConfiguration",
				json_object_get(k->doc, "MultiRegionConfiguration"), "Rotations",
				json_is_array(json_object_get(k->doc, "Rotations"))
					? json_incref(json_object_get(k->doc, "Rotations"))
					: json_array(),
				"Materials", kms_mrk_peer_versions(k->doc));
	/* A primary's automatic rotation settings (a shared property) go with them. */
	if (key != NULL && !kms_key_is_mrk_replica(k))
		json_object_set_new(key, KMS_MRK_PRIMARY_ROTATION, kms_rotation_settings(k));
	*out = key != NULL ? json_pack("{s:s, s:o, s:o}", "KeyId", k->id, "Key", key,
				       "EncryptedKeyMaterial", sealed)
			   : NULL;
	if (*out == NULL) {
		json_decref(key);
		json_decref(sealed);
		return K_E_INTERNAL;
	}
	return K_OK;
}

/*
 * Sends the news of a deleted replica: {"KeyId", "ReplicaRegion"}. A
 * replica made again here since (ReplicateKey after the deletion) makes
 * the record stale: it goes unsent. The peer no longer having the key is
 * done with too.
 */
static K_MUST_CHECK k_status send_deleted(const struct row *w)
{
	struct kms_key *k = NULL;
	k_status rc = kms_key_get(w->ns, w->key_id, &k);
	kms_key_unref(k);
	if (k_ok(rc) || !kms_mrk_region_is_peer(w->region)) {
		drop_row(w);
		return K_OK;
	}
	GUARD(k_is(rc, K_E_NOT_FOUND) ? K_OK : rc);
	const char *colon = w->ns + strcspn(w->ns, ":");
	const char *region = colon[0] == ':' ? colon + 1 : "";
	json_t *body = json_pack("{s:s, s:s}", "KeyId", w->key_id, "ReplicaRegion", region);
	ENSURE(body != NULL, K_E_INTERNAL);
	json_t *ans = NULL;
	struct kbuf why;
	kbuf_init(&why, KBUF_NOTE_MAX);
	rc = kms_mrk_peer_call(w->region, "ReplicaDeletedIn", body, &ans, &why);
	if (k_ok(rc) || k_is(rc, K_E_NOT_FOUND)) {
		LOG_INFO("mrk: %s told that the replica %s in %s is deleted%s", w->region,
			 w->key_id, region, k_ok(rc) ? "" : " (it has no such key)");
		drop_row(w);
		rc = K_OK;
	} else {
		LOG_WARN("mrk: telling %s that the replica %s of %s is deleted: %s (%s); retrying",
			 w->region, w->key_id, w->ns, k_status_name(rc), kbuf_cstr(&why));
	}
	json_decref(body);
	json_decref(ans);
	kbuf_release(&why);
	return rc;
}

/*
 * Sends one record. K_OK when it is done with (acknowledged, or its key
 * or the peer's replica is gone); a failure leaves it for a retry.
 */
static K_MUST_CHECK k_status send_row(const struct row *w)
{
	if (w->deleted)
		return send_deleted(w);
	struct kms_key *k = NULL;
	k_status rc = kms_key_get(w->ns, w->key_id, &k);
	if (k_is(rc, K_E_NOT_FOUND) || !kms_mrk_region_is_peer(w->region)) {
		drop_row(w);
		return K_OK;
	}
	GUARD(rc);
	json_t *body = NULL, *ans = NULL;
	struct kbuf why;
	kbuf_init(&why, KBUF_NOTE_MAX);
	rc = sync_body(k, w->region, &body);
	if (k_ok(rc))
		rc = kms_mrk_peer_call(w->region, "SynchronizeKeyIn", body, &ans, &why);
	if (k_ok(rc) || k_is(rc, K_E_NOT_FOUND)) {
		if (k_is(rc, K_E_NOT_FOUND))
			LOG_WARN("mrk: %s has no replica in %s any more: %s", k->arn, w->region,
				 kbuf_cstr(&why));
		drop_row(w);
		rc = k_ok(rc) ? kms_mrk_sync_event(k, w->region) : K_OK;
	} else {
		LOG_WARN("mrk: synchronizing %s with %s: %s (%s); retrying", k->arn, w->region,
			 k_status_name(rc), kbuf_cstr(&why));
	}
	json_decref(body);
	json_decref(ans);
	kbuf_release(&why);
	kms_key_unref(k);
	return rc;
}

static size_t peer_index(const char *region)
{
	for (size_t i = 0; i < config_peer_count(); i++) {
		if (strcmp(config_peer_at(i)->region, region) == 0)
			return i;
	}
	return CONFIG_PEERS_MAX;
}

/* Sends one record unless its peer waits out a retry delay; the delay follows the outcome. */
static K_MUST_CHECK k_status try_row(const struct row *w)
{
	size_t at = peer_index(w->region);
	int64_t now = mono_ms();
	if (at < CONFIG_PEERS_MAX && retry_at[at] > now)
		return K_E_DEPENDENCY_TIMEOUT;
	k_status rc = send_row(w);
	if (at >= CONFIG_PEERS_MAX)
		return rc;
	if (k_ok(rc)) {
		retry_delay[at] = 0;
		return rc;
	}
	int64_t d = retry_delay[at] < PEER_RETRY_MIN_MS ? PEER_RETRY_MIN_MS : retry_delay[at];
	retry_at[at] = now + d;
	retry_delay[at] = d * 2 > PEER_RETRY_MAX_MS ? PEER_RETRY_MAX_MS : d * 2;
	return rc;
}

/*
 * One pass over the whole outbox, a page at a time: a peer that is down
 * (its records wait) does not hold back the others'.
 */
static K_MUST_CHECK k_status run_pass(void)
{
	struct pass *p = calloc(1, sizeof *p);
	ENSURE(p != NULL, K_E_INTERNAL);
	char after[KMS_MRK_OUTBOX_ID_MAX] = "";
	k_status rc = K_OK;
	do {
		p->n = 0;
		k_status lr = storage_list(kms_store(), KMS_MRK_OUTBOX_KIND, KMS_MRK_OUTBOX_NS,
					   NULL, after, PASS_MAX, collect, p);
		if (k_failed(lr)) {
			rc = lr;
			break;
		}
		for (size_t i = 0; i < p->n; i++) {
			k_status one = try_row(&p->rows[i]);
			if (k_failed(one))
				rc = one;
		}
		kstr_copy(after, sizeof after, p->last);
	} while (p->listed == PASS_MAX);
	free(p);
	return rc;
}

static void *sync_loop(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	while (!stopping) {
		pthread_mutex_unlock(&lock);
		k_ignore(run_pass()); /* failures are logged and retried */
		pthread_mutex_lock(&lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += PEER_POLL_MS / 1000;
		if (!stopping)
			pthread_cond_timedwait(&wake, &lock, &ts);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

k_status kms_mrk_peer_sync_start(void)
{
	if (config_peer_count() == 0 || running)
		return K_OK;
	stopping = false;
	ENSURE(pthread_create(&worker, NULL, sync_loop, NULL) == 0, K_E_INTERNAL);
	running = true;
	return K_OK;
}

void kms_mrk_peer_sync_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(worker, NULL);
	running = false;
}
